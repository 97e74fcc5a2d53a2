/**
 * Pure transfer planning: part sizes, key safety, include/exclude globs, key ↔ path mapping.
 * No Node built-ins: the transfer workflow uses this module too.
 *
 * @module
 */
import { ErrorKind, TrainctlError } from '../errors/kinds.js';

export const MiB = 1024 * 1024;
/** S3's smallest part (all but the last). */
export const MIN_PART_SIZE = 5 * MiB;
/** The smallest part size trainctl picks by itself. */
export const DEFAULT_MIN_PART_SIZE = 8 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;

/**
 * The part size for a file of `size` bytes: `requested` when given (checked against S3's limits),
 * otherwise the smallest whole number of MiB ≥ 8 MiB that keeps the file within 10,000 parts.
 */
export function planPartSize(size: number, requested?: number): number {
  if (size > MAX_OBJECT_SIZE) throw new TrainctlError(ErrorKind.InvalidInput, `a ${size}-byte file is larger than S3's 5 TiB object limit`);
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < MIN_PART_SIZE || requested > MAX_PART_SIZE) {
      throw new TrainctlError(ErrorKind.InvalidInput, `part size ${requested} must be a whole number of bytes between 5 MiB and 5 GiB`);
    }
    if (partCount(size, requested) > MAX_PARTS) {
      throw new TrainctlError(ErrorKind.InvalidInput, `part size ${requested} would split a ${size}-byte file into more than ${MAX_PARTS} parts`);
    }
    return requested;
  }
  const needed = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  return Math.max(DEFAULT_MIN_PART_SIZE, needed);
}

/** Number of parts of `partSize` in `size` bytes (0 for an empty file). */
export function partCount(size: number, partSize: number): number {
  return Math.ceil(size / partSize);
}

/** Byte range [start, end) of part `n` (1-based). */
export function partRange(size: number, partSize: number, n: number): { start: number; end: number } {
  const start = (n - 1) * partSize;
  return { start, end: Math.min(size, start + partSize) };
}

/**
 * Refuses a relative key or path that could land outside the destination root: `..` segments,
 * absolute paths, backslashes (a separator on Windows), NUL, empty or `.` segments.
 * Throws a TrainctlError of kind InvalidInput naming the offender.
 */
export function checkRelativeKey(rel: string): void {
  const refuse = (why: string) => {
    throw new TrainctlError(ErrorKind.InvalidInput, `refusing key ${JSON.stringify(rel)}: ${why}`);
  };
  if (rel === '') refuse('it is empty');
  if (rel.includes('\0')) refuse('it contains a NUL byte');
  if (rel.includes('\\')) refuse('it contains a backslash');
  if (rel.startsWith('/') || /^[A-Za-z]:/.test(rel)) refuse('it is an absolute path');
  for (const seg of rel.split('/')) {
    if (seg === '..') refuse('it contains a .. segment');
    if (seg === '.' || seg === '') refuse('it contains an empty or . segment');
  }
}

/** A glob as a regular expression: `**` crosses folders, `*` and `?` do not. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** A glob without `/` matches a file's name anywhere; one with `/` matches the whole relative path. */
export function globMatches(glob: string, rel: string): boolean {
  const re = globToRegExp(glob);
  if (glob.includes('/')) return re.test(rel);
  return re.test(rel) || re.test(rel.slice(rel.lastIndexOf('/') + 1));
}

/** Whether `rel` passes the filters: any include (when there are some), and no exclude. */
export function selected(rel: string, include: readonly string[], exclude: readonly string[]): boolean {
  if (include.length > 0 && !include.some((g) => globMatches(g, rel))) return false;
  return !exclude.some((g) => globMatches(g, rel));
}

/** `s3://bucket/prefix` → its parts. */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (!m || !m[1]) throw new TrainctlError(ErrorKind.InvalidInput, `${JSON.stringify(uri)} is not an s3://BUCKET/PREFIX uri`);
  return { bucket: m[1], prefix: m[2] ?? '' };
}

export function baseName(p: string): string {
  const trimmed = p.endsWith('/') ? p.slice(0, -1) : p;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Joins a folder path (or key prefix) and a relative path with exactly one `/`. */
export function joinPath(dir: string, rel: string): string {
  if (dir === '') return rel;
  return dir.endsWith('/') ? `${dir}${rel}` : `${dir}/${rel}`;
}

/**
 * The key a source file lands at. A tree's files keep their relative path under the prefix; a
 * single file lands at the prefix itself, or under it with its own name when the prefix is empty
 * or ends with `/`.
 */
export function destinationKey(prefix: string, rel: string, single: boolean): string {
  if (single && prefix !== '' && !prefix.endsWith('/')) return prefix;
  return joinPath(prefix, rel);
}

/** The local (or host) path a file lands at, by the same rule as {@link destinationKey}. */
export function destinationPath(dir: string, rel: string, single: boolean): string {
  if (single && !dir.endsWith('/')) return dir;
  return joinPath(dir, rel);
}

/** The temp file a download writes before it is verified and renamed into place. */
export function tempPathFor(path: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.trainctl-partial`;
}
