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

/** trainctl's checksum computed incrementally: feed bytes in order, read the part digests and the composite at the end. */
export class PartHasher {
  readonly parts: Buffer[] = [];
  private h = createHash('sha256');
  private inPart = 0;

  constructor(private readonly partSize: number) {}

  update(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(this.partSize - this.inPart, chunk.length - off);
      this.h.update(chunk.subarray(off, off + take));
      this.inPart += take;
      off += take;
      if (this.inPart === this.partSize) {
        this.parts.push(this.h.digest());
        this.h = createHash('sha256');
        this.inPart = 0;
      }
    }
  }

  /** The composite checksum (ends the last, partial part). */
  checksum(): string {
    if (this.inPart > 0) {
      this.parts.push(this.h.digest());
      this.inPart = 0;
    }
    return compositeChecksum(this.parts);
  }
}

/**
 * Streams a file once: part digests and composite checksum, its length, and — with `whole` — the
 * whole-file SHA-256 and MD5 (what S3 ETags and single-part checks compare). Memory: one read
 * buffer, whatever the file size.
 */
async function hashFile(path: string, partSize: number, signal: AbortSignal | undefined, whole: boolean) {
  const sha = whole ? createHash('sha256') : undefined;
  const md5 = whole ? createHash('md5') : undefined;
  const hasher = new PartHasher(partSize);
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) }) as AsyncIterable<Buffer>) {
    sha?.update(chunk);
    md5?.update(chunk);
    size += chunk.length;
    hasher.update(chunk);
  }
  const checksum = hasher.checksum();
  return { checksum, parts: hasher.parts, size, sha256: sha?.digest('hex') ?? '', md5: md5?.digest('hex') ?? '' };
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
