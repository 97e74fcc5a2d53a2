import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, delimiter, isAbsolute, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { CancelledFailure, Context, log } from '@temporalio/activity';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { MANIFEST_FILE, cachedBytes, parseManifest, planEviction, planSync, type CacheEntry, type CacheManifest, type RemoteObject } from '../cache-manifest.js';
import { abortSignal, step } from './aws-call.js';
import { downloadVerified } from '../transfer/download.js';
import type { HostDeps } from './host.js';

const MiB = 1024 * 1024;

export interface PrewarmDeps extends HostDeps {
  /**
   * Tests only: a pause after every block read, so a test can kill the host half-way. Read from
   * TRAINCTL_TEST_PREWARM_DELAY_MS in the host process when not given.
   */
  prewarmDelayMs?: number;
}

/** What a prewarmDevice attempt heartbeats: every block below `watermark` has been read. */
export interface PrewarmCheckpoint {
  path: string;
  size: number;
  blockSize: number;
  method: 'builtin' | 'fio';
  watermark: number;
  /** CRC-32 of bytes [0, watermark), in order (built-in reader only). */
  crc: number;
}

export interface PrewarmDeviceResult {
  path: string;
  method: 'builtin' | 'fio';
  /** The device's (or file's) size: every byte of it has now been read once. */
  bytes: number;
  /** Where this attempt started: the watermark a crashed attempt heartbeated, or 0. */
  resumedFrom: number;
  bytesReadThisAttempt: number;
  attempt: number;
  /** This attempt's reading time and rate. */
  seconds: number;
  mibPerSecond: number;
  blockSize: number;
  concurrency: number;
  /** CRC-32 (hex) of every byte in order, across attempts; built-in reader only. */
  checksum?: { algorithm: 'crc32'; value: string };
}

/** Size of a regular file, or of a block device (whose stat size is 0) from sysfs. */
async function sizeOf(path: string): Promise<number> {
  const s = await stat(path);
  if (s.isFile()) return s.size;
  if (s.isBlockDevice()) {
    const sectors = await readFile(`/sys/class/block/${basename(path)}/size`, 'utf8');
    return Number(sectors.trim()) * 512;
  }
  throw new TrainctlError(ErrorKind.InvalidInput, `${path} is neither a file nor a block device`);
}

export interface ReadOptions {
  /** Block-aligned offset to start at (a resumed attempt's watermark). */
  start: number;
  /** CRC-32 of the bytes before `start`. */
  crc: number;
  size: number;
  blockSize: number;
  concurrency: number;
  checksum: boolean;
  signal?: AbortSignal | undefined;
  delayMs?: number;
  onProgress?: (watermark: number, crc: number) => void;
}

async function readFull(fh: Awaited<ReturnType<typeof open>>, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * Reads every block of `path` from `start` to `size` once, `concurrency` large reads in flight into
 * reused buffers. Blocks are consumed in order (block b's buffer is reused for block b+concurrency
 * only once b is done), so the watermark reported to `onProgress` has every block below it read and
 * the CRC covers exactly those bytes.
 */
export async function readEveryBlock(path: string, o: ReadOptions): Promise<{ bytesRead: number; crc: number }> {
  const fh = await open(path, constants.O_RDONLY);
  const blocks = Math.ceil(Math.max(0, o.size - o.start) / o.blockSize);
  const slots = Math.max(1, Math.min(o.concurrency, blocks));
  const bufs = Array.from({ length: slots }, () => Buffer.allocUnsafe(o.blockSize));
  const pending = new Map<number, Promise<number>>();
  const issue = (b: number) => {
    const offset = o.start + b * o.blockSize;
    const p = readFull(fh, bufs[b % slots]!, Math.min(o.blockSize, o.size - offset), offset).then(async (n) => {
      if (o.delayMs) await sleep(o.delayMs);
      return n;
    });
    // Awaited in order below; this keeps a later block's failure from being an unhandled rejection meanwhile.
    p.catch(() => undefined);
    pending.set(b, p);
  };
  let crc = o.crc;
  let bytesRead = 0;
  try {
    for (let b = 0; b < slots; b++) issue(b);
    for (let b = 0; b < blocks; b++) {
      const got = await pending.get(b)!;
      pending.delete(b);
      const expected = Math.min(o.blockSize, o.size - (o.start + b * o.blockSize));
      if (got !== expected) throw new TrainctlError(ErrorKind.Transient, `short read at ${o.start + b * o.blockSize}: ${got} of ${expected} bytes (did ${path} shrink?)`);
      if (o.checksum) crc = crc32(bufs[b % slots]!.subarray(0, got), crc);
      bytesRead += got;
      o.onProgress?.(o.start + b * o.blockSize + got, crc);
      if (o.signal?.aborted) throw new CancelledFailure('prewarm cancelled');
      if (b + slots < blocks) issue(b + slots);
    }
  } finally {
    // Reads still in flight must finish before their file handle closes.
    await Promise.allSettled(pending.values());
    await fh.close();
  }
  return { bytesRead, crc };
}

/** Whether an executable named `name` is on PATH. */
async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder; try the next.
    }
  }
  return undefined;
}

/**
 * One fio pass over [offset, offset+length): AWS's own initialisation command
 * (`--rw=read --bs=1M --iodepth=32 --ioengine=libaio --direct=1`). fio splits --filename on `:`,
 * so colons are escaped.
 */
export async function fioRead(fio: string, path: string, offset: number, length: number, blockSize: number, iodepth: number, signal?: AbortSignal): Promise<void> {
  const args = [
    '--name=trainctl-prewarm',
    `--filename=${path.replace(/:/g, '\\:')}`,
    '--rw=read',
    `--bs=${blockSize}`,
    `--iodepth=${iodepth}`,
    '--ioengine=libaio',
    '--direct=1',
    '--readonly',
    `--offset=${offset}`,
    `--size=${length}`,
    '--output-format=terse',
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(fio, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2_000)));
    child.once('error', reject);
    child.once('exit', (code, sig) => {
      if (code === 0) resolve();
      else reject(new TrainctlError(ErrorKind.Transient, `fio exited with ${code ?? sig}: ${stderr.trim()}`));
    });
  });
}

const DatasetManifestSchema = z.object({
  files: z.array(z.object({ path: z.string().min(1), size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/).optional() })),
});
export type DatasetManifest = z.infer<typeof DatasetManifestSchema>;

/** A relative path with no `..`, `.` or empty segments: what a manifest or an S3 key may name. */
function safeRelative(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\0') || p.includes('\\')) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

async function exists(path: string, size: number): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && s.size === size;
  } catch {
    return false;
  }
}

export interface VerifyManifestResult {
  files: number;
  bytes: number;
  ok: boolean;
  /** At most the first 100 of each. */
  missing: string[];
  mismatched: { path: string; reason: string }[];
  seconds: number;
}

export interface SyncCacheResult {
  objects: number;
  hits: number;
  objectsTransferred: number;
  bytesTransferred: number;
  /** Size of the prefix. */
  bytes: number;
  evicted: { id: string; size: number }[];
  cacheBytes: number;
  capacityBytes?: number;
  seconds: number;
  mibPerSecond: number;
  /** The folder holding the prefix in the cache: what the loader script reads. */
  localPath: string;
}

/**
 * The host's data activities: read every block of a device (PreWarmedEBS), check a dataset against
 * its manifest (ExistingEBS), sync an S3 prefix into a local cache (LocalCache), list a prefix
 * (DirectS3). Every path goes through the host's root confinement.
 */
export function createPrewarmActivities(deps: PrewarmDeps) {
  // Read once, in the host process: tests pass it through the host worker's environment.
  const delayMs = deps.prewarmDelayMs ?? (Number(process.env.TRAINCTL_TEST_PREWARM_DELAY_MS ?? '0') || 0);

  async function listObjects(region: string, bucket: string, prefix: string): Promise<RemoteObject[]> {
    const out: RemoteObject[] = [];
    let token: string | undefined;
    do {
      const res = await deps.s3(region).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: abortSignal() });
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined || o.Key.endsWith('/')) continue;
        out.push({ id: `${bucket}/${o.Key}`, size: o.Size ?? 0, etag: o.ETag ?? '' });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /**
   * Fetches one object through the transfer engine's verified download: ranged parallel GETs into a
   * temp file next to `dest`, checked against trainctl's checksum when the object has one (else its
   * single-part ETag's MD5, else its length), renamed into place; the temp file is removed on failure.
   */
  async function fetchObject(region: string, o: RemoteObject, dest: string, concurrency: number): Promise<CacheEntry> {
    const slash = o.id.indexOf('/');
    const r = await downloadVerified({
      s3: deps.s3(region),
      bucket: o.id.slice(0, slash),
      key: o.id.slice(slash + 1),
      path: dest,
      label: o.id,
      concurrency,
      signal: abortSignal(),
    });
    return { id: o.id, size: r.size, sha256: r.sha256, etag: r.etag || o.etag, lastUsed: Date.now() };
  }

  async function saveManifest(cacheDir: string, m: CacheManifest): Promise<void> {
    const tmp = join(cacheDir, `${MANIFEST_FILE}.${randomUUID()}.tmp`);
    await writeFile(tmp, JSON.stringify(m));
    await rename(tmp, join(cacheDir, MANIFEST_FILE));
  }

  async function verifyManifest(args: { datasetDir: string; manifest: string; verify: 'size' | 'checksum' }): Promise<VerifyManifestResult> {
    const ctx = Context.current();
    const t0 = performance.now();
    const dir = await step(`resolve ${args.datasetDir}`, () => deps.fs.resolve(args.datasetDir));
    const manifestPath = await step(`resolve ${args.manifest}`, () => deps.fs.resolve(isAbsolute(args.manifest) ? args.manifest : join(dir, args.manifest)));
    const manifest = await step(`read manifest ${manifestPath}`, async () => DatasetManifestSchema.parse(JSON.parse(await readFile(manifestPath, 'utf8'))));
    type Progress = { index: number; bytes: number; missing: string[]; mismatched: { path: string; reason: string }[] };
    const prev = ctx.info.heartbeatDetails as Progress | undefined;
    const p: Progress = prev ?? { index: 0, bytes: 0, missing: [], mismatched: [] };
    const missing = (path: string) => p.missing.length < 100 && p.missing.push(path);
    const mismatched = (path: string, reason: string) => p.mismatched.length < 100 && p.mismatched.push({ path, reason });
    for (; p.index < manifest.files.length; p.index++) {
      const f = manifest.files[p.index]!;
      if (!safeRelative(f.path)) throw new TrainctlError(ErrorKind.InvalidInput, `manifest path ${JSON.stringify(f.path)} must be relative, without . or .. segments`);
      const full = await step(`resolve ${f.path}`, () => deps.fs.resolve(join(dir, ...f.path.split('/'))));
      let s;
      try {
        s = await stat(full);
      } catch {
        missing(f.path);
        ctx.heartbeat({ ...p, index: p.index + 1 });
        continue;
      }
      if (!s.isFile()) mismatched(f.path, 'not a regular file');
      else if (s.size !== f.size) mismatched(f.path, `size ${s.size}, manifest says ${f.size}`);
      else if (args.verify === 'checksum' && f.sha256 !== undefined) {
        const got = await sha256File(full);
        if (got !== f.sha256) mismatched(f.path, `sha256 ${got}, manifest says ${f.sha256}`);
      }
      p.bytes += f.size;
      // The next file is where a retry starts.
      ctx.heartbeat({ ...p, index: p.index + 1 });
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('verification cancelled');
    }
    return {
      files: manifest.files.length,
      bytes: p.bytes,
      ok: p.missing.length === 0 && p.mismatched.length === 0,
      missing: p.missing,
      mismatched: p.mismatched,
      seconds: (performance.now() - t0) / 1000,
    };
  }

  async function syncCache(args: { region: string; bucket: string; prefix: string; cacheDir: string; capacityBytes?: number; concurrency: number }): Promise<SyncCacheResult> {
    const ctx = Context.current();
    const t0 = performance.now();
    const cacheDir = await step(`resolve ${args.cacheDir}`, () => deps.fs.resolve(args.cacheDir));
    await step(`create ${cacheDir}`, () => mkdir(cacheDir, { recursive: true }));
    // Left by caches synced before objects went through the transfer engine.
    await rm(join(cacheDir, '.trainctl-tmp'), { recursive: true, force: true });
    const localOf = (id: string) => join(cacheDir, ...id.split('/'));

    const listing = await step(`list s3://${args.bucket}/${args.prefix}`, () => listObjects(args.region, args.bucket, args.prefix));
    for (const o of listing) {
      if (!safeRelative(o.id)) throw new TrainctlError(ErrorKind.InvalidInput, `S3 key ${JSON.stringify(o.id)} cannot be a cache path (empty, . or .. segments)`);
    }
    const manifestText = await readFile(join(cacheDir, MANIFEST_FILE), 'utf8').catch(() => undefined);
    const { manifest, problem } = parseManifest(manifestText);
    if (problem) log.warn('cache manifest unreadable; treating the cache as empty', { cacheDir, problem });
    const present = new Map<string, boolean>();
    await Promise.all(listing.map(async (o) => present.set(o.id, await exists(localOf(o.id), o.size))));
    const { hits, fetch } = planSync(manifest, listing, (id) => present.get(id) === true);
    const { evict, fits, keepBytes } = planEviction(manifest, listing, args.capacityBytes);
    if (!fits) {
      throw new TrainctlError(ErrorKind.QuotaExceeded, `s3://${args.bucket}/${args.prefix} holds ${keepBytes} bytes, more than the cache's capacity of ${args.capacityBytes} bytes`);
    }
    for (const e of evict) {
      await rm(localOf(e.id), { force: true });
      delete manifest.entries[e.id];
    }
    if (evict.length) await saveManifest(cacheDir, manifest);

    const now = Date.now();
    for (const h of hits) manifest.entries[h.id]!.lastUsed = now;
    let transferred = 0;
    let done = 0;
    let lastSave = performance.now();
    const queue = [...fetch];
    const worker = async () => {
      for (let o = queue.shift(); o; o = queue.shift()) {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('cache sync cancelled');
        const entry = await step(`fetch s3://${o.id}`, () => fetchObject(args.region, o, localOf(o.id), args.concurrency));
        manifest.entries[o.id] = entry;
        transferred += entry.size;
        done++;
        ctx.heartbeat({ done, of: fetch.length, bytes: transferred });
        if (performance.now() - lastSave > 2_000) {
          lastSave = performance.now();
          await saveManifest(cacheDir, manifest);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(args.concurrency, Math.max(1, fetch.length)) }, worker));
    } finally {
      // What finished is recorded even when a fetch failed, so the retry skips it.
      await saveManifest(cacheDir, manifest);
    }
    const seconds = (performance.now() - t0) / 1000;
    const result: SyncCacheResult = {
      objects: listing.length,
      hits: hits.length,
      objectsTransferred: fetch.length,
      bytesTransferred: transferred,
      bytes: keepBytes,
      evicted: evict.map((e) => ({ id: e.id, size: e.size })),
      cacheBytes: cachedBytes(manifest),
      ...(args.capacityBytes !== undefined ? { capacityBytes: args.capacityBytes } : {}),
      seconds,
      mibPerSecond: seconds > 0 ? transferred / MiB / seconds : 0,
      localPath: join(cacheDir, args.bucket, ...args.prefix.split('/').filter((seg) => seg !== '')),
    };
    log.info('cache synced', { ...result, evicted: result.evicted.length });
    return result;
  }

  return {
    /**
     * Reads every block of a device (or file) once so that a volume restored from a snapshot runs
     * at full speed: `concurrency` parallel reads of `blockSize`, with fio (`--direct=1`) when
     * `fio: 'auto'` and fio is on PATH, else the built-in reader. Heartbeats the watermark below
     * which every block is read; a retry resumes from it (not from zero) when the path, size and
     * block size match. Read-only and idempotent. On cancel it stops between blocks.
     */
    async prewarmDevice(args: { path: string; blockSize: number; concurrency: number; fio: 'auto' | 'never' }): Promise<PrewarmDeviceResult> {
      const ctx = Context.current();
      const path = await step(`resolve ${args.path}`, () => deps.fs.resolve(args.path));
      const size = await step(`size of ${path}`, () => sizeOf(path));
      const fio = args.fio === 'auto' ? await onPath('fio') : undefined;
      const method = fio ? 'fio' : 'builtin';
      const prev = ctx.info.heartbeatDetails as PrewarmCheckpoint | undefined;
      const resume =
        prev && prev.path === path && prev.size === size && prev.blockSize === args.blockSize && prev.method === method && prev.watermark >= 0 && prev.watermark <= size ? prev : undefined;
      if (prev && !resume) log.warn('checkpoint does not match the device; reading from the start', { path, size });
      const start = resume?.watermark ?? 0;
      let checkpoint: PrewarmCheckpoint = { path, size, blockSize: args.blockSize, method, watermark: start, crc: resume?.crc ?? 0 };
      ctx.heartbeat(checkpoint);
      log.info('prewarming', { path, size, method, resumedFrom: start, attempt: ctx.info.attempt });
      const t0 = performance.now();
      let crc = checkpoint.crc;
      await step(`read every block of ${path}`, async () => {
        if (fio) {
          const chunk = Math.max(args.blockSize, Math.floor((256 * MiB) / args.blockSize) * args.blockSize);
          // Direct I/O reads whole sectors: a file stand-in's unaligned tail is read the ordinary way.
          const alignedEnd = size - (size % 4096);
          const keepAlive = setInterval(() => ctx.heartbeat(checkpoint), 1_000);
          try {
            for (let offset = start; offset < alignedEnd; offset += chunk) {
              await fioRead(fio, path, offset, Math.min(chunk, alignedEnd - offset), args.blockSize, args.concurrency, ctx.cancellationSignal);
              checkpoint = { ...checkpoint, watermark: Math.min(alignedEnd, offset + chunk) };
              ctx.heartbeat(checkpoint);
            }
            const tail = Math.max(start, alignedEnd);
            if (tail < size) {
              await readEveryBlock(path, { start: tail, crc: 0, size, blockSize: args.blockSize, concurrency: 1, checksum: false });
              checkpoint = { ...checkpoint, watermark: size };
              ctx.heartbeat(checkpoint);
            }
          } finally {
            clearInterval(keepAlive);
          }
        } else {
          const r = await readEveryBlock(path, {
            start,
            crc: checkpoint.crc,
            size,
            blockSize: args.blockSize,
            concurrency: args.concurrency,
            checksum: true,
            signal: ctx.cancellationSignal,
            delayMs,
            onProgress: (watermark, c) => {
              checkpoint = { ...checkpoint, watermark, crc: c };
              ctx.heartbeat(checkpoint);
            },
          });
          crc = r.crc;
        }
      });
      const seconds = (performance.now() - t0) / 1000;
      const bytesReadThisAttempt = size - start;
      const result: PrewarmDeviceResult = {
        path,
        method,
        bytes: size,
        resumedFrom: start,
        bytesReadThisAttempt,
        attempt: ctx.info.attempt,
        seconds,
        mibPerSecond: seconds > 0 ? bytesReadThisAttempt / MiB / seconds : 0,
        blockSize: args.blockSize,
        concurrency: args.concurrency,
        ...(method === 'builtin' ? { checksum: { algorithm: 'crc32' as const, value: (crc >>> 0).toString(16).padStart(8, '0') } } : {}),
      };
      log.info('prewarmed', { path, bytes: size, seconds, mibPerSecond: result.mibPerSecond });
      return result;
    },

    /**
     * Checks that `datasetDir` holds what its manifest lists: every file present with its size, and
     * with `verify: 'checksum'` its SHA-256. Read-only; a retry resumes at the file it heartbeated.
     * Reports problems rather than failing, so the workflow decides.
     */
    async verifyManifest(args: { datasetDir: string; manifest: string; verify: 'size' | 'checksum' }): Promise<VerifyManifestResult> {
      return step(`verify ${args.datasetDir} against ${args.manifest}`, () => verifyManifest(args));
    },

    /**
     * Syncs `s3://bucket/prefix` into `cacheDir` (as `cacheDir/BUCKET/KEY`), with a manifest of
     * id, size, SHA-256, ETag and last use: objects whose size and ETag match their entry (and whose
     * file is present) are not fetched again, so a second sync transfers nothing. With a capacity,
     * least-recently-used entries of other prefixes are evicted first; a prefix larger than the
     * capacity fails with QuotaExceeded before anything is fetched. Each object goes through the
     * transfer engine's verified download (`downloadVerified`): a trainctl-uploaded object must match
     * its recorded checksum (kind Integrity otherwise, and nothing is left in the cache). Idempotent:
     * a retry re-lists and skips what an earlier attempt finished. Cancel stops between objects.
     */
    async syncCache(args: { region: string; bucket: string; prefix: string; cacheDir: string; capacityBytes?: number; concurrency: number }): Promise<SyncCacheResult> {
      return step(`sync s3://${args.bucket}/${args.prefix} into ${args.cacheDir}`, () => syncCache(args));
    },

    /** DirectS3 needs no warming: lists the prefix from the host to show the instance reaches it. Read-only. */
    async listDatasetPrefix(args: { region: string; bucket: string; prefix: string }): Promise<{ objects: number; bytes: number }> {
      const listing = await step(`list s3://${args.bucket}/${args.prefix}`, () => listObjects(args.region, args.bucket, args.prefix));
      return { objects: listing.length, bytes: listing.reduce((s, o) => s + o.size, 0) };
    },
  };
}

export type PrewarmActivities = ReturnType<typeof createPrewarmActivities>;
