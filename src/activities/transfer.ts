import { lstat, mkdir, readFile, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { appendFileSync, createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve as resolvePathLocal, sep } from 'node:path';
import { Context, log } from '@temporalio/activity';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ErrorKind, TrainctlError, isRetryable } from '../errors/kinds.js';
import { classify, toFailure } from '../errors/classify.js';
import { abortSignal, step } from './aws-call.js';
import { META_CHECKSUM, META_PART_SIZE, fileChecksum } from '../transfer/checksum.js';
import { META_ENCODING, META_ORIGINAL_SIZE, downloadVerified, objectMeta, pool } from '../transfer/download.js';
import { checkEncoding, compressor, encodingFor, type Encoding } from '../transfer/compress.js';
import { PROGRESS_SIGNAL, checkRelativeKey, partCount, partRange, planPartSize, selected, tempPathFor, baseName } from '../transfer/plan.js';
import type { HostFs } from './host-fs.js';

/**
 * Test-only fault hooks: called around every part a transfer sends or fetches. Production workers
 * have none; `transferHooksFromEnv` builds them for a host worker process under test.
 */
export interface TransferHooks {
  beforePart?(kind: 'upload' | 'download', partNumber: number, label: string): Promise<void>;
  afterPart?(kind: 'upload' | 'download', partNumber: number, label: string): void;
  /** A file of a batch is finished and recorded. */
  afterFile?(kind: string, label: string): void;
}

/**
 * Hooks from `TRAINCTL_TEST_TRANSFER_PART_DELAY_MS` (slow every part down, so a test can kill the
 * process mid-transfer) and `TRAINCTL_TEST_TRANSFER_LOG` (append `PID KIND PART start|done LABEL`
 * per part and `PID KIND 0 file-done LABEL` per finished file of a batch, so a test can count what was sent). Undefined when neither is set.
 */
export function transferHooksFromEnv(env: Record<string, string | undefined>): TransferHooks | undefined {
  const delay = Number(env.TRAINCTL_TEST_TRANSFER_PART_DELAY_MS ?? 0);
  const file = env.TRAINCTL_TEST_TRANSFER_LOG;
  if (!delay && !file) return undefined;
  const note = (kind: string, n: number, what: string, label: string) => {
    if (file) appendFileSync(file, `${process.pid} ${kind} ${n} ${what} ${label}\n`);
  };
  return {
    async beforePart(kind, n, label) {
      note(kind, n, 'start', label);
      if (delay) await Context.current().sleep(delay);
    },
    afterPart(kind, n, label) {
      note(kind, n, 'done', label);
    },
    afterFile(kind, label) {
      note(kind, 0, 'file-done', label);
    },
  };
}

export interface TransferEngineDeps {
  s3(region: string): S3Client;
  /** Turns a location's path into an absolute one this worker may touch (host roots, or anything locally). */
  resolvePath(path: string): Promise<string>;
  hooks?: TransferHooks | undefined;
  /** How often a running activity heartbeats its checkpoint. */
  heartbeatIntervalMs?: number;
}

export interface ScanInput {
  path: string;
  include: string[];
  exclude: string[];
  followSymlinks: boolean;
  /** A path that does not exist is an empty folder (listing a destination), not NotFound. */
  missingOk?: boolean;
  /** The compression the upload will use: refused here (InvalidInput) when this Node cannot do it. */
  compress?: Encoding;
}

export interface ScanResult {
  /** The path is one file (its name is the only entry's `rel`), not a folder. */
  single: boolean;
  files: { rel: string; size: number }[];
  skippedSymlinks: string[];
}

export interface UploadInput {
  region: string;
  path: string;
  bucket: string;
  key: string;
  /** Bytes; planned from the size when absent. */
  partSize?: number | undefined;
  concurrency: number;
  sync: boolean;
  label: string;
  progressIntervalMs: number;
  /** Compress text-like files (all with `compressAll`) before they go up. */
  compress?: Encoding | undefined;
  compressAll?: boolean | undefined;
}

export interface DownloadInput {
  region: string;
  bucket: string;
  key: string;
  path: string;
  partSize?: number | undefined;
  concurrency: number;
  sync: boolean;
  label: string;
  progressIntervalMs: number;
}

export interface FileResult {
  label: string;
  size: number;
  /** Bytes that crossed the wire in this activity's final attempt chain (0 when skipped). */
  sent: number;
  skipped: boolean;
  /** The bytes were checked against trainctl's checksum (false for foreign objects without one). */
  verified: boolean;
  checksum?: string;
  /** Parts (upload) or ranges (download) a retry found finished and did not send again. */
  resumed: number;
}

export interface BatchInput<I> {
  label: string;
  files: I[];
  /** Files of the batch in flight at once. */
  concurrency: number;
  progressIntervalMs: number;
}

interface BatchCheckpoint {
  kind: 'batch';
  /** Finished files by label. */
  done: Record<string, FileResult>;
}

interface UploadCheckpoint {
  kind: 'upload';
  key: string;
  size: number;
  mtimeMs: number;
  partSize: number;
  checksum: string;
  uploadId?: string;
  parts: { n: number; etag: string; sha256?: string }[];
}

/** The checkpoint to resume from: the heartbeat's and the state file's, parts merged when they name the same upload. */
function mergeUploadCheckpoints(a: UploadCheckpoint | undefined, b: UploadCheckpoint | undefined): UploadCheckpoint | undefined {
  const ok = (c: UploadCheckpoint | undefined): c is UploadCheckpoint => c?.kind === 'upload' && typeof c.key === 'string';
  if (!ok(a)) return ok(b) ? b : undefined;
  if (!ok(b)) return a;
  if (a.uploadId === undefined) return b;
  if (b.uploadId === undefined || b.uploadId !== a.uploadId) return a;
  const parts = new Map([...a.parts, ...b.parts].map((p) => [p.n, p]));
  return { ...a, parts: [...parts.values()] };
}

function isCancelled(err: unknown): boolean {
  return abortSignal()?.aborted === true || (err instanceof Error && err.name === 'CancelledFailure');
}

/**
 * A copy of an activity's checkpoint on this machine's disk, written in order. The server keeps only
 * the heartbeats that got through (at most one per ~80 % of the heartbeat timeout); this keeps every
 * step, for a retry on the same machine after the worker was killed.
 */
function localState<T>(scope: string) {
  const info = Context.current().info;
  const id = createHash('sha256').update(`${info.workflowExecution?.workflowId}/${info.activityId}/${scope}`).digest('hex');
  const path = join(tmpdir(), 'trainctl-transfer-state', `${id}.json`);
  let writes = Promise.resolve();
  const settle = () => writes.catch(() => undefined);
  return {
    read: () => readFile(path, 'utf8').then((t) => JSON.parse(t) as T, () => undefined),
    save(value: T): Promise<void> {
      const text = JSON.stringify(value);
      writes = writes.then(async () => {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, text);
      });
      return writes;
    },
    settle,
    async remove(): Promise<void> {
      await settle();
      await rm(path, { force: true });
    },
  };
}

/** A part's bytes as a stream from the file (an empty buffer for an empty file). */
function rangeBody(path: string, start: number, end: number): Readable | Buffer {
  return end > start ? createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 }) : Buffer.alloc(0);
}

/** Base64 SHA-256 of bytes [start, end) of a file, streamed. */
async function hashRange(path: string, start: number, end: number): Promise<string> {
  const h = createHash('sha256');
  if (end > start) for await (const chunk of createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('base64');
}

/**
 * A streamed body cannot be replayed by the SDK's own retries, so a part is retried here with a
 * fresh stream: a blip costs one part, not an activity attempt.
 */
async function withPartRetries<T>(send: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (attempt >= 3 || isCancelled(err) || !isRetryable(classify(err))) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Bytes moved so far, reported to the workflow. */
interface Progress {
  add(n: number): void;
  current(file: string): void;
}

/**
 * Sends the workflow that scheduled this activity a progress signal at most every `intervalMs`
 * (none for work that finishes sooner: a small file costs no history event).
 */
function progressReporter(label: string, intervalMs: number): Progress {
  const ctx = Context.current();
  let bytes = 0;
  let last = Date.now();
  let current = label;
  const workflowId = ctx.info.workflowExecution?.workflowId;
  const send = () => {
    last = Date.now();
    if (!workflowId) return;
    ctx.client.workflow
      .getHandle(workflowId)
      .signal(PROGRESS_SIGNAL, { label, bytes, current })
      .catch((err: unknown) => log.warn('progress signal not delivered', { label, error: String(err) }));
  };
  return {
    add(n: number) {
      bytes += n;
      if (Date.now() - last >= intervalMs) send();
    },
    current(file: string) {
      current = file;
    },
  };
}

/** How a file activity runs inside a batch: the batch owns the heartbeat and the progress. */
interface Nested {
  progress: Progress;
}

/** Heartbeats `details()` every interval (the SDK throttles what reaches the server) until stopped. */
function heartbeatLoop(details: () => unknown, intervalMs: number): () => void {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const t = setInterval(() => ctx.heartbeat(details()), intervalMs);
  return () => clearInterval(t);
}

function metaOf(head: HeadObjectCommandOutput): { checksum?: string; partSize?: number } {
  const m = head.Metadata ?? {};
  const ps = Number(m[META_PART_SIZE]);
  return { ...(m[META_CHECKSUM] ? { checksum: m[META_CHECKSUM] } : {}), ...(Number.isInteger(ps) && ps > 0 ? { partSize: ps } : {}) };
}

async function headOrUndefined(s3: S3Client, bucket: string, key: string): Promise<HeadObjectCommandOutput | undefined> {
  try {
    return await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: abortSignal() });
  } catch (err) {
    if (classify(err) === ErrorKind.NotFound) return undefined;
    throw err;
  }
}

/**
 * The file-moving activities. The same engine runs on the orchestration worker (local paths) and
 * on a host worker (paths confined to the host's roots), under the same activity names: the
 * workflow picks the machine by task queue.
 */
export function createTransferEngine(deps: TransferEngineDeps) {
  const hbEvery = deps.heartbeatIntervalMs ?? 1_000;

  async function scanTree(input: ScanInput): Promise<ScanResult> {
    if (input.compress) checkEncoding(input.compress);
    const root = await deps.resolvePath(input.path);
    const rootStat = await stat(root).catch((err: unknown) => {
      if (input.missingOk && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    });
    if (!rootStat) return { single: false, files: [], skippedSymlinks: [] };
    const skippedSymlinks: string[] = [];
    if (rootStat.isFile()) {
      const rel = baseName(root);
      checkRelativeKey(rel);
      return { single: true, files: selected(rel, input.include, input.exclude) ? [{ rel, size: rootStat.size }] : [], skippedSymlinks };
    }
    if (!rootStat.isDirectory()) throw new TrainctlError(ErrorKind.InvalidInput, `${input.path} is neither a file nor a folder`);
    const realRoot = await realpath(root);
    const files: { rel: string; size: number }[] = [];
    const seen = new Set<string>([realRoot]);
    const walk = async (dir: string, prefix: string): Promise<void> => {
      Context.current().heartbeat(files.length);
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        const full = join(dir, e.name);
        const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
        let target = full;
        if (e.isSymbolicLink()) {
          const real = await realpath(full).catch(() => undefined);
          const r = real === undefined ? undefined : relative(realRoot, real);
          const insideRoot = r !== undefined && r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r);
          if (real === undefined || (!insideRoot && !input.followSymlinks)) {
            skippedSymlinks.push(rel);
            continue;
          }
          target = await deps.resolvePath(real);
        }
        const s = await stat(target);
        if (s.isDirectory()) {
          const real = await realpath(target);
          if (seen.has(real)) continue;
          seen.add(real);
          await walk(target, rel);
        } else if (s.isFile() && selected(rel, input.include, input.exclude)) {
          checkRelativeKey(rel);
          files.push({ rel, size: s.size });
        }
      }
    };
    await walk(root, '');
    return { single: false, files, skippedSymlinks };
  }

  async function upload(input: UploadInput, nested?: Nested): Promise<FileResult> {
    const ctx = Context.current();
    const beat = (d: unknown) => {
      if (!nested) ctx.heartbeat(d);
    };
    const s3 = deps.s3(input.region);
    const origAbs = await deps.resolvePath(input.path);
    const origSt = await stat(origAbs);
    if (!origSt.isFile()) throw new TrainctlError(ErrorKind.InvalidInput, `${input.label} is not a regular file`);
    const encoding = encodingFor(baseName(input.path), input.compress ?? 'none', input.compressAll ?? false);
    // The heartbeat runs from the first step: hashing and compressing a large file take longer than a
    // heartbeat timeout on a loaded machine. Until this attempt has a checkpoint of its own it repeats
    // the last attempt's, so a crash while compressing loses nothing the server had.
    let cp: UploadCheckpoint | undefined;
    let previous = nested ? undefined : (ctx.info.heartbeatDetails as UploadCheckpoint | undefined);
    const stopHb = nested ? () => undefined : heartbeatLoop(() => cp ?? previous ?? { kind: 'upload', phase: 'checksum' }, hbEvery);
    try {
      return await uploadBody();
    } finally {
      stopHb();
    }

    async function uploadBody(): Promise<FileResult> {
    // A compressed file goes up from a compressed copy; the object records the original's checksum.
    let abs = origAbs;
    let st: { size: number; mtimeMs: number } = origSt;
    let original: { checksum: string; partSize: number } | undefined;
    let compressedTemp: string | undefined;
    if (encoding !== 'none') {
      checkEncoding(encoding);
      // Named by activity and key: a retry overwrites what a killed attempt left instead of adding to it.
      const info = ctx.info;
      const temp = join(tmpdir(), 'trainctl-compress', `${createHash('sha256').update(`${info.workflowExecution?.workflowId}/${info.activityId}/${input.key}`).digest('hex')}.${encoding}`);
      compressedTemp = temp;
      try {
        const origPartSize = planPartSize(origSt.size);
        const sum = await step(`checksum ${input.label}`, () => fileChecksum(origAbs, origPartSize, abortSignal()));
        const signal = abortSignal();
        await step(`compress ${input.label}`, async () => {
          await mkdir(dirname(temp), { recursive: true });
          await pipeline(createReadStream(origAbs), compressor(encoding), createWriteStream(temp), ...(signal ? [{ signal }] : []));
        });
        original = { checksum: sum.checksum, partSize: origPartSize };
        abs = temp;
        // The same input compresses to the same bytes, so its size and the original's mtime
        // identify the body: a retry re-creates it and resumes the upload's finished parts.
        st = { size: (await stat(temp)).size, mtimeMs: origSt.mtimeMs };
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
    }
    const unchanged = () => checkUnchanged(origAbs, origSt.size, origSt.mtimeMs, input.label);
    const partSize = planPartSize(st.size, input.partSize);
    const nParts = partCount(st.size, partSize);
    // The server keeps the last heartbeat that got through, at most one per ~80 % of the heartbeat
    // timeout; a state file on this machine keeps every step, so a SIGKILL right after the upload
    // was created or a part finished loses nothing. Both are merged.
    const state = localState<UploadCheckpoint>(`upload/${input.key}`);
    const fromDisk = await state.read();
    cp = mergeUploadCheckpoints(previous, fromDisk);
    if (cp && (cp.kind !== 'upload' || cp.key !== input.key || cp.size !== st.size || cp.mtimeMs !== st.mtimeMs || cp.partSize !== partSize)) {
      // The source changed since the checkpoint: this file starts over, never a mix of old and new parts.
      log.info('source changed since checkpoint; restarting file', { label: input.label });
      if (cp.kind === 'upload' && cp.uploadId) await abortUpload(s3, input.bucket, cp.key, cp.uploadId);
      cp = undefined;
      previous = undefined;
    }
    const progress = nested?.progress ?? progressReporter(input.label, input.progressIntervalMs);
    const saveState = (c: UploadCheckpoint) => state.save(c);
    let finished = false;
    let partDigests: Buffer[] | undefined;
    try {
      if (!cp) {
        const body = await step(`checksum ${input.label}`, () => fileChecksum(abs, partSize, abortSignal()));
        partDigests = body.parts;
        const checksum = original?.checksum ?? body.checksum;
        if (input.sync) {
          const head = await step(`head s3://${input.bucket}/${input.key}`, () => headOrUndefined(s3, input.bucket, input.key));
          const meta = head ? objectMeta(head) : undefined;
          if (head && head.ContentLength === st.size && meta?.checksum === checksum && meta.encoding === encoding) {
            progress.add(st.size);
            finished = true;
            return { label: input.label, size: origSt.size, sent: 0, skipped: true, verified: true, checksum, resumed: 0 };
          }
        }
        cp = { kind: 'upload', key: input.key, size: st.size, mtimeMs: st.mtimeMs, partSize, checksum, parts: [] };
      }
      const metadata = {
        [META_CHECKSUM]: cp.checksum,
        [META_PART_SIZE]: String(original?.partSize ?? partSize),
        ...(encoding !== 'none' ? { [META_ENCODING]: encoding, [META_ORIGINAL_SIZE]: String(origSt.size) } : {}),
      };

      // Part bodies are streamed from the file, never held whole: memory stays at a few read buffers
      // per part in flight, whatever the part size.
      const digestOf = async (n: number) => {
        const known = partDigests?.[n - 1];
        if (known) return known.toString('base64');
        const r = partRange(st.size, partSize, n);
        return hashRange(abs, r.start, r.end);
      };
      if (nParts <= 1) {
        await deps.hooks?.beforePart?.('upload', 1, input.label);
        const digest = await digestOf(1);
        await step(`put s3://${input.bucket}/${input.key}`, () =>
          withPartRetries(() =>
            s3.send(
              new PutObjectCommand({ Bucket: input.bucket, Key: input.key, Body: rangeBody(abs, 0, st.size), ContentLength: st.size, ChecksumSHA256: digest, Metadata: metadata }),
              { abortSignal: abortSignal() },
            ),
          ),
        );
        deps.hooks?.afterPart?.('upload', 1, input.label);
        progress.add(st.size);
        await unchanged();
        await verifyUploaded(s3, input, st.size, cp.checksum);
        finished = true;
        return { label: input.label, size: origSt.size, sent: st.size, skipped: false, verified: true, checksum: cp.checksum, resumed: 0 };
      }

      let resumed = 0;
      if (!cp.uploadId) {
        const created = await step(`start multipart upload s3://${input.bucket}/${input.key}`, () =>
          s3.send(new CreateMultipartUploadCommand({ Bucket: input.bucket, Key: input.key, Metadata: metadata, ChecksumAlgorithm: 'SHA256' }), { abortSignal: abortSignal() }),
        );
        if (!created.UploadId) throw new TrainctlError(ErrorKind.Transient, 'CreateMultipartUpload returned no UploadId');
        cp.uploadId = created.UploadId;
        // The upload id must be recorded before any part is sent, or a crash would orphan it.
        beat(cp);
        await saveState(cp);
      } else {
        // Parts S3 finished after the last heartbeat that reached the server are found here, so a
        // crash re-sends at most the parts that were in flight.
        const known = new Map(cp.parts.map((p) => [p.n, p]));
        for (const p of await listParts(s3, input.bucket, input.key, cp.uploadId)) {
          const expected = partRange(st.size, partSize, p.n);
          if (p.size === expected.end - expected.start && !known.has(p.n)) known.set(p.n, { n: p.n, etag: p.etag, ...(p.sha256 ? { sha256: p.sha256 } : {}) });
        }
        cp.parts = [...known.values()];
        resumed = cp.parts.length;
        for (const p of cp.parts) {
          const r = partRange(st.size, partSize, p.n);
          progress.add(r.end - r.start);
        }
        log.info('resuming multipart upload', { label: input.label, uploadId: cp.uploadId, finishedParts: resumed, parts: nParts });
      }
      const uploadId = cp.uploadId;
      const done = new Set(cp.parts.map((p) => p.n));
      const todo = Array.from({ length: nParts }, (_, i) => i + 1).filter((n) => !done.has(n));
      let sent = 0;
      const checkpoint = cp;
      await pool(todo, input.concurrency, async (n) => {
        const { start, end } = partRange(st.size, partSize, n);
        await deps.hooks?.beforePart?.('upload', n, input.label);
        const digest = await digestOf(n);
        const out = await step(`upload part ${n}/${nParts} of ${input.label}`, () =>
          withPartRetries(() =>
            s3.send(
              new UploadPartCommand({ Bucket: input.bucket, Key: input.key, UploadId: uploadId, PartNumber: n, Body: rangeBody(abs, start, end), ContentLength: end - start, ChecksumSHA256: digest }),
              { abortSignal: abortSignal() },
            ),
          ),
        );
        if (!out.ETag) throw new TrainctlError(ErrorKind.Transient, `UploadPart ${n} returned no ETag`);
        checkpoint.parts.push({ n, etag: out.ETag, sha256: digest });
        sent += end - start;
        progress.add(end - start);
        beat(checkpoint);
        await saveState(checkpoint);
        deps.hooks?.afterPart?.('upload', n, input.label);
      });
      await unchanged();
      const parts = [...checkpoint.parts].sort((a, b) => a.n - b.n);
      for (const p of parts) {
        // Parts recovered from ListParts on an emulator carry no checksum: compute it from the file.
        if (!p.sha256) {
          const r = partRange(st.size, partSize, p.n);
          p.sha256 = await hashRange(abs, r.start, r.end);
        }
      }
      await step(`complete multipart upload of ${input.label}`, () =>
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: input.bucket,
            Key: input.key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag, ChecksumSHA256: p.sha256 })) },
          }),
          { abortSignal: abortSignal() },
        ),
      );
      await verifyUploaded(s3, input, st.size, checkpoint.checksum);
      finished = true;
      return { label: input.label, size: origSt.size, sent, skipped: false, verified: true, checksum: checkpoint.checksum, resumed };
    } catch (err) {
      // A cancel or a failure no retry can fix must not leave a multipart upload (and its bill) behind.
      const finalFailure = isCancelled(err) || !isRetryable(classify(err));
      if (finalFailure && cp?.uploadId) await abortUpload(s3, input.bucket, input.key, cp.uploadId);
      if (finalFailure) finished = true;
      throw err;
    } finally {
      await state.settle();
      if (finished) await state.remove();
      if (compressedTemp) await rm(compressedTemp, { force: true });
    }
    }
  }

  async function download(input: DownloadInput, nested?: Nested): Promise<FileResult> {
    const ctx = Context.current();
    const abs = await deps.resolvePath(input.path);
    const progress = nested?.progress ?? progressReporter(input.label, input.progressIntervalMs);
    // Until a range finishes, the heartbeat repeats the last attempt's checkpoint rather than losing it.
    let checkpoint: unknown = nested ? undefined : ctx.info.heartbeatDetails;
    const stopHb = nested ? () => undefined : heartbeatLoop(() => checkpoint ?? { kind: 'download', phase: 'starting' }, hbEvery);
    try {
      const r = await downloadVerified({
        s3: deps.s3(input.region),
        bucket: input.bucket,
        key: input.key,
        path: abs,
        label: input.label,
        concurrency: input.concurrency,
        rangeSize: input.partSize,
        sync: input.sync,
        resumable: true,
        resume: nested ? undefined : ctx.info.heartbeatDetails,
        signal: abortSignal(),
        onBytes: (n) => progress.add(n),
        onCheckpoint: (cp) => {
          checkpoint = cp;
          if (!nested) ctx.heartbeat(cp);
        },
        beforeRange: (n) => deps.hooks?.beforePart?.('download', n, input.label) ?? Promise.resolve(),
        afterRange: (n) => deps.hooks?.afterPart?.('download', n, input.label),
        step,
      });
      return {
        label: input.label,
        size: r.size,
        sent: r.sent,
        skipped: r.skipped,
        verified: r.verifiedBy === 'checksum',
        ...(r.checksum ? { checksum: r.checksum } : {}),
        resumed: r.resumed,
      };
    } finally {
      stopHb();
    }
  }

  return {
    /**
     * Lists a local (or host) file or folder tree: relative paths and sizes, filtered by the
     * include/exclude globs. Symlinks leaving the root are skipped unless `followSymlinks`. Read-only.
     */
    async transferScan(input: ScanInput): Promise<ScanResult> {
      return step(`scan ${input.path}`, () => scanTree(input));
    },
    /**
     * Uploads one file to S3 (PutObject, or multipart above one part) with trainctl's checksum in
     * the object's metadata and S3's SHA-256 part checksums. Heartbeats a checkpoint (upload id,
     * finished parts); a retry resumes from it without re-sending finished parts, and restarts
     * the file if it changed. With `sync`, an identical object is skipped. On cancel or a
     * non-retryable failure the multipart upload is aborted.
     */
    async transferUpload(input: UploadInput): Promise<FileResult> {
      return upload(input).catch((err: unknown) => {
        throw isCancelled(err) ? err : toFailure(err, `upload ${input.label}`);
      });
    },
    /**
     * Downloads one object with parallel ranged GETs into a temp file, verifies it against the
     * checksum recorded at upload, and renames it into place. Heartbeats the finished ranges; a
     * retry resumes them. A persistent mismatch fails with kind Integrity and removes the temp
     * file; so do cancel and non-retryable failures.
     */
    async transferDownload(input: DownloadInput): Promise<FileResult> {
      return download(input).catch((err: unknown) => {
        throw isCancelled(err) ? err : toFailure(err, `download ${input.label}`);
      });
    },
    /**
     * Uploads many small files as one activity, `concurrency` at a time, heartbeating the files
     * finished so far: a retry skips them. Keeps a big tree's history small (one activity per
     * batch, not per file). Each file behaves as in {@link transferUpload}.
     */
    async transferUploadBatch(input: BatchInput<UploadInput>): Promise<FileResult[]> {
      return runBatch(input, 'upload', upload);
    },
    /** Downloads many small files as one activity; see {@link transferUploadBatch} and {@link transferDownload}. */
    async transferDownloadBatch(input: BatchInput<DownloadInput>): Promise<FileResult[]> {
      return runBatch(input, 'download', download);
    },
    /**
     * Deletes files under `root` named by relative paths (a sync's extraneous destination files).
     * Each path is checked (no `..`, absolute, backslash or NUL) and its folder, symlinks resolved,
     * must lie inside `root`: nothing outside the destination is ever removed. A symlink is removed
     * itself, never its target. Idempotent: a file already gone counts as deleted.
     */
    async transferDeleteFiles(input: { root: string; rels: string[] }): Promise<number> {
      return step(`delete ${input.rels.length} extraneous files under ${input.root}`, async () => {
        const root = await realpath(await deps.resolvePath(input.root));
        let deleted = 0;
        for (const rel of input.rels) {
          checkRelativeKey(rel);
          const full = join(root, ...rel.split('/'));
          const parent = await realpath(dirname(full)).catch(() => undefined);
          if (parent === undefined) continue;
          const r = relative(root, parent);
          if (r === '..' || r.startsWith(`..${sep}`) || isAbsolute(r)) throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete ${JSON.stringify(rel)}: its folder leads outside ${input.root}`);
          const st = await lstat(join(parent, basename(full))).catch(() => undefined);
          if (st?.isDirectory()) throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete ${JSON.stringify(rel)}: it is a folder`);
          await rm(join(parent, basename(full)), { force: true });
          deleted++;
          Context.current().heartbeat(deleted);
        }
        return deleted;
      });
    },
    /** Removes the temp files of unfinished downloads to these paths. Idempotent. */
    async transferRemoveTemp(input: { paths: string[] }): Promise<number> {
      let removed = 0;
      for (const p of input.paths) {
        const tmp = tempPathFor(await deps.resolvePath(p));
        if (await exists(tmp)) removed++;
        await rm(tmp, { force: true });
        await rm(`${tmp}.json`, { force: true });
        await rm(`${tmp}.decoded`, { force: true });
      }
      return removed;
    },
  };

  async function runBatch<I extends { label: string }>(input: BatchInput<I>, kind: string, one: (file: I, nested: Nested) => Promise<FileResult>): Promise<FileResult[]> {
    const ctx = Context.current();
    const state = localState<BatchCheckpoint>('batch');
    const fromHb = ctx.info.heartbeatDetails as BatchCheckpoint | undefined;
    const fromDisk = await state.read();
    const cp: BatchCheckpoint = { kind: 'batch', done: { ...(fromHb?.kind === 'batch' ? fromHb.done : {}), ...(fromDisk?.kind === 'batch' ? fromDisk.done : {}) } };
    const progress = progressReporter(input.label, input.progressIntervalMs);
    for (const r of Object.values(cp.done)) progress.add(r.size);
    const stopHb = heartbeatLoop(() => cp, hbEvery);
    try {
      await pool(
        input.files.filter((f) => !cp.done[f.label]),
        input.concurrency,
        async (f) => {
          progress.current(f.label);
          try {
            cp.done[f.label] = await one(f, { progress });
          } catch (err) {
            throw isCancelled(err) ? err : toFailure(err, `${kind} ${f.label}`);
          }
          ctx.heartbeat(cp);
          await state.save(cp);
          deps.hooks?.afterFile?.(kind, f.label);
        },
      );
    } catch (err) {
      if (isCancelled(err) || !isRetryable(classify(err))) await state.remove();
      throw err;
    } finally {
      stopHb();
    }
    await state.remove();
    return input.files.map((f) => cp.done[f.label] as FileResult);
  }

  async function checkUnchanged(abs: string, size: number, mtimeMs: number, label: string): Promise<void> {
    const now = await stat(abs);
    if (now.size !== size || now.mtimeMs !== mtimeMs) {
      // Retryable: the next attempt sees the checkpoint no longer matches and restarts this file.
      throw new TrainctlError(ErrorKind.Transient, `${label} changed while it was being uploaded; restarting it`);
    }
  }
}

async function verifyUploaded(s3: S3Client, input: UploadInput, size: number, checksum: string): Promise<void> {
  const head = await step(`head s3://${input.bucket}/${input.key}`, () => s3.send(new HeadObjectCommand({ Bucket: input.bucket, Key: input.key }), { abortSignal: abortSignal() }));
  if (head.ContentLength !== size || metaOf(head).checksum !== checksum) {
    throw new TrainctlError(ErrorKind.Integrity, `${input.label}: the stored object does not match what was sent (size ${head.ContentLength} vs ${size})`);
  }
}

async function abortUpload(s3: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    // Not under the activity's abort signal: this runs because the activity is being cancelled.
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    log.info('aborted multipart upload', { bucket, key, uploadId });
  } catch (err) {
    if (classify(err) !== ErrorKind.NotFound) log.warn('could not abort multipart upload', { bucket, key, uploadId, error: String(err) });
  }
}

async function listParts(s3: S3Client, bucket: string, key: string, uploadId: string): Promise<{ n: number; etag: string; size: number; sha256?: string }[]> {
  const out: { n: number; etag: string; size: number; sha256?: string }[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await step(`list parts of s3://${bucket}/${key}`, () =>
      s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }), { abortSignal: abortSignal() }),
    );
    for (const p of page.Parts ?? []) {
      if (p.PartNumber && p.ETag) out.push({ n: p.PartNumber, etag: p.ETag, size: p.Size ?? -1, ...(p.ChecksumSHA256 ? { sha256: p.ChecksumSHA256 } : {}) });
    }
    if (!page.IsTruncated || !page.NextPartNumberMarker) return out;
    marker = page.NextPartNumberMarker;
  }
}

export type TransferEngine = ReturnType<typeof createTransferEngine>;

export interface S3ListResult {
  single: boolean;
  bucket: string;
  files: { rel: string; key: string; size: number }[];
}

/**
 * The transfer activities of the orchestration worker: the engine on this machine's files, plus
 * the S3-only steps (list a source, abort leftover uploads, delete a staging prefix).
 */
export function createTransferActivities(deps: { s3(region: string): S3Client; transferHooks?: TransferHooks | undefined }) {
  return {
    ...createTransferEngine({ s3: deps.s3, hooks: deps.transferHooks, resolvePath: async (p) => resolvePathLocal(p) }),

    /**
     * Lists an S3 source: the object itself when the uri names one, else every object under the
     * prefix (folder markers skipped), filtered by the globs. Refuses (InvalidInput) any key whose
     * relative part could escape a destination folder, before anything is written. Read-only.
     */
    async transferListS3(input: { region: string; uri: string; include: string[]; exclude: string[] }): Promise<S3ListResult> {
      const s3 = deps.s3(input.region);
      const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(input.uri);
      const bucket = m?.[1] ?? '';
      const prefix = m?.[2] ?? '';
      if (prefix !== '' && !prefix.endsWith('/')) {
        const head = await step(`head ${input.uri}`, () => headOrUndefined(s3, bucket, prefix));
        if (head) {
          const rel = baseName(prefix);
          await step(`check key ${prefix}`, async () => checkRelativeKey(rel));
          return { single: true, bucket, files: selected(rel, input.include, input.exclude) ? [{ rel, key: prefix, size: head.ContentLength ?? 0 }] : [] };
        }
      }
      const listPrefix = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
      const files: S3ListResult['files'] = [];
      let token: string | undefined;
      do {
        const page = await step(`list ${input.uri}`, () =>
          s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix, ...(token ? { ContinuationToken: token } : {}) }), { abortSignal: abortSignal() }),
        );
        for (const o of page.Contents ?? []) {
          if (!o.Key || (o.Key.endsWith('/') && (o.Size ?? 0) === 0)) continue;
          const rel = o.Key.slice(listPrefix.length);
          await step(`check key ${o.Key}`, async () => checkRelativeKey(rel));
          if (selected(rel, input.include, input.exclude)) files.push({ rel, key: o.Key, size: o.Size ?? 0 });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
        Context.current().heartbeat(files.length);
      } while (token);
      return { single: false, bucket, files };
    },

    /**
     * Aborts the multipart uploads in progress for these keys: the sweep after a cancelled or
     * failed transfer, for uploads whose activity died before it could abort them. Idempotent.
     */
    async transferAbortUploads(input: { region: string; bucket: string; keys: string[] }): Promise<number> {
      const s3 = deps.s3(input.region);
      const keys = new Set(input.keys);
      let aborted = 0;
      let keyMarker: string | undefined;
      let idMarker: string | undefined;
      for (;;) {
        const page = await step(`list multipart uploads in ${input.bucket}`, () =>
          s3.send(new ListMultipartUploadsCommand({ Bucket: input.bucket, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(idMarker ? { UploadIdMarker: idMarker } : {}) })),
        );
        for (const u of page.Uploads ?? []) {
          if (u.Key && u.UploadId && keys.has(u.Key)) {
            await abortUpload(s3, input.bucket, u.Key, u.UploadId);
            aborted++;
          }
        }
        if (!page.IsTruncated) return aborted;
        keyMarker = page.NextKeyMarker;
        idMarker = page.NextUploadIdMarker;
      }
    },

    /**
     * Deletes the objects `prefix + rel` (a sync's extraneous destination objects). Every rel is
     * checked as a relative key, so nothing outside the prefix is named. Idempotent.
     */
    async transferDeleteObjects(input: { region: string; bucket: string; prefix: string; rels: string[] }): Promise<number> {
      if (input.prefix !== '' && !input.prefix.endsWith('/')) throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete under prefix ${JSON.stringify(input.prefix)}: it must end with /`);
      const s3 = deps.s3(input.region);
      const keys: string[] = [];
      for (const rel of input.rels) {
        await step(`check key ${rel}`, async () => checkRelativeKey(rel));
        keys.push(`${input.prefix}${rel}`);
      }
      for (let i = 0; i < keys.length; i += 1000) {
        const objects = keys.slice(i, i + 1000).map((Key) => ({ Key }));
        const out = await step(`delete ${objects.length} extraneous objects`, () =>
          s3.send(new DeleteObjectsCommand({ Bucket: input.bucket, Delete: { Objects: objects, Quiet: true } }), { abortSignal: abortSignal() }),
        );
        const failed = out.Errors ?? [];
        if (failed.length > 0) throw new TrainctlError(ErrorKind.Transient, `${failed.length} objects could not be deleted (first: ${failed[0]?.Key}: ${failed[0]?.Code})`);
        Context.current().heartbeat(i + objects.length);
      }
      return keys.length;
    },

    /** Deletes every object under a (non-empty) staging prefix. Idempotent. */
    async transferDeletePrefix(input: { region: string; bucket: string; prefix: string }): Promise<number> {
      if (input.prefix === '' || !input.prefix.endsWith('/')) throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete prefix ${JSON.stringify(input.prefix)}`);
      const s3 = deps.s3(input.region);
      let deleted = 0;
      for (;;) {
        const page = await step(`list s3://${input.bucket}/${input.prefix}`, () => s3.send(new ListObjectsV2Command({ Bucket: input.bucket, Prefix: input.prefix })));
        const objects = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
        if (objects.length === 0) break;
        await step(`delete ${objects.length} staging objects`, () => s3.send(new DeleteObjectsCommand({ Bucket: input.bucket, Delete: { Objects: objects, Quiet: true } })));
        deleted += objects.length;
      }
      await step('abort staging uploads', async () => {
        const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: input.bucket, Prefix: input.prefix }));
        for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) await abortUpload(s3, input.bucket, u.Key, u.UploadId);
      });
      return deleted;
    },
  };
}

export type TransferActivities = ReturnType<typeof createTransferActivities>;

/** The engine as a host worker registers it: every path confined to the host's roots. */
export function createHostTransferActivities(deps: { fs: HostFs; s3(region: string): S3Client }) {
  return createTransferEngine({ s3: deps.s3, resolvePath: (p) => deps.fs.resolve(p), hooks: transferHooksFromEnv(process.env) });
}
