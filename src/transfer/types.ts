/**
 * The transfer engine's inputs, results and the few things it needs from whoever runs it (an
 * activity): a stable id, a heartbeat, an abort signal, a progress sink, a logger. Temporal-free.
 *
 * @module
 */
import type { Encoding } from './compress.js';
import type { S3For } from '../aws/profiles.js';

export interface UploadInput {
  region: string;
  /** The destination's AWS profile (absent: the worker's default client). */
  profile?: string | undefined;
  path: string;
  bucket: string;
  key: string;
  /** Bytes; planned from the size when absent. */
  partSize?: number | undefined;
  concurrency: number;
  sync: boolean;
  label: string;
  progressIntervalMs: number;
  /** Compress text-like files (all with `compressAll`) before they go up. */
  compress?: Encoding | undefined;
  compressAll?: boolean | undefined;
}

export interface DownloadInput {
  region: string;
  /** The source's AWS profile (absent: the worker's default client). */
  profile?: string | undefined;
  bucket: string;
  key: string;
  path: string;
  partSize?: number | undefined;
  concurrency: number;
  sync: boolean;
  label: string;
  progressIntervalMs: number;
}

export interface FileResult {
  label: string;
  size: number;
  /** Bytes that crossed the wire in this activity's final attempt chain (0 when skipped). */
  sent: number;
  skipped: boolean;
  /** The bytes were checked against trainctl's checksum (false for foreign objects without one). */
  verified: boolean;
  checksum?: string;
  /** Parts (upload) or ranges (download) a retry found finished and did not send again. */
  resumed: number;
}

export interface BatchInput<I> {
  label: string;
  files: I[];
  /** Files of the batch in flight at once. */
  concurrency: number;
  progressIntervalMs: number;
}

/** Wraps one S3 call or file pass; the activities turn what it throws into a taxonomy failure. */
export type Step = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

/** A constant message plus attributes, as `log` of `@temporalio/activity` takes them. */
export interface Logger {
  info(message: string, attrs?: Record<string, unknown>): void;
  warn(message: string, attrs?: Record<string, unknown>): void;
}

/** Bytes moved so far, reported to the workflow. */
export interface Progress {
  add(n: number): void;
  current(file: string): void;
}

/** What one run of an engine function gets from the activity that runs it. */
export interface RunScope {
  /** The same for every attempt of one activity (workflow id / activity id): names state and temp files. */
  id: string;
  /** The checkpoint the last attempt heartbeated; undefined on a first attempt or inside a batch. */
  resume: unknown;
  /** Records a checkpoint with the server; absent inside a batch, whose activity owns the heartbeat. */
  heartbeat?: ((details: unknown) => void) | undefined;
  /** Where this run's bytes are counted. */
  progress: Progress;
  /** Cancellation of the activity, handed to every AWS call and file stream. */
  signal: AbortSignal | undefined;
}

/** What the engine is built with, once per worker. */
export interface EngineDeps {
  s3: S3For;
  /** Turns a location's path into an absolute one this worker may touch (host roots, or anything locally). */
  resolvePath(path: string): Promise<string>;
  /** Roots that are a device or a file: no download lands on one. */
  fileRoots?: readonly string[] | undefined;
  step: Step;
  log: Logger;
  /** How often a running activity heartbeats its checkpoint. */
  heartbeatIntervalMs: number;
}

/** The run was cancelled: its abort signal fired, or the failure is the SDK's CancelledFailure. */
export function isCancelled(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (err instanceof Error && err.name === 'CancelledFailure');
}

/**
 * Reasons an attempt is abandoned while the activity lives on (the SDK's cancel reasons): its
 * heartbeat timed out on a loaded machine or a killed worker's, the worker is shutting down.
 * The next attempt, maybe already running beside it, resumes from its temp files and upload.
 */
const ATTEMPT_ABANDONED = /^(TIMED_OUT|NOT_FOUND|WORKER_SHUTDOWN|PAUSED|RESET|HEARTBEAT_DETAILS_CONVERSION_FAILED)$/;

/**
 * Whether this file's work ends with this failure, so its temp files, checkpoint and multipart
 * upload go: a cancel of the transfer itself, or a failure no retry can fix. An abandoned attempt
 * (see {@link ATTEMPT_ABANDONED}) keeps them for the attempt that follows.
 */
export function endsTheFile(err: unknown, signal: AbortSignal | undefined, retryable: (err: unknown) => boolean): boolean {
  if (!isCancelled(err, signal)) return !retryable(err);
  const reason: unknown = signal?.aborted ? signal.reason : err;
  return !(reason instanceof Error && ATTEMPT_ABANDONED.test(reason.message));
}
