import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * trainctl's object checksum: SHA-256 of each `partSize` slice of the bytes, then SHA-256 of the
 * concatenated part digests, written `HEX-N` (N parts; `-0` for an empty file). It is the same
 * whether the object went up in one PutObject or in N parts, it can be computed part by part
 * while uploading, and it is stored in the object's metadata because the emulator does not
 * validate S3's own checksums.
 */
export function compositeChecksum(partDigests: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const d of partDigests) h.update(d);
  return `${h.digest('hex')}-${partDigests.length}`;
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Object metadata keys (S3 lower-cases them). */
export const META_CHECKSUM = 'trainctl-sha256';
export const META_PART_SIZE = 'trainctl-part-size';

/**
 * Streams a file once: part digests and composite checksum, its length, and — with `whole` — the
 * whole-file SHA-256 and MD5 (what S3 ETags and single-part checks compare). Memory: one read
 * buffer, whatever the file size.
 */
async function hashFile(path: string, partSize: number, signal: AbortSignal | undefined, whole: boolean) {
  const parts: Buffer[] = [];
  const sha = whole ? createHash('sha256') : undefined;
  const md5 = whole ? createHash('md5') : undefined;
  let h = createHash('sha256');
  let inPart = 0;
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) }) as AsyncIterable<Buffer>) {
    sha?.update(chunk);
    md5?.update(chunk);
    size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(partSize - inPart, chunk.length - off);
      h.update(chunk.subarray(off, off + take));
      inPart += take;
      off += take;
      if (inPart === partSize) {
        parts.push(h.digest());
        h = createHash('sha256');
        inPart = 0;
      }
    }
  }
  if (inPart > 0) parts.push(h.digest());
  return { checksum: compositeChecksum(parts), parts, size, sha256: sha?.digest('hex') ?? '', md5: md5?.digest('hex') ?? '' };
}

/** A file's part digests and composite checksum (what an upload stores). */
export async function fileChecksum(path: string, partSize: number, signal?: AbortSignal): Promise<{ checksum: string; parts: Buffer[] }> {
  const { checksum, parts } = await hashFile(path, partSize, signal, false);
  return { checksum, parts };
}

/** One pass over a file: trainctl's composite checksum, whole-file SHA-256 and MD5, length. */
export async function digestFile(
  path: string,
  partSize: number,
  signal?: AbortSignal,
): Promise<{ checksum: string; sha256: string; md5: string; size: number }> {
  const { checksum, sha256, md5, size } = await hashFile(path, partSize, signal, true);
  return { checksum, sha256, md5, size };
}
