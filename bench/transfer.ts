/**
 * Transfer benchmark (never part of `npm test`): a SIZE MiB single-file upload and download through
 * the `transfer` workflow against moto, with the worker in its own process so its peak RSS can be
 * read, next to the AWS CLI's `aws s3 cp` on the same emulator.
 *
 *   node --import tsx bench/transfer.ts [--size-mib 1024] [--part-size-mib 16] [--concurrency 4] [--aws PATH_TO_aws]
 *
 * The AWS CLI is optional: install it pinned into a throwaway venv
 * (`python3 -m venv /tmp/awsvenv && /tmp/awsvenv/bin/pip install awscli==1.46.2`) and pass --aws.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { once } from 'node:events';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { repoRoot, startMoto, startTemporalDevServer, stopAll } from '../src/dev/services.js';
import { workflowsPath } from '../src/worker.js';
import { createS3Client } from '../src/aws/clients.js';
import { loadEnv } from '../src/config.js';
import type { TransferRequest } from '../src/contracts/transfer.js';
import type { TransferReport } from '../src/contracts/transfer.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    'part-size-mib': { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '4' },
    aws: { type: 'string' },
  },
});
const sizeMiB = Number(values['size-mib']);
const partSizeMiB = Number(values['part-size-mib']);
const concurrency = Number(values.concurrency);

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  for (let left = bytes; left > 0; left -= 4 * MiB) {
    if (!out.write(randomBytes(Math.min(4 * MiB, left)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Samples a process's RSS every 20 ms while `fn` runs; returns fn's result and the highest sample. */
async function sampled<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; peakRss: number }> {
  let peakRss = procStatus(pid, 'VmRSS');
  const t = setInterval(() => {
    peakRss = Math.max(peakRss, procStatus(pid, 'VmRSS'));
  }, 20);
  try {
    const result = await fn();
    return { result, peakRss: Math.max(peakRss, procStatus(pid, 'VmRSS')) };
  } finally {
    clearInterval(t);
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const dir = mkdtempSync(join(tmpdir(), 'trainctl-bench-'));
const children: ChildProcess[] = [];

/** Starts a worker process and waits until it polls. */
async function startProcess(args: string[], extraEnv: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: repoRoot,
    env: { ...process.env, AWS_REGION: 'us-east-1', TRAINCTL_AWS: 'emulator', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extraEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let log = '';
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('trainctl worker polling')) resolve();
    });
    child.once('exit', (c) => reject(new Error(`worker exited ${c}: ${log}`)));
  });
  return child;
}
try {
  const [temporal, moto, bundle] = await Promise.all([
    startTemporalDevServer({ headless: true }),
    startMoto(),
    bundleWorkflowCode({ workflowsPath, logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } }),
  ]);
  const bundlePath = join(dir, 'bundle.js');
  writeFileSync(bundlePath, bundle.code);
  const env = loadEnv({ TEMPORAL_ADDRESS: temporal.address, AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'us-east-1', TRAINCTL_AWS: 'emulator' });
  const s3 = createS3Client(env);
  const bucket = `bench-${Date.now()}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));

  const src = join(dir, 'source.bin');
  console.error(`writing a ${sizeMiB} MiB random file…`);
  await writeRandomFile(src, sizeMiB * MiB);
  const srcDigest = await sha256File(src);

  const taskQueue = `bench-${process.pid}`;
  const common = { TEMPORAL_ADDRESS: temporal.address, AWS_ENDPOINT_URL: moto.endpoint };
  const worker = await startProcess([join(repoRoot, 'bench', 'transfer-worker.ts')], { ...common, TRAINCTL_TASK_QUEUE: taskQueue, BENCH_BUNDLE: bundlePath });
  // The same engine in an activity-only host worker (a training instance): no workflow sandbox in it.
  const hostRoot = join(dir, 'host-root');
  mkdirSync(hostRoot);
  renameSync(src, join(hostRoot, 'source.bin'));
  symlinkSync(join(hostRoot, 'source.bin'), src);
  const host = await startProcess([join(repoRoot, 'src', 'worker.ts'), '--host', 'benchhost', '--root', hostRoot], common);
  const pid = worker.pid ?? 0;
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  const run = (request: TransferRequest) =>
    client.workflow.execute('transfer', { taskQueue, workflowId: `bench-${Date.now()}`, args: [request] }) as Promise<TransferReport>;

  const idleRss = procStatus(pid, 'VmRSS');
  let upReport: TransferReport | undefined;
  const up = await sampled(pid, async () =>
    timed(
      async () =>
        (upReport = await run({
          source: { kind: 'local', path: src },
          destination: { kind: 's3', uri: `s3://${bucket}/trainctl.bin` },
          concurrency,
          partSizeMiB,
        })),
    ),
  );
  const hwmAfterUpload = procStatus(pid, 'VmHWM');
  const hostPid = host.pid ?? 0;
  const hostIdleRss = procStatus(hostPid, 'VmRSS');
  const hostUp = await sampled(hostPid, async () =>
    timed(() =>
      run({
        source: { kind: 'host', hostId: 'benchhost', path: 'source.bin' },
        destination: { kind: 's3', uri: `s3://${bucket}/host.bin` },
        concurrency,
        partSizeMiB,
      }),
    ),
  );
  const hostHwmAfterUpload = procStatus(hostPid, 'VmHWM');
  const hostDown = await sampled(hostPid, async () =>
    timed(() =>
      run({ source: { kind: 's3', uri: `s3://${bucket}/host.bin` }, destination: { kind: 'host', hostId: 'benchhost', path: 'download.bin' }, concurrency }),
    ),
  );
  const hostHwmAfterDownload = procStatus(hostPid, 'VmHWM');
  const hostSame = (await sha256File(join(hostRoot, 'download.bin'))) === srcDigest;
  rmSync(join(hostRoot, 'download.bin'), { force: true });
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'host.bin' }));
  const dst = join(dir, 'download.bin');
  let downReport: TransferReport | undefined;
  const down = await sampled(pid, async () =>
    timed(
      async () =>
        (downReport = await run({ source: { kind: 's3', uri: `s3://${bucket}/trainctl.bin` }, destination: { kind: 'local', path: dst }, concurrency })),
    ),
  );
  const hwmAfterDownload = procStatus(pid, 'VmHWM');
  const same = (await sha256File(dst)) === srcDigest;
  rmSync(dst, { force: true });

  const rows: string[] = [];
  const mibps = (s: number) => (sizeMiB / s).toFixed(1);
  rows.push(`| trainctl transfer upload (workflow, ${concurrency} × ${partSizeMiB} MiB parts) | ${up.result.toFixed(1)} s | ${mibps(up.result)} MiB/s |`);
  rows.push(`| trainctl transfer download (ranged, verified) | ${down.result.toFixed(1)} s | ${mibps(down.result)} MiB/s |`);
  rows.push(`| trainctl transfer host → S3 (host worker) | ${hostUp.result.toFixed(1)} s | ${mibps(hostUp.result)} MiB/s |`);
  rows.push(`| trainctl transfer S3 → host (host worker) | ${hostDown.result.toFixed(1)} s | ${mibps(hostDown.result)} MiB/s |`);

  if (values.aws) {
    const cfg = join(dir, 'aws-config');
    writeFileSync(cfg, `[default]\nregion = us-east-1\ns3 =\n  multipart_chunksize = ${partSizeMiB}MB\n  max_concurrent_requests = ${concurrency}\n`);
    const awsEnv = {
      ...process.env,
      AWS_CONFIG_FILE: cfg,
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    };
    const aws = (args: string[]) => {
      const r = spawnSync(values.aws ?? 'aws', [...args, '--endpoint-url', moto.endpoint, '--only-show-errors'], { env: awsEnv, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`aws ${args.join(' ')} failed: ${r.stderr}`);
    };
    const cliUp = await timed(async () => aws(['s3', 'cp', src, `s3://${bucket}/cli.bin`]));
    const cliDst = join(dir, 'cli-download.bin');
    const cliDown = await timed(async () => aws(['s3', 'cp', `s3://${bucket}/cli.bin`, cliDst]));
    rmSync(cliDst, { force: true });
    rows.push(`| aws s3 cp upload (awscli, same chunk size and concurrency) | ${cliUp.toFixed(1)} s | ${mibps(cliUp)} MiB/s |`);
    rows.push(`| aws s3 cp download | ${cliDown.toFixed(1)} s | ${mibps(cliDown)} MiB/s |`);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'cli.bin' }));
  }
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'trainctl.bin' }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  await connection.close();

  const m = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
  console.log(`\n${sizeMiB} MiB single file against moto (${moto.endpoint}), ${concurrency} parts in flight, ${partSizeMiB} MiB parts\n`);
  console.log('| what | time | throughput |\n|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(
    `\nworker RSS: idle ${m(idleRss)}; peak sampled during upload ${m(up.peakRss)}, during download ${m(down.peakRss)}; VmHWM (process lifetime peak) after upload ${m(hwmAfterUpload)}, after download ${m(hwmAfterDownload)}`,
  );
  console.log(
    `host worker RSS: idle ${m(hostIdleRss)}; peak sampled during upload ${m(hostUp.peakRss)}, during download ${m(hostDown.peakRss)}; VmHWM after upload ${m(hostHwmAfterUpload)}, after download ${m(hostHwmAfterDownload)}; downloaded bytes identical: ${hostSame}`,
  );
  console.log(
    `reports: upload ${JSON.stringify({ bytes: upReport?.bytes, verified: upReport?.verified, MiBps: upReport?.MiBps })}; download ${JSON.stringify({ bytes: downReport?.bytes, verified: downReport?.verified, MiBps: downReport?.MiBps })}; downloaded bytes identical: ${same}`,
  );
  if (up.peakRss >= 400 * MiB || hostUp.peakRss >= 400 * MiB) process.exitCode = 1;
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  await stopAll();
}
