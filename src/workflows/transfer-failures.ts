import { ActivityFailure, ApplicationFailure, isCancellation } from '@temporalio/workflow';
import { ErrorKind } from '../errors/kinds.js';
import { unitLabel, type Job } from '../transfer/legs.js';

/** A planning step's failure as the workflow's own, keeping its kind (InvalidInput for a bad key). */
export function planFailure(err: unknown): unknown {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    return ApplicationFailure.create({
      type: err.cause.type ?? ErrorKind.Unknown,
      nonRetryable: true,
      message: `planning failed: ${err.cause.message}`,
      cause: err,
    });
  }
  return err;
}

/** The file's failure, keeping its kind, with the file named; cancellation passes through. */
export function fileFailure(unit: Job[], err: unknown): unknown {
  const job = unit[0] as Job;
  if (isCancellation(err)) return err;
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    const cause = err.cause;
    return ApplicationFailure.create({
      type: cause.type ?? ErrorKind.Unknown,
      nonRetryable: true,
      // The activity's message already says which file and what it was doing.
      message: cause.message,
      cause: err,
      details: [{ kind: cause.type, ...(unit.length === 1 ? { file: job.label } : { batch: `${unit.length} files from ${job.label}` }) }],
    });
  }
  if (err instanceof ActivityFailure) {
    return ApplicationFailure.create({
      type: ErrorKind.Unknown,
      nonRetryable: true,
      message: `${job.kind} of ${unitLabel(unit)} failed: ${err.cause?.message ?? err.message}`,
      cause: err,
    });
  }
  return err;
}
