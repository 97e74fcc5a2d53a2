/**
 * The local cache's bookkeeping, kept apart from how objects are fetched (the transfer engine's
 * verified download, src/transfer/download.ts): which objects are cached with what size and
 * checksum, which a sync must fetch, and which least-recently-used entries to evict to stay under a capacity. Pure functions.
 *
 * @module
 */
import { z } from 'zod';

/**
 * Whether `id` can name a file under the cache folder: `BUCKET/KEY` with no empty, `.` or `..`
 * segment, no leading `/`, backslash or NUL — checked like a transfer's keys, because the manifest
 * is a file on the host that anyone who can write the cache folder can edit, and evictions delete
 * what it names.
 */
export function isCacheId(id: string): boolean {
  if (id === '' || id.startsWith('/') || id.includes('\0') || id.includes('\\') || !id.includes('/')) return false;
  return id.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

export const CacheEntrySchema = z.object({
  /** `BUCKET/KEY`: the cache may hold several prefixes of several buckets. */
  id: z.string().min(1).refine(isCacheId, 'must be BUCKET/KEY with no empty, . or .. segments'),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** S3's ETag when fetched: a changed object has another one. */
  etag: z.string(),
  /** Milliseconds since the epoch of the last sync that used it. */
  lastUsed: z.number().int().nonnegative(),
});
export type CacheEntry = z.infer<typeof CacheEntrySchema>;

export const CacheManifestSchema = z
  .object({
    version: z.literal(1),
    entries: z.record(z.string(), CacheEntrySchema),
  })
  .refine((m) => Object.entries(m.entries).every(([k, e]) => k === e.id), 'every entry must be filed under its own id');
export type CacheManifest = z.infer<typeof CacheManifestSchema>;

export const MANIFEST_FILE = '.trainctl-cache.json';

export function emptyManifest(): CacheManifest {
  return { version: 1, entries: {} };
}

/** Parses a manifest file's text; a missing or unreadable manifest is an empty cache (everything is fetched again). */
export function parseManifest(text: string | undefined): { manifest: CacheManifest; problem?: string } {
  if (text === undefined) return { manifest: emptyManifest() };
  try {
    const parsed = CacheManifestSchema.safeParse(JSON.parse(text));
    if (parsed.success) return { manifest: parsed.data };
    return { manifest: emptyManifest(), problem: parsed.error.issues[0]?.message ?? 'invalid manifest' };
  } catch (err) {
    return { manifest: emptyManifest(), problem: err instanceof Error ? err.message : String(err) };
  }
}

export interface RemoteObject {
  id: string;
  size: number;
  etag: string;
}

export function cachedBytes(m: CacheManifest): number {
  return Object.values(m.entries).reduce((sum, e) => sum + e.size, 0);
}

/**
 * What a sync of `listing` must do: objects whose cached entry has the same size and ETag (and whose
 * file is still there, as `present` says) are hits; the rest are fetched.
 */
export function planSync(
  m: CacheManifest,
  listing: readonly RemoteObject[],
  present: (id: string, size: number) => boolean,
): { hits: RemoteObject[]; fetch: RemoteObject[] } {
  const hits: RemoteObject[] = [];
  const fetch: RemoteObject[] = [];
  for (const o of listing) {
    const e = m.entries[o.id];
    if (e && e.size === o.size && e.etag === o.etag && present(o.id, o.size)) hits.push(o);
    else fetch.push(o);
  }
  return { hits, fetch };
}

/**
 * Least-recently-used eviction: with the objects in `keep` (this sync's) in the cache, which other
 * entries must go, oldest `lastUsed` first (ties by id, so the choice is stable), so that the total
 * stays at most `capacity`. `fits` is false when `keep` alone exceeds it.
 */
export function planEviction(
  m: CacheManifest,
  keep: readonly RemoteObject[],
  capacity: number | undefined,
): { evict: CacheEntry[]; fits: boolean; keepBytes: number } {
  const keepIds = new Set(keep.map((o) => o.id));
  const keepBytes = keep.reduce((sum, o) => sum + o.size, 0);
  if (capacity === undefined) return { evict: [], fits: true, keepBytes };
  if (keepBytes > capacity) return { evict: [], fits: false, keepBytes };
  const others = Object.values(m.entries)
    .filter((e) => !keepIds.has(e.id))
    .sort((a, b) => a.lastUsed - b.lastUsed || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let total = keepBytes + others.reduce((sum, e) => sum + e.size, 0);
  const evict: CacheEntry[] = [];
  for (const e of others) {
    if (total <= capacity) break;
    evict.push(e);
    total -= e.size;
  }
  return { evict, fits: true, keepBytes };
}
