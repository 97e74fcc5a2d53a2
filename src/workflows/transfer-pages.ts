import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { TransferContinuation, TransferReport } from '../contracts/transfer.js';
import type { SourceList } from '../transfer/legs.js';
import { MiB } from '../transfer/plan.js';
import { MAX_UNITS_PER_RUN, afterCursor, compareRel, filesWithinUnits } from '../transfer/pages.js';
import { ErrorKind } from '../errors/kinds.js';

/**
 * This run's page, when the tree is more than one run moves: the listing said more follow
 * (`next`), or its files would need more than `MAX_UNITS_PER_RUN` file activities, in which case
 * the page is cut there. Undefined when the whole listing is this run's: a transfer of one page
 * schedules exactly the commands it did before pages existed.
 *
 * Runs recorded before pages listed a tree whole and refused one over `MAX_FILES`; they replay
 * through the `transfer-pages` patch as they ran. Deprecate it once no transfer recorded before it
 * is kept (closed runs included: queries replay them), then remove it.
 */
export function cutPage(
  list: SourceList & { next?: string; after?: string },
  smallLimit: number,
  maxUnits = MAX_UNITS_PER_RUN,
  mayPage: () => boolean = () => patched('transfer-pages'),
): { files: SourceList['files']; next: string | undefined } | undefined {
  if (list.single) return undefined;
  // What sorts after the cursor only: a listing that ignored it (a worker older than pages) would
  // otherwise move the first page again in every run, for ever.
  const { after } = list;
  const listed = after === undefined ? list.files : list.files.filter((f) => afterCursor(f.rel, after));
  if (after !== undefined && list.next !== undefined && !afterCursor(list.next, after))
    throw ApplicationFailure.create({
      type: ErrorKind.Unknown,
      nonRetryable: true,
      message: `the listing after ${after} did not move past it (next: ${list.next})`,
    });
  const whole = listed.length === list.files.length && list.next === undefined;
  if (whole && filesWithinUnits(listed, smallLimit, maxUnits) >= listed.length) return undefined;
  if (!mayPage()) return undefined;
  // A page is cut in path order, the order the next page's listing starts from.
  const sorted = [...listed].sort((a, b) => compareRel(a.rel, b.rel));
  const n = filesWithinUnits(sorted, smallLimit, maxUnits);
  if (n >= sorted.length) return { files: sorted, next: list.next };
  const files = sorted.slice(0, Math.max(1, n));
  return { files, next: (files.at(-1) as { rel: string }).rel };
}

/** The report of every page so far: this run's page and, from the continuation, the pages before it. */
export function withEarlierPages(report: TransferReport, c: TransferContinuation | undefined, nowMs: number): TransferReport {
  if (!c) return report;
  const seconds = (nowMs - c.startedMs) / 1000;
  const bytes = report.bytes + c.bytes;
  const planned = c.planned || report.planned ? { planned: [...(c.planned ?? []), ...(report.planned ?? [])].slice(0, 1000) } : {};
  const staged = c.stagingObjectsDeleted ?? report.stagingObjectsDeleted;
  return {
    ...report,
    files: report.files + c.files,
    bytes,
    seconds,
    MiBps: seconds > 0 ? Math.round((bytes / MiB / seconds) * 100) / 100 : 0,
    skipped: report.skipped + c.skipped,
    verified: report.verified + c.verified,
    skippedSymlinks: [...c.skippedSymlinks, ...report.skippedSymlinks].slice(0, 1000),
    ...planned,
    ...(staged !== undefined ? { stagingObjectsDeleted: (c.stagingObjectsDeleted ?? 0) + (report.stagingObjectsDeleted ?? 0) } : {}),
  };
}

/** What the next run carries: where its page starts and the totals so far (lists capped at 1,000). */
export function continuationAfter(
  report: TransferReport,
  next: string,
  c: TransferContinuation | undefined,
  startedMs: number,
  fromRunId: string,
): TransferContinuation {
  return {
    fromRunId,
    after: next,
    page: (c?.page ?? 1) + 1,
    startedMs: c?.startedMs ?? startedMs,
    files: report.files,
    bytes: report.bytes,
    skipped: report.skipped,
    verified: report.verified,
    ...(report.stagingObjectsDeleted !== undefined ? { stagingObjectsDeleted: report.stagingObjectsDeleted } : {}),
    skippedSymlinks: report.skippedSymlinks.slice(0, 1000),
    ...(report.planned ? { planned: report.planned.slice(0, 1000) } : {}),
  };
}
