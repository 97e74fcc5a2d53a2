import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import {
  AccessDenied,
  BucketAlreadyExists,
  BucketAlreadyOwnedByYou,
  IdempotencyParameterMismatch,
  InvalidObjectState,
  InvalidRequest,
  NoSuchBucket,
  NoSuchKey,
  NoSuchUpload,
  NotFound,
  S3ServiceException,
  TooManyParts,
} from '@aws-sdk/client-s3';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { z } from 'zod';
import * as zm from 'zod/mini';
import { ErrorKind, NON_RETRYABLE_KINDS, RETRYABLE_KINDS, TrainctlError, isRetryable } from '../src/errors/kinds.js';
import { awsErrorName, classify, describeError, toFailure } from '../src/errors/classify.js';

// ---------------------------------------------------------------------------
// Fake AWS SDK v3 errors, built the way the SDK builds them.
//
// EC2 models no error shapes, so the SDK throws its synthetic `EC2ServiceException`
// (a subclass of smithy's `ServiceException`) with `name` set to the error code. S3 does
// the same with `S3ServiceException` for unmodelled codes, decorated with the XML body's
// `Code`; modelled S3 codes get their own exported class.

type Service = 'ec2' | 's3';

const metadata = (httpStatusCode: number) => ({
  httpStatusCode,
  requestId: 'req-1',
  attempts: 1,
  totalRetryDelay: 0,
});

const fault = (status: number) => (status >= 500 ? 'server' : 'client');

function ec2Error(code: string, status: number, message = `${code} happened`): EC2ServiceException {
  return new EC2ServiceException({
    name: code,
    $fault: fault(status),
    $metadata: metadata(status),
    message,
  });
}

function s3Error(code: string, status: number, message = `${code} happened`): S3ServiceException {
  const err = new S3ServiceException({
    name: code,
    $fault: fault(status),
    $metadata: metadata(status),
    message,
  });
  return Object.assign(err, { Code: code, RequestId: 'req-1', HostId: 'host-1' });
}

function awsError(service: Service, code: string, status: number): Error {
  return service === 'ec2' ? ec2Error(code, status) : s3Error(code, status);
}

interface AwsCase {
  service: Service;
  code: string;
  status: number;
  kind: ErrorKind;
}

const K = ErrorKind;

const AWS_CASES: readonly AwsCase[] = [
  // Throttled
  { service: 'ec2', code: 'RequestLimitExceeded', status: 503, kind: K.Throttled },
  { service: 'ec2', code: 'Throttling', status: 400, kind: K.Throttled },
  { service: 's3', code: 'SlowDown', status: 503, kind: K.Throttled },
  // Transient (a name beats the 503 => Throttled status fallback)
  { service: 'ec2', code: 'InternalError', status: 500, kind: K.Transient },
  { service: 's3', code: 'InternalError', status: 500, kind: K.Transient },
  { service: 'ec2', code: 'Unavailable', status: 503, kind: K.Transient },
  { service: 'ec2', code: 'ServiceUnavailable', status: 503, kind: K.Transient },
  { service: 's3', code: 'ServiceUnavailable', status: 503, kind: K.Transient },
  { service: 's3', code: 'RequestTimeout', status: 400, kind: K.Transient },
  { service: 'ec2', code: 'RequestExpired', status: 400, kind: K.Transient },
  { service: 's3', code: 'RequestTimeTooSkewed', status: 403, kind: K.Transient },
  // Conflict
  { service: 'ec2', code: 'VolumeInUse', status: 400, kind: K.Conflict },
  { service: 'ec2', code: 'IncorrectState', status: 400, kind: K.Conflict },
  { service: 'ec2', code: 'IncorrectInstanceState', status: 400, kind: K.Conflict },
  { service: 'ec2', code: 'IncorrectModificationState', status: 400, kind: K.Conflict },
  { service: 'ec2', code: 'DependencyViolation', status: 400, kind: K.Conflict },
  { service: 'ec2', code: 'ConcurrentTagAccess', status: 400, kind: K.Conflict },
  { service: 'ec2', code: 'InvalidGroup.InUse', status: 400, kind: K.Conflict },
  { service: 's3', code: 'OperationAborted', status: 409, kind: K.Conflict },
  { service: 's3', code: 'BucketNotEmpty', status: 409, kind: K.Conflict },
  { service: 's3', code: 'PreconditionFailed', status: 412, kind: K.Conflict },
  // NotFound
  { service: 'ec2', code: 'InvalidVolume.NotFound', status: 400, kind: K.NotFound },
  { service: 'ec2', code: 'InvalidInstanceID.NotFound', status: 400, kind: K.NotFound },
  { service: 'ec2', code: 'InvalidSnapshot.NotFound', status: 400, kind: K.NotFound },
  { service: 'ec2', code: 'InvalidAMIID.NotFound', status: 400, kind: K.NotFound },
  { service: 'ec2', code: 'InvalidAttachment.NotFound', status: 400, kind: K.NotFound },
  { service: 'ec2', code: 'InvalidSubnetID.NotFound', status: 400, kind: K.NotFound },
  { service: 'ec2', code: 'InvalidKeyPair.NotFound', status: 400, kind: K.NotFound },
  { service: 's3', code: 'NoSuchVersion', status: 404, kind: K.NotFound },
  { service: 's3', code: 'NoSuchLifecycleConfiguration', status: 404, kind: K.NotFound },
  // AlreadyExists
  { service: 'ec2', code: 'InvalidKeyPair.Duplicate', status: 400, kind: K.AlreadyExists },
  { service: 'ec2', code: 'InvalidGroup.Duplicate', status: 400, kind: K.AlreadyExists },
  { service: 'ec2', code: 'IdempotentParameterMismatch', status: 400, kind: K.AlreadyExists },
  // InvalidInput
  { service: 'ec2', code: 'InvalidParameterValue', status: 400, kind: K.InvalidInput },
  { service: 'ec2', code: 'InvalidParameterCombination', status: 400, kind: K.InvalidInput },
  { service: 'ec2', code: 'MissingParameter', status: 400, kind: K.InvalidInput },
  { service: 'ec2', code: 'InvalidVolumeID.Malformed', status: 400, kind: K.InvalidInput },
  { service: 'ec2', code: 'InvalidInstanceID.Malformed', status: 400, kind: K.InvalidInput },
  { service: 'ec2', code: 'InvalidVolume.ZoneMismatch', status: 400, kind: K.InvalidInput },
  { service: 'ec2', code: 'UnknownVolumeType', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'InvalidArgument', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'MalformedXML', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'EntityTooSmall', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'EntityTooLarge', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'InvalidPart', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'InvalidPartOrder', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'KeyTooLongError', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'InvalidBucketName', status: 400, kind: K.InvalidInput },
  { service: 's3', code: 'InvalidRange', status: 416, kind: K.InvalidInput },
  // PermissionDenied
  { service: 'ec2', code: 'UnauthorizedOperation', status: 403, kind: K.PermissionDenied },
  { service: 'ec2', code: 'AuthFailure', status: 401, kind: K.PermissionDenied },
  { service: 'ec2', code: 'OptInRequired', status: 401, kind: K.PermissionDenied },
  { service: 'ec2', code: 'Blocked', status: 403, kind: K.PermissionDenied },
  { service: 's3', code: 'ExpiredToken', status: 400, kind: K.PermissionDenied },
  { service: 's3', code: 'InvalidAccessKeyId', status: 403, kind: K.PermissionDenied },
  { service: 's3', code: 'SignatureDoesNotMatch', status: 403, kind: K.PermissionDenied },
  { service: 's3', code: 'AllAccessDisabled', status: 403, kind: K.PermissionDenied },
  { service: 's3', code: 'AccountProblem', status: 403, kind: K.PermissionDenied },
  // QuotaExceeded (a name beats the 500 => Transient status fallback)
  { service: 'ec2', code: 'VolumeLimitExceeded', status: 400, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'InsufficientInstanceCapacity', status: 500, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'InsufficientVolumeCapacity', status: 500, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'InstanceLimitExceeded', status: 400, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'SnapshotLimitExceeded', status: 400, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'VcpuLimitExceeded', status: 400, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'MaxIOPSLimitExceeded', status: 400, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'MaxSpotInstanceCountExceeded', status: 400, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'InsufficientFreeAddressesInSubnet', status: 400, kind: K.QuotaExceeded },
  { service: 'ec2', code: 'AddressLimitExceeded', status: 400, kind: K.QuotaExceeded },
  { service: 's3', code: 'TooManyBuckets', status: 400, kind: K.QuotaExceeded },
  // Integrity
  { service: 's3', code: 'BadDigest', status: 400, kind: K.Integrity },
  { service: 's3', code: 'InvalidDigest', status: 400, kind: K.Integrity },
  { service: 's3', code: 'XAmzContentSHA256Mismatch', status: 400, kind: K.Integrity },
];

// The SDK's own exception classes for modelled S3 errors.
const meta404 = metadata(404);
const MODELLED_S3_CASES: readonly { error: Error; code: string; kind: ErrorKind }[] = [
  { error: new NoSuchKey({ $metadata: meta404, message: 'The specified key does not exist.' }), code: 'NoSuchKey', kind: K.NotFound },
  { error: new NoSuchUpload({ $metadata: meta404, message: 'The specified upload does not exist.' }), code: 'NoSuchUpload', kind: K.NotFound },
  { error: new NoSuchBucket({ $metadata: meta404, message: 'The specified bucket does not exist' }), code: 'NoSuchBucket', kind: K.NotFound },
  { error: new NotFound({ $metadata: meta404, message: 'UnknownError' }), code: 'NotFound', kind: K.NotFound },
  { error: new AccessDenied({ $metadata: metadata(403), message: 'Access Denied' }), code: 'AccessDenied', kind: K.PermissionDenied },
  {
    error: new BucketAlreadyExists({ $metadata: metadata(409), message: 'The requested bucket name is not available.' }),
    code: 'BucketAlreadyExists',
    kind: K.AlreadyExists,
  },
  {
    error: new BucketAlreadyOwnedByYou({ $metadata: metadata(409), message: 'Your previous request to create the named bucket succeeded.' }),
    code: 'BucketAlreadyOwnedByYou',
    kind: K.AlreadyExists,
  },
  {
    error: new IdempotencyParameterMismatch({ $metadata: metadata(400), message: 'Parameters differ from the original request.' }),
    code: 'IdempotencyParameterMismatch',
    kind: K.AlreadyExists,
  },
  { error: new InvalidRequest({ $metadata: metadata(400), message: 'Invalid request.' }), code: 'InvalidRequest', kind: K.InvalidInput },
  {
    error: new InvalidObjectState({ $metadata: metadata(403), message: 'The operation is not valid for the object storage class.' }),
    code: 'InvalidObjectState',
    kind: K.InvalidInput,
  },
  {
    error: new TooManyParts({ $metadata: metadata(400), message: 'You have attempted to add more parts than the available of 10000.' }),
    code: 'TooManyParts',
    kind: K.InvalidInput,
  },
];

const REQUIRED_CODES = [
  'RequestLimitExceeded',
  'Throttling',
  'SlowDown',
  'InternalError',
  'Unavailable',
  'InvalidVolume.NotFound',
  'VolumeInUse',
  'IncorrectState',
  'InvalidParameterValue',
  'UnauthorizedOperation',
  'VolumeLimitExceeded',
  'InsufficientInstanceCapacity',
  'NoSuchKey',
  'NoSuchUpload',
  'AccessDenied',
  'ExpiredToken',
  'DependencyViolation',
  'InvalidInstanceID.NotFound',
  'InvalidSnapshot.NotFound',
  'IncorrectInstanceState',
];

const ALL_KINDS = Object.values(ErrorKind);

// ---------------------------------------------------------------------------

describe('the kinds', () => {
  test('every kind is either retryable or non-retryable, never both', () => {
    for (const kind of ALL_KINDS) {
      assert.notEqual(RETRYABLE_KINDS.includes(kind), NON_RETRYABLE_KINDS.includes(kind), kind);
      assert.equal(isRetryable(kind), RETRYABLE_KINDS.includes(kind), kind);
    }
    assert.equal(RETRYABLE_KINDS.length + NON_RETRYABLE_KINDS.length, ALL_KINDS.length);
  });

  test('the retryable kinds are exactly those the design table marks as retried', () => {
    assert.deepEqual([...RETRYABLE_KINDS].sort(), [K.Conflict, K.Throttled, K.Transient, K.Unknown].sort());
  });
});

describe('AWS service errors', () => {
  test('the tables cover at least 40 distinct real EC2 and S3 error codes, including the required ones', () => {
    const codes = new Set([...AWS_CASES.map((c) => c.code), ...MODELLED_S3_CASES.map((c) => c.code)]);
    assert.ok(codes.size >= 40, `only ${codes.size} codes`);
    for (const code of REQUIRED_CODES) assert.ok(codes.has(code), `missing ${code}`);
  });

  test('the fakes are real SDK ServiceExceptions, as the SDK would throw them', () => {
    const ec2 = ec2Error('VolumeInUse', 400);
    assert.ok(EC2ServiceException.isInstance(ec2));
    assert.ok(ec2 instanceof EC2ServiceException);
    assert.equal(ec2.name, 'VolumeInUse');
    assert.equal(ec2.$fault, 'client');
    const key = MODELLED_S3_CASES[0]?.error;
    assert.ok(key instanceof NoSuchKey && key instanceof S3ServiceException);
  });

  for (const { service, code, status, kind } of AWS_CASES) {
    test(`${service.toUpperCase()} ${code} (HTTP ${status}) is ${kind} and ${isRetryable(kind) ? 'retryable' : 'non-retryable'}`, () => {
      const err = awsError(service, code, status);
      assert.equal(classify(err), kind);
      assert.equal(awsErrorName(err), code);
      const failure = toFailure(err);
      assert.equal(failure.type, kind);
      assert.equal(failure.nonRetryable, !isRetryable(kind));
      assert.equal(failure.message, `${code}: ${code} happened`);
      assert.deepEqual(failure.details, [{ kind, awsCode: code, httpStatus: status, requestId: 'req-1' }]);
    });
  }

  for (const { error, code, kind } of MODELLED_S3_CASES) {
    test(`the SDK's own S3 ${code} exception class is ${kind}`, () => {
      assert.equal(classify(error), kind);
      assert.equal(awsErrorName(error), code);
      const failure = toFailure(error);
      assert.equal(failure.type, kind);
      assert.equal(failure.nonRetryable, !isRetryable(kind));
      assert.equal((failure.details?.[0] as { awsCode?: string }).awsCode, code);
    });
  }

  test('a body-less S3 HeadObject 404 describes itself by code and status', () => {
    const err = new NotFound({ $metadata: meta404, message: 'UnknownError' });
    assert.equal(describeError(err), 'NotFound (HTTP 404)');
  });

  test('an S3 error whose name is generic is recognised by its Code field', () => {
    const err = Object.assign(new S3ServiceException({ name: 'S3ServiceException', $fault: 'client', $metadata: metadata(404), message: 'gone' }), {
      Code: 'NoSuchKey',
    });
    assert.equal(awsErrorName(err), 'NoSuchKey');
    assert.equal(classify(err), K.NotFound);
  });

  test('a plain Error named after an AWS code is still classified by its name', () => {
    const err = Object.assign(new Error('volume busy'), { name: 'VolumeInUse' });
    assert.equal(classify(err), K.Conflict);
    assert.equal(awsErrorName(err), undefined, 'not AWS-shaped, so no AWS code is claimed');
  });

  test("the SDK's missing-credentials error is PermissionDenied", () => {
    const err = Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
      tryNextLink: false,
    });
    assert.equal(classify(err), K.PermissionDenied);
    assert.equal(toFailure(err).nonRetryable, true);
  });

  test("the SDK's socket TimeoutError is Transient", () => {
    const err = Object.assign(new Error('the request socket timed out after 5000 ms'), { name: 'TimeoutError' });
    assert.equal(classify(err), K.Transient);
  });

  test("the SDK's response checksum mismatch (the body is not what the store recorded) is Integrity, not retried", () => {
    // As @smithy/core's ChecksumStream and @aws-sdk/checksums' validateChecksumFromResponse word it.
    const err = new Error(
      'Checksum mismatch: expected "fzqFOkXDmMl07hJPjsSUDRSoVhN3MyE8n92n32AijGg=" but received "TfrW=" in response header "x-amz-checksum-sha256".',
    );
    assert.equal(classify(err), K.Integrity);
    assert.equal(toFailure(err).nonRetryable, true);
    assert.equal(classify(new Error('Checksum mismatch somewhere else')), K.Unknown);
  });
});

describe('HTTP status fallback for unrecognised AWS codes', () => {
  const cases: readonly [number, ErrorKind][] = [
    [429, K.Throttled],
    [503, K.Throttled],
    [500, K.Transient],
    [502, K.Transient],
    [504, K.Transient],
    [404, K.NotFound],
    [403, K.PermissionDenied],
    [409, K.Conflict],
    [400, K.InvalidInput],
    [418, K.Unknown],
  ];
  for (const [status, kind] of cases) {
    test(`an unknown code with HTTP ${status} is ${kind}`, () => {
      const err = ec2Error('BrandNewErrorCode', status);
      assert.equal(classify(err), kind);
      const failure = toFailure(err);
      assert.equal(failure.type, kind);
      assert.equal(failure.nonRetryable, !isRetryable(kind));
      assert.deepEqual(failure.details, [{ kind, awsCode: 'BrandNewErrorCode', httpStatus: status, requestId: 'req-1' }]);
    });
  }

  test('an S3 error the SDK named "Unknown" (HeadObject 403, empty body) falls back to its status', () => {
    const err = s3Error('Unknown', 403, 'UnknownError');
    assert.equal(classify(err), K.PermissionDenied);
    assert.equal(describeError(err), 'AWS error (HTTP 403)');
    const detail = toFailure(err).details?.[0];
    assert.deepEqual(detail, { kind: K.PermissionDenied, httpStatus: 403, requestId: 'req-1' });
  });

  test('$retryable.throttling marks an unknown code as Throttled, and plain $retryable as Transient', () => {
    const throttled = Object.assign(ec2Error('BrandNewErrorCode', 400), { $retryable: { throttling: true } });
    assert.equal(classify(throttled), K.Throttled);
    const retryable = Object.assign(ec2Error('BrandNewErrorCode', 400), { $retryable: {} });
    assert.equal(classify(retryable), K.Transient);
  });
});

describe('Node system errors', () => {
  const cases: readonly [string, ErrorKind][] = [
    ['ECONNRESET', K.Transient],
    ['ETIMEDOUT', K.Transient],
    ['ECONNREFUSED', K.Transient],
    ['EPIPE', K.Transient],
    ['EAI_AGAIN', K.Transient],
    ['ENOTFOUND', K.Transient],
    ['EHOSTUNREACH', K.Transient],
    ['UND_ERR_SOCKET', K.Transient],
    ['EMFILE', K.Transient],
    ['EBUSY', K.Transient],
    ['ENOSPC', K.QuotaExceeded],
    ['EDQUOT', K.QuotaExceeded],
    ['EACCES', K.PermissionDenied],
    ['EPERM', K.PermissionDenied],
    ['EROFS', K.PermissionDenied],
    ['ENOENT', K.NotFound],
    ['EEXIST', K.AlreadyExists],
    ['EISDIR', K.InvalidInput],
    ['ENOTDIR', K.InvalidInput],
    ['ENAMETOOLONG', K.InvalidInput],
  ];
  for (const [code, kind] of cases) {
    test(`a Node error with code ${code} is ${kind}`, () => {
      const err = Object.assign(new Error(`${code}: something failed`), { code, syscall: 'open' });
      assert.equal(classify(err), kind);
      const failure = toFailure(err);
      assert.equal(failure.type, kind);
      assert.equal(failure.nonRetryable, !isRetryable(kind));
      assert.deepEqual(failure.details, [{ kind }], 'no AWS fields for a Node error');
      assert.equal(awsErrorName(err), undefined);
    });
  }

  test('a network error the SDK stamped with retry $metadata is Transient and claims no AWS code', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), {
      code: 'ECONNREFUSED',
      $metadata: { attempts: 3, totalRetryDelay: 300 },
    });
    assert.equal(classify(err), K.Transient);
    assert.equal(awsErrorName(err), undefined);
    assert.equal(describeError(err), 'connect ECONNREFUSED 127.0.0.1:4566');
    assert.deepEqual(toFailure(err).details, [{ kind: K.Transient }]);
  });

  test('a real ENOENT from reading a missing file is NotFound and keeps its message', async () => {
    const err = await fs.promises.readFile('/definitely/missing/trainctl-file').catch((e: unknown) => e);
    assert.equal(classify(err), K.NotFound);
    assert.match(describeError(err), /^ENOENT: no such file or directory/);
    assert.equal(toFailure(err).nonRetryable, true);
  });

  test('a real EISDIR from reading a directory is InvalidInput', async () => {
    const err = await fs.promises.readFile(os.tmpdir()).catch((e: unknown) => e);
    assert.equal(classify(err), K.InvalidInput);
  });

  test('a real EEXIST from creating an existing directory is AlreadyExists', async () => {
    const err = await fs.promises.mkdir(os.tmpdir()).catch((e: unknown) => e);
    assert.equal(classify(err), K.AlreadyExists);
  });

  test('a real ECONNREFUSED from a closed port, wrapped by fetch, is Transient via its cause', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer();
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const err = await fetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    assert.ok(err instanceof TypeError, 'fetch wraps the socket error in a TypeError');
    assert.equal(classify(err), K.Transient);
    assert.match(describeError(err), /fetch failed: .*ECONNREFUSED/);
  });
});

describe('zod errors', () => {
  test('a real zod validation error is InvalidInput and names the failing field', () => {
    const result = z.object({ size: z.number().int().positive() }).safeParse({ size: 0 });
    assert.equal(result.success, false);
    const err = result.error;
    assert.equal(classify(err), K.InvalidInput);
    assert.match(describeError(err), /^size: /);
    const failure = toFailure(err, 'validating volume spec');
    assert.equal(failure.type, K.InvalidInput);
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /^validating volume spec: size: /);
  });

  test('describeError lists every zod issue with its dotted path, and (input) for the root', () => {
    const nested = z.object({ a: z.object({ b: z.string() }), c: z.number() }).safeParse({ a: { b: 1 }, c: 'x' });
    const described = describeError(nested.error);
    const parts = described.split('; ');
    assert.equal(parts.length, 2);
    assert.ok(
      parts.some((p) => p.startsWith('a.b: ')),
      described,
    );
    assert.ok(
      parts.some((p) => p.startsWith('c: ')),
      described,
    );
    const root = z.string().safeParse(5);
    assert.match(describeError(root.error), /^\(input\): /);
  });

  test('a zod/mini error, which is not a ZodError instance, is still InvalidInput', () => {
    const result = zm.object({ name: zm.string() }).safeParse({});
    assert.equal(result.success, false);
    assert.equal(classify(result.error), K.InvalidInput);
  });

  test('an error merely named ZodError with issues is recognised by shape', () => {
    const err = Object.assign(new Error('bad'), { name: 'ZodError', issues: [{ path: ['x'], message: 'Required' }] });
    assert.equal(classify(err), K.InvalidInput);
    assert.equal(describeError(err), 'x: Required');
  });
});

describe('TrainctlError', () => {
  test('TrainctlError carries its kind, its name, its cause and its details', () => {
    const cause = new Error('part 3 sha256 differs');
    const err = new TrainctlError(K.Integrity, 'checksum mismatch after 3 attempts', {
      cause,
      details: { part: 3 },
    });
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'TrainctlError');
    assert.equal(err.kind, K.Integrity);
    assert.equal(err.cause, cause);
    assert.deepEqual(err.details, { part: 3 });
    assert.equal(classify(err), K.Integrity);
    const failure = toFailure(err);
    assert.equal(failure.type, K.Integrity);
    assert.equal(failure.nonRetryable, true);
    assert.equal(failure.message, 'checksum mismatch after 3 attempts');
    assert.equal(failure.cause, err);
  });

  test('a TrainctlError without a cause has no own cause property', () => {
    const err = new TrainctlError(K.InvalidInput, 'path escapes the data root');
    assert.equal('cause' in err, false);
    assert.equal(classify(err), K.InvalidInput);
  });

  test('an error named ChecksumMismatchError is Integrity', () => {
    const err = Object.assign(new Error('sha256 mismatch'), { name: 'ChecksumMismatchError' });
    assert.equal(classify(err), K.Integrity);
  });

  test('every kind survives a TrainctlError round trip through toFailure', () => {
    for (const kind of ALL_KINDS) {
      const failure = toFailure(new TrainctlError(kind, `a ${kind} failure`));
      assert.equal(failure.type, kind);
      assert.equal(failure.nonRetryable, !isRetryable(kind), kind);
    }
  });
});

describe('Temporal failures', () => {
  test('toFailure returns an ApplicationFailure unchanged', () => {
    const original = ApplicationFailure.create({ type: K.Conflict, message: 'busy', nonRetryable: false });
    assert.equal(toFailure(original), original);
    assert.equal(toFailure(original, 'with context'), original);
  });

  test('an ApplicationFailure whose type is a kind classifies as that kind', () => {
    for (const kind of ALL_KINDS) {
      assert.equal(classify(ApplicationFailure.create({ type: kind, message: 'x' })), kind);
    }
  });

  test('an ApplicationFailure typed with a raw AWS code (an unconverted activity error) is classified by that code', () => {
    assert.equal(classify(ApplicationFailure.create({ type: 'VolumeInUse', message: 'x' })), K.Conflict);
    assert.equal(classify(ApplicationFailure.create({ type: 'SomethingElse', message: 'x' })), K.Unknown);
  });

  test('an ActivityFailure is classified by the ApplicationFailure in its cause, as a workflow sees it', () => {
    const inner = toFailure(ec2Error('VolumeInUse', 400), 'attach vol-1');
    const outer = new ActivityFailure('Activity task failed', 'attachVolume', '1', RetryState.MAXIMUM_ATTEMPTS_REACHED, 'worker', inner);
    assert.equal(classify(outer), K.Conflict);
    assert.equal(describeError(outer), 'Activity task failed: attach vol-1: VolumeInUse: VolumeInUse happened');
  });
});

describe('cause unwrapping', () => {
  test('a generic wrapper is classified by a nested cause a few levels down', () => {
    const root = s3Error('SlowDown', 503, 'Please reduce your request rate.');
    const err = new Error('upload part 7 failed', { cause: new Error('retry budget spent', { cause: root }) });
    assert.equal(classify(err), K.Throttled);
    const failure = toFailure(err, 'upload');
    assert.equal(failure.type, K.Throttled);
    assert.equal(failure.nonRetryable, false);
    assert.equal(failure.message, 'upload: upload part 7 failed: SlowDown: Please reduce your request rate.');
    assert.deepEqual(failure.details, [{ kind: K.Throttled, awsCode: 'SlowDown', httpStatus: 503, requestId: 'req-1' }]);
    assert.equal(failure.cause, err);
  });

  test('a cause nested too deep is not looked for, so the error stays Unknown', () => {
    let err: Error = Object.assign(new Error('disk'), { code: 'ENOSPC' });
    for (let i = 0; i < 10; i++) err = new Error(`wrapper ${i}`, { cause: err });
    assert.equal(classify(err), K.Unknown);
  });

  test('a cause cycle terminates and classifies as Unknown', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    assert.equal(classify(a), K.Unknown);
    assert.equal(describeError(a), 'a');
  });

  test('a classified error is not overridden by its cause', () => {
    const err = new TrainctlError(K.Conflict, 'still detaching', { cause: ec2Error('InvalidVolume.NotFound', 400) });
    assert.equal(classify(err), K.Conflict);
  });
});

describe('toFailure and describeError', () => {
  test('an unclassifiable error is Unknown and stays retryable', () => {
    const failure = toFailure(new Error('something odd'));
    assert.equal(failure.type, K.Unknown);
    assert.equal(failure.nonRetryable, false);
    assert.deepEqual(failure.details, [{ kind: K.Unknown }]);
  });

  test('non-Error throwables become Unknown failures without a cause', () => {
    assert.equal(classify('boom'), K.Unknown);
    assert.equal(classify(undefined), K.Unknown);
    assert.equal(classify(42), K.Unknown);
    const failure = toFailure('boom', 'ctx');
    assert.equal(failure.message, 'ctx: boom');
    assert.equal(failure.cause, undefined);
    assert.equal(describeError(undefined), 'Unknown error (undefined)');
  });

  test('the failure message is one line with no stack, and the context is a prefix', () => {
    const err = ec2Error('VolumeInUse', 400, 'vol-1 is attached\nto i-1');
    const failure = toFailure(err, 'delete vol-1');
    assert.equal(failure.message, 'delete vol-1: VolumeInUse: vol-1 is attached to i-1');
    assert.ok(!failure.message.includes('\n'));
    const firstFrame = err.stack?.split('\n').find((line) => /^\s+at /.test(line));
    assert.ok(firstFrame, 'the error has a stack to leak');
    assert.ok(!failure.message.includes(firstFrame.trim()));
    assert.doesNotMatch(failure.message, /\s+at\s/);
  });

  test('failure details carry only kind, awsCode, httpStatus and requestId, never request credentials', () => {
    const err = Object.assign(ec2Error('AuthFailure', 401), {
      $response: {
        statusCode: 401,
        headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEKEY/20240101', 'x-amz-security-token': 'SESSIONTOKEN' },
      },
    });
    const failure = toFailure(err);
    const detail = failure.details?.[0];
    assert.deepEqual(Object.keys(detail as object).sort(), ['awsCode', 'httpStatus', 'kind', 'requestId']);
    const serialised = JSON.stringify(failure.details) + failure.message;
    assert.ok(!serialised.includes('AKIA'));
    assert.ok(!serialised.includes('SESSIONTOKEN'));
  });

  test('awsErrorName is undefined for values that are not AWS service errors', () => {
    assert.equal(awsErrorName(new Error('x')), undefined);
    assert.equal(awsErrorName(Object.assign(new Error('x'), { code: 'ECONNRESET' })), undefined);
    assert.equal(awsErrorName('InvalidVolume.NotFound'), undefined);
    assert.equal(awsErrorName(null), undefined);
    assert.equal(awsErrorName(ec2Error('InvalidVolume.NotFound', 400)), 'InvalidVolume.NotFound');
  });
});
