import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep, dirname, basename } from 'node:path';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import type { S3For } from '../aws/profiles.js';

/**
 * File access confined to a host's roots: every path an activity receives on a training instance
 * is resolved here, symlinks included, and refused if it lands outside every root.
 */
export interface HostFs {
  readonly roots: readonly string[];
  /** Roots that are a device or a file (a host may prewarm `--root /dev/nvme1n1`): read, never downloaded onto. */
  readonly fileRoots: readonly string[];
  /** The absolute, symlink-resolved path for `path` (relative paths are relative to the first root). */
  resolve(path: string): Promise<string>;
}

/** What a host worker's activities are built from: who the host is, its confined files, its S3 clients. */
export interface HostDeps {
  hostId: string;
  fs: HostFs;
  /** S3 client for a region, for data the host pulls or pushes itself. */
  s3: S3For;
}

async function realpathOfExistingPrefix(p: string): Promise<string> {
  // The target may not exist yet (a download destination): resolve the deepest existing parent.
  try {
    return await realpath(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const parent = dirname(p);
    if (parent === p) return p;
    return join(await realpathOfExistingPrefix(parent), basename(p));
  }
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Confinement to `roots`: each must exist (a worker's must be folders; a host's may be a device or
 * a file, which prewarm reads but no download lands on); a path is resolved through every symlink
 * of its existing part and refused, with a message naming the roots, when it lands outside all of
 * them. `who` names the worker in messages ("host", "worker").
 */
export async function createConfinedFs(roots: readonly string[], who: string, flag: string, foldersOnly = true): Promise<HostFs> {
  if (roots.length === 0) throw new TrainctlError(ErrorKind.InvalidInput, `a ${who} worker needs at least one ${flag} folder`);
  const fileRoots: string[] = [];
  const real = await Promise.all(
    roots.map(async (r) => {
      const abs = await realpath(resolve(r)).catch((err: unknown) => {
        throw new TrainctlError(ErrorKind.InvalidInput, `${flag} ${r}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
      });
      if (!(await stat(abs)).isDirectory()) {
        if (foldersOnly) throw new TrainctlError(ErrorKind.InvalidInput, `${flag} ${r} is not a folder (a root must be a folder, never a device or a file)`);
        fileRoots.push(abs);
      }
      return abs;
    }),
  );
  return {
    roots: real,
    fileRoots,
    async resolve(path: string) {
      if (path.includes('\0')) throw new TrainctlError(ErrorKind.InvalidInput, `path ${JSON.stringify(path)} contains a NUL byte`);
      const first = real[0] ?? '/';
      const abs = await realpathOfExistingPrefix(isAbsolute(path) ? resolve(path) : resolve(first, path));
      if (!real.some((r) => inside(r, abs))) {
        throw new TrainctlError(ErrorKind.InvalidInput, `path ${path} is outside this ${who}'s roots (${real.join(', ')})`);
      }
      return abs;
    },
  };
}

/** A host worker's confinement: see {@link createConfinedFs}. */
export function createHostFs(roots: string[]): Promise<HostFs> {
  return createConfinedFs(roots, 'host', '--root', false);
}

/**
 * The orchestration worker's confinement, built on first use (activities are created
 * synchronously): `--root` / `TRAINCTL_LOCAL_ROOTS`, default the folder the worker started in.
 */
export function lazyWorkerFs(roots: readonly string[] | undefined): (path: string) => Promise<string> {
  let fs: Promise<HostFs> | undefined;
  return async (path) => (await (fs ??= createConfinedFs(roots ?? [process.cwd()], 'worker', '--root'))).resolve(path);
}
