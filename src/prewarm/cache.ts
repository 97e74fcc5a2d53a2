/**
 * LocalCache: an S3 prefix synced into a folder on the host, with a manifest (id, size, SHA-256,
 * ETag, last use) so a second sync transfers nothing, and least-recently-used eviction under a
 * capacity. The plan is pure (`cache-manifest.ts`); this module does the file and S3 work.
 * Temporal-free.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SyncCacheResult } from '../contracts/prewarm.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { downloadVerified } from '../transfer/download.js';
import {
  MANIFEST_FILE,
  cachedBytes,
  isCacheId,
  parseManifest,
  planEviction,
  planSync,
  type CacheEntry,
  type CacheManifest,
  type RemoteObject,
} from './cache-manifest.js';
import { listPrefix } from './listing.js';
import { MiB, fileOfSize, safeRelative, stopIfCancelled, type WorkContext } from './work.js';

export interface SyncCacheArgs {
  region: string;
  profile?: string | undefined;
  bucket: string;
  prefix: string;
  cacheDir: string;
  capacityBytes?: number;
  concurrency: number;
}

/** The cache folder and the manifest being brought up to date. */
interface Cache {
  dir: string;
  manifest: CacheManifest;
  localOf(id: string): string;
}

/** Writes the manifest atomically (a temp file renamed over it). */
async function saveManifest(cacheDir: string, m: CacheManifest): Promise<void> {
  const tmp = join(cacheDir, `${MANIFEST_FILE}.${randomUUID()}.tmp`);
  await writeFile(tmp, JSON.stringify(m));
  await rename(tmp, join(cacheDir, MANIFEST_FILE));
}

/**
 * Fetches one object through the transfer engine's verified download: ranged parallel GETs into a
 * temp file next to `dest`, checked against trainctl's checksum when the object has one (else its
 * single-part ETag's MD5, else its length), renamed into place; the temp file is removed on failure.
 */
async function fetchObject(s3: S3Client, o: RemoteObject, dest: string, concurrency: number, signal: AbortSignal | undefined): Promise<CacheEntry> {
  const slash = o.id.indexOf('/');
  // The cache's manifest keeps each file's SHA-256: the download makes its whole-file pass for it.
  const r = await downloadVerified({
    s3,
    bucket: o.id.slice(0, slash),
    key: o.id.slice(slash + 1),
    path: dest,
    label: o.id,
    concurrency,
    signal,
    wholeSha256: true,
  });
  return { id: o.id, size: r.size, sha256: r.sha256 as string, etag: r.etag || o.etag, lastUsed: Date.now() };
}

/** Resolves and creates the cache folder and reads its manifest (an unreadable one counts as empty). */
async function openCache(cacheDir: string, w: WorkContext): Promise<Cache> {
  const dir = await w.step(`resolve ${cacheDir}`, () => w.resolve(cacheDir));
  await w.step(`create ${dir}`, () => mkdir(dir, { recursive: true }));
  // Left by caches synced before objects went through the transfer engine.
  await rm(join(dir, '.trainctl-tmp'), { recursive: true, force: true });
  const text = await readFile(join(dir, MANIFEST_FILE), 'utf8').catch(() => undefined);
  const { manifest, problem } = parseManifest(text);
  if (problem) w.warn('cache manifest unreadable; treating the cache as empty', { cacheDir: dir, problem });
  return {
    dir,
    manifest,
    localOf: (id) => {
      // Evictions and fetches write and delete only under the cache folder, whatever a manifest says.
      if (!isCacheId(id)) throw new TrainctlError(ErrorKind.InvalidInput, `cache id ${JSON.stringify(id)} is not BUCKET/KEY with safe segments`);
      return join(dir, ...id.split('/'));
    },
  };
}

/**
 * Plans the sync: which listed objects are already cached (hits) and which to fetch, and evicts
 * least-recently-used entries of other prefixes to make room. Fails with QuotaExceeded, before
 * anything is fetched, when the prefix alone is larger than the capacity.
 */
async function planAndEvict(cache: Cache, listing: RemoteObject[], args: SyncCacheArgs, w: WorkContext) {
  const present = new Map<string, boolean>();
  await Promise.all(listing.map(async (o) => present.set(o.id, await fileOfSize(cache.localOf(o.id), o.size))));
  const { hits, fetch } = planSync(cache.manifest, listing, (id) => present.get(id) === true);
  const { evict, fits, keepBytes } = planEviction(cache.manifest, listing, args.capacityBytes);
  if (!fits) {
    throw new TrainctlError(
      ErrorKind.QuotaExceeded,
      `s3://${args.bucket}/${args.prefix} holds ${keepBytes} bytes, more than the cache's capacity of ${args.capacityBytes} bytes`,
    );
  }
  for (const e of evict) {
    // Through the host's confinement: a link planted inside the cache cannot lead an eviction outside the roots.
    await rm(await w.resolve(cache.localOf(e.id)), { force: true });
    delete cache.manifest.entries[e.id];
  }
  if (evict.length) await saveManifest(cache.dir, cache.manifest);
  const now = Date.now();
  for (const h of hits) cache.manifest.entries[h.id]!.lastUsed = now;
  return { hits, fetch, evict, keepBytes };
}

/**
 * Fetches `fetch` with `concurrency` objects in flight, heartbeating after each and saving the
 * manifest at most every 2 s, and always once at the end: what finished is recorded even when a
 * fetch failed, so the retry skips it. A failed fetch stops the others, and the first failure is
 * thrown only once every fetch has ended (its temp file removed): nothing is written after the
 * activity is over. Returns the bytes transferred.
 */
async function fetchAll(s3: S3Client, cache: Cache, fetch: RemoteObject[], concurrency: number, w: WorkContext): Promise<number> {
  let transferred = 0;
  let done = 0;
  let lastSave = performance.now();
  const queue = [...fetch];
  const failed = new AbortController();
  const signal = w.signal ? AbortSignal.any([w.signal, failed.signal]) : failed.signal;
  let firstFailure: { error: unknown } | undefined;
  const fetchEach = async () => {
    for (let o = queue.shift(); o && !failed.signal.aborted; o = queue.shift()) {
      stopIfCancelled(w.signal);
      const obj = o;
      const entry = await w.step(`fetch s3://${obj.id}`, async () => fetchObject(s3, obj, await w.resolve(cache.localOf(obj.id)), concurrency, signal));
      cache.manifest.entries[obj.id] = entry;
      transferred += entry.size;
      done++;
      w.heartbeat({ done, of: fetch.length, bytes: transferred });
      if (performance.now() - lastSave > 2_000) {
        lastSave = performance.now();
        await saveManifest(cache.dir, cache.manifest);
      }
    }
  };
  const worker = () =>
    fetchEach().catch((error: unknown) => {
      // The first failure stops the others; theirs (mostly the abort it caused) are not the news.
      if (!failed.signal.aborted) {
        firstFailure = { error };
        failed.abort();
      }
      throw error;
    });
  try {
    const ends = await Promise.allSettled(Array.from({ length: Math.min(concurrency, Math.max(1, fetch.length)) }, worker));
    if (firstFailure) throw firstFailure.error;
    for (const e of ends) if (e.status === 'rejected') throw e.reason;
  } finally {
    await saveManifest(cache.dir, cache.manifest);
  }
  return transferred;
}

/**
 * Syncs `s3://bucket/prefix` into `cacheDir` (as `cacheDir/BUCKET/KEY`): lists the prefix, plans
 * hits, fetches and evictions, fetches what is missing or changed through the verified download, and
 * reports the figures. Idempotent: a retry re-lists and skips what an earlier attempt finished.
 */
export async function syncCache(s3: S3Client, args: SyncCacheArgs, w: WorkContext): Promise<SyncCacheResult> {
  const t0 = performance.now();
  const cache = await openCache(args.cacheDir, w);
  const listing = await w.step(`list s3://${args.bucket}/${args.prefix}`, () => listPrefix(s3, args.bucket, args.prefix, w.signal));
  for (const o of listing) {
    if (!safeRelative(o.id)) throw new TrainctlError(ErrorKind.InvalidInput, `S3 key ${JSON.stringify(o.id)} cannot be a cache path (empty, . or .. segments)`);
  }
  const { hits, fetch, evict, keepBytes } = await planAndEvict(cache, listing, args, w);
  const transferred = await fetchAll(s3, cache, fetch, args.concurrency, w);
  const seconds = (performance.now() - t0) / 1000;
  const result: SyncCacheResult = {
    objects: listing.length,
    hits: hits.length,
    objectsTransferred: fetch.length,
    bytesTransferred: transferred,
    bytes: keepBytes,
    evicted: evict.map((e) => ({ id: e.id, size: e.size })),
    cacheBytes: cachedBytes(cache.manifest),
    ...(args.capacityBytes !== undefined ? { capacityBytes: args.capacityBytes } : {}),
    seconds,
    mibPerSecond: seconds > 0 ? transferred / MiB / seconds : 0,
    localPath: join(cache.dir, args.bucket, ...args.prefix.split('/').filter((seg) => seg !== '')),
  };
  w.info('cache synced', { ...result, evicted: result.evicted.length });
  return result;
}
