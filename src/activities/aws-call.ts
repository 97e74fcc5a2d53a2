import { Context, ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { ErrorKind } from '../errors/kinds.js';
import { classify, toFailure } from '../errors/classify.js';

/** How long a throttled call waits before its next attempt: longer than Temporal's default backoff. */
export interface ThrottleBackoff {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_THROTTLE_BACKOFF: ThrottleBackoff = { baseMs: 2_000, maxMs: 60_000 };

/** The running activity's cancellation signal, handed to every AWS SDK call as `abortSignal`. */
export function abortSignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/**
 * Runs one step of an activity and turns whatever it throws into an `ApplicationFailure` of the
 * taxonomy. Throttled failures carry `nextRetryDelay` growing with the attempt, so that a throttled
 * API is backed off harder than a transient blip, whatever the workflow's retry policy says.
 */
export async function step<T>(context: string, fn: () => Promise<T>, backoff: ThrottleBackoff = DEFAULT_THROTTLE_BACKOFF): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // A cancellation must leave the activity as it came, or the worker reports a failure instead.
    if (err instanceof ApplicationFailure || err instanceof CancelledFailure || abortSignal()?.aborted) throw err;
    const failure = toFailure(err, context);
    if (classify(err) === ErrorKind.Throttled) {
      let attempt = 1;
      try {
        attempt = Context.current().info.attempt;
      } catch {
        // Not inside an activity (a unit test of the helper): first attempt.
      }
      const delay = Math.min(backoff.maxMs, backoff.baseMs * 2 ** (attempt - 1));
      // Jitter spreads the retries of many throttled workers over time.
      throw ApplicationFailure.create({
        type: failure.type ?? ErrorKind.Throttled,
        message: failure.message,
        nonRetryable: failure.nonRetryable ?? false,
        details: failure.details ?? undefined,
        cause: failure.cause,
        nextRetryDelay: Math.round(delay * (0.75 + Math.random() * 0.5)),
      });
    }
    throw failure;
  }
}
