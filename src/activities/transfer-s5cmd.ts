/**
 * The optional s5cmd engine: bulk local ↔ S3 copies handed to an `s5cmd` child process (as the tool
 * trainctl replaces did), then checked by trainctl exactly as its own engine checks: uploads carry
 * trainctl's checksum in their metadata and are compared with the stored object (size, ETag, checksum);
 * downloads land in a temp folder inside the destination and move into place only once every file
 * verified.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { type HeadObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { headObject } from '../transfer/s3-maintenance.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { toFailure } from '../errors/classify.js';
import { abortSignal, step } from './aws-call.js';
import { boundUnknown } from './transfer-scope.js';
import { digestFile } from '../transfer/checksum.js';
import { downloadVerified, objectMeta } from '../transfer/download.js';
import { MiB, planPartSize } from '../transfer/plan.js';
import {
  S5cmdOutput,
  checkDownloaded,
  checkUploaded,
  downloadCommand,
  downloadTempDir,
  endpointUrl,
  findExecutable,
  s5cmdArgs,
  s5cmdEnv,
  unquote,
  uploadCommand,
  uploadDigest,
} from '../transfer/s5cmd.js';
import type { FileResult } from '../transfer/types.js';
import { TransferEngineKind } from '../contracts/transfer.js';
import type { S3For } from '../aws/profiles.js';

export { TransferEngineKind } from '../contracts/transfer.js';

export interface S5cmdFile {
  label: string;
  /** Local path (absolute). */
  path: string;
  bucket: string;
  key: string;
  size: number;
}

export interface S5cmdInput {
  region: string;
  profile?: string | undefined;
  /** `s5cmd` fails when the executable is missing; `auto` then answers `builtin` and copies nothing. */
  engine: 's5cmd' | 'auto';
  direction: 'upload' | 'download';
  files: S5cmdFile[];
  /** Bytes (a whole number of MiB); planned from each file's size when absent. */
  partSize?: number | undefined;
  /** Parts of one file in flight (s5cmd `-c`). */
  concurrency: number;
  /** Files in flight (s5cmd `--numworkers`). */
  fileConcurrency: number;
  sync: boolean;
  /** The label the workflow tracks progress under. */
  label: string;
  progressIntervalMs: number;
}

export interface S5cmdResult {
  engine: TransferEngineKind;
  files: FileResult[];
}

export interface S5cmdDeps {
  s3: S3For;
  /** The PATH searched for `s5cmd`; this process's PATH when absent. */
  s5cmdSearchPath?: string | undefined;
  /** This worker's confinement (its local roots). */
  resolvePath(path: string): Promise<string>;
}

/** Runs `s5cmd run FILE`; `onDone(bytes)` per finished copy. Kills the child when the activity is cancelled. */
async function runS5cmd(exe: string, s3: S3Client, region: string, commands: string[], numworkers: number, onDone: (bytes: number) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'trainctl-s5cmd-'));
  try {
    const file = join(dir, 'commands.txt');
    await writeFile(file, `${commands.join('\n')}\n`);
    const endpoint = endpointUrl(await s3.config.endpoint?.());
    const env = s5cmdEnv(process.env, await s3.config.credentials(), region);
    const args = s5cmdArgs(endpoint, numworkers, file);
    log.info('running s5cmd', { exe, commands: commands.length, endpoint: endpoint ?? 'default' });
    const signal = abortSignal();
    await new Promise<void>((resolve, reject) => {
      const child = spawn(exe, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const output = new S5cmdOutput(onDone);
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (text: string) => output.stdout(text));
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (text: string) => output.stderr(text));
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (err) => reject(new TrainctlError(ErrorKind.Unknown, `could not start ${exe}`, { cause: err })));
      child.on('close', (code, sig) => {
        signal?.removeEventListener('abort', onAbort);
        if (killTimer) clearTimeout(killTimer);
        // The SDK reports the activity cancelled (not failed) when it ends with the signal's CancelledFailure.
        if (signal?.aborted) return reject(signal.reason as Error);
        if (code === 0) return resolve();
        reject(new TrainctlError(ErrorKind.Transient, `s5cmd exited with ${code ?? sig}: ${output.why()}`));
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function head(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<HeadObjectCommandOutput | undefined> {
  return step(`head s3://${bucket}/${key}`, () => headObject(s3, bucket, key, signal)).catch((err: unknown) => {
    if (err instanceof ApplicationFailure && err.type === ErrorKind.NotFound) return undefined;
    throw err;
  });
}

async function upload(
  exe: string,
  s3: S3Client,
  input: S5cmdInput,
  signal: AbortSignal | undefined,
  progress: (n: number) => void,
  phase: (p: string) => void,
): Promise<S5cmdResult> {
  const plans = [];
  for (const f of input.files) {
    const partSize = planPartSize(f.size, input.partSize);
    const d = await step(`checksum ${f.label}`, () => uploadDigest(f.path, partSize, signal));
    plans.push({ f, partSize, ...d });
  }
  const results = new Map<string, FileResult>();
  if (input.sync) {
    for (const p of plans) {
      const h = await head(s3, p.f.bucket, p.f.key, signal);
      if (h && h.ContentLength === p.size && objectMeta(h).checksum === p.checksum) {
        results.set(p.f.label, { label: p.f.label, size: p.size, sent: 0, skipped: true, verified: true, checksum: p.checksum, resumed: 0 });
        progress(p.size);
      }
    }
  }
  const todo = plans.filter((p) => !results.has(p.f.label));
  const commands = todo.map((p) => uploadCommand({ ...p.f, partSize: p.partSize, checksum: p.checksum }, input.concurrency));
  phase('s5cmd');
  if (commands.length > 0) await runS5cmd(exe, s3, await s3.config.region(), commands, input.fileConcurrency, progress);
  phase('verify');
  for (const p of todo) {
    const h = await head(s3, p.f.bucket, p.f.key, signal);
    checkUploaded(p, h);
    results.set(p.f.label, { label: p.f.label, size: p.size, sent: p.size, skipped: false, verified: true, checksum: p.checksum, resumed: 0 });
  }
  return { engine: TransferEngineKind.S5cmd, files: input.files.map((f) => results.get(f.label) as FileResult) };
}

async function download(
  exe: string,
  s3: S3Client,
  input: S5cmdInput,
  signal: AbortSignal | undefined,
  progress: (n: number) => void,
  phase: (p: string) => void,
): Promise<S5cmdResult> {
  const info = Context.current().info;
  const tmp = downloadTempDir(
    input.files.map((f) => f.path),
    info.workflowExecution?.workflowId,
    info.activityId,
  );
  await rm(tmp, { recursive: true, force: true });
  const results = new Map<string, FileResult>();
  try {
    const jobs = [];
    for (const [i, f] of input.files.entries()) {
      const h = await head(s3, f.bucket, f.key, signal);
      if (!h) throw new TrainctlError(ErrorKind.NotFound, `${f.label}: s3://${f.bucket}/${f.key} is gone`);
      const meta = objectMeta(h);
      const size = h.ContentLength ?? 0;
      const verifyPartSize = meta.partSize ?? planPartSize(meta.originalSize ?? size);
      if (meta.encoding !== 'none') {
        // s5cmd would land the compressed bytes: the built-in download decodes and verifies them.
        const r = await downloadVerified({
          s3,
          bucket: f.bucket,
          key: f.key,
          path: f.path,
          label: f.label,
          concurrency: input.concurrency,
          sync: input.sync,
          signal,
          onBytes: progress,
          step,
        });
        results.set(f.label, {
          label: f.label,
          size: r.size,
          sent: r.sent,
          skipped: r.skipped,
          verified: r.verifiedBy === 'checksum',
          ...(r.checksum ? { checksum: r.checksum } : {}),
          resumed: 0,
        });
        continue;
      }
      if (input.sync && meta.checksum) {
        const local = await stat(f.path).catch(() => undefined);
        if (
          local?.isFile() &&
          local.size === size &&
          (await step(`checksum ${f.label}`, () => digestFile(f.path, verifyPartSize, signal))).checksum === meta.checksum
        ) {
          results.set(f.label, { label: f.label, size, sent: 0, skipped: true, verified: true, checksum: meta.checksum, resumed: 0 });
          progress(size);
          continue;
        }
      }
      jobs.push({ f, temp: join(tmp, String(i)), size, meta, verifyPartSize, md5: /^([0-9a-f]{32})$/.exec(unquote(h.ETag))?.[1] });
    }
    await mkdir(tmp, { recursive: true });
    const partSize = (f: { size: number }) => (input.partSize ?? planPartSize(f.size)) / MiB;
    const commands = jobs.map((j) => downloadCommand({ ...j.f, temp: j.temp }, input.concurrency, partSize(j)));
    phase('s5cmd');
    if (commands.length > 0) await runS5cmd(exe, s3, await s3.config.region(), commands, input.fileConcurrency, progress);
    phase('verify');
    // Every file is checked before any moves into place.
    for (const j of jobs) {
      const d = await step(`checksum ${j.f.label}`, () => digestFile(j.temp, j.verifyPartSize, signal));
      checkDownloaded(j, d);
      results.set(j.f.label, {
        label: j.f.label,
        size: d.size,
        sent: d.size,
        skipped: false,
        verified: !!j.meta.checksum,
        ...(j.meta.checksum ? { checksum: j.meta.checksum } : {}),
        resumed: 0,
      });
    }
    for (const j of jobs) {
      await mkdir(dirname(j.f.path), { recursive: true });
      await rename(j.temp, j.f.path);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { engine: TransferEngineKind.S5cmd, files: input.files.map((f) => results.get(f.label) as FileResult) };
}

/** The s5cmd engine's activities (orchestration worker: local paths). */
export function createS5cmdActivities(deps: S5cmdDeps) {
  async function copy(request: S5cmdInput): Promise<S5cmdResult> {
    const ctx = Context.current();
    // Every local path inside this worker's roots, symlinks resolved, before s5cmd sees it.
    const input = { ...request, files: await Promise.all(request.files.map(async (f) => ({ ...f, path: await deps.resolvePath(f.path) }))) };
    const exe = await findExecutable('s5cmd', deps.s5cmdSearchPath ?? process.env.PATH ?? '');
    if (!exe) {
      if (input.engine === 'auto') {
        log.info('s5cmd not on PATH: the built-in engine copies', {});
        return { engine: TransferEngineKind.Builtin, files: [] };
      }
      throw new TrainctlError(
        ErrorKind.NotFound,
        "engine s5cmd was asked for, but no s5cmd executable is on this worker's PATH (install it, or use --engine auto or builtin)",
      );
    }
    const s3 = await step(`S3 client for ${input.label}`, () => deps.s3(input));
    const signal = abortSignal();
    let bytes = 0;
    const progress = (n: number) => {
      bytes += n;
    };
    let phase = 'checksum';
    // The bytes copied ride on the heartbeat, where the progress of the transfer is read.
    const details = () => ({ phase, bytes, progress: { label: input.label, bytes, current: input.label } });
    const beat = setInterval(() => ctx.heartbeat(details()), 1_000);
    ctx.heartbeat(details());
    try {
      return input.direction === 'upload'
        ? await upload(exe, s3, input, signal, progress, (p) => (phase = p))
        : await download(exe, s3, input, signal, progress, (p) => (phase = p));
    } finally {
      clearInterval(beat);
    }
  }

  return {
    /**
     * Copies a batch of files between this machine and S3 with an `s5cmd` child process found on
     * this worker's PATH, then verifies every file as the built-in engine does (uploads: size, ETag
     * and trainctl's checksum, which s5cmd stores as metadata; downloads: into a temp folder inside
     * the destination, checked, then renamed into place — a mismatch is kind Integrity and nothing
     * moves). With engine `auto` and no s5cmd, copies nothing and answers `builtin`. Idempotent: a
     * retry copies again (with `sync`, identical files are skipped). On cancel the child is killed
     * and the temp folder removed; the workflow aborts any multipart upload left behind.
     */
    async transferS5cmd(input: S5cmdInput): Promise<S5cmdResult> {
      return copy(input).catch((err: unknown) => {
        const signal = abortSignal();
        if (signal?.aborted) throw signal.reason as Error;
        throw boundUnknown(toFailure(err, `s5cmd ${input.direction} of ${input.label}`));
      });
    },
  };
}

export type S5cmdActivities = ReturnType<typeof createS5cmdActivities>;
