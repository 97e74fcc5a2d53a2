/**
 * A copy of an activity's checkpoint on this machine's disk, written in order. The server keeps
 * only the heartbeats that got through (at most one per ~80 % of the heartbeat timeout); this keeps
 * every step, for a retry on the same machine after the worker was killed.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openPrivateForWrite, privateDir } from './private-dir.js';

export interface CheckpointStore<T> {
  /** The stored checkpoint, or undefined when there is none (or it cannot be read). */
  read(): Promise<T | undefined>;
  /** Queues a write after the ones before it (whatever their outcome); resolves when it is on disk. */
  save(value: T): Promise<void>;
  /** Waits for the queued writes, whatever their outcome. */
  settle(): Promise<void>;
  /** Waits for the queued writes, then deletes the file. */
  remove(): Promise<void>;
}

/** Reads a file without following a symlink; undefined when it is absent, a link, or unreadable. */
async function readNoFollow(path: string): Promise<string | undefined> {
  try {
    const fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      return await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * The store named by `id` (any string; hashed into a file name under this user's private state
 * folder, `trainctl-transfer-state-UID`, mode 0700 and owner-checked; files never written through a link).
 */
export function checkpointStore<T>(id: string, parent?: string): CheckpointStore<T> {
  const name = `${createHash('sha256').update(id).digest('hex')}.json`;
  // The folder is checked on the store's first use, not again on each write of the same activity.
  let where: Promise<string> | undefined;
  const path = () =>
    (where ??= privateDir('trainctl-transfer-state', parent).then(
      (dir) => join(dir, name),
      (err: unknown) => {
        where = undefined;
        throw err;
      },
    ));
  let writes = Promise.resolve();
  const settle = () => writes.catch(() => undefined);
  return {
    read: async () => {
      const text = await readNoFollow(await path());
      if (text === undefined) return undefined;
      try {
        return JSON.parse(text) as T;
      } catch {
        return undefined;
      }
    },
    save(value: T): Promise<void> {
      const text = JSON.stringify(value);
      // Written beside and renamed over: a SIGKILL mid-write leaves the last whole record, never a
      // torn one (read as none, it would lose a multipart upload's id and every finished part).
      const write = async () => {
        const file = await path();
        try {
          const fh = await openPrivateForWrite(`${file}.next`);
          try {
            await fh.writeFile(text);
          } finally {
            await fh.close();
          }
          await rename(`${file}.next`, file);
        } catch (err) {
          await rm(`${file}.next`, { force: true }).catch(() => undefined);
          throw err;
        }
      };
      writes = settle().then(() =>
        write().catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          // The folder went (a temp cleaner): made and checked again, then written once more.
          where = undefined;
          return write();
        }),
      );
      return writes;
    },
    settle,
    async remove(): Promise<void> {
      await settle();
      const file = await path();
      await rm(file, { force: true });
      await rm(`${file}.next`, { force: true });
    },
  };
}
