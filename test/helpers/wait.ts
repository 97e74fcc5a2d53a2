import { AssertionError } from 'node:assert';
import { setTimeout as delay } from 'node:timers/promises';

/** What a probe returns while the condition does not hold yet. */
type NotYet = undefined | null | false;

export interface WaitOptions {
  /** What the test waits for, as the failure message will say it: "timed out after N ms waiting for WHAT". */
  what: string;
  timeoutMs: number;
  /** The pause between two probes (the only sleep a waiting test needs). Default 250 ms. */
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns something other than undefined, null or false, and returns that.
 * Fails after `timeoutMs` naming `what` and the probe's last error, if it threw (a query to a worker
 * that is not up yet throws). An `AssertionError` from the probe fails the wait at once: it says the
 * condition can no longer come true (the run ended, say), so waiting out the deadline would only hide it.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, opts: WaitOptions): Promise<Exclude<T, NotYet>> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value as Exclude<T, NotYet>;
    } catch (err) {
      if (err instanceof AssertionError) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${why}`);
    }
    await delay(opts.intervalMs ?? 250);
  }
}
