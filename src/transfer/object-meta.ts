/**
 * trainctl's metadata on an S3 object, read as untrusted input: whoever can write to a bucket can
 * write it.
 *
 * @module
 */
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { META_CHECKSUM, META_PART_SIZE, compositeChecksum } from './checksum.js';
import { encodingOf, type Encoding } from './compress.js';
import { MAX_OBJECT_SIZE, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE, partCount, planPartSize } from './plan.js';

/** trainctl's metadata on an object as read, before it is trusted. */
export interface ObjectMeta {
  checksum?: string;
  partSize?: number;
  encoding: Encoding;
  originalSize?: number;
  /** The object carried trainctl metadata outside S3's limits (or inconsistent with its length): all of it was ignored. */
  foreign?: true;
}

/** What {@link objectMeta} reads of a HeadObject answer (asked with `ChecksumMode: ENABLED` for S3's own checksum). */
export type ObjectHead = Pick<HeadObjectCommandOutput, 'Metadata' | 'ContentLength'> &
  Partial<Pick<HeadObjectCommandOutput, 'ChecksumSHA256' | 'ChecksumType'>>;

/**
 * trainctl's metadata on an object: checksum of the original bytes, its part size, encoding,
 * original size. Whoever can write to the bucket writes this metadata, so it is accepted only
 * within S3's limits (parts of 5 MiB–5 GiB, at most 10,000 of them, a checksum whose part count
 * matches the size, an original size consistent with the object's length); otherwise every
 * trainctl field is ignored and the object is treated as foreign (verified by ETag or length).
 *
 * An upload that hashed its parts while sending them records no checksum in the metadata (it is
 * known only once the last part is sent): its checksum is S3's own SHA-256 of the object, which
 * the store computed from the bytes and the part checksums it checked — see {@link fromS3Checksum}.
 */
export function objectMeta(head: ObjectHead): ObjectMeta {
  const m = head.Metadata ?? {};
  const ours = [META_CHECKSUM, META_PART_SIZE, META_ENCODING, META_ORIGINAL_SIZE].some((k) => m[k] !== undefined);
  if (!ours) return { encoding: 'none' };
  const foreign: ObjectMeta = { encoding: 'none', foreign: true };
  const stored = head.ContentLength;
  const int = (v: string | undefined) => (v !== undefined && /^\d{1,16}$/.test(v) ? Number(v) : undefined);
  const encodingText = m[META_ENCODING];
  if (encodingText !== undefined && !['', 'none', 'gzip', 'zstd'].includes(encodingText)) return foreign;
  const encoding = encodingOf(encodingText);
  const partSize = int(m[META_PART_SIZE]);
  if (m[META_PART_SIZE] !== undefined && (partSize === undefined || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE)) return foreign;
  const originalSize = int(m[META_ORIGINAL_SIZE]);
  if (m[META_ORIGINAL_SIZE] !== undefined && (originalSize === undefined || originalSize > MAX_OBJECT_SIZE)) return foreign;
  // Uncompressed bytes are the object's own: a recorded size must be its length.
  if (encoding === 'none' && originalSize !== undefined && stored !== undefined && originalSize !== stored) return foreign;
  if (encoding !== 'none' && originalSize === undefined) return foreign;
  const size = originalSize ?? stored;
  if (size !== undefined && partSize !== undefined && partCount(size, partSize) > MAX_PARTS) return foreign;
  const checksum = m[META_CHECKSUM] ?? (encoding === 'none' && partSize !== undefined && size !== undefined ? fromS3Checksum(head, size, partSize) : undefined);
  if (checksum !== undefined) {
    const parts = /^[0-9a-f]{64}-(\d{1,5})$/.exec(checksum)?.[1];
    if (parts === undefined) return foreign;
    if (size !== undefined && Number(parts) !== partCount(size, partSize ?? planPartSize(size))) return foreign;
  }
  return {
    ...(checksum !== undefined ? { checksum } : {}),
    ...(partSize !== undefined ? { partSize } : {}),
    encoding,
    ...(originalSize !== undefined ? { originalSize } : {}),
  };
}

/**
 * trainctl's checksum of an object from S3's SHA-256 of it: a one-part object's full-object
 * SHA-256 is its one part digest, a multipart object's composite (`BASE64-N`, `COMPOSITE`) is
 * SHA-256 over the part digests — trainctl's own composite, base64 rather than hex. Only for an
 * object whose trainctl part size says how many parts it has, so a composite of other parts is
 * never taken for it; undefined when the store reports no SHA-256 or one that cannot be this.
 */
function fromS3Checksum(head: ObjectHead, size: number, partSize: number): string | undefined {
  const m = /^([A-Za-z0-9+/]{43}=)(?:-(\d{1,5}))?$/.exec(head.ChecksumSHA256 ?? '');
  if (!m || size === 0) return undefined;
  const digest = Buffer.from(m[1] as string, 'base64');
  const parts = partCount(size, partSize);
  if (parts === 1) return m[2] === undefined && head.ChecksumType !== 'COMPOSITE' ? compositeChecksum([digest]) : undefined;
  // A composite names its part count (moto leaves the suffix off); a full-object SHA-256 of a multipart object is not a composite.
  if ((m[2] !== undefined && Number(m[2]) !== parts) || head.ChecksumType === 'FULL_OBJECT') return undefined;
  return `${digest.toString('hex')}-${parts}`;
}

/** Object metadata keys for compressed objects (S3 lower-cases them). */
export const META_ENCODING = 'trainctl-encoding';
export const META_ORIGINAL_SIZE = 'trainctl-size';
