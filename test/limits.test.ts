/**
 * The budgets of docs/LIMITS.md, held: a transfer's history grows with its activities (one per
 * large file, one per batch of up to 100 small files), never with time or progress; and a file
 * list too big for one history is refused before anything is written.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { uniqueName } from './helpers/harness.js';
import { failureOf, tempDir, transferSuite, type TransferSuite } from './helpers/transfer.js';
import * as transferApi from '../src/api/transfer.js';
import { BATCH_FILES } from '../src/transfer/legs.js';

let suite: TransferSuite;
let client: Client;

before(async () => {
  suite = await transferSuite('limits');
  client = suite.client;
});

/** A history's events, fetched in small pages (a big history is more than one gRPC message holds). */
async function historyEvents(workflowId: string): Promise<proto.temporal.api.history.v1.IHistoryEvent[]> {
  const out: proto.temporal.api.history.v1.IHistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.getWorkflowExecutionHistory({
      namespace: 'default',
      execution: { workflowId },
      // Pages are cut by event count, not bytes: small pages stay under gRPC's 4 MB message limit.
      maximumPageSize: 20,
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    out.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return out;
}

/** The budget docs/LIMITS.md states for a transfer: 7 events per file activity, plus 100 for planning and the end. */
function transferEventBudget(smallFiles: number, largeFiles: number): number {
  return 7 * (Math.ceil(smallFiles / BATCH_FILES) + largeFiles) + 100;
}

test('a transfer of 20,000 small files stays within its stated event budget', { timeout: 600_000 }, async (t) => {
  const src = tempDir('limits-20k');
  const n = 20_000;
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(src, `d${d}`));
    for (let i = 0; i < n / 20; i++) writeFileSync(join(src, `d${d}`, `f${i}.txt`), `${d}/${i}\n`);
  }
  const prefix = `limits-${uniqueName('p')}/`;
  const workflowId = uniqueName('transfer-20k');
  const report = await transferApi.execute(
    client,
    { source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${suite.bucket}/${prefix}` }, fileConcurrency: 8 },
    { taskQueue: suite.worker.taskQueue, workflowId },
  );
  assert.equal(report.files, n);
  assert.equal(report.verified, n);
  const events = await historyEvents(workflowId);
  const budget = transferEventBudget(n, 0);
  const bytes = events.reduce((n, e) => n + proto.temporal.api.history.v1.HistoryEvent.encode(e).finish().length, 0);
  t.diagnostic(`20,000 files: ${events.length} events (budget ${budget}), ${(bytes / 1e6).toFixed(1)} MB of history; ${report.seconds.toFixed(1)} s`);
  assert.ok(events.length <= budget, `${events.length} events, over the budget of ${budget}`);
  let keys = 0;
  let token: string | undefined;
  do {
    const page = await suite.s3.send(new ListObjectsV2Command({ Bucket: suite.bucket, Prefix: prefix, ContinuationToken: token }));
    keys += page.KeyCount ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  assert.equal(keys, n, 'every file is in S3');
});

test('a file list too big for one history is refused with InvalidInput before anything is written, saying how to split it', { timeout: 300_000 }, async () => {
  const src = tempDir('limits-names');
  // 7,000 files whose relative paths are about 230 bytes: about 1.9 MB of names.
  const dir = join(src, 'd'.repeat(100));
  mkdirSync(dir);
  for (let i = 0; i < 7_000; i++) writeFileSync(join(dir, `${String(i).padStart(6, '0')}-${'n'.repeat(120)}.txt`), 'x');
  const prefix = `limits-big-${uniqueName('p')}/`;
  const failure = await failureOf(
    transferApi.execute(
      client,
      { source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${suite.bucket}/${prefix}` } },
      { taskQueue: suite.worker.taskQueue, workflowId: uniqueName('transfer-names') },
    ),
  );
  assert.equal(failure.type, 'InvalidInput');
  assert.match(failure.message, /lists 7000 files in about 1\.\d MB of names, more than one transfer carries \(1\.5 MB\): split it by prefix or --include/);
  const listed = await suite.s3.send(new ListObjectsV2Command({ Bucket: suite.bucket, Prefix: prefix }));
  assert.equal(listed.KeyCount ?? 0, 0, 'nothing was written');
});
