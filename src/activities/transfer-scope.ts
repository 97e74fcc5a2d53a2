import { ApplicationFailure, Context } from '@temporalio/activity';
import { ErrorKind } from '../errors/kinds.js';
import { progressCounter, withProgress } from '../transfer/progress.js';
import type { RunScope } from '../transfer/types.js';
import { abortSignal, type ThrottleBackoff } from './aws-call.js';

/**
 * The running activity as the transfer engine sees it: its id, last checkpoint, heartbeat, abort
 * signal and progress under `label`. The bytes moved ride on every heartbeat (the engine beats
 * every second; the SDK passes the latest to the server at most every ~80 % of the heartbeat
 * timeout), where `api.transfer.progress` reads them: no signal, no history event.
 */
export function activityScope(label: string): RunScope {
  const ctx = Context.current();
  const info = ctx.info;
  const progress = progressCounter(label);
  return {
    id: `${info.workflowExecution?.workflowId}/${info.activityId}`,
    resume: info.heartbeatDetails,
    heartbeat: (details) => ctx.heartbeat(withProgress(details, progress.snapshot())),
    progress,
    signal: abortSignal(),
  };
}

/** Whether the running activity is being cancelled (or `err` is the SDK's cancellation). */
export function isActivityCancelled(err: unknown): boolean {
  return abortSignal()?.aborted === true || (err instanceof Error && err.name === 'CancelledFailure');
}

/**
 * Attempts after which a transfer activity's unclassified (Unknown) failure stops being retried.
 * Throttled and transient failures are retried until the activity's schedule-to-close timeout (a
 * store away for a day is waited out, one activity, no history events); an error nobody
 * recognises is not worth a day of retries.
 */
export const MAX_UNKNOWN_ATTEMPTS = 20;

/** Store outages back off up to 10 minutes between attempts: a day-long one costs ~150 attempts per file activity, not 1,440. */
export const TRANSFER_THROTTLE_BACKOFF: ThrottleBackoff = { baseMs: 2_000, maxMs: 600_000 };

/** `failure` made non-retryable when it is Unknown and the running activity has had {@link MAX_UNKNOWN_ATTEMPTS} attempts. */
export function boundUnknown(failure: unknown): unknown {
  if (!(failure instanceof ApplicationFailure) || failure.type !== ErrorKind.Unknown || failure.nonRetryable) return failure;
  let attempt = 1;
  try {
    attempt = Context.current().info.attempt;
  } catch {
    // Not inside an activity: the first attempt.
  }
  if (attempt < MAX_UNKNOWN_ATTEMPTS) return failure;
  return ApplicationFailure.create({
    type: failure.type,
    nonRetryable: true,
    message: `${failure.message} (attempt ${attempt}: not retried further)`,
    details: failure.details ?? undefined,
    cause: failure.cause,
  });
}
