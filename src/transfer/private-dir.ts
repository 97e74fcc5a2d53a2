/**
 * Per-user state and temp folders. A folder under the shared temp directory is named for the user
 * (`NAME-UID`), created mode 0700, and checked whenever it is opened (a checkpoint store opens it
 * once): a real folder (not a symlink), owned by this user, closed to everyone else. Another local user who created the name first, or
 * planted a link there, gets a refusal, not this worker's checkpoints. Files inside are opened
 * without following symlinks.
 *
 * @module
 */
import { constants as fsc } from 'node:fs';
import { chmod, lstat, mkdir, open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';

/** Open flags that write a file from the start, never through a symlink. */
export const WRITE_NOFOLLOW = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW;

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : -1;
}

/**
 * The private folder `NAME-UID` under `parent` (the OS temp folder by default), created if absent.
 * Throws PermissionDenied when it is a symlink or not a folder, or another user owns it; narrows
 * its mode to 0700 when this user owns it with a wider one.
 */
export async function privateDir(name: string, parent: string = tmpdir()): Promise<string> {
  const me = uid();
  const dir = join(parent, me >= 0 ? `${name}-${me}` : name);
  await mkdir(dir, { mode: 0o700 }).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  });
  const st = await lstat(dir);
  if (st.isSymbolicLink() || !st.isDirectory())
    throw new TrainctlError(ErrorKind.PermissionDenied, `refusing state folder ${dir}: it is ${st.isSymbolicLink() ? 'a symlink' : 'not a folder'}`);
  if (me >= 0 && st.uid !== me) throw new TrainctlError(ErrorKind.PermissionDenied, `refusing state folder ${dir}: it belongs to uid ${st.uid}, not ${me}`);
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
  return dir;
}

/** Opens `path` for writing from the start (mode 0600), refusing to follow a symlink planted there. */
export function openPrivateForWrite(path: string): Promise<FileHandle> {
  return open(path, WRITE_NOFOLLOW, 0o600);
}
