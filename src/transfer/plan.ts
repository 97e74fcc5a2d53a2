/**
 * Pure transfer planning: part sizes, key safety, include/exclude globs, key ↔ path mapping.
 * No Node built-ins: the transfer workflow uses this module too.
 *
 * @module
 */
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { parseS3Location, type S3Location } from '../contracts/common.js';

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

/** Brace alternatives a glob may expand to; more is refused (a pattern cannot make a worker do unbounded work). */
export const MAX_GLOB_EXPANSIONS = 256;
/** The longest glob accepted. */
export const MAX_GLOB_LENGTH = 1_024;

/** One step of a compiled glob: a literal character, `?`, `*`, `**`, or the two states of `**` followed by `/`. */
type GlobToken = { t: 'lit'; c: string } | { t: 'one' } | { t: 'star' } | { t: 'any' } | { t: 'dirsStart' } | { t: 'dirsBody' };

/** `a{b,c}d` → `abd`, `acd` (nested braces too); a brace without a comma stays literal. Bounded by {@link MAX_GLOB_EXPANSIONS}. */
export function expandBraces(glob: string): string[] {
  const open = glob.indexOf('{');
  if (open < 0) return [glob];
  let depth = 0;
  const commas: number[] = [];
  let close = -1;
  for (let i = open; i < glob.length; i++) {
    const c = glob[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      close = i;
      break;
    } else if (c === ',' && depth === 1) commas.push(i);
  }
  if (close < 0) return [glob];
  const head = glob.slice(0, open);
  const tails = expandBraces(glob.slice(close + 1));
  if (commas.length === 0) return tails.map((t) => `${head}{${glob.slice(open + 1, close)}}${t}`);
  const bounds = [open, ...commas, close];
  const out: string[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    for (const alt of expandBraces(glob.slice((bounds[k] as number) + 1, bounds[k + 1]))) {
      for (const t of tails) {
        out.push(`${head}${alt}${t}`);
        if (out.length > MAX_GLOB_EXPANSIONS)
          throw new TrainctlError(ErrorKind.InvalidInput, `glob ${JSON.stringify(glob.slice(0, 80))} expands to more than ${MAX_GLOB_EXPANSIONS} alternatives`);
      }
    }
  }
  return out;
}

function compileGlob(glob: string): GlobToken[] {
  const out: GlobToken[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          out.push({ t: 'dirsStart' }, { t: 'dirsBody' });
        } else {
          out.push({ t: 'any' });
          while (glob[i + 1] === '*') i++;
        }
      } else {
        // `**` handled above; consecutive single stars are one star.
        if (out.at(-1)?.t !== 'star') out.push({ t: 'star' });
      }
    } else if (c === '?') out.push({ t: 'one' });
    else out.push({ t: 'lit', c });
  }
  return out;
}

/**
 * Whether `text` matches the compiled glob: a simulation of the glob's automaton over every state at
 * once, O(text × glob) whatever the pattern (a backtracking regular expression is exponential on
 * `*a*a*a…b`). `**` followed by `/` is any run of whole folders (possibly none), `**` any run, `*` a run without `/`, `?` one non-`/`.
 */
function matchTokens(tokens: GlobToken[], text: string): boolean {
  const n = tokens.length;
  let cur = new Uint8Array(n + 1);
  let next = new Uint8Array(n + 1);
  const close = (set: Uint8Array) => {
    for (let i = 0; i < n; i++) {
      if (!set[i]) continue;
      const t = (tokens[i] as GlobToken).t;
      if (t === 'star' || t === 'any') set[i + 1] = 1;
      else if (t === 'dirsStart') set[i + 2] = 1;
    }
  };
  cur[0] = 1;
  close(cur);
  for (let p = 0; p < text.length; p++) {
    const ch = text[p] as string;
    next.fill(0);
    let any = false;
    for (let i = 0; i < n; i++) {
      if (!cur[i]) continue;
      const tok = tokens[i] as GlobToken;
      switch (tok.t) {
        case 'lit':
          if (tok.c === ch) next[i + 1] = 1;
          break;
        case 'one':
          if (ch !== '/') next[i + 1] = 1;
          break;
        case 'star':
          if (ch !== '/') next[i] = 1;
          break;
        case 'any':
          next[i] = 1;
          break;
        case 'dirsStart':
        case 'dirsBody': {
          const body = tok.t === 'dirsStart' ? i + 1 : i;
          next[body] = 1;
          if (ch === '/') next[body + 1] = 1;
          break;
        }
      }
    }
    close(next);
    for (let i = 0; i <= n; i++) if (next[i]) any = true;
    if (!any) return false;
    [cur, next] = [next, cur];
  }
  return cur[n] === 1;
}

/** A compiled glob (brace sets expanded), matched in linear time. */
export interface Glob {
  test(text: string): boolean;
}

const compiled = new Map<string, Glob>();

/** Compiles `glob`: `**` crosses folders, `*` and `?` do not, `{a,b}` is a set. Throws InvalidInput for an unbounded pattern. */
export function compileGlobPattern(glob: string): Glob {
  const hit = compiled.get(glob);
  if (hit) return hit;
  if (glob.length > MAX_GLOB_LENGTH) throw new TrainctlError(ErrorKind.InvalidInput, `a glob is longer than ${MAX_GLOB_LENGTH} characters`);
  const alts = expandBraces(glob).map(compileGlob);
  const g: Glob = { test: (text) => alts.some((a) => matchTokens(a, text)) };
  if (compiled.size > 1_000) compiled.clear();
  compiled.set(glob, g);
  return g;
}

/** A glob without `/` matches a file's name anywhere; one with `/` matches the whole relative path. */
export function globMatches(glob: string, rel: string): boolean {
  const g = compileGlobPattern(glob);
  if (glob.includes('/')) return g.test(rel);
  return g.test(rel) || g.test(rel.slice(rel.lastIndexOf('/') + 1));
}

/** Whether `rel` passes the filters: any include (when there are some), and no exclude. */
export function selected(rel: string, include: readonly string[], exclude: readonly string[]): boolean {
  if (include.length > 0 && !include.some((g) => globMatches(g, rel))) return false;
  return !exclude.some((g) => globMatches(g, rel));
}

/** `s3://[PROFILE@]bucket/prefix` → its parts (the profile only when the uri names one). */
export function parseS3Uri(uri: string): S3Location {
  const loc = parseS3Location(uri);
  if (!loc) throw new TrainctlError(ErrorKind.InvalidInput, `${JSON.stringify(uri)} is not an s3://[PROFILE@]BUCKET/PREFIX uri`);
  return loc;
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
