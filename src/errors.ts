/**
 * The error taxonomy (see DESIGN.md, "The error taxonomy").
 *
 * Every failure that leaves an activity is an `ApplicationFailure` whose `type` is an
 * {@link ErrorKind} and whose `nonRetryable` follows from that kind, so workflows branch
 * on the kind and never on message text.
 *
 * This module is imported by workflow code too, so it may only depend on
 * `@temporalio/common` and `zod`: no Node built-ins, no AWS SDK. AWS and Node errors are
 * therefore recognised structurally (`name`, `code`, `$metadata`), not with `instanceof`.
 *
 * @module
 */
import { ApplicationFailure } from '@temporalio/common';
import { ZodError, core as zodCore } from 'zod';

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
export const RETRYABLE_KINDS: readonly ErrorKind[] = Object.freeze([
  ErrorKind.Throttled,
  ErrorKind.Transient,
  ErrorKind.Conflict,
  ErrorKind.Unknown,
]);

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

function isErrorKind(value: unknown): value is ErrorKind {
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

// ---------------------------------------------------------------------------
// AWS error codes. EC2 (ec2Query) and S3 (restXml) surface the service's error code as
// `err.name`; unmodelled S3 errors also carry it as `err.Code`.

const AWS_CODES_BY_KIND: { readonly [K in ErrorKind]?: readonly string[] } = {
  Throttled: [
    'RequestLimitExceeded',
    'Throttling',
    'ThrottlingException',
    'ThrottledException',
    'TooManyRequestsException',
    'SlowDown',
    'RequestThrottled',
    'RequestThrottledException',
    'ProvisionedThroughputExceededException',
    'EC2ThrottledException',
    'BandwidthLimitExceeded',
    'PriorRequestNotComplete',
  ],
  Transient: [
    'InternalError',
    'InternalFailure',
    'InternalServerError',
    'ServiceUnavailable',
    'ServiceUnavailableException',
    'Unavailable',
    'ServerInternal',
    'RequestTimeout',
    'RequestTimeoutException',
    'TimeoutError',
    'IncompleteBody',
    // Clock skew: the SDK corrects its clock offset from the response, so a retry succeeds.
    'RequestTimeTooSkewed',
    'RequestExpired',
  ],
  Conflict: [
    'IncorrectState',
    'IncorrectInstanceState',
    'IncorrectModificationState',
    'IncorrectSpotRequestState',
    'InvalidState',
    'VolumeInUse',
    'DependencyViolation',
    'ConcurrentTagAccess',
    'OperationAborted',
    'BucketNotEmpty',
    'PreconditionFailed',
    'ConditionalRequestConflict',
  ],
  NotFound: [
    'NotFound',
    'NoSuchKey',
    'NoSuchBucket',
    'NoSuchUpload',
    'NoSuchVersion',
    'InvalidVolume.NotFound',
    'InvalidInstanceID.NotFound',
    'InvalidSnapshot.NotFound',
    'InvalidAMIID.NotFound',
    'InvalidAttachment.NotFound',
    'InvalidZone.NotFound',
  ],
  AlreadyExists: [
    'BucketAlreadyExists',
    'BucketAlreadyOwnedByYou',
    'EntityAlreadyExists',
    'ResourceAlreadyExists',
    // A ClientToken reused with a different spec: "a volume with that name and another spec".
    'IdempotentParameterMismatch',
    'IdempotencyParameterMismatch',
  ],
  InvalidInput: [
    'InvalidParameterValue',
    'InvalidParameter',
    'InvalidParameterCombination',
    'MissingParameter',
    'ValidationError',
    'ValidationException',
    'InvalidRequest',
    'InvalidArgument',
    'InvalidAction',
    'MalformedXML',
    'InvalidBucketName',
    'EntityTooSmall',
    'EntityTooLarge',
    'InvalidPart',
    'InvalidPartOrder',
    'TooManyParts',
    'KeyTooLongError',
    'InvalidRange',
    'UnknownVolumeType',
    'InvalidVolume.ZoneMismatch',
    'InvalidVolumeID.Malformed',
    'InvalidInstanceID.Malformed',
    'InvalidSnapshotID.Malformed',
    'InvalidID',
    'InvalidZone',
    'Unsupported',
    'UnsupportedOperation',
    'MethodNotAllowed',
    'NotImplemented',
    // An archived object needs a restore first; retrying the read will not help.
    'InvalidObjectState',
  ],
  PermissionDenied: [
    'UnauthorizedOperation',
    'AccessDenied',
    'AccessDeniedException',
    'AuthFailure',
    'Forbidden',
    'ExpiredToken',
    'ExpiredTokenException',
    'InvalidClientTokenId',
    'InvalidToken',
    'SignatureDoesNotMatch',
    'InvalidAccessKeyId',
    'OptInRequired',
    'PendingVerification',
    'Blocked',
    'AccountProblem',
    'AllAccessDisabled',
    'UnrecognizedClientException',
    // The SDK's "no credentials found" error: retrying will not conjure credentials.
    'CredentialsProviderError',
  ],
  QuotaExceeded: [
    'VolumeLimitExceeded',
    'InsufficientInstanceCapacity',
    'InsufficientVolumeCapacity',
    'InsufficientAddressCapacity',
    'InsufficientFreeAddressesInSubnet',
    'InstanceLimitExceeded',
    'SnapshotLimitExceeded',
    'MaxIOPSLimitExceeded',
    'VcpuLimitExceeded',
    'ResourceLimitExceeded',
    'LimitExceededException',
    'ServiceQuotaExceededException',
    'MaxSpotInstanceCountExceeded',
    'AddressLimitExceeded',
    'TooManyBuckets',
  ],
  Integrity: ['BadDigest', 'InvalidDigest', 'XAmzContentSHA256Mismatch', 'ChecksumMismatchError'],
};

const AWS_CODE_KINDS: ReadonlyMap<string, ErrorKind> = new Map(
  Object.entries(AWS_CODES_BY_KIND).flatMap(([kind, codes]) =>
    (codes ?? []).map((code): [string, ErrorKind] => [code, kind as ErrorKind]),
  ),
);

/** Families of EC2 codes (`Invalid<Resource>.NotFound` etc.) too many to list one by one. */
function kindFromCodeShape(code: string): ErrorKind | undefined {
  if (code.endsWith('NotFound') || code.startsWith('NoSuch')) return ErrorKind.NotFound;
  if (code.endsWith('.Duplicate') || code.endsWith('AlreadyExists')) return ErrorKind.AlreadyExists;
  if (code.endsWith('.Malformed')) return ErrorKind.InvalidInput;
  if (code.endsWith('.InUse')) return ErrorKind.Conflict;
  // RequestLimitExceeded is in the table as Throttled, so it never reaches this.
  if (code.endsWith('LimitExceeded') || code.endsWith('LimitExceededException')) {
    return ErrorKind.QuotaExceeded;
  }
  if (code.startsWith('Insufficient') && code.endsWith('Capacity')) return ErrorKind.QuotaExceeded;
  return undefined;
}

function kindFromAwsCode(code: string): ErrorKind | undefined {
  return AWS_CODE_KINDS.get(code) ?? kindFromCodeShape(code);
}

// Node / undici system error codes (`err.code`).
const NODE_CODE_KINDS: ReadonlyMap<string, ErrorKind> = new Map<string, ErrorKind>([
  ['ECONNRESET', ErrorKind.Transient],
  ['ETIMEDOUT', ErrorKind.Transient],
  ['ESOCKETTIMEDOUT', ErrorKind.Transient],
  ['ECONNREFUSED', ErrorKind.Transient],
  ['ECONNABORTED', ErrorKind.Transient],
  ['EPIPE', ErrorKind.Transient],
  ['EAI_AGAIN', ErrorKind.Transient],
  // DNS lookups flap; a wrong endpoint is still bounded by the retry policy.
  ['ENOTFOUND', ErrorKind.Transient],
  ['EHOSTUNREACH', ErrorKind.Transient],
  ['ENETUNREACH', ErrorKind.Transient],
  ['ENETDOWN', ErrorKind.Transient],
  ['EMFILE', ErrorKind.Transient],
  ['ENFILE', ErrorKind.Transient],
  ['EBUSY', ErrorKind.Transient],
  ['EAGAIN', ErrorKind.Transient],
  ['ERR_STREAM_PREMATURE_CLOSE', ErrorKind.Transient],
  ['UND_ERR_SOCKET', ErrorKind.Transient],
  ['UND_ERR_CONNECT_TIMEOUT', ErrorKind.Transient],
  ['UND_ERR_HEADERS_TIMEOUT', ErrorKind.Transient],
  ['UND_ERR_BODY_TIMEOUT', ErrorKind.Transient],
  ['ENOSPC', ErrorKind.QuotaExceeded],
  ['EDQUOT', ErrorKind.QuotaExceeded],
  ['EACCES', ErrorKind.PermissionDenied],
  ['EPERM', ErrorKind.PermissionDenied],
  ['EROFS', ErrorKind.PermissionDenied],
  ['ENOENT', ErrorKind.NotFound],
  ['EEXIST', ErrorKind.AlreadyExists],
  ['EISDIR', ErrorKind.InvalidInput],
  ['ENOTDIR', ErrorKind.InvalidInput],
  ['EINVAL', ErrorKind.InvalidInput],
  ['ENAMETOOLONG', ErrorKind.InvalidInput],
  ['ERR_INVALID_ARG_TYPE', ErrorKind.InvalidInput],
  ['ERR_INVALID_ARG_VALUE', ErrorKind.InvalidInput],
  ['ERR_OUT_OF_RANGE', ErrorKind.InvalidInput],
]);

// Names that say nothing about the failure: the SDK's base classes, and "Unknown", which the
// SDK uses when a response has no error code (e.g. a HeadObject 403 with an empty body).
const GENERIC_NAMES: ReadonlySet<string> = new Set([
  '',
  'Error',
  'Unknown',
  'UnknownError',
  'ServiceException',
]);

// Not matched on purpose: the SDK's own response-checksum failure is a plain `Error`
// ("Checksum mismatch: ..."). One bad download is worth a retry; only the transfer code,
// after its own retries, decides that a mismatch is an Integrity failure.

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
