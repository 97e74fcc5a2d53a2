/**
 * Liveness and progress of a running transfer activity: a progress counter and a periodic
 * heartbeat. Both take their sinks as callbacks, so this module knows nothing of Temporal.
 *
 * @module
 */
import type { TransferProgressUpdate } from '../contracts/transfer.js';
import type { Progress } from './types.js';

/**
 * Counts bytes under `label`. The count travels in the activity's heartbeat details (see
 * `withProgress`), which the server keeps as the activity's latest state: progress costs the
 * workflow's history no event, however long the transfer runs.
 */
export function progressCounter(label: string): Progress & { snapshot(): TransferProgressUpdate } {
  let bytes = 0;
  let current = label;
  return {
    add(n: number) {
      bytes += n;
    },
    current(file: string) {
      current = file;
    },
    snapshot: () => ({ label, bytes, current }),
  };
}

/** Heartbeat details with the activity's progress beside its checkpoint (`progress`, which no checkpoint reader looks at). */
export function withProgress(details: unknown, progress: TransferProgressUpdate): unknown {
  return details !== null && typeof details === 'object' && !Array.isArray(details) ? { ...details, progress } : { checkpoint: details, progress };
}

/** Heartbeats `details()` now and every `intervalMs` (the SDK throttles what reaches the server) until the returned stop is called. */
export function heartbeatEvery(heartbeat: (details: unknown) => void, details: () => unknown, intervalMs: number): () => void {
  heartbeat(details());
  const t = setInterval(() => heartbeat(details()), intervalMs);
  return () => clearInterval(t);
}
