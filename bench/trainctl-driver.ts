/**
 * The one place the benchmark touches trainctl. Everything here goes through trainctl's public
 * surface — worker processes started from `src/worker.ts` with their environment, workflows started
 * by type name ('transfer', 'provisionVolume', 'costTracker') with the request shapes of
 * src/config.ts and src/cost-model.ts, signals and queries by name — except the prewarm reader,
 * which bench/prewarm-vs-fio.ts already calls directly. When those names move, only this file
 * changes.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { repoRoot } from '../src/dev/services.js';

/** Where a trainctl worker's AWS calls go. */
export interface WorkerAws {
  endpoint: string;
  /** A real S3 server (versitygw) with its keys; absent means the emulator (moto, dummy keys). */
  keys?: { accessKey: string; secretKey: string };
}

export interface TrainctlWorker {
  readonly pid: number;
  readonly taskQueue: string;
  /** SIGKILL: the crash the resume workload simulates. */
  kill(): void;
  stop(): Promise<void>;
}

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of started) c.kill('SIGKILL');
});

function workerEnv(temporalAddress: string, taskQueue: string, aws: WorkerAws): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TRAINCTL_TOOLS_DIR: process.env.TRAINCTL_TOOLS_DIR,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    TRAINCTL_TASK_QUEUE: taskQueue,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: aws.endpoint,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    // No profile or config file of the machine's user is read.
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  if (aws.keys) {
    // With TRAINCTL_AWS=real the S3 client takes the SDK's default chain (these variables) and
    // does not force path style; the SDK's endpoint rules use path style by themselves for an IP
    // endpoint (http://127.0.0.1:PORT), so no bucket-name trick is needed.
    Object.assign(env, { TRAINCTL_AWS: 'real', AWS_ACCESS_KEY_ID: aws.keys.accessKey, AWS_SECRET_ACCESS_KEY: aws.keys.secretKey });
  } else {
    env.TRAINCTL_AWS = 'emulator';
  }
  return env;
}

async function spawnWorker(args: string[], env: NodeJS.ProcessEnv, taskQueue: string): Promise<TrainctlWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'worker.ts'), ...args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.add(child);
  child.once('exit', () => started.delete(child));
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`trainctl worker did not start in 180 s: ${log}`)), 180_000);
    child.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
      if (log.includes('trainctl worker polling')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`trainctl worker exited ${c}: ${log}`));
    });
  });
  child.stderr?.resume();
  const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
  return {
    pid: child.pid ?? 0,
    taskQueue,
    kill: () => child.kill('SIGKILL'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/** The folders an orchestration worker may read and write (its `--root`s): the benchmark's data. */
let localRoots: string[] = [];
export function setLocalRoots(roots: string[]): void {
  localRoots = roots;
}

/** An orchestration worker (`node src/worker.ts`): every workflow and activity on `taskQueue`, confined to the benchmark's data. */
export function startOrchestrationWorker(opts: { temporalAddress: string; taskQueue: string; aws: WorkerAws }): Promise<TrainctlWorker> {
  return spawnWorker(
    localRoots.flatMap((r) => ['--root', r]),
    workerEnv(opts.temporalAddress, opts.taskQueue, opts.aws),
    opts.taskQueue,
  );
}

/** A host worker (`node src/worker.ts --host ID --root DIR`): the training instance's activities. */
export function startHostWorker(opts: { temporalAddress: string; hostId: string; root: string; aws: WorkerAws }): Promise<TrainctlWorker> {
  return spawnWorker(['--host', opts.hostId, '--root', opts.root], workerEnv(opts.temporalAddress, 'unused', opts.aws), `trainctl-host-${opts.hostId}`);
}

export async function connectClient(temporalAddress: string): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address: temporalAddress });
  return { client: new Client({ connection }), close: () => connection.close() };
}

/** One end of a transfer: a local path, an s3:// URI, or a path under a host worker's root. */
export type Location = { local: string } | { s3: string } | { host: string; path: string };

export interface TransferTuning {
  /** Parts (ranges) of one file in flight. */
  partConcurrency?: number;
  /** Files in flight. */
  fileConcurrency?: number;
  partSizeMiB?: number;
  /** How soon a killed worker's activity is retried elsewhere. */
  heartbeatTimeoutSeconds?: number;
  /** Who copies the files: trainctl's engine (the default) or s5cmd from the worker's PATH, then verified by trainctl. */
  engine?: 'builtin' | 's5cmd';
}

function location(l: Location): unknown {
  if ('local' in l) return { kind: 'local', path: l.local };
  if ('s3' in l) return { kind: 's3', uri: l.s3 };
  return { kind: 'host', hostId: l.host, path: l.path };
}

/** The `transfer` workflow's request (src/config.ts TransferInputSchema); only the given tuning is set. */
export function transferRequest(source: Location, destination: Location, tuning: TransferTuning = {}): Record<string, unknown> {
  return {
    source: location(source),
    destination: location(destination),
    ...(tuning.partConcurrency !== undefined ? { concurrency: tuning.partConcurrency } : {}),
    ...(tuning.fileConcurrency !== undefined ? { fileConcurrency: tuning.fileConcurrency } : {}),
    ...(tuning.partSizeMiB !== undefined ? { partSizeMiB: tuning.partSizeMiB } : {}),
    ...(tuning.heartbeatTimeoutSeconds !== undefined ? { heartbeatTimeoutSeconds: tuning.heartbeatTimeoutSeconds } : {}),
    ...(tuning.engine !== undefined ? { engine: tuning.engine } : {}),
  };
}

let seq = 0;
const uniqueId = (prefix: string) => `${prefix}-${process.pid}-${Date.now()}-${++seq}`;

/** Starts a `transfer` workflow; `result()` resolves with the bytes its report says it moved. */
export async function startTransfer(
  client: Client,
  taskQueue: string,
  source: Location,
  destination: Location,
  tuning: TransferTuning = {},
): Promise<{ result(): Promise<{ bytes: number; files: number }> }> {
  const handle = await client.workflow.start('transfer', {
    taskQueue,
    workflowId: uniqueId('bench-transfer'),
    args: [transferRequest(source, destination, tuning)],
  });
  return {
    result: async () => {
      const r = (await handle.result()) as { bytes: number; files: number };
      return { bytes: r.bytes, files: r.files };
    },
  };
}

/** Runs a `transfer` workflow to its end. */
export async function runTransfer(
  client: Client,
  taskQueue: string,
  source: Location,
  destination: Location,
  tuning: TransferTuning = {},
): Promise<{ bytes: number; files: number }> {
  return (await startTransfer(client, taskQueue, source, destination, tuning)).result();
}

/** `volume create`: one `provisionVolume` workflow (src/config.ts ProvisionVolumeInputSchema) to its end. */
export async function provisionVolume(
  client: Client,
  taskQueue: string,
  name: string,
  opts: { region: string; availabilityZone: string; sizeGiB: number; project: string },
): Promise<void> {
  await client.workflow.execute('provisionVolume', {
    taskQueue,
    workflowId: `volume/${opts.region}/${name}`,
    args: [{ name, region: opts.region, availabilityZone: opts.availabilityZone, sizeGiB: opts.sizeGiB, project: opts.project }],
  });
}

/** The cost tracker of one project (`costTracker`, id `cost-tracker/PROJECT`), its signals and queries by name. */
export interface CostTrackerHandle {
  resourceStarted(id: string): Promise<void>;
  /** The `totalCost` query, for latency. */
  totalCost(): Promise<unknown>;
  /** Messages the tracker accepted (the `summary` query's counters). */
  accepted(): Promise<number>;
  terminate(): Promise<void>;
}

export async function startCostTracker(client: Client, taskQueue: string, project: string): Promise<CostTrackerHandle> {
  const workflowId = `cost-tracker/${project}`;
  await client.workflow.start('costTracker', { taskQueue, workflowId, args: [{ project }] });
  const h = client.workflow.getHandle(workflowId);
  return {
    resourceStarted: (id) => h.signal('resourceStarted', { id, kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: {} }),
    totalCost: () => h.query('totalCost'),
    accepted: async () => ((await h.query('summary')) as { counters: { accepted: number } }).counters.accepted,
    terminate: async () => {
      await h.terminate('benchmark done').catch(() => undefined);
    },
  };
}

/** trainctl's prewarm reader over a file: every block once, `depth` reads in flight, CRC on. */
export async function prewarmRead(path: string, size: number, blockSize: number, depth: number): Promise<number> {
  const { readEveryBlock } = await import('../src/prewarm/reader.js');
  const r = await readEveryBlock(path, { start: 0, crc: 0, size, blockSize, concurrency: depth, checksum: true });
  return r.bytesRead;
}
