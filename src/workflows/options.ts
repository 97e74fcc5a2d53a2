import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_KINDS } from '../errors/kinds.js';
import { hostTaskQueue } from '../contracts/host.js';

/** Failure types the server must not retry: the taxonomy's non-retryable kinds, by name. */
export const nonRetryableErrorTypes: string[] = [...NON_RETRYABLE_KINDS];

/** One AWS API call (or a describe-then-call): short, retried with backoff. */
export const awsCall = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 10,
    nonRetryableErrorTypes,
  },
} as const satisfies ActivityOptions;

/** A heartbeating poll for an AWS state; a missed heartbeat means the worker died, so retry soon. */
export const awsWait = {
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 5,
    nonRetryableErrorTypes,
  },
} as const satisfies ActivityOptions;

/**
 * Work that runs on a training instance's host worker. scheduleToClose bounds the whole thing,
 * retries included: it progresses only while that host is alive, and a host gone for good must
 * not keep the workflow waiting forever. The heartbeat timeout notices a dead host quickly.
 */
export const hostBound = {
  scheduleToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes,
  },
} as const satisfies ActivityOptions;

/**
 * A file transfer activity: long (a 5 GiB file over a slow link), so startToClose is generous,
 * and the heartbeat timeout is what notices a dead worker; the retry resumes from the heartbeated
 * checkpoint, so attempts are cheap and many are allowed. Callers may shorten `heartbeatTimeout`.
 *
 * Retries are bounded by time, not count: a store that throttles or is unavailable for a day is
 * waited out inside the one activity (no history event per attempt; throttled attempts back off up
 * to 10 minutes, see the activities' `TRANSFER_THROTTLE_BACKOFF`), and the file fails only when
 * scheduleToClose passes. Unclassified failures stop after 20 attempts (`MAX_UNKNOWN_ATTEMPTS`).
 */
export const longTransfer = {
  scheduleToCloseTimeout: '48 hours',
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '15 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes,
  },
} as const satisfies ActivityOptions;

/**
 * An AWS call whose cancellation the workflow waits out: it must know whether the call (a
 * CreateVolume) went out before it compensates.
 */
export const awsCallAwaitingCancel = {
  ...awsCall,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
} as const satisfies ActivityOptions;

/** Best-effort bookkeeping (telling the cost tracker): a few attempts, then the workflow goes on without it. */
export const bestEffort = {
  ...awsCall,
  retry: { ...awsCall.retry, maximumAttempts: 3 },
} as const satisfies ActivityOptions;

/**
 * A quick question to a host worker (`checkHost`): no heartbeat; scheduleToClose is how long to
 * wait for a host worker to pick it up, overridden per call with {@link onHost}.
 */
export const hostProbe = {
  scheduleToCloseTimeout: '30 seconds',
  retry: { maximumInterval: '5 seconds', nonRetryableErrorTypes },
} as const satisfies ActivityOptions;

/**
 * `profile` routed to the task queue of host `hostId` (`trainctl-host-ID`), with the timeouts the
 * caller's input sets (how long that host may take, how soon a dead one is noticed) in place of the
 * profile's. Everything else — the retry policy above all — is the profile's.
 */
export function onHost<P extends ActivityOptions>(
  profile: P,
  hostId: string,
  timeouts: Pick<ActivityOptions, 'scheduleToCloseTimeout' | 'heartbeatTimeout'> = {},
): P & { taskQueue: string } {
  return { ...profile, taskQueue: hostTaskQueue(hostId), ...timeouts };
}

/** A read-only sweep of several AWS calls (listing every managed resource of a few regions). */
export const awsSweep = {
  ...awsCall,
  startToCloseTimeout: '5 minutes',
} as const satisfies ActivityOptions;

/**
 * A transfer's file activity on the orchestration worker: {@link longTransfer}, and a cancel waits
 * until the activity has aborted its multipart upload or removed its temp file.
 */
export const localTransfer = {
  ...longTransfer,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
} as const satisfies ActivityOptions;

/**
 * A transfer's file activity on a training instance. Work on a host progresses only while that
 * host is alive: scheduleToClose bounds the whole thing, retries included.
 */
export const hostTransfer = {
  scheduleToCloseTimeout: longTransfer.startToCloseTimeout,
  retry: longTransfer.retry,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
} as const satisfies ActivityOptions;

/** A transfer's short step on the orchestration worker: list, delete, abort, sweep. */
export const transferStep = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { ...longTransfer.retry, maximumAttempts: 10 },
} as const satisfies ActivityOptions;

/** A transfer's short step on a training instance (list its folder, remove temp files): a host that is not up fails this soon. */
export const hostTransferStep = {
  scheduleToCloseTimeout: '10 minutes',
  retry: { ...longTransfer.retry, maximumAttempts: 10 },
} as const satisfies ActivityOptions;

/** `profile` with its heartbeat timeout set to `seconds`: how soon a dead worker is noticed (a transfer request may choose it). */
export function withHeartbeat<P extends ActivityOptions>(profile: P, seconds: number): P & { heartbeatTimeout: string } {
  return { ...profile, heartbeatTimeout: `${seconds} seconds` };
}

/**
 * The training command on its host: as long as training takes (a week at most, retries included:
 * a host gone for good must not keep the run waiting forever); the heartbeat timeout notices a
 * dead host worker, whose restart re-attaches to the still-running program. The workflow waits
 * for a cancel to complete: the program's SIGTERM grace period is part of stopping.
 */
export const trainingOnHost = {
  ...hostBound,
  scheduleToCloseTimeout: '7 days',
  // A host that never picks the attempt up (a reclaimed spot instance) fails the step in minutes, not days.
  scheduleToStartTimeout: '10 minutes',
  heartbeatTimeout: '60 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
} as const satisfies ActivityOptions;
