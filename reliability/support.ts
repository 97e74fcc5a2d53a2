/**
 * What the full-disk and fuzz scenarios share: worker processes they start and always stop, a
 * Temporal client, and a picture of the emulator taken from outside trainctl (volumes, instances,
 * snapshots, buckets, open multipart uploads) to compare before and after a run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DescribeInstancesCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { ListBucketsCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { loadEnv, type Env } from '../src/config.js';
import { createEc2Client, createS3Client } from '../src/aws/clients.js';
import { endWithParent, repoRoot } from '../src/dev/services.js';
import { emulatorWorkerEnv } from '../src/dev/instances.js';
import type { RunOutcome, Scenario, ScenarioContext } from './types.js';

/** The environment a scenario's clients and workers use: its context's dev server and emulator. */
export function scenarioEnv(ctx: ScenarioContext, extra: Record<string, string> = {}): Env {
  return loadEnv({
    TEMPORAL_ADDRESS: ctx.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    AWS_ENDPOINT_URL: ctx.awsEndpoint,
    AWS_REGION: 'us-east-1',
    TRAINCTL_AWS: 'emulator',
    ...extra,
  });
}

export async function scenarioClient(ctx: ScenarioContext): Promise<Client> {
  const connection = await Connection.connect({ address: ctx.temporalAddress });
  return new Client({ connection, namespace: 'default' });
}

export function awsFor(ctx: ScenarioContext): { ec2: EC2Client; s3: S3Client } {
  const env = scenarioEnv(ctx);
  return { ec2: createEc2Client(env), s3: createS3Client(env) };
}

export interface WorkerProcess {
  output(): string;
  /** SIGTERM, SIGKILL after 15 s; resolves when the process has exited. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * `node --import tsx src/worker.ts ARGS` reaching the scenario's dev server and emulator; resolves
 * once it logs that it polls. A watchdog ends it if this process dies without stopping it.
 */
export async function startWorkerProcess(
  ctx: ScenarioContext,
  opts: { name: string; args?: string[]; env?: Record<string, string>; startTimeoutMs?: number },
): Promise<WorkerProcess> {
  const env = scenarioEnv(ctx);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'worker.ts'), ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: { ...emulatorWorkerEnv(env), ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (child.pid !== undefined) endWithParent(child.pid, { group: false });
  let log = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    })());
  try {
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = opts.startTimeoutMs ?? 120_000;
      const timer = setTimeout(() => reject(new Error(`${opts.name} did not start polling within ${timeoutMs} ms:\n${log}`)), timeoutMs);
      child.stderr?.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('trainctl worker polling')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${opts.name} exited (${code ?? signal}):\n${log}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { output: () => log, stop };
}

/** What the emulator holds, by id: what a run may not create or delete behind the caller's back. */
export interface EmulatorPicture {
  volumes: string[];
  instances: string[];
  snapshots: string[];
  buckets: string[];
  /** `bucket/key#uploadId` of every open multipart upload. */
  uploads: string[];
}

export async function emulatorPicture(aws: { ec2: EC2Client; s3: S3Client }): Promise<EmulatorPicture> {
  const [vols, insts, snaps, buckets] = await Promise.all([
    aws.ec2.send(new DescribeVolumesCommand({})),
    aws.ec2.send(new DescribeInstancesCommand({})),
    aws.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] })),
    aws.s3.send(new ListBucketsCommand({})),
  ]);
  const names = (buckets.Buckets ?? []).map((b) => b.Name ?? '');
  const uploads = await Promise.all(
    names.map(async (b) => {
      const out = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: b })).catch(() => ({ Uploads: [] }));
      return (out.Uploads ?? []).map((u) => `${b}/${u.Key}#${u.UploadId}`);
    }),
  );
  return {
    volumes: (vols.Volumes ?? []).map((v) => v.VolumeId ?? ''),
    instances: (insts.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .filter((i) => i.State?.Name !== 'terminated')
      .map((i) => i.InstanceId ?? ''),
    snapshots: (snaps.Snapshots ?? []).map((s) => s.SnapshotId ?? ''),
    buckets: names,
    uploads: uploads.flat(),
  };
}

/** What appeared and what disappeared between two pictures, as `kind:id` lines. */
export function pictureDiff(before: EmulatorPicture, after: EmulatorPicture): { added: string[]; removed: string[] } {
  const added: string[] = [];
  const removed: string[] = [];
  for (const kind of ['volumes', 'instances', 'snapshots', 'buckets', 'uploads'] as const) {
    const b = new Set(before[kind]);
    const a = new Set(after[kind]);
    for (const id of a) if (!b.has(id)) added.push(`${kind}:${id}`);
    for (const id of b) if (!a.has(id)) removed.push(`${kind}:${id}`);
  }
  return { added, removed };
}

/** A run's outcome with the counters at zero unless given. */
export function outcome(
  scenario: Scenario,
  family: string,
  run: number,
  startedAt: number,
  o: Pick<RunOutcome, 'ended' | 'detail'> & Partial<RunOutcome>,
): RunOutcome {
  return {
    family,
    scenario,
    run,
    duplicates: 0,
    leaked: 0,
    corruptBytes: 0,
    wrongDeletions: 0,
    durationSeconds: Math.round((Date.now() - startedAt) / 100) / 10,
    ...o,
  };
}

/** Waits for `check` to hold, polling; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000, pollMs = 200): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
