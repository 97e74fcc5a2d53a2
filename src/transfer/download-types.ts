/**
 * The verified download's checkpoint, options and result (see `downloadVerified`).
 *
 * @module
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Encoding } from './compress.js';

/** The finished ranges of a download, heartbeated and kept in a sidecar next to the temp file (not for a small one-range object). */
export interface DownloadCheckpoint {
  kind: 'download';
  etag: string;
  size: number;
  rangeSize: number;
  done: number[];
}

export interface VerifiedDownloadOptions {
  s3: S3Client;
  bucket: string;
  key: string;
  /** Absolute destination path; the caller has confined it. */
  path: string;
  /** How messages name the file. */
  label: string;
  /** Ranges in flight at once. */
  concurrency: number;
  /** Range size in bytes; trainctl's recorded part size (or one planned from the size) when absent. */
  rangeSize?: number | undefined;
  /** Skip the download when the file at `path` already has the object's checksum. */
  sync?: boolean | undefined;
  /**
   * Keep the temp file and its sidecar after a retryable failure, so that the next call resumes
   * from them. Without it the temp file is removed on any failure.
   */
  resumable?: boolean | undefined;
  /** A checkpoint heartbeated by an earlier attempt; merged with the sidecar's. */
  resume?: unknown;
  signal?: AbortSignal | undefined;
  /** Bytes written (negative when a whole re-fetch discards them). */
  onBytes?(n: number): void;
  /** A range finished: the checkpoint to heartbeat. */
  onCheckpoint?(cp: DownloadCheckpoint): void;
  /** Wraps each S3 call or file pass (the activities turn errors into taxonomy failures there). */
  step?<T>(what: string, fn: () => Promise<T>): Promise<T>;
  /** The caller needs the whole file's SHA-256 (a cache manifest): it costs a pass over the landed file. */
  wholeSha256?: boolean | undefined;
}

export interface VerifiedDownloadResult {
  /** Bytes of the file as it lands (after decoding). */
  size: number;
  /** Bytes fetched from S3 by this call (0 when skipped). */
  sent: number;
  skipped: boolean;
  /** What the bytes were checked against. */
  verifiedBy: 'checksum' | 'etag-md5' | 'length';
  /** trainctl's composite checksum, when the object carries one. */
  checksum?: string;
  /** SHA-256 (hex) of the whole file as it landed, when asked for (`wholeSha256`) or computed anyway. */
  sha256?: string;
  etag: string;
  encoding: Encoding;
  /** Ranges a resumed call found finished. */
  resumed: number;
}
