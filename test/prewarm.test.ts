import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { testServices, testClient, startWorker, uniqueName, onCleanup, type TestServices, type RunningWorker } from './helpers/harness.js';
import { startHostWorker, type HostWorkerProcess } from './helpers/host-worker.js';
import { writeDeviceFile } from './helpers/device.js';
import { PrewarmWorkflowType, type PrewarmRequest, type PrewarmResult } from '../src/contracts/prewarm.js';
import type { prewarm as prewarmWorkflow } from '../src/workflows/prewarm.js';
import type { PrewarmCheckpoint } from '../src/prewarm/device.js';
import * as prewarmApi from '../src/api/prewarm.js';
import { resourceQuery } from '../src/workflows/cost-tracker.js';
import { writeFileSync } from 'node:fs';

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;
const BLOCK = MiB;
const CONCURRENCY = 32;
const DEVICE = 'disk.img';

let services: TestServices;
let client: Client;
let worker: RunningWorker;
let root: string;
let fileCrc: string;

/** The file's CRC-32, read independently of the code under test. */
async function crcOfFile(path: string): Promise<string> {
  let crc = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) crc = crc32(chunk as Buffer, crc);
  return (crc >>> 0).toString(16).padStart(8, '0');
}

before(async () => {
  services = await testServices();
  client = await testClient(services.env);
  worker = await startWorker(services);
  // One folder shared by both host workers: the "instance's disk" holding the device stand-in.
  root = mkdtempSync(join(tmpdir(), 'trainctl-prewarm-'));
  onCleanup(() => rmSync(root, { recursive: true, force: true }));
  writeDeviceFile(join(root, DEVICE), SIZE);
  fileCrc = await crcOfFile(join(root, DEVICE));
});

function prewarm(request: PrewarmRequest) {
  return prewarmApi.start(client, request, { taskQueue: worker.taskQueue, workflowId: uniqueName('prewarm') });
}

test('PreWarmedEBS on a host worker reads every byte of a 512 MiB device once and reports MiB/s', async () => {
  const host = await startHostWorker(services.env, { root });
  const handle = await prewarm({ strategy: 'PreWarmedEBS', hostId: host.hostId, device: DEVICE, fio: 'never', concurrency: CONCURRENCY, timeoutMinutes: 5 });
  const r = (await handle.result()) as PrewarmResult;
  const p = r.prewarm!;
  assert.equal(r.strategy, 'PreWarmedEBS');
  assert.equal(p.method, 'builtin');
  assert.equal(p.bytes, SIZE);
  assert.equal(p.resumedFrom, 0);
  assert.equal(p.bytesReadThisAttempt, SIZE);
  assert.deepEqual(p.checksum, { algorithm: 'crc32', value: fileCrc }, 'the CRC of what was read, in order, is the file’s');
  assert.ok(p.mibPerSecond > 0 && Number.isFinite(p.mibPerSecond), String(p.mibPerSecond));
  assert.equal(r.bytes, SIZE);
  assert.ok(r.seconds > 0);
  console.error(`[prewarm] built-in reader on the host worker: ${p.mibPerSecond.toFixed(0)} MiB/s (${p.seconds.toFixed(2)} s, page cache warm)`);
});

/** The watermark the server holds from the activity's last heartbeat. */
async function serverWatermark(handle: Awaited<ReturnType<typeof prewarm>>): Promise<number> {
  const desc = await handle.describe();
  const payload = desc.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
  if (!payload) return 0;
  return defaultPayloadConverter.fromPayload<PrewarmCheckpoint>(payload).watermark;
}

test('a host worker killed half-way through PreWarmedEBS resumes from its heartbeated watermark after a restart', async () => {
  // 32 blocks in flight, each held 800 ms: about 40 MiB/s. With a 1 s heartbeat timeout the SDK sends
  // a heartbeat every 0.8 s, so the server's watermark moves in steps of about 32 MiB and the kill
  // lands just past half-way.
  const host: HostWorkerProcess = await startHostWorker(services.env, { root, extraEnv: { TRAINCTL_TEST_PREWARM_DELAY_MS: '800' } });
  const handle = await prewarm({
    strategy: 'PreWarmedEBS',
    hostId: host.hostId,
    device: DEVICE,
    fio: 'never',
    concurrency: CONCURRENCY,
    heartbeatTimeoutSeconds: 10,
    timeoutMinutes: 5,
  });
  let mark = 0;
  for (let i = 0; i < 600 && mark < SIZE / 2; i++) {
    await sleep(100);
    mark = await serverWatermark(handle);
  }
  assert.ok(mark >= SIZE / 2 && mark < SIZE, `the server saw the watermark at ${mark}, not half-way; host output:\n${host.output()}`);
  await host.kill('SIGKILL');
  await host.restart();
  const r = (await handle.result()) as PrewarmResult;
  const p = r.prewarm!;
  assert.ok(p.attempt >= 2, `finished on attempt ${p.attempt}`);
  assert.ok(p.resumedFrom >= mark, `resumed from ${p.resumedFrom}, below the ${mark} the server had before the kill`);
  assert.equal(p.bytesReadThisAttempt, SIZE - p.resumedFrom);
  assert.ok(p.bytesReadThisAttempt <= SIZE / 2 + CONCURRENCY * BLOCK, `read ${p.bytesReadThisAttempt} bytes after the restart`);
  assert.deepEqual(p.checksum, { algorithm: 'crc32', value: fileCrc }, 'the checksum carried across the crash covers the whole file in order');
  console.error(
    `[prewarm] killed at server watermark ${mark / MiB} MiB (${((100 * mark) / SIZE).toFixed(0)} %); attempt ${p.attempt} resumed from ${p.resumedFrom / MiB} MiB and read ${p.bytesReadThisAttempt / MiB} MiB`,
  );
});

test('PreWarmedEBS refuses a device outside the host’s roots without retrying', async () => {
  const host = await startHostWorker(services.env, { root });
  const handle = await prewarm({ strategy: 'PreWarmedEBS', hostId: host.hostId, device: '/etc/passwd', fio: 'never', timeoutMinutes: 2 });
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.ok(err.cause instanceof ActivityFailure);
  assert.ok(err.cause.cause instanceof ApplicationFailure);
  assert.equal(err.cause.cause.type, 'InvalidInput');
  const history = await handle.fetchHistory();
  const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
  assert.equal(started[0]?.activityTaskStartedEventAttributes?.attempt, 1, 'one attempt only');
});

test('an invalid prewarm request fails the run with InvalidInput before anything reaches the host', async () => {
  // Straight to the server, past the API's validation: the workflow must check its input itself.
  const handle = await client.workflow.start<typeof prewarmWorkflow>(PrewarmWorkflowType, {
    taskQueue: worker.taskQueue,
    workflowId: uniqueName('prewarm'),
    args: [{ strategy: 'PreWarmedEBS', hostId: 'no-such-host', device: 'x', heartbeatTimeoutSeconds: 0 } as PrewarmRequest],
  });
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.ok(err.cause instanceof ApplicationFailure);
  assert.equal(err.cause.type, 'InvalidInput');
  assert.match(err.cause.message, /heartbeatTimeoutSeconds/);
});

test('with a cost project, the time a prewarm spent is recorded with the tracker from start to end', async () => {
  const host = await startHostWorker(services.env, { root });
  writeFileSync(join(root, 'small.img'), Buffer.alloc(4 * MiB, 7));
  const project = uniqueName('prewarm-cost');
  const handle = await prewarm({
    strategy: 'PreWarmedEBS',
    hostId: host.hostId,
    device: 'small.img',
    fio: 'never',
    cost: { project, region: 'us-east-1', hourlyRate: 1.006 },
  });
  const r = (await handle.result()) as PrewarmResult;
  assert.equal(r.bytes, 4 * MiB);
  const tracker = client.workflow.getHandle(`cost-tracker/${project}`);
  onCleanup(() => tracker.terminate().catch(() => undefined));
  const view = await tracker.query(resourceQuery, `prewarm:${handle.workflowId}`);
  assert.ok(view, 'the tracker knows the prewarm');
  assert.equal(view.kind, 'transfer');
  assert.equal(view.type, 'prewarm-PreWarmedEBS');
  assert.equal(view.running, false, 'stopped when the prewarm ended');
  assert.equal(view.tags.host, host.hostId);
});
