/**
 * Classifies and describes any thrown value (AWS SDK v3, Node, zod, Temporal failures, trainctl's
 * own) by the taxonomy in `./kinds.ts`, and converts it to the `ApplicationFailure` an activity throws.
 *
 * @module
 */
import { ApplicationFailure } from '@temporalio/common';
import { ZodError, core as zodCore } from 'zod';
import { ErrorKind, TrainctlError, isErrorKind, isRetryable } from './kinds.js';
import { NODE_CODE_KINDS, kindFromAwsCode, GENERIC_NAMES } from './aws-codes.js';

type Bag = Record<string, unknown>;

function isObject(value: unknown): value is Bag {
  return typeof value === 'object' && value !== null;
}

function stringProp(obj: Bag, key: string): string | undefined {
  const v = obj[key];
  return typeof v === 'string' ? v : undefined;
}

function isGenericName(name: string): boolean {
  return GENERIC_NAMES.has(name) || name.endsWith('ServiceException');
}

/**
 * Looks like an AWS SDK v3 service error (`ServiceException` or the SDK's decorated `Error`).
 * A bare `$metadata` is not enough: the SDK also stamps `{ attempts }` on network errors.
 */
function isAwsShaped(err: Bag): boolean {
  const fault = err['$fault'];
  return fault === 'client' || fault === 'server' || httpStatusOf(err) !== undefined;
}

function httpStatusOf(err: Bag): number | undefined {
  const meta = err['$metadata'];
  if (!isObject(meta)) return undefined;
  const status = meta['httpStatusCode'];
  return typeof status === 'number' ? status : undefined;
}

function requestIdOf(err: Bag): string | undefined {
  const meta = err['$metadata'];
  return isObject(meta) ? stringProp(meta, 'requestId') : undefined;
}

/** `name` unless generic, then `Code` and `code`: the strings that may hold an AWS code. */
function candidateCodes(err: Bag): string[] {
  const out: string[] = [];
  const name = stringProp(err, 'name');
  if (name !== undefined && !isGenericName(name)) out.push(name);
  for (const key of ['Code', 'code']) {
    const v = stringProp(err, key);
    if (v !== undefined && !isGenericName(v)) out.push(v);
  }
  return out;
}

/**
 * The AWS error code of an AWS SDK v3 service error (`err.name`, or `err.Code`/`err.code`
 * when the name is generic), or `undefined` if `err` is not an AWS service error.
 */
export function awsErrorName(err: unknown): string | undefined {
  if (!isObject(err) || !isAwsShaped(err)) return undefined;
  return candidateCodes(err)[0];
}

function isZodError(err: unknown): err is zodCore.$ZodError {
  if (err instanceof ZodError || err instanceof zodCore.$ZodError) return true;
  // A zod from another copy of the package (or zod/mini) fails instanceof; its shape does not.
  if (!isObject(err) || !Array.isArray(err['issues'])) return false;
  const name = err['name'];
  return name === 'ZodError' || name === '$ZodError';
}

function statusKind(status: number): ErrorKind | undefined {
  if (status === 429 || status === 503) return ErrorKind.Throttled;
  if (status >= 500 && status <= 599) return ErrorKind.Transient;
  switch (status) {
    case 400:
      return ErrorKind.InvalidInput;
    case 401:
    case 403:
      return ErrorKind.PermissionDenied;
    case 404:
      return ErrorKind.NotFound;
    case 408:
      return ErrorKind.Transient;
    case 409:
    case 412:
      return ErrorKind.Conflict;
    default:
      return undefined;
  }
}

const SDK_CHECKSUM_MISMATCH = /^Checksum mismatch: expected "[^"]*" but received "[^"]*" in response header "x-amz-checksum-[a-z0-9]+"/;

/** Classifies one error without looking at its `cause`. */
function classifyOwn(err: unknown): ErrorKind {
  if (!isObject(err)) return ErrorKind.Unknown;

  if (err instanceof TrainctlError) return err.kind;
  if (err['name'] === 'TrainctlError' && isErrorKind(err['kind'])) return err['kind'];

  if (err instanceof ApplicationFailure) {
    if (isErrorKind(err.type)) return err.type;
    // A raw error thrown from an activity arrives with its `name` as the failure type.
    return (typeof err.type === 'string' && kindFromAwsCode(err.type)) || ErrorKind.Unknown;
  }

  if (isZodError(err)) return ErrorKind.InvalidInput;

  // The SDK's check of a response body against the store's own checksum of the object, a plain
  // Error: the bytes are not the ones the store recorded (they rotted where it keeps them), and
  // fetching them again returns the same.
  if (err instanceof Error && SDK_CHECKSUM_MISMATCH.test(err.message)) return ErrorKind.Integrity;

  for (const code of candidateCodes(err)) {
    const kind = kindFromAwsCode(code);
    if (kind) return kind;
  }

  const nodeCode = stringProp(err, 'code');
  const nodeKind = nodeCode === undefined ? undefined : NODE_CODE_KINDS.get(nodeCode);
  if (nodeKind) return nodeKind;

  const retryable = err['$retryable'];
  if (isObject(retryable)) {
    return retryable['throttling'] === true ? ErrorKind.Throttled : ErrorKind.Transient;
  }

  const status = httpStatusOf(err);
  const byStatus = status === undefined ? undefined : statusKind(status);
  if (byStatus) return byStatus;
  if (err['$fault'] === 'server') return ErrorKind.Transient;

  return ErrorKind.Unknown;
}

const MAX_CAUSE_DEPTH = 5;

/** The kind, and the error in the `cause` chain that decided it. */
function classifyWithSource(err: unknown): { kind: ErrorKind; source: unknown } {
  let current: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH; depth++) {
    const kind = classifyOwn(current);
    if (kind !== ErrorKind.Unknown) return { kind, source: current };
    // Wrappers (fetch's TypeError, Temporal's ActivityFailure, our own Unknown) hide the
    // real error in `cause`.
    if (!isObject(current) || current['cause'] === undefined || current['cause'] === current) break;
    current = current['cause'];
  }
  return { kind: ErrorKind.Unknown, source: err };
}

/**
 * Maps any thrown value to its {@link ErrorKind}.
 *
 * Recognises, in order: {@link TrainctlError}; an `ApplicationFailure` whose `type` is a
 * kind; zod errors; AWS SDK v3 service errors by error code, then `$retryable`, then
 * `$metadata.httpStatusCode`; Node system errors by `code`. When the error itself is
 * `Unknown`, the `cause` chain is followed a few levels.
 */
export function classify(err: unknown): ErrorKind {
  return classifyWithSource(err).kind;
}

const MAX_MESSAGE_LENGTH = 2000;

function oneLine(text: string): string {
  const flat = text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return flat.length > MAX_MESSAGE_LENGTH ? `${flat.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : flat;
}

function describeZod(err: zodCore.$ZodError): string {
  return err.issues
    .map((issue) => {
      const path = issue.path.length === 0 ? '(input)' : issue.path.map(String).join('.');
      return `${path}: ${issue.message}`;
    })
    .join('; ');
}

function describeOwn(err: unknown): string {
  if (typeof err === 'string') return err;
  if (!isObject(err)) {
    return err === undefined || err === null ? `Unknown error (${String(err)})` : String(err);
  }
  if (isZodError(err)) return describeZod(err);

  const message = stringProp(err, 'message') ?? '';
  if (isAwsShaped(err)) {
    const code = candidateCodes(err)[0] ?? 'AWS error';
    // Body-less responses (HeadObject 403/404) carry only the SDK's placeholder message.
    if (message === '' || message === 'UnknownError') {
      const status = httpStatusOf(err);
      return status === undefined ? code : `${code} (HTTP ${status})`;
    }
    return `${code}: ${message}`;
  }
  if (message !== '') return message;
  return stringProp(err, 'name') ?? 'Unknown error';
}

/**
 * A one-line, human-readable description of an error, without stack or secrets.
 *
 * AWS errors read `"<code>: <message>"`; zod errors list each issue as
 * `"<path>: <message>"` joined by `"; "`; anything else gives its message. When the kind
 * was found in a wrapped `cause`, that cause's description is appended.
 */
export function describeError(err: unknown): string {
  const own = describeOwn(err);
  const { source } = classifyWithSource(err);
  if (source === err) return oneLine(own);
  const inner = describeOwn(source);
  return oneLine(own.includes(inner) ? own : `${own}: ${inner}`);
}

/**
 * Converts any error to the `ApplicationFailure` an activity should throw.
 *
 * `type` is the {@link ErrorKind}, `nonRetryable` follows from it, and `details[0]` is
 * `{ kind, awsCode?, httpStatus?, requestId? }` (never request headers or credentials).
 * An `ApplicationFailure` is returned unchanged.
 *
 * Do not pass cancellation through here: rethrow `CancelledFailure` and `AbortError` as
 * they are, or the worker reports a failed activity instead of a cancelled one.
 *
 * @param context - what was being attempted, prefixed to the message
 *   (e.g. `"attach vol-123 to i-456"`).
 */
export function toFailure(err: unknown, context?: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;

  const { kind, source } = classifyWithSource(err);
  const detail: { kind: ErrorKind; awsCode?: string; httpStatus?: number; requestId?: string } = {
    kind,
  };
  if (isObject(source)) {
    const awsCode = awsErrorName(source);
    if (awsCode !== undefined) detail.awsCode = awsCode;
    const httpStatus = httpStatusOf(source);
    if (httpStatus !== undefined) detail.httpStatus = httpStatus;
    const requestId = requestIdOf(source);
    if (requestId !== undefined) detail.requestId = requestId;
  }

  const description = describeError(err);
  return ApplicationFailure.create({
    type: kind,
    nonRetryable: !isRetryable(kind),
    message: context ? `${context}: ${description}` : description,
    cause: err instanceof Error ? err : undefined,
    details: [detail],
  });
}
