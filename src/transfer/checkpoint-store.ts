/**
 * A copy of an activity's checkpoint on this machine's disk, written in order. The server keeps
 * only the heartbeats that got through (at most one per ~80 % of the heartbeat timeout); this keeps
 * every step, for a retry on the same machine after the worker was killed.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openPrivateForWrite, privateDir } from './private-dir.js';

export interface CheckpointStore<T> {
  /** The stored checkpoint, or undefined when there is none (or it cannot be read). */
  read(): Promise<T | undefined>;
  /** Queues a write after the ones before it; resolves when it is on disk. */
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
  const path = () => privateDir('trainctl-transfer-state', parent).then((dir) => join(dir, name));
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
      writes = writes.then(async () => {
        const fh = await openPrivateForWrite(await path());
        try {
          await fh.writeFile(text);
        } finally {
          await fh.close();
        }
      });
      return writes;
    },
    settle,
    async remove(): Promise<void> {
      await settle();
      await rm(await path(), { force: true });
    },
  };
}
