/**
 * The verified download's file discipline: temp files opened without following a link, a
 * destination that must be a regular file, and the bounded pool its ranges run in.
 *
 * @module
 */
import { constants as fsc } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';

/**
 * Temp files, sidecars and decoded copies are opened without following a symlink: a local user who
 * plants `.NAME.trainctl-partial` as a link cannot make the download write through it.
 */
export const NOFOLLOW_WRITE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW;
export const NOFOLLOW_CREATE = fsc.O_RDWR | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW;
export const NOFOLLOW_UPDATE = fsc.O_RDWR | fsc.O_NOFOLLOW;

/** Refuses a destination that exists as anything but a regular file or a link (a device, a folder, a FIFO). */
export async function checkDestination(path: string, label: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st && !st.isFile() && !st.isSymbolicLink())
    throw new TrainctlError(ErrorKind.InvalidInput, `${label}: refusing to download onto ${path}: it is not a regular file`);
}

export async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Runs `fn` over `items`, `concurrency` at a time; stops starting new ones after the first failure, which it rethrows. */
export async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const run = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, run));
  if (failed !== undefined) throw failed;
}
