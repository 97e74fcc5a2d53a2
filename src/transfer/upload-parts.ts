/**
 * Part-level helpers of the upload engine: streamed part bodies and digests, a part's own retries,
 * the parts S3 already holds, and the check of the stored object after an upload.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { AbortMultipartUploadCommand, HeadObjectCommand, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { listAllMultipartUploads } from '../aws/multipart.js';
import { ErrorKind, TrainctlError, isRetryable } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { objectMeta } from './object-meta.js';
import { isCancelled, type Step } from './types.js';

/** A part's bytes as a stream from the file (an empty buffer for an empty file). */
export function rangeBody(path: string, start: number, end: number): Readable | Buffer {
  return end > start ? createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 }) : Buffer.alloc(0);
}

/** Base64 SHA-256 of bytes [start, end) of a file, streamed. */
export async function hashRange(path: string, start: number, end: number): Promise<string> {
  const h = createHash('sha256');
  if (end > start) for await (const chunk of createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('base64');
}

/**
 * A streamed body cannot be replayed by the SDK's own retries, so a part is retried here with a
 * fresh stream: a blip costs one part, not an activity attempt.
 */
export async function withPartRetries<T>(signal: AbortSignal | undefined, send: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (attempt >= 3 || isCancelled(err, signal) || !isRetryable(classify(err))) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

/**
 * Every part S3 holds for a multipart upload (all pages). By hand, not `paginateListParts`: that
 * paginator follows NextPartNumberMarker whatever IsTruncated says, and moto sets the marker on
 * the last page too (with marker "0" after it), which would loop.
 */
export async function listParts(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  step: Step,
  signal: AbortSignal | undefined,
): Promise<{ n: number; etag: string; size: number; sha256?: string }[]> {
  const out: { n: number; etag: string; size: number; sha256?: string }[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await step(`list parts of s3://${bucket}/${key}`, () =>
      s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }), { abortSignal: signal }),
    );
    for (const p of page.Parts ?? []) {
      if (p.PartNumber && p.ETag) out.push({ n: p.PartNumber, etag: p.ETag, size: p.Size ?? -1, ...(p.ChecksumSHA256 ? { sha256: p.ChecksumSHA256 } : {}) });
    }
    if (!page.IsTruncated || !page.NextPartNumberMarker) return out;
    marker = page.NextPartNumberMarker;
  }
}

/** Fails with kind Integrity unless the stored object has the size and trainctl checksum that were sent. */
export async function verifyUploaded(
  s3: S3Client,
  input: { bucket: string; key: string; label: string },
  size: number,
  checksum: string,
  step: Step,
  signal: AbortSignal | undefined,
): Promise<void> {
  const head = await step(`head s3://${input.bucket}/${input.key}`, () =>
    s3.send(new HeadObjectCommand({ Bucket: input.bucket, Key: input.key }), { abortSignal: signal }),
  );
  if (head.ContentLength !== size || objectMeta(head).checksum !== checksum) {
    throw new TrainctlError(ErrorKind.Integrity, `${input.label}: the stored object does not match what was sent (size ${head.ContentLength} vs ${size})`);
  }
}

/** The ids of the uploads of `key` in progress now (all pages of the listing). */
export async function uploadIdsOfKey(
  s3: S3Client,
  o: { bucket: string; key: string; label: string },
  step: Step,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const uploads = await step(`list multipart uploads of ${o.label}`, () => withPartRetries(signal, () => listAllMultipartUploads(s3, o.bucket, o.key, signal)));
  return uploads.flatMap((u) => (u.Key === o.key && u.UploadId ? [u.UploadId] : []));
}

/**
 * Aborts the uploads of `key` that are not in `keep` and hold no part: an upload whose id its
 * creator never recorded never received a part (parts follow the recorded id), while another
 * writer's upload holding parts is left alone. Throws when the store fails (retryable), so the
 * sweep is retried with the activity rather than an upload left open for ever.
 */
export async function abortUnrecordedUploads(
  s3: S3Client,
  o: { bucket: string; key: string; label: string },
  keep: Set<string | undefined>,
  step: Step,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (const id of await uploadIdsOfKey(s3, o, step, signal)) {
    if (keep.has(id)) continue;
    try {
      if ((await listParts(s3, o.bucket, o.key, id, step, signal)).length > 0) continue;
      const abort = new AbortMultipartUploadCommand({ Bucket: o.bucket, Key: o.key, UploadId: id });
      await step(`abort unrecorded upload of ${o.label}`, () => withPartRetries(signal, () => s3.send(abort, { abortSignal: signal })));
    } catch (err) {
      // Gone meanwhile (completed or aborted by its owner): nothing left to do.
      if (classify(err) !== ErrorKind.NotFound) throw err;
    }
  }
}
