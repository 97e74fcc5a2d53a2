/**
 * Scenario (d) of the reliability campaign: a full disk. A small filesystem (tmpfs, or a
 * loop-mounted ext4 image where tmpfs cannot be mounted) holds a host worker's root and an
 * orchestration worker's local root, filled up until a dataset no longer fits. Odd runs copy
 * S3 → host (through the real host worker), even runs S3 → local. Each run, checked from outside:
 *  - the transfer fails with kind QuotaExceeded and a message naming the disk's lack of space (ENOSPC);
 *  - the finished file that was in place before is still there, byte for byte; no temp file
 *    (`.NAME.trainctl-partial`, its sidecar) is left; no multipart upload is open in the bucket;
 *  - after the filler is removed, the same transfer completes and every file is byte-identical.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';
import { CreateBucketCommand, ListMultipartUploadsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as transferApi from '../src/api/transfer.js';
import type { TransferRequest } from '../src/contracts/transfer.js';
import { awsFor, outcome, scenarioClient, startWorkerProcess, type WorkerProcess } from './support.js';
import type { RunOutcome, ScenarioContext } from './types.js';

const MiB = 1024 * 1024;
const DISK_MIB = 8;

/** Mounts a DISK_MIB filesystem at `dir`: tmpfs, else an ext4 image on a loop device. Returns how to unmount it. */
function mountSmallDisk(dir: string, image: string, log: (m: string) => void): () => void {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_MIB}m`, 'tmpfs', dir], { stdio: 'pipe' });
    log(`full-disk: tmpfs of ${DISK_MIB} MiB at ${dir}`);
  } catch (err) {
    log(`full-disk: tmpfs mount failed (${(err as Error).message.split('\n')[0]}); using a loop-mounted ext4 image`);
    execFileSync('truncate', ['-s', `${DISK_MIB}M`, image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'loop', image, dir], { stdio: 'pipe' });
  }
  return () => {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      // Something still holds a file there (a worker that did not exit yet): detach it now, freed when released.
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    }
  };
}

/** Every file under `root` (relative path → sha256). */
function digests(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}

/** Fills the disk holding `dir` until `leaveBytes` remain free. */
function fill(dir: string, leaveBytes: number): void {
  const s = statfsSync(dir);
  const free = Number(s.bavail) * Number(s.bsize);
  if (free > leaveBytes) writeFileSync(join(dir, 'filler.bin'), Buffer.alloc(free - leaveBytes, 1));
}

/** The failure kind and message of a failed transfer run (the activity's, where there is one). */
function failureOf(err: unknown): { kind: string; message: string } {
  let e: unknown = err instanceof WorkflowFailedError ? err.cause : err;
  while (e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) e = e.cause;
  if (e instanceof ApplicationFailure) return { kind: e.type ?? 'Unknown', message: e.message };
  return { kind: (e as Error)?.name ?? 'Unknown', message: (e as Error)?.message ?? String(e) };
}

/** A disk-full failure is not retried: a run still going after this long is retrying it (a finding), and is ended. */
const FIRST_RUN_LIMIT_MS = 90_000;

/** Runs the transfer; undefined when it completed, its failure otherwise (a run past `limitMs` is terminated and says so). */
async function transferWithin(client: Client, request: TransferRequest, taskQueue: string, workflowId: string, limitMs: number) {
  const handle = await transferApi.start(client, request, { taskQueue, workflowId });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ kind: string; message: string }>((r) => {
    timer = setTimeout(() => r({ kind: 'StillRunning', message: `still running after ${limitMs / 1000} s (retrying?)` }), limitMs);
  });
  const ended = handle.result().then(
    () => undefined,
    (err: unknown) => failureOf(err),
  );
  const first = await Promise.race([ended, late]);
  clearTimeout(timer);
  if (first?.kind === 'StillRunning') await handle.terminate('full-disk: past its limit').catch(() => undefined);
  return first;
}

interface Setup {
  ctx: ScenarioContext;
  client: Client;
  s3: S3Client;
  bucket: string;
  taskQueue: string;
  hostId: string;
  disk: string;
  /** The dataset as uploaded: relative path → bytes. */
  files: Record<string, Buffer>;
}

async function oneRun(s: Setup, run: number): Promise<RunOutcome> {
  const t0 = Date.now();
  const toHost = run % 2 === 1;
  const family = toHost ? 'transfer:s3→host' : 'transfer:s3→local';
  const hostRoot = join(s.disk, 'host');
  const localRoot = join(s.disk, 'local');
  const dstRel = `run-${run}`;
  const dst = join(toHost ? hostRoot : localRoot, dstRel);
  // A finished file from an earlier copy: a failed copy must leave it as it was.
  mkdirSync(dst, { recursive: true });
  const earlier = randomBytes(64 * 1024);
  writeFileSync(join(dst, 'model.bin'), earlier);
  const earlierDigest = createHash('sha256').update(earlier).digest('hex');
  fill(s.disk, MiB);
  const request: TransferRequest = {
    source: { kind: 's3', uri: `s3://${s.bucket}/dataset/` },
    destination: toHost ? { kind: 'host', hostId: s.hostId, path: `${dstRel}/` } : { kind: 'local', path: `${dst}/` },
    concurrency: 2,
  };
  const problems: string[] = [];
  let detail = '';
  let ended: RunOutcome['ended'] = 'unexpected';
  const first = await transferWithin(s.client, request, s.taskQueue, `full-disk/${randomUUID().slice(0, 8)}-${run}`, FIRST_RUN_LIMIT_MS);
  if (!first) problems.push('the transfer completed on a full disk');
  else {
    detail = `${first.kind}: ${first.message}`;
    if (first.kind !== 'QuotaExceeded') problems.push(`kind ${first.kind}, not QuotaExceeded`);
    if (!/ENOSPC|no space/i.test(first.message)) problems.push('the message does not name the lack of space');
  }
  // What the failed copy left: the earlier file intact, no temp files, no open uploads.
  const after = digests(dst);
  if (after['model.bin'] !== earlierDigest) problems.push(`model.bin ${after['model.bin'] ? 'was overwritten by a partial copy' : 'was removed'}`);
  // Anywhere on the disk (both roots), not only in the destination folder.
  const temps = Object.keys(digests(s.disk)).filter((f) => f.includes('.trainctl-partial'));
  const uploads = (await s.s3.send(new ListMultipartUploadsCommand({ Bucket: s.bucket }))).Uploads ?? [];
  const leaked = temps.length + uploads.length;
  if (leaked) problems.push(`left ${[...temps, ...uploads.map((u) => `upload ${u.Key}`)].join(', ')}`);
  // Room again: the same copy completes, byte-identical.
  rmSync(join(s.disk, 'filler.bin'), { force: true });
  let corruptBytes = 0;
  try {
    const again = await transferWithin(s.client, request, s.taskQueue, `full-disk/${randomUUID().slice(0, 8)}-${run}-again`, FIRST_RUN_LIMIT_MS);
    if (again) throw new Error(`${again.kind}: ${again.message}`);
    const landed = digests(dst);
    for (const [name, bytes] of Object.entries(s.files)) {
      if (landed[name] !== createHash('sha256').update(bytes).digest('hex')) corruptBytes += bytes.length;
    }
    if (corruptBytes) problems.push(`${corruptBytes} bytes differ after the re-run`);
  } catch (err) {
    problems.push(`the re-run after freeing space failed: ${(err as Error).message}`);
  }
  rmSync(dst, { recursive: true, force: true });
  if (!problems.length) ended = 'documented';
  else detail = `${problems.join('; ')}${detail ? ` (first run: ${detail})` : ''}`;
  return outcome('full-disk', family, run, t0, { ended, detail: detail.slice(0, 500), leaked, corruptBytes });
}

export async function runFullDisk(ctx: ScenarioContext): Promise<RunOutcome[]> {
  const tag = randomUUID().slice(0, 6);
  const disk = join(ctx.workDir, `disk-${tag}`);
  const unmount = mountSmallDisk(disk, join(ctx.workDir, `disk-${tag}.img`), ctx.log);
  const workers: WorkerProcess[] = [];
  let client: Client | undefined;
  const aws = awsFor(ctx);
  try {
    mkdirSync(join(disk, 'host'));
    mkdirSync(join(disk, 'local'));
    const bucket = `fz-disk-${tag}`;
    await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    // 3 MiB that cannot land in the 1 MiB left free, next to a small file that can.
    const files: Record<string, Buffer> = { 'model.bin': randomBytes(3 * MiB), 'notes/readme.txt': Buffer.from('a small file\n') };
    for (const [name, body] of Object.entries(files)) await aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `dataset/${name}`, Body: body }));
    const taskQueue = `full-disk-${tag}`;
    const hostId = `full-disk-${tag}`;
    const started = await Promise.allSettled([
      startWorkerProcess(ctx, { name: 'full-disk worker', args: ['--root', join(disk, 'local')], env: { TRAINCTL_TASK_QUEUE: taskQueue } }),
      startWorkerProcess(ctx, { name: 'full-disk host worker', args: ['--host', hostId, '--root', join(disk, 'host')] }),
    ]);
    for (const r of started) if (r.status === 'fulfilled') workers.push(r.value);
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    client = await scenarioClient(ctx);
    const out: RunOutcome[] = [];
    for (let run = 1; run <= ctx.runs; run++) {
      const o = await oneRun({ ctx, client, s3: aws.s3, bucket, taskQueue, hostId, disk, files }, run);
      ctx.log(`full-disk run ${run} (${o.family}): ${o.ended} — ${o.detail}`);
      out.push(o);
    }
    return out;
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await client?.connection.close();
    aws.ec2.destroy();
    aws.s3.destroy();
    unmount();
    rmSync(disk, { recursive: true, force: true });
  }
}
