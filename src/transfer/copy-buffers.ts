/**
 * What an S3 → S3 copy holds and checks outside its main flow: part bodies read into memory under
 * a process-wide budget, and a compressed copy read back through its decompressor.
 *
 * @module
 */
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { PartHasher } from './checksum.js';
import { decompressor } from './compress.js';
import type { ObjectMeta } from './object-meta.js';
import { planPartSize } from './plan.js';

/** A response body read into one buffer of the expected length (no chunk list, no second copy). */
export async function readAll(body: unknown, expected: number, what: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(expected);
  let n = 0;
  for await (const c of body as AsyncIterable<Uint8Array>) {
    if (n + c.length > expected) throw new TrainctlError(ErrorKind.Transient, `${what}: more than the ${expected} bytes asked for`);
    out.set(c, n);
    n += c.length;
  }
  if (n !== expected) throw new TrainctlError(ErrorKind.Transient, `${what}: got ${n} bytes, expected ${expected}`);
  return out;
}

/**
 * Bytes of parts held in memory by every copy of this process at once: a part waits for room (one
 * larger than the whole budget waits until it is alone), so many files × many parts × big parts
 * cannot exhaust the worker's memory.
 */
const COPY_BUFFER_BYTES = 256 * 1024 * 1024;
let buffered = 0;
const waiting: (() => void)[] = [];

export async function withBuffer<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  while (buffered > 0 && buffered + bytes > COPY_BUFFER_BYTES) await new Promise<void>((r) => waiting.push(r));
  buffered += bytes;
  try {
    return await fn();
  } finally {
    buffered -= bytes;
    for (const wake of waiting.splice(0)) wake();
  }
}

/** A compressed copy, read back and decompressed, must give the original's checksum (kind Integrity otherwise). */
export async function verifyDecoded(
  s3: S3Client,
  at: { bucket: string; key: string },
  label: string,
  meta: ObjectMeta,
  signal: AbortSignal | undefined,
): Promise<void> {
  const originalSize = meta.originalSize ?? 0;
  const hasher = new PartHasher(meta.partSize ?? planPartSize(originalSize));
  let n = 0;
  const out = await s3.send(new GetObjectCommand({ Bucket: at.bucket, Key: at.key }), { abortSignal: signal });
  await pipeline(
    out.Body as Readable,
    decompressor(meta.encoding as 'gzip' | 'zstd'),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        if (n > originalSize) return cb(new TrainctlError(ErrorKind.Integrity, `${label}: decompresses to more than its recorded ${originalSize} bytes`));
        hasher.update(chunk);
        cb();
      },
    }),
  );
  const sum = hasher.checksum();
  if (n !== originalSize || sum !== meta.checksum)
    throw new TrainctlError(ErrorKind.Integrity, `${label}: the copy decompresses to ${n} bytes with checksum ${sum}; the source records ${meta.checksum}`);
}
