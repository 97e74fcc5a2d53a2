/**
 * A copy of an activity's checkpoint on this machine's disk, written in order. The server keeps
 * only the heartbeats that got through (at most one per ~80 % of the heartbeat timeout); this keeps
 * every step, for a retry on the same machine after the worker was killed.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

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

/** The store named by `id` (any string; hashed into a file name under the temp folder). */
export function checkpointStore<T>(id: string): CheckpointStore<T> {
  const name = createHash('sha256').update(id).digest('hex');
  const path = join(tmpdir(), 'trainctl-transfer-state', `${name}.json`);
  let writes = Promise.resolve();
  const settle = () => writes.catch(() => undefined);
  return {
    read: () =>
      readFile(path, 'utf8').then(
        (t) => JSON.parse(t) as T,
        () => undefined,
      ),
    save(value: T): Promise<void> {
      const text = JSON.stringify(value);
      writes = writes.then(async () => {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, text);
      });
      return writes;
    },
    settle,
    async remove(): Promise<void> {
      await settle();
      await rm(path, { force: true });
    },
  };
}
