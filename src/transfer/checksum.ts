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
 * Streams a file once and returns its part digests and composite checksum. Memory: one read
 * buffer, whatever the file size. `onBytes` is called as bytes are read (for heartbeats).
 */
export async function fileChecksum(path: string, partSize: number, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<{ checksum: string; parts: Buffer[] }> {
  const parts: Buffer[] = [];
  let h = createHash('sha256');
  let inPart = 0;
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
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
    onBytes?.(chunk.length);
  }
  if (inPart > 0) parts.push(h.digest());
  return { checksum: compositeChecksum(parts), parts };
}
