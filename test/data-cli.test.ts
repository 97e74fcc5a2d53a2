import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { testServices, startWorker, onCleanup, type TestServices, type RunningWorker } from './helpers/harness.js';
import { startHostWorker } from './helpers/host-worker.js';
import { runCli, cliEnv } from './helpers/cli.js';

let services: TestServices;
let worker: RunningWorker;
let env: Record<string, string>;
let dir: string;

before(async () => {
  services = await testServices();
  worker = await startWorker(services);
  env = cliEnv(services.env, worker.taskQueue);
  dir = mkdtempSync(join(tmpdir(), 'trainctl-data-cli-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
});

test('trainctl data recommend prints every strategy’s estimates, marks the winner and explains it', async () => {
  const r = await runCli(
    [
      'data',
      'recommend',
      '--dataset-gib',
      '500',
      '--files',
      '5000000',
      '--runs',
      '2',
      '--epochs',
      '20',
      '--instance-type',
      'g5.12xlarge',
      '--volume-throughput',
      '1000',
      '--snapshot',
      '--init-rate',
      '300',
    ],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^strategy\s+prep\s+per epoch\s+total\s+cost/m);
  assert.match(r.stdout, /^\* PreWarmedEBS\s+28 min/m);
  for (const s of ['LocalCache', 'ExistingEBS', 'DirectS3']) assert.match(r.stdout, new RegExp(`^  ${s} `, 'm'));
  assert.match(r.stdout, /^PreWarmedEBS: for 500 GiB in 5,000,000 files/m);

  const j = await runCli(['data', 'recommend', '--dataset-gib', '2000', '--files', '8000', '--instance-type', 'p4d.24xlarge', '--json'], env);
  assert.equal(j.code, 0, j.stderr);
  const parsed = JSON.parse(j.stdout) as { strategy: string; table: unknown[] };
  assert.equal(parsed.strategy, 'DirectS3');
  assert.equal(parsed.table.length, 4);
});

test('trainctl data recommend rejects bad input with exit code 2, naming the flags', async () => {
  const r = await runCli(['data', 'recommend', '--dataset-gib=-1', '--instance-type', 'g5.xlarge'], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--dataset-gib: must be positive/);
  assert.match(r.stderr, /--files: give the file count or the mean file size/);
  const unknown = await runCli(['data', 'recommend', '--dataset-gib', '1', '--files', '1', '--instance-type', 'x9.huge'], env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /x9.huge is not in the table/);
});

test('trainctl data loader writes a DataLoader module that compiles, with num_workers from the instance’s vCPUs', async () => {
  const out = join(dir, 'train_data.py');
  const r = await runCli(
    ['data', 'loader', '--strategy', 'DirectS3', '--s3-uri', "s3://my-bucket/it's/train/", '--instance-type', 'g5.12xlarge', '--out', out],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  const text = readFileSync(out, 'utf8');
  assert.match(text, /^S3_PREFIX = 'it\\'s\/train\/'$/m);
  assert.match(text, /or 16 {2}# from 48 vCPUs/);
  await promisify(execFile)('python3', ['-m', 'py_compile', out]);
  const missing = await runCli(['data', 'loader', '--strategy', 'LocalCache', '--out', out], env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /LocalCache needs --path DIR/);
});

test('trainctl data prewarm runs the workflow on a host worker and prints the measured figures', async () => {
  const host = await startHostWorker(services.env);
  writeFileSync(join(host.root, 'dev.img'), Buffer.alloc(8 * 1024 * 1024, 7));
  const r = await runCli(
    ['data', 'prewarm', '--host', host.hostId, '--strategy', 'PreWarmedEBS', '--device', 'dev.img', '--no-fio', '--timeout-minutes', '2', '--json'],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    ok: boolean;
    bytes: number;
    mibPerSecond: number;
    prewarm: { method: string; bytesReadThisAttempt: number };
    workflowId: string;
  };
  assert.equal(out.ok, true);
  assert.equal(out.bytes, 8 * 1024 * 1024);
  assert.equal(out.prewarm.method, 'builtin');
  assert.equal(out.prewarm.bytesReadThisAttempt, 8 * 1024 * 1024);
  assert.ok(out.mibPerSecond > 0);
  assert.equal(out.workflowId, `prewarm/${host.hostId}/PreWarmedEBS/dev.img`);
  const bad = await runCli(['data', 'prewarm', '--host', host.hostId, '--strategy', 'LocalCache', '--cache-dir', 'c'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /LocalCache needs --s3-uri s3:\/\/BUCKET\/PREFIX/);
});
