/**
 * A tree bigger than a page goes page by page: each run of the transfer workflow moves one page
 * and continues-as-new with the next, so every run's history stays within docs/LIMITS.md's budget
 * whatever the tree's size. Small pages here (100 files) stand for the default 20,000.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import proto from '@temporalio/proto';
import { ZodError } from 'zod';
import { ApplicationFailure } from '@temporalio/common';
import { uniqueName } from './helpers/harness.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { MiB, failureOf, randomData, tempDir, transferSuite, treeDigests, writeTree, type TransferSuite } from './helpers/transfer.js';
import * as transferApi from '../src/api/transfer.js';
import type { TransferReport, TransferRequest } from '../src/contracts/transfer.js';
import { BATCH_FILES } from '../src/transfer/legs.js';
import { compareRel, filesWithinUnits, pageOf } from '../src/transfer/pages.js';
import { cutPage } from '../src/workflows/transfer-pages.js';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;
const { EventType } = proto.temporal.api.enums.v1;

let suite: TransferSuite;
let src: string;
const SMALL = 300;
const LARGE = 2;

before(async () => {
  suite = await transferSuite('pages');
  src = tempDir('pages-src');
  const files: Record<string, Buffer | string> = {};
  // Names whose folder-walk order differs from path order (`a.txt` < `a/…` as paths, after them in a walk).
  for (let i = 0; i < SMALL; i++) files[`${['a', 'a.d', 'b'][i % 3]}/f${String(i).padStart(3, '0')}.txt`] = `file ${i}\n`;
  files['a.txt'] = 'top';
  delete files['b/f299.txt'];
  for (let i = 0; i < LARGE; i++) files[`large/l${i}.bin`] = randomData(6 * MiB);
  writeTree(src, files);
});

/** Every run of a workflow, first to last, with its events (following continue-as-new). */
async function runsOf(workflowId: string, firstRunId: string): Promise<HistoryEvent[][]> {
  const runs: HistoryEvent[][] = [];
  for (let runId: string | undefined = firstRunId; runId; ) {
    const events: HistoryEvent[] = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await suite.client.workflowService.getWorkflowExecutionHistory({
        namespace: 'default',
        execution: { workflowId, runId },
        ...(nextPageToken ? { nextPageToken } : {}),
      });
      events.push(...(page.history?.events ?? []));
      nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
    } while (nextPageToken);
    runs.push(events);
    runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return runs;
}

/** Runs a transfer to its end and returns its report and every run's events. */
async function transferRuns(request: TransferRequest): Promise<{ report: TransferReport; runs: HistoryEvent[][]; workflowId: string }> {
  const workflowId = uniqueName('transfer-pages');
  const handle = await transferApi.start(suite.client, request, { taskQueue: suite.worker.taskQueue, workflowId });
  const report = await handle.result();
  return { report, runs: await runsOf(workflowId, handle.firstExecutionRunId), workflowId };
}

/** docs/LIMITS.md's budget for one run: 7 events per file activity, plus 100 for planning and the end. */
const runBudget = (smallFiles: number, largeFiles: number) => 7 * (Math.ceil(smallFiles / BATCH_FILES) + largeFiles) + 100;

async function keysUnder(prefix: string): Promise<number> {
  const listed = await suite.s3.send(new ListObjectsV2Command({ Bucket: suite.bucket, Prefix: prefix }));
  return listed.KeyCount ?? 0;
}

test(
  'a tree of 302 files in pages of 100 goes up and back in one run per page, each within its event budget, byte-identical, and a sync re-run skips every file',
  { timeout: 300_000 },
  async (t) => {
    const files = SMALL + LARGE;
    const prefix = `pages-${uniqueName('p')}/`;
    const uri = `s3://${suite.bucket}/${prefix}`;
    const up = await transferRuns({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri }, pageFiles: 100, partSizeMiB: 5 });
    assert.equal(up.report.files, files);
    assert.equal(up.report.verified, files, 'every file verified, whatever its page');
    assert.equal(up.runs.length, Math.ceil(files / 100), 'one run per page');
    for (const [i, events] of up.runs.entries()) {
      const last = events.at(-1)?.eventType;
      const expected = i < up.runs.length - 1 ? EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW : EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED;
      assert.equal(last, expected, `run ${i + 1} ends as it should`);
      assert.ok(events.length <= runBudget(100, LARGE), `run ${i + 1}: ${events.length} events, budget ${runBudget(100, LARGE)}`);
    }
    assert.equal(await keysUnder(prefix), files, 'every file is in S3 once');
    const progress = await transferApi.progress(suite.client, up.workflowId);
    assert.equal(progress.page, up.runs.length, 'the progress query of the latest run names its page');
    assert.equal(progress.filesInEarlierPages, 300, 'and the files the pages before it moved');
    assert.equal(progress.filesDone, files - 300, "its counters are the page's");

    const back = tempDir('pages-back');
    const down = await transferRuns({ source: { kind: 's3', uri }, destination: { kind: 'local', path: back }, pageFiles: 100, partSizeMiB: 5 });
    assert.equal(down.report.files, files);
    assert.equal(down.report.verified, files);
    assert.equal(down.runs.length, Math.ceil(files / 100), 'the S3 listing is paged too');
    assert.deepEqual(treeDigests(back), treeDigests(src), 'every byte came back, nothing extra');

    const again = await transferRuns({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri }, pageFiles: 100, partSizeMiB: 5, sync: true });
    assert.equal(again.report.files, files);
    assert.equal(again.report.skipped, files, 'sync skips every identical file, page by page');
    assert.equal(again.report.bytes, 0);
    t.diagnostic(
      `runs (events): up ${up.runs.map((r) => r.length).join('/')}, down ${down.runs.map((r) => r.length).join('/')}, sync ${again.runs.map((r) => r.length).join('/')}; budget ${runBudget(100, LARGE)} a run`,
    );
  },
);

test('a tree that fits one page runs once, with no page marker: the commands of a transfer before pages', { timeout: 120_000 }, async () => {
  const prefix = `one-${uniqueName('p')}/`;
  const { report, runs } = await transferRuns({
    source: { kind: 'local', path: join(src, 'a') },
    destination: { kind: 's3', uri: `s3://${suite.bucket}/${prefix}` },
  });
  assert.equal(report.files, SMALL / 3);
  assert.equal(runs.length, 1);
  assert.equal(runs[0]!.filter((e) => e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED).length, 0, 'no patch marker');
});

test(
  'deleteExtraneous on a tree bigger than a page is refused with InvalidInput naming the split, before anything is written',
  { timeout: 120_000 },
  async () => {
    const prefix = `mirror-${uniqueName('p')}/`;
    const failure = await failureOf(
      transferRuns({
        source: { kind: 'local', path: src },
        destination: { kind: 's3', uri: `s3://${suite.bucket}/${prefix}` },
        pageFiles: 100,
        deleteExtraneous: true,
      }),
    );
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, /whole tree in one page.*split it by prefix or --include/);
    assert.equal(await keysUnder(prefix), 0, 'nothing was written');
  },
);

test('the CLI moves a tree page by page with --page-files, and refuses --page-files 0 before anything is written', { timeout: 180_000 }, async () => {
  const env = cliEnv(suite.services.env, suite.worker.taskQueue);
  const prefix = `cli-${uniqueName('p')}/`;
  const ok = await runCli(['transfer', join(src, 'a'), `s3://${suite.bucket}/${prefix}`, '--page-files', '40', '--json'], env);
  assert.equal(ok.code, 0, ok.stderr);
  const report = JSON.parse(ok.stdout) as TransferReport & { workflowId: string };
  assert.equal(report.files, SMALL / 3, 'the report adds up the three pages');
  assert.equal(report.verified, SMALL / 3);
  assert.equal(await keysUnder(prefix), SMALL / 3);
  assert.equal((await transferApi.progress(suite.client, report.workflowId)).page, 3, 'in three runs');
  const badPrefix = `cli-bad-${uniqueName('p')}/`;
  const bad = await runCli(['transfer', join(src, 'a'), `s3://${suite.bucket}/${badPrefix}`, '--page-files', '0'], env);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /pageFiles.*at least 1/);
  assert.equal(await keysUnder(badPrefix), 0, 'nothing was written');
});

test(
  "pages are cut in code point order (S3's), continue after their last path, and stop at the file activities one run may schedule",
  { timeout: 10_000 },
  () => {
    const rels = ['b', 'a/x', 'a.txt', '\u{1F600}', '\uFFFD', 'a'];
    assert.deepEqual([...rels].sort(compareRel), ['a', 'a.txt', 'a/x', 'b', '\uFFFD', '\u{1F600}'], 'UTF-8 byte order, not UTF-16');
    const files = rels.map((rel) => ({ rel }));
    assert.deepEqual(pageOf(files, undefined, 10), { files }, 'a listing that fits comes back as it was');
    const first = pageOf(files, undefined, 4);
    assert.deepEqual(first, { files: ['a', 'a.txt', 'a/x', 'b'].map((rel) => ({ rel })), next: 'b' });
    assert.deepEqual(pageOf(files, first.next, 4), { files: ['\uFFFD', '\u{1F600}'].map((rel) => ({ rel })) }, 'the last page has no next');
    const small = (n: number) => Array.from({ length: n }, () => ({ size: 1 }));
    const large = (n: number) => Array.from({ length: n }, () => ({ size: 10 }));
    assert.equal(filesWithinUnits(small(250), 5, 3), 250, '250 small files are 3 batches');
    assert.equal(filesWithinUnits(small(301), 5, 3), 300, 'the 301st would open a 4th');
    assert.equal(filesWithinUnits([...large(2), ...small(150)], 5, 3), 102, 'two large files and one batch');
  },
);

test('a run cuts its page where its file activities would pass the bound, in path order, and only when it may page', { timeout: 10_000 }, () => {
  const large = (rels: string[]) => ({ single: false, files: rels.map((rel) => ({ rel, size: 10 })) });
  const yes = () => true;
  assert.deepEqual(cutPage(large(['c', 'a', 'b', 'e', 'd']), 5, 2, yes), { files: large(['a', 'b']).files, next: 'b' }, 'two large files, the rest next run');
  assert.equal(
    cutPage(large(['c', 'a', 'b']), 5, 2, () => false),
    undefined,
    'a run recorded before pages keeps its whole listing',
  );
  assert.equal(
    cutPage(large(['c', 'a']), 5, 2, () => assert.fail('no patch for a run that fits')),
    undefined,
    'a listing that fits is left as listed',
  );
  assert.deepEqual(cutPage({ ...large(['b', 'a']), next: 'b' }, 5, 2, yes), { files: large(['a', 'b']).files, next: 'b' }, "the listing's own cursor goes on");
  // A listing that ignored the cursor (a worker older than pages) gives the whole tree again: the run keeps what follows its cursor.
  assert.deepEqual(
    cutPage({ ...large(['a', 'b', 'c', 'd', 'e']), after: 'b' }, 5, 2, yes),
    { files: large(['c', 'd']).files, next: 'd' },
    'the page after the cursor',
  );
  assert.deepEqual(
    cutPage({ ...large(['a', 'b', 'c']), after: 'b' }, 5, 2, yes),
    { files: large(['c']).files, next: undefined },
    'the last page, not the whole tree',
  );
  assert.throws(
    () => cutPage({ ...large(['c']), after: 'b', next: 'a' }, 5, 2, yes),
    (err: unknown) => err instanceof ApplicationFailure && err.nonRetryable && /did not move past it/.test(err.message),
    'a listing whose next page does not move on is refused rather than looping',
  );
});

test(
  'a continuation given at start is refused: by the API before the server is contacted, and by the workflow when a start bypasses the API',
  { timeout: 120_000 },
  async () => {
    const prefix = `forged-${uniqueName('p')}/`;
    const continuation = {
      fromRunId: 'a-run-id-the-forger-guessed',
      after: 'f150.bin',
      page: 2,
      startedMs: 0,
      files: 0,
      bytes: 0,
      skipped: 0,
      verified: 0,
      skippedSymlinks: [],
    };
    const request = {
      source: { kind: 'local', path: src },
      destination: { kind: 's3', uri: `s3://${suite.bucket}/${prefix}` },
      continuation,
    } as TransferRequest;
    assert.throws(
      () => transferApi.validate(request),
      (err: unknown) => err instanceof ZodError && err.issues[0]?.path[0] === 'continuation',
    );
    const raw = suite.client.workflow.start('transfer', { taskQueue: suite.worker.taskQueue, workflowId: uniqueName('transfer-forged'), args: [request] });
    const failure = await failureOf((await raw).result());
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, /continuation: set only by the transfer itself/);
    assert.equal(await keysUnder(prefix), 0, 'nothing was written');
  },
);
