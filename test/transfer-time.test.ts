/**
 * docs/LIMITS.md's "events from time" row, held on sdk-java's time-skipping test server: a transfer
 * whose store refuses every request for a simulated day waits it out inside its activities (retry
 * backoffs are the waits that server skips), then completes, verified, with the history of an
 * uninterrupted run.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { testServices, uniqueName } from './helpers/harness.js';
import { timeSkippingEnv } from './helpers/time-skipping.js';
import { emulatorProxy } from './helpers/proxy.js';
import { waitUntil } from './helpers/run-evidence.js';
import { MiB, randomData, tempDir, testBucket, treeDigests, writeTree } from './helpers/transfer.js';
import { awsClientsFor, createWorker } from '../src/worker.js';
import { createS3Client } from '../src/aws/clients.js';
import { TransferWorkflowType, type TransferReport, type TransferRequest } from '../src/contracts/transfer.js';
import * as transferApi from '../src/api/transfer.js';
import { BATCH_FILES } from '../src/transfer/legs.js';
import type { FaultProxy } from '../src/dev/fault-proxy.js';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time.js';
import { ErrorKind } from '../src/errors/kinds.js';
import { step } from '../src/activities/aws-call.js';
import { boundUnknown, MAX_UNKNOWN_ATTEMPTS, TRANSFER_THROTTLE_BACKOFF } from '../src/activities/transfer-scope.js';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

const HOUR = 3_600_000;
let env: TestWorkflowEnvironment;
let worker: Worker;
let proxy: FaultProxy;
let bucket: string;
const taskQueue = uniqueName('transfer-time');

before(async () => {
  const svc = await testServices();
  env = await timeSkippingEnv();
  proxy = await emulatorProxy(svc.env);
  bucket = await testBucket(createS3Client(svc.env), 'txtime');
  worker = await createWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    // Every S3 call of this worker goes through the proxy, one SDK attempt each: Temporal's retries are what wait.
    deps: { ...awsClientsFor({ ...svc.env, AWS_ENDPOINT_URL: proxy.endpoint }, { maxAttempts: 1 }), localRoots: [tmpdir()] },
    ...(svc.bundlePath ? { workflowBundle: { codePath: svc.bundlePath } } : {}),
  });
});

/** docs/LIMITS.md's transfer budget: 7 events per file activity, plus 100 for planning and the end. */
function transferEventBudget(smallFiles: number, largeFiles: number): number {
  return 7 * (Math.ceil(smallFiles / BATCH_FILES) + largeFiles) + 100;
}

const ms = (t: HistoryEvent['eventTime']) => Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6);

/** Starts a transfer on the time-skipping server (no search attributes: that server cannot register them). */
async function start(request: TransferRequest) {
  return env.client.workflow.start(TransferWorkflowType, { taskQueue, workflowId: uniqueName('transfer'), args: [transferApi.validate(request)] });
}

test(
  'a download whose store refuses every object request for 24 simulated hours waits it out, completes verified, and its history stays the size of an uninterrupted run',
  { timeout: 240_000 },
  async (t) => {
    const src = tempDir('time-src');
    const dst = tempDir('time-dst');
    const small = 8;
    const files: Record<string, Buffer> = { 'big.bin': randomData(6 * MiB) };
    for (let i = 0; i < small; i++) files[`small/f${i}.txt`] = randomData(1_000 + i);
    writeTree(src, files);
    const prefix = `time-${uniqueName('p')}/`;
    const options = { partSizeMiB: 5, heartbeatTimeoutSeconds: 60 } as const; // generous: the attempts themselves run in real time
    const download = (to: string): TransferRequest => ({
      source: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
      destination: { kind: 'local', path: to },
      ...options,
    });
    const wall = Date.now();
    await worker.runUntil(async () => {
      const up = await start({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, ...options });
      await up.result();
      // The same download uninterrupted: what its history looks like without a day passing.
      const clean = await start(download(join(dst, 'clean')));
      const cleanReport: TransferReport = await clean.result();
      assert.equal(cleanReport.verified, small + 1);
      const cleanEvents = (await clean.fetchHistory()).events ?? [];

      // The listing goes through (planning steps keep their 10 attempts); every object read is refused with 503 SlowDown until a day has passed in the server's time.
      await proxy.setRules(['HeadObject', 'GetObject'].map((op) => ({ op, fault: 'error' as const, status: 503, code: 'SlowDown', bucket })));
      await proxy.clearLog();
      const t0 = await env.currentTimeMs();
      const handle = await start(download(join(dst, 'outage')));
      // Waiting on the result is what lets the server skip time (the retry backoffs between attempts).
      const result = handle.result();
      result.catch(() => undefined);
      await waitUntil(async () => ((await env.currentTimeMs()) - t0 >= 24 * HOUR ? true : undefined), 150_000, '24 simulated hours to pass', 50);
      await proxy.setRules([]);
      const report: TransferReport = await result;

      const refused = (await proxy.log()).filter((e) => e.fault === 'error' && e.status === 503).length;
      assert.ok(refused >= 100, `the store refused every attempt for the day (${refused} requests refused)`);
      assert.equal(report.files, small + 1);
      assert.equal(report.verified, small + 1, 'every file was verified against its upload checksum');
      assert.deepEqual(treeDigests(join(dst, 'outage')), treeDigests(src), 'every file is byte-identical to its source, and no temp file is left');

      const events = (await handle.fetchHistory()).events ?? [];
      const startedAt = ms(events[0]?.eventTime);
      const closedAt = ms(events.at(-1)?.eventTime);
      assert.equal(events.at(-1)?.eventType, proto.temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, 'the run completed');
      assert.ok(closedAt - startedAt >= 24 * HOUR, `the run spans ${((closedAt - startedAt) / HOUR).toFixed(1)} h of workflow time, at least a day`);
      const started = events.flatMap((e) => {
        const a = e.activityTaskStartedEventAttributes;
        const type = events.find((s) => Number(s.eventId) === Number(a?.scheduledEventId))?.activityTaskScheduledEventAttributes?.activityType?.name;
        return a ? [{ type, attempt: a.attempt ?? 1 }] : [];
      });
      const fileActivities = started.filter((s) => s.type === 'transferDownload' || s.type === 'transferDownloadBatch');
      assert.equal(fileActivities.length, 2, 'one activity for the batch of small files, one for the large file');
      for (const s of fileActivities) assert.ok(s.attempt >= 50, `${s.type} was attempted through the day (${s.attempt} attempts), none of them an event`);
      const budget = transferEventBudget(small, 1);
      assert.ok(events.length <= budget, `${events.length} events, budget ${budget}`);
      assert.ok(
        Math.abs(events.length - cleanEvents.length) <= 4,
        `a day of refusals adds no events: ${events.length} events against ${cleanEvents.length} uninterrupted`,
      );
      t.diagnostic(
        `simulated day: ${events.length} events (uninterrupted ${cleanEvents.length}, budget ${budget}), attempts ${fileActivities.map((s) => s.attempt).join('/')}, ` +
          `${refused} refused requests, span ${((closedAt - startedAt) / HOUR).toFixed(2)} h, wall ${((Date.now() - wall) / 1000).toFixed(1)} s`,
      );
    });
  },
);

test(
  'a transfer activity retries throttling for as long as its schedule-to-close allows, backing off up to 10 minutes, but an unclassified failure only 20 times',
  { timeout: 30_000 },
  async () => {
    const unknown = () => ApplicationFailure.create({ type: ErrorKind.Unknown, message: 'odd' });
    const at = (attempt: number) => new MockActivityEnvironment({ attempt });
    const bounded = async (attempt: number): Promise<ApplicationFailure> => {
      const out: unknown = await at(attempt).run(async () => boundUnknown(unknown()));
      assert.ok(out instanceof ApplicationFailure);
      return out;
    };
    assert.equal((await bounded(MAX_UNKNOWN_ATTEMPTS - 1)).nonRetryable, false, 'retried before the bound');
    const last = await bounded(MAX_UNKNOWN_ATTEMPTS);
    assert.equal(last.nonRetryable, true, 'not retried from the bound on');
    assert.equal(last.type, ErrorKind.Unknown);
    const throttled = ApplicationFailure.create({ type: ErrorKind.Throttled, message: 'SlowDown' });
    assert.equal(await at(500).run(async () => boundUnknown(throttled)), throttled, 'throttling is never cut short by the count');
    const delayAt = async (attempt: number) => {
      const err = await at(attempt)
        .run(() =>
          step(
            'put',
            () => Promise.reject(Object.assign(new Error('SlowDown'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } })),
            TRANSFER_THROTTLE_BACKOFF,
          ),
        )
        .catch((e: unknown) => e);
      assert.ok(err instanceof ApplicationFailure && err.type === ErrorKind.Throttled, String(err));
      return msToNumber(err.nextRetryDelay ?? 0);
    };
    assert.ok((await delayAt(1)) <= 2_500, 'the first retry comes soon');
    const late = await delayAt(40);
    assert.ok(late >= 450_000 && late <= 750_000, `a long outage is probed about every 10 minutes (${late} ms)`);
  },
);
