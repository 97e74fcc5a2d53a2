import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { testServices, testClient, startWorker, uniqueName, onCleanup, type TestServices, type RunningWorker } from './helpers/harness.js';
import { startHostWorker, type HostWorkerProcess } from './helpers/host-worker.js';
import { writeDeviceFile } from './helpers/device.js';
import { bytesReadBy, throttleReads } from './helpers/throttle.js';
import { waitFor } from './helpers/wait.js';
import { PrewarmWorkflowType, type PrewarmRequest, type PrewarmResult } from '../src/contracts/prewarm.js';
import type { prewarm as prewarmWorkflow } from '../src/workflows/prewarm.js';
import type { PrewarmCheckpoint } from '../src/prewarm/device.js';
import * as prewarmApi from '../src/api/prewarm.js';
import { resourceQuery } from '../src/workflows/cost-tracker.js';
import { writeFileSync } from 'node:fs';

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;
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
  const host: HostWorkerProcess = await startHostWorker(services.env, { root });
  const pid = host.pid()!;
  // What a host worker reads to start and poll: the same for the restarted one, within bytes.
  const startupReads = bytesReadBy(pid);
  // Slowed from outside: the host may read 16 MiB/s (SIGSTOP/SIGCONT against its read count). The SDK
  // sends a heartbeat every 0.8 × 10 s (at most a second later when the host is held stopped), so the
  // server's watermark moves in steps of about 150 MiB, and the first one past half-way lands well
  // before the end of the device.
  const throttle = throttleReads(pid, { bytesPerSecond: 16 * MiB });
  try {
    const handle = await prewarm({
      strategy: 'PreWarmedEBS',
      hostId: host.hostId,
      device: DEVICE,
      fio: 'never',
      concurrency: CONCURRENCY,
      heartbeatTimeoutSeconds: 10,
      timeoutMinutes: 5,
    });
    const seen = await waitFor(
      async () => {
        const m = await serverWatermark(handle);
        return m >= SIZE / 2 ? m : undefined;
      },
      { what: 'the server to hold a watermark past half-way', timeoutMs: 180_000, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; host output:\n${host.output()}`);
    });
    const readBeforeKill = await throttle.hold();
    await host.kill('SIGKILL');
    throttle.release();
    // The dead host sends nothing more: this is what the next attempt is handed.
    const mark = await serverWatermark(handle);
    assert.ok(mark >= seen && mark < SIZE, `the server holds ${mark} after the kill (saw ${seen} before it)`);
    assert.ok(
      readBeforeKill >= mark && readBeforeKill < SIZE,
      `the first host read ${readBeforeKill} bytes: at least the watermark ${mark}, not the whole device`,
    );

    await host.restart();
    const pid2 = host.pid()!;
    const readyReads = bytesReadBy(pid2);
    const r = (await handle.result()) as PrewarmResult;
    const total2 = bytesReadBy(pid2);
    const p = r.prewarm!;
    assert.ok(p.attempt >= 2, `finished on attempt ${p.attempt}`);
    assert.equal(p.resumedFrom, mark, 'the retry started from the watermark the server held, not from 0');
    assert.equal(p.bytesReadThisAttempt, SIZE - mark);
    // Measured from outside: beyond what it read to start, the restarted host read the rest of the
    // device (SIZE - mark) and no more (1 MiB of slack for its sockets), never the whole device again.
    const left = SIZE - mark;
    assert.ok(total2 - startupReads >= left - MiB, `the restarted host read ${total2 - startupReads} bytes beyond starting up; ${left} were left`);
    assert.ok(total2 - readyReads <= left + MiB, `the restarted host read ${total2 - readyReads} bytes once polling; only ${left} were left`);
    assert.deepEqual(p.checksum, { algorithm: 'crc32', value: fileCrc }, 'the checksum carried across the crash covers the whole file in order');
    console.error(
      `[prewarm] throttled host (${JSON.stringify(throttle.counts())}) read ${(readBeforeKill / MiB).toFixed(0)} MiB, killed at server watermark ${mark / MiB} MiB (${((100 * mark) / SIZE).toFixed(0)} %); ` +
        `attempt ${p.attempt} resumed from ${p.resumedFrom / MiB} MiB; the restarted host read ${((total2 - readyReads) / MiB).toFixed(2)} MiB`,
    );
  } finally {
    throttle.release();
  }
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
