/**
 * An upload's checkpoint: what a retry resumes from, and S3's composite checksum it is checked
 * against. Pure.
 *
 * @module
 */
import { createHash } from 'node:crypto';

export interface UploadCheckpoint {
  kind: 'upload';
  key: string;
  size: number;
  mtimeMs: number;
  /** The source file's identity beyond size and mtime (both can be forged by `touch`): a replaced file has another inode or ctime. */
  ino?: number;
  ctimeMs?: number;
  partSize: number;
  checksum: string;
  uploadId?: string;
  /**
   * The uploads of this key already in progress before this run first started one: someone else's.
   * Recorded before CreateMultipartUpload, so any other upload of the key found once the object is
   * complete is one this run started but never recorded (a lost reply, a worker killed before its
   * checkpoint), and is aborted.
   */
  others?: string[];
  /** CreateMultipartUpload calls sent for this file: an unrecorded upload can exist only past the first. */
  creates?: number;
  parts: { n: number; etag: string; sha256?: string }[];
}

/** The checkpoint to resume from: the heartbeat's and the state file's, parts merged when they name the same upload. */
export function mergeUploadCheckpoints(a: UploadCheckpoint | undefined, b: UploadCheckpoint | undefined): UploadCheckpoint | undefined {
  const ok = (c: UploadCheckpoint | undefined): c is UploadCheckpoint => c?.kind === 'upload' && typeof c.key === 'string';
  if (!ok(a)) return ok(b) ? b : undefined;
  if (!ok(b)) return a;
  if (a.uploadId === undefined) return b;
  if (b.uploadId === undefined || b.uploadId !== a.uploadId) return a;
  const parts = new Map([...a.parts, ...b.parts].map((p) => [p.n, p]));
  return { ...a, parts: [...parts.values()] };
}

/** S3's composite SHA-256 of a multipart object: SHA-256 over the parts' raw digests, base64, `-N`. */
export function compositeSha256(partDigestsBase64: readonly string[]): string {
  const h = createHash('sha256');
  for (const d of partDigestsBase64) h.update(Buffer.from(d, 'base64'));
  return `${h.digest('base64')}-${partDigestsBase64.length}`;
}
