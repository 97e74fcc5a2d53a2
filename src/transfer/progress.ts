/**
 * Liveness and progress of a running transfer activity: a throttled progress reporter and a
 * periodic heartbeat. Both take their sinks as callbacks, so this module knows nothing of Temporal.
 *
 * @module
 */
import type { TransferProgressUpdate } from '../contracts/transfer.js';
import type { Progress } from './types.js';

/**
 * Counts bytes under `label` and hands `send` an update at most every `intervalMs` (none for work
 * that finishes sooner: a small file costs the workflow no history event).
 */
export function progressReporter(label: string, intervalMs: number, send: (update: TransferProgressUpdate) => void): Progress {
  let bytes = 0;
  let last = Date.now();
  let current = label;
  return {
    add(n: number) {
      bytes += n;
      if (Date.now() - last < intervalMs) return;
      last = Date.now();
      send({ label, bytes, current });
    },
    current(file: string) {
      current = file;
    },
  };
}

/** Heartbeats `details()` now and every `intervalMs` (the SDK throttles what reaches the server) until the returned stop is called. */
export function heartbeatEvery(heartbeat: (details: unknown) => void, details: () => unknown, intervalMs: number): () => void {
  heartbeat(details());
  const t = setInterval(() => heartbeat(details()), intervalMs);
  return () => clearInterval(t);
}
