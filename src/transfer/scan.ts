/**
 * Lists a local (or host) file or folder tree for a transfer: relative paths and sizes, filtered
 * by include/exclude globs, symlinks leaving the root skipped unless followed. Read-only.
 *
 * @module
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { checkEncoding, type Encoding } from './compress.js';
import { baseName, checkRelativeKey, selected } from './plan.js';
import { checkListingSize } from './listing-size.js';
import { pageOf } from './pages.js';

export interface ScanInput {
  path: string;
  include: string[];
  exclude: string[];
  followSymlinks: boolean;
  /** A path that does not exist is an empty folder (listing a destination), not NotFound. */
  missingOk?: boolean;
  /**
   * A destination scan: never descend into a symlinked folder (the link is recorded in
   * `skippedSymlinks`, never a path to its target), so nothing reached through a link is listed
   * for deletion.
   */
  noSymlinkDescent?: boolean;
  /** The compression the upload will use: refused here (InvalidInput) when this Node cannot do it. */
  compress?: Encoding;
  /** A page of a paged transfer: the files after this path (in `compareRel` order). */
  after?: string;
  /** At most this many files; `next` says where the next page starts. */
  maxFiles?: number;
}

export interface ScanResult {
  /** The path is one file (its name is the only entry's `rel`), not a folder. */
  single: boolean;
  files: { rel: string; size: number }[];
  skippedSymlinks: string[];
  /** The last file of this page, when more follow (a paged scan only). */
  next?: string;
}

export interface ScanDeps {
  /** Turns a path into an absolute one this worker may touch. */
  resolvePath(path: string): Promise<string>;
  /** Called once per folder entered, with the files found so far. */
  heartbeat(filesSoFar: number): void;
}

/** Whether `p` (absolute) lies inside `root`. */
function isInside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r);
}

/** Scans `input.path`: one file, or every regular file of a folder tree in name order. */
export async function scanTree(input: ScanInput, deps: ScanDeps): Promise<ScanResult> {
  if (input.compress) checkEncoding(input.compress);
  const root = await deps.resolvePath(input.path);
  const rootStat = await stat(root).catch((err: unknown) => {
    if (input.missingOk && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  });
  if (!rootStat) return { single: false, files: [], skippedSymlinks: [] };
  if (rootStat.isFile()) {
    const rel = baseName(root);
    checkRelativeKey(rel);
    return { single: true, files: selected(rel, input.include, input.exclude) ? [{ rel, size: rootStat.size }] : [], skippedSymlinks: [] };
  }
  if (!rootStat.isDirectory()) throw new TrainctlError(ErrorKind.InvalidInput, `${input.path} is neither a file nor a folder`);
  const walker = new TreeWalker(input, deps, await realpath(root));
  await walker.walk(root, '');
  // Every key of the tree is checked above, on every page; the size bound is a page's.
  const page = pageOf(walker.files, input.after, input.maxFiles);
  checkListingSize(page.files, input.path);
  // Later pages do not repeat the skipped links: the first page reported them.
  const skippedSymlinks = input.after === undefined ? walker.skippedSymlinks : [];
  return { single: false, files: page.files, skippedSymlinks, ...(page.next !== undefined ? { next: page.next } : {}) };
}

class TreeWalker {
  readonly files: { rel: string; size: number }[] = [];
  readonly skippedSymlinks: string[] = [];
  private readonly seen: Set<string>;

  constructor(
    private readonly input: ScanInput,
    private readonly deps: ScanDeps,
    private readonly realRoot: string,
  ) {
    this.seen = new Set([realRoot]);
  }

  async walk(dir: string, prefix: string): Promise<void> {
    this.deps.heartbeat(this.files.length);
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
      const target = e.isSymbolicLink() ? await this.symlinkTarget(join(dir, e.name), rel) : join(dir, e.name);
      if (target === undefined) continue;
      const s = await stat(target);
      if (s.isDirectory() && e.isSymbolicLink() && this.input.noSymlinkDescent) {
        this.skippedSymlinks.push(rel);
        continue;
      }
      if (s.isDirectory()) {
        const real = await realpath(target);
        if (this.seen.has(real)) continue;
        this.seen.add(real);
        await this.walk(target, rel);
      } else if (s.isFile() && selected(rel, this.input.include, this.input.exclude)) {
        checkRelativeKey(rel);
        this.files.push({ rel, size: s.size });
      }
    }
  }

  /** Where a symlink leads, or undefined (recorded as skipped) when it dangles or leaves the root unfollowed. */
  private async symlinkTarget(full: string, rel: string): Promise<string | undefined> {
    const real = await realpath(full).catch(() => undefined);
    if (real === undefined || (!isInside(this.realRoot, real) && !this.input.followSymlinks)) {
      this.skippedSymlinks.push(rel);
      return undefined;
    }
    return this.deps.resolvePath(real);
  }
}
