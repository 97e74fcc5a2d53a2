/**
 * Removing files a transfer is done with on this machine: a sync's extraneous destination files
 * (confined to the destination) and the temp files of unfinished downloads.
 *
 * @module
 */
import { lstat, realpath, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { checkRelativeKey, tempPathFor } from './plan.js';

/**
 * Deletes the files `root/rel`. Each rel is checked (no `..`, absolute, backslash or NUL) and its
 * folder, symlinks resolved, must lie inside `root`; a folder is refused, a symlink is removed
 * itself, never its target. A file already gone counts as deleted. `onDeleted(n)` after each.
 */
export async function deleteFilesUnder(absRoot: string, shownRoot: string, rels: string[], onDeleted: (n: number) => void): Promise<number> {
  const root = await realpath(absRoot);
  let deleted = 0;
  for (const rel of rels) {
    checkRelativeKey(rel);
    const full = join(root, ...rel.split('/'));
    const parent = await realpath(dirname(full)).catch(() => undefined);
    if (parent === undefined) continue;
    const r = relative(root, parent);
    if (r === '..' || r.startsWith(`..${sep}`) || isAbsolute(r))
      throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete ${JSON.stringify(rel)}: its folder leads outside ${shownRoot}`);
    // The real path it listed, or nothing: a folder on the way that is (now) a symlink is refused.
    if (await linkOnTheWay(root, rel))
      throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete ${JSON.stringify(rel)}: a folder on its path is a symlink`);
    const st = await lstat(join(parent, basename(full))).catch(() => undefined);
    if (st?.isDirectory()) throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete ${JSON.stringify(rel)}: it is a folder`);
    await rm(join(parent, basename(full)), { force: true });
    deleted++;
    onDeleted(deleted);
  }
  return deleted;
}

/** Whether a folder between `root` and `rel`'s file is a symlink. */
async function linkOnTheWay(root: string, rel: string): Promise<boolean> {
  const segs = rel.split('/').slice(0, -1);
  let dir = root;
  for (const seg of segs) {
    dir = join(dir, seg);
    const st = await lstat(dir).catch(() => undefined);
    if (st?.isSymbolicLink()) return true;
  }
  return false;
}

/** Removes the temp file (and its sidecar, the sidecar's next record and decoded copy) of an unfinished download to each absolute path; returns how many existed. */
export async function removePartialDownloads(absPaths: string[]): Promise<number> {
  let removed = 0;
  for (const p of absPaths) {
    const tmp = tempPathFor(p);
    if (
      await stat(tmp).then(
        () => true,
        () => false,
      )
    )
      removed++;
    await rm(tmp, { force: true });
    await rm(`${tmp}.json`, { force: true });
    await rm(`${tmp}.decoded`, { force: true });
    await rm(tempPathFor(`${tmp}.json`), { force: true });
  }
  return removed;
}
