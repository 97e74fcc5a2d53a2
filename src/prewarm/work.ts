/**
 * What the host's data engines (device reader, dataset check, cache sync) need from whoever runs
 * them, so they stay free of Temporal: the activity glue in `activities/prewarm.ts` builds a
 * {@link WorkContext} from the activity's context; a test or benchmark builds a plain one.
 *
 * @module
 */
import { stat } from 'node:fs/promises';

/** Runs one named step and turns what it throws into a failure that names the step. */
export type Step = <T>(context: string, fn: () => Promise<T>) => Promise<T>;

/** Resolves a path on the host against its roots (symlinks included); refuses one outside them. */
export type ResolvePath = (path: string) => Promise<string>;

export interface WorkContext {
  step: Step;
  resolve: ResolvePath;
  /** Aborted when the work is cancelled; the engines stop at their next block or object. */
  signal?: AbortSignal | undefined;
  /** Records progress; a retry of the same work gets the last details back as `previous`. */
  heartbeat(details: unknown): void;
  /** What an earlier attempt last heartbeated, if any. */
  previous?: unknown;
  /** The attempt number, from 1. */
  attempt: number;
  info(message: string, attributes: Record<string, unknown>): void;
  warn(message: string, attributes: Record<string, unknown>): void;
}

export const MiB = 1024 * 1024;

/** Throws the abort reason (the activity's CancelledFailure) once `signal` is aborted. */
export function stopIfCancelled(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}

/** A relative path with no `..`, `.` or empty segments: what a manifest or an S3 key may name. */
export function safeRelative(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\0') || p.includes('\\')) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/** Whether `path` is a regular file of exactly `size` bytes. */
export async function fileOfSize(path: string, size: number): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && s.size === size;
  } catch {
    return false;
  }
}
