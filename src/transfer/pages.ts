/**
 * Pages of a transfer's file list: a tree bigger than one page (or than one run's activities) is
 * moved page by page, each page one run of the workflow, the next starting after the last file of
 * the one before. Pure, no Node built-ins: the listing activities and the workflow both use it.
 *
 * @module
 */
import { BATCH_BYTES, BATCH_FILES } from './legs.js';

/** File activities one run schedules at most (large files plus batches): ≤ 7 × 2,000 + 100 events a run. */
export const MAX_UNITS_PER_RUN = 2_000;

/**
 * Relative paths in code point order, which is S3's order (UTF-8 byte order) too: a page cut in
 * this order continues with S3's `StartAfter` or a local scan filtered by {@link afterCursor}.
 */
export function compareRel(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(i) as number;
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

/** Whether `rel` comes after the cursor (every path does when there is none). */
export function afterCursor(rel: string, after: string | undefined): boolean {
  return after === undefined || compareRel(rel, after) > 0;
}

/**
 * One page of a whole (filtered) listing: the files after `after`, at most `maxFiles`, in
 * {@link compareRel} order, and `next` (the page's last path) when more follow. Without `maxFiles`,
 * or when the whole listing fits and no cursor is given, the listing comes back as it was.
 */
export function pageOf<T extends { rel: string }>(files: T[], after: string | undefined, maxFiles: number | undefined): { files: T[]; next?: string } {
  if (maxFiles === undefined || (after === undefined && files.length <= maxFiles)) return { files };
  const rest = files.filter((f) => afterCursor(f.rel, after)).sort((a, b) => compareRel(a.rel, b.rel));
  if (rest.length <= maxFiles) return { files: rest };
  const page = rest.slice(0, maxFiles);
  return { files: page, next: (page.at(-1) as T).rel };
}

/**
 * How many of `files` (in listing order) one run takes so that its file activities — one per file
 * larger than `smallLimit`, one per batch of small files, as `batchUnits` groups them — stay within
 * `maxUnits`. All of them when they fit.
 */
export function filesWithinUnits(files: readonly { size: number }[], smallLimit: number, maxUnits = MAX_UNITS_PER_RUN): number {
  let large = 0;
  let batches = 0;
  let inBatch = 0;
  let batchBytes = 0;
  for (let i = 0; i < files.length; i++) {
    const size = (files[i] as { size: number }).size;
    if (size > smallLimit) large++;
    else if (batches === 0 || inBatch >= BATCH_FILES || batchBytes + size > BATCH_BYTES) {
      batches++;
      inBatch = 1;
      batchBytes = size;
    } else {
      inBatch++;
      batchBytes += size;
    }
    if (large + batches > maxUnits) return i;
  }
  return files.length;
}
