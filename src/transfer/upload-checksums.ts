/**
 * How an upload's bytes get their SHA-256: known ahead from a first pass over the file (its digest
 * sent with the body), or hashed while they are sent — the SDK computes S3's checksum as the body
 * streams and sends it after it (a trailer) for the store to check, and trainctl hashes the same
 * bytes on their way out, so the digest it records never rests on the store's word alone.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Transform, pipeline, type Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { compositeChecksum, fileChecksum } from './checksum.js';
import { rangeBody } from './upload-parts.js';

/**
 * Files up to this size go up from memory: read once, hashed, and sent as a buffer with their
 * digest ahead (and trainctl's checksum in the metadata). No trailer, and a body the SDK can send
 * again on its own retry; at most this much per file in flight.
 */
export const INLINE_MAX = 256 * 1024;

/** The pass before sending: part digests and checksum, and a small file's bytes (see {@link INLINE_MAX}). */
export async function firstPass(
  path: string,
  size: number,
  partSize: number,
  signal?: AbortSignal,
): Promise<{ parts: Buffer[]; checksum: string; inline?: Buffer }> {
  if (size > INLINE_MAX) return fileChecksum(path, partSize, signal);
  const inline = await readFile(path, signal ? { signal } : {});
  const parts = inline.length > 0 ? [createHash('sha256').update(inline).digest()] : [];
  return { parts, checksum: compositeChecksum(parts), inline };
}

/** A part's (or a whole object's) body, the checksum fields of its request, and the digest of what was sent. */
export interface PartBody {
  body: Readable | Buffer;
  checksum: { ChecksumSHA256?: string; ChecksumAlgorithm?: 'SHA256' };
  /** Base64 SHA-256 of the bytes sent (once the body was consumed), or undefined when nothing hashed them. */
  sent(): string | undefined;
}

/**
 * Bytes [start, end) of `path` as a request body. With `digest` (known ahead) it is sent with them;
 * without, and with `partSums`, they are hashed while sent; without `partSums` no S3 checksum goes.
 */
export function partBody(path: string, start: number, end: number, digest: string | undefined, partSums: boolean, inline?: Buffer): PartBody {
  const body = inline ?? rangeBody(path, start, end);
  if (!partSums) return { body, checksum: {}, sent: () => digest };
  if (Buffer.isBuffer(body)) {
    // A small file's bytes or an empty range: hashed on the spot if need be, the digest sent ahead.
    const known = digest ?? createHash('sha256').update(body).digest('base64');
    return { body, checksum: { ChecksumSHA256: known }, sent: () => known };
  }
  if (digest !== undefined) return { body, checksum: { ChecksumSHA256: digest }, sent: () => digest };
  const h = createHash('sha256');
  let digested: string | undefined;
  const tap = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, done) {
      h.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      digested = h.digest('base64');
      done();
    },
  });
  // pipeline, not pipe: a request aborted mid-body destroys the file stream too (its descriptor closed).
  pipeline(body, tap, () => undefined);
  return { body: tap, checksum: { ChecksumAlgorithm: 'SHA256' }, sent: () => digested };
}

/**
 * The digest to record for bytes hashed while sent: trainctl's own, which must be what the store
 * answered (it checked the SDK's trailer against what it received); Integrity otherwise.
 */
export function acknowledged(sent: string | undefined, answered: string | undefined, what: string): string | undefined {
  if (sent !== undefined && answered !== undefined && sent !== answered)
    throw new TrainctlError(ErrorKind.Integrity, `${what}: the store reports SHA-256 ${answered} for the bytes sent, they hash to ${sent}`);
  return sent ?? answered;
}

/** Per client: whether its store reported S3's SHA-256 of an object hashed while sending (unknown until one was read back). */
const reportsChecksums = new WeakMap<S3Client, boolean>();

export function storeReportsChecksums(s3: S3Client): boolean | undefined {
  return reportsChecksums.get(s3);
}

export function noteStoreReportsChecksums(s3: S3Client, reports: boolean): void {
  reportsChecksums.set(s3, reports);
}
