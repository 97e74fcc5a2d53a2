/**
 * An upload's checkpoint: what a retry resumes from, and S3's composite checksum it is checked
 * against. Pure.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { compositeChecksum } from './checksum.js';

/**
 * `upload2`: the file is hashed while it is sent, so `checksum` is absent until the end. A new kind,
 * so a worker from before it restarts the file rather than resuming it (it would take the missing
 * checksum for the stored object's missing one and call any object of that size a match).
 */
export type UploadKind = 'upload' | 'upload2';

export function isUploadKind(kind: unknown): kind is UploadKind {
  return kind === 'upload' || kind === 'upload2';
}

export interface UploadCheckpoint {
  kind: UploadKind;
  key: string;
  size: number;
  mtimeMs: number;
  /** The source file's identity beyond size and mtime (both can be forged by `touch`): a replaced file has another inode or ctime. */
  ino?: number;
  ctimeMs?: number;
  partSize: number;
  /**
   * trainctl's checksum of the file. Absent while an upload that hashes its parts as it sends them
   * is in progress: then it is the composite of the part digests S3 acknowledged, set at the end.
   */
  checksum?: string;
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
  const ok = (c: UploadCheckpoint | undefined): c is UploadCheckpoint => isUploadKind(c?.kind) && typeof c?.key === 'string';
  if (!ok(a)) return ok(b) ? b : undefined;
  if (!ok(b)) return a;
  if (a.uploadId === undefined) return b;
  if (b.uploadId === undefined || b.uploadId !== a.uploadId || b.kind !== a.kind) return a;
  const parts = new Map([...a.parts, ...b.parts].map((p) => [p.n, p]));
  return { ...a, parts: [...parts.values()] };
}

/** S3's composite SHA-256 of a multipart object: SHA-256 over the parts' raw digests, base64, `-N`. */
export function compositeSha256(partDigestsBase64: readonly string[]): string {
  const h = createHash('sha256');
  for (const d of partDigestsBase64) h.update(Buffer.from(d, 'base64'));
  return `${h.digest('base64')}-${partDigestsBase64.length}`;
}

/** trainctl's checksum of a file from its parts' SHA-256 digests (base64, in part order). */
export function checksumOfDigests(digestsBase64: readonly string[]): string {
  return compositeChecksum(digestsBase64.map((d) => Buffer.from(d, 'base64')));
}
