/**
 * The error taxonomy (see DESIGN.md, "The error taxonomy").
 *
 * Every failure that leaves an activity is an `ApplicationFailure` whose `type` is an
 * {@link ErrorKind} and whose `nonRetryable` follows from that kind, so workflows branch
 * on the kind and never on message text.
 *
 * This module is imported by workflow code, so it depends on `@temporalio/common` alone: no
 * Node built-ins, no AWS SDK, and none of the AWS code tables (those live in `./aws-codes.ts`
 * and `./classify.ts`, which only activities, the worker and the CLI import).
 *
 * @module
 */
import { ApplicationFailure } from '@temporalio/common';

/** The kinds of failure trainctl distinguishes. Used as `ApplicationFailure.type`. */
export const ErrorKind = {
  Throttled: 'Throttled',
  Transient: 'Transient',
  Conflict: 'Conflict',
  NotFound: 'NotFound',
  AlreadyExists: 'AlreadyExists',
  InvalidInput: 'InvalidInput',
  PermissionDenied: 'PermissionDenied',
  QuotaExceeded: 'QuotaExceeded',
  Integrity: 'Integrity',
  Unknown: 'Unknown',
} as const;

/** One of the {@link ErrorKind} values. */
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

const ALL_KINDS: readonly ErrorKind[] = Object.freeze(Object.values(ErrorKind));

/**
 * Kinds that retrying can fix. `Conflict` is here because the resource's state will
 * change (a volume finishes detaching); `Unknown` is here because the retry policy bounds it.
 */
export const RETRYABLE_KINDS: readonly ErrorKind[] = Object.freeze([ErrorKind.Throttled, ErrorKind.Transient, ErrorKind.Conflict, ErrorKind.Unknown]);

/** Kinds that retrying cannot fix; failures of these kinds are `nonRetryable`. */
export const NON_RETRYABLE_KINDS: readonly ErrorKind[] = Object.freeze([
  ErrorKind.NotFound,
  ErrorKind.AlreadyExists,
  ErrorKind.InvalidInput,
  ErrorKind.PermissionDenied,
  ErrorKind.QuotaExceeded,
  ErrorKind.Integrity,
]);

/** Whether a failure of this kind should be retried by Temporal. */
export function isRetryable(kind: ErrorKind): boolean {
  return !NON_RETRYABLE_KINDS.includes(kind);
}

/** Whether a string is one of the {@link ErrorKind} values. */
export function isErrorKind(value: unknown): value is ErrorKind {
  return typeof value === 'string' && (ALL_KINDS as readonly string[]).includes(value);
}

/**
 * trainctl's own error: carries its kind explicitly, so {@link classify} never guesses.
 *
 * @example
 * throw new TrainctlError(ErrorKind.Integrity, 'part 3 checksum mismatch', { cause: err });
 */
export class TrainctlError extends Error {
  /** The taxonomy kind of this error. */
  readonly kind: ErrorKind;
  /** Structured, non-secret context for logs and callers. */
  readonly details?: unknown;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; details?: unknown }) {
    // Only pass `cause` when given, so `'cause' in err` stays meaningful.
    super(message, options && 'cause' in options ? { cause: options.cause } : undefined);
    this.name = 'TrainctlError';
    this.kind = kind;
    if (options && 'details' in options) this.details = options.details;
  }
}

/**
 * A one-line description of a failure seen by workflow code (an `ActivityFailure`, a child's
 * `ChildWorkflowFailure`, an `ApplicationFailure`): its message, followed by the message of the
 * failure in its `cause` chain that carries a kind. No stack, no secrets; at most 2,000 characters.
 */
export function describeFailure(err: unknown): string {
  const messageOf = (e: unknown): string =>
    typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string' ? (e as { message: string }).message : String(e);
  let source: unknown = err;
  for (let depth = 0; depth <= 5; depth++) {
    if (source instanceof TrainctlError || (source instanceof ApplicationFailure && isErrorKind(source.type))) break;
    const cause = typeof source === 'object' && source !== null ? (source as { cause?: unknown }).cause : undefined;
    if (cause === undefined || cause === source) {
      source = err;
      break;
    }
    source = cause;
  }
  const own = messageOf(err);
  const inner = messageOf(source);
  const text = (source === err || own.includes(inner) ? own : `${own}: ${inner}`).replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return text.length > 2000 ? `${text.slice(0, 1999)}…` : text;
}
