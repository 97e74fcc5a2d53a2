import type { ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_KINDS } from '../errors.js';

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
