/**
 * Part-level helpers of the upload engine: streamed part bodies and digests, a part's own retries,
 * the parts S3 already holds, and the check of the stored object after an upload.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { compositeSha256 } from './upload-checkpoint.js';
import { headObject } from './s3-maintenance.js';
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

/** Throws (retryable) when the source file is no longer the one the upload began with: the next attempt's checkpoint no longer matches, and the file starts over. */
export async function checkUnchanged(abs: string, st: { size: number; mtimeMs: number; ino: number; ctimeMs: number }, label: string): Promise<void> {
  const now = await stat(abs);
  if (now.size !== st.size || now.mtimeMs !== st.mtimeMs || now.ino !== st.ino || now.ctimeMs !== st.ctimeMs)
    throw new TrainctlError(ErrorKind.Transient, `${label} changed while it was being uploaded; restarting it`);
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

/** The stored object has the size sent but no checksum to check it by: a store that takes S3's checksums and does not report them. */
export class StoreKeepsNoChecksum extends TrainctlError {
  constructor(message: string) {
    super(ErrorKind.Integrity, message);
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
  const head = await step(`head s3://${input.bucket}/${input.key}`, () => headObject(s3, input.bucket, input.key, signal));
  const stored = objectMeta(head).checksum;
  if (head.ContentLength !== size || stored !== checksum) {
    if (stored === undefined && head.ContentLength === size)
      throw new StoreKeepsNoChecksum(
        `${input.label}: the store reports no checksum for s3://${input.bucket}/${input.key} (neither trainctl's metadata nor S3's SHA-256 of it)`,
      );
    throw new TrainctlError(
      ErrorKind.Integrity,
      `${input.label}: the stored object does not match what was sent (size ${head.ContentLength} vs ${size}, checksum ${stored ?? 'none'} vs ${checksum})`,
    );
  }
}

/**
 * Completes a multipart upload from its parts (with their SHA-256 digests, base64). NoSuchUpload
 * after a lost response is success when `stored()` finds the object an earlier call completed.
 * What S3 reports (its composite of the part checksums, where the server returns one) must be the
 * composite of the digests sent.
 */
export async function completeMultipart(
  o: { s3: S3Client; input: { bucket: string; key: string; label: string }; uploadId: string; partSums: boolean; step: Step; signal: AbortSignal | undefined },
  parts: readonly { n: number; etag: string; sha256?: string }[],
  stored: () => Promise<boolean>,
): Promise<void> {
  const { input } = o;
  const Parts = parts.map((p) => ({ PartNumber: p.n, ETag: p.etag, ...(o.partSums ? { ChecksumSHA256: p.sha256 } : {}) }));
  const completed = await o
    .step(`complete multipart upload of ${input.label}`, () =>
      o.s3.send(new CompleteMultipartUploadCommand({ Bucket: input.bucket, Key: input.key, UploadId: o.uploadId, MultipartUpload: { Parts } }), {
        abortSignal: o.signal,
      }),
    )
    .catch(async (err: unknown) => {
      if (classify(err) === ErrorKind.NotFound && (await stored())) return undefined;
      throw err;
    });
  const reported = completed?.ChecksumSHA256;
  const local = compositeSha256(parts.map((p) => p.sha256 as string));
  if (reported && /-\d+$/.test(reported) && reported !== local)
    throw new TrainctlError(ErrorKind.Integrity, `${input.label}: S3 reports checksum ${reported} for the parts, the local parts give ${local}`);
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
