/**
 * AWS and Node error codes by taxonomy kind: the tables behind `classify`. Only activities, the
 * worker and the CLI import this (through `./classify.ts`); workflow bundles never carry it.
 *
 * @module
 */
import { ErrorKind } from './kinds.js';

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
  Object.entries(AWS_CODES_BY_KIND).flatMap(([kind, codes]) => (codes ?? []).map((code): [string, ErrorKind] => [code, kind as ErrorKind])),
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

/** The kind an AWS error code stands for, by table or by the shape of the code. */
export function kindFromAwsCode(code: string): ErrorKind | undefined {
  return AWS_CODE_KINDS.get(code) ?? kindFromCodeShape(code);
}

// Node / undici system error codes (`err.code`).
export const NODE_CODE_KINDS: ReadonlyMap<string, ErrorKind> = new Map<string, ErrorKind>([
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
export const GENERIC_NAMES: ReadonlySet<string> = new Set(['', 'Error', 'Unknown', 'UnknownError', 'ServiceException']);

// Not matched on purpose: the SDK's own response-checksum failure is a plain `Error`
// ("Checksum mismatch: ..."). One bad download is worth a retry; only the transfer code,
// after its own retries, decides that a mismatch is an Integrity failure.
