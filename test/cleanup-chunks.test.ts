import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { Env } from '../src/config.js';
import { createEc2Client } from '../src/aws/clients.js';
import { injectFaults } from '../src/dev/faults.js';
import { awaitPlan, startCleanup } from '../src/api/cleanup.js';
import {
  CleanupInputSchema,
  CleanupWorkflowType,
  cleanupApproveUpdate,
  cleanupStatusQuery,
  type CleanupCarried,
  type CleanupRequest,
  type PlannedResource,
} from '../src/contracts/cleanup.js';
import { planCleanup, planHash, type DiscoveredResource, type Discovery } from '../src/cleanup-plan.js';
import { CLEANUP_MAX_PLAN_BYTES, CLEANUP_MAX_PLAN_RESOURCES, chunkPlan, planTooLarge } from '../src/cleanup-chunks.js';
import { ec2For, startWorker, testClient, testServices, uniqueName, type RunningWorker } from './helpers/harness.js';
import { deleteTaggedFixtures } from './helpers/volumes.js';
import { waitFor } from './helpers/wait.js';

const REGION = 'us-east-1';
const AZ = 'us-east-1a';
const RUN_TAG = 'trainctl:test-run';
const MANAGED = { 'trainctl:managed': 'true' };
/** Events a run may add besides 7 per step of its chunk: discovery, approval, markers, continue-as-new. */
const FIXED_EVENTS = 100;

const sorted = (xs: string[]) => [...xs].sort();

describe('chunking a plan (pure)', () => {
  const NOW = '2026-11-28T12:00:00.000Z';
  const input = (over: Partial<CleanupRequest> = {}) =>
    CleanupInputSchema.parse({ region: REGION, dryRun: false, ...over, selector: { tags: { [RUN_TAG]: 'r' }, kinds: ['instance', 'volume', 'snapshot'] } });
  const tags = { [RUN_TAG]: 'r', ...MANAGED };
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  /** 30 loose volumes, 5 instances each holding two of 10 more volumes, and 4 snapshots. */
  function discovery(): Discovery {
    const resources: DiscoveredResource[] = [];
    for (let v = 0; v < 40; v++) {
      const holder = v >= 30 ? `i-${hex(Math.floor((v - 30) / 2))}` : undefined;
      resources.push({
        id: `vol-${hex(v)}`,
        kind: 'volume',
        tags,
        state: holder ? 'in-use' : 'available',
        ...(holder ? { attachment: { instanceId: holder, device: `/dev/sd${'fg'[v % 2]}`, instanceState: 'running' } } : {}),
      });
    }
    for (let i = 0; i < 5; i++) {
      const volumes = [30 + 2 * i, 31 + 2 * i].map((v) => ({ volumeId: `vol-${hex(v)}`, device: `/dev/sd${'fg'[v % 2]}`, deleteOnTermination: false, tags }));
      resources.push({ id: `i-${hex(i)}`, kind: 'instance', tags, state: 'running', volumes });
    }
    for (let s = 0; s < 4; s++) resources.push({ id: `snap-${hex(s)}`, kind: 'snapshot', tags, state: 'completed' });
    return { region: REGION, discoveredAt: NOW, resources, missingIds: [] };
  }

  test('every resource is in exactly one chunk, an instance shares its chunk with its volumes, and settled lines (snapshots after volumes) never come before what they wait for', () => {
    const plan = planCleanup(discovery(), input());
    assert.equal(plan.resources.length, 49);
    for (const size of [1, 3, 7, 10, 100]) {
      const chunks = chunkPlan(plan.resources, size);
      assert.deepEqual(
        chunks.flat().sort((a, b) => a - b),
        plan.resources.map((_, i) => i),
        `size ${size}: each index once`,
      );
      const chunkOf = new Map<string, number>();
      chunks.forEach((c, n) => c.forEach((i) => chunkOf.set(plan.resources[i]!.id, n)));
      for (const r of plan.resources) {
        for (const d of r.dependsOn) {
          const mine = chunkOf.get(r.id)!;
          const theirs = chunkOf.get(d.resourceId)!;
          if (d.after === 'settled' && r.kind === 'snapshot') assert.ok(theirs <= mine, `size ${size}: ${d.resourceId} settles before ${r.id}`);
          else assert.equal(theirs, mine, `size ${size}: ${r.id} and ${d.resourceId} share a chunk`);
        }
      }
      // Every chunk but the last holds at least `size`; one holds at most size + a group (an instance and its two volumes) less one.
      chunks.slice(0, -1).forEach((c) => assert.ok(c.length >= size && c.length <= size + 2, `size ${size}: chunk of ${c.length}`));
    }
    assert.equal(chunkPlan(plan.resources, 100).length, 1);
    assert.equal(chunkPlan(plan.resources, 10).length, 5);
    assert.deepEqual(chunkPlan([], 10), []);
  });

  test(`a plan over ${CLEANUP_MAX_PLAN_RESOURCES} resources or ${CLEANUP_MAX_PLAN_BYTES} bytes is too large, and the refusal names its size and how to narrow the selector`, () => {
    const many = (n: number): Discovery => ({
      region: REGION,
      discoveredAt: NOW,
      missingIds: [],
      resources: Array.from({ length: n }, (_, v): DiscoveredResource => ({ id: `vol-${hex(v)}`, kind: 'volume', tags, state: 'available' })),
    });
    assert.equal(planTooLarge(planCleanup(many(CLEANUP_MAX_PLAN_RESOURCES), input())), undefined);
    const refusal = planTooLarge(planCleanup(many(CLEANUP_MAX_PLAN_RESOURCES + 1), input()));
    assert.match(refusal ?? '', /deletes 2001 resources \(2001 volume\)/);
    assert.match(refusal ?? '', /narrow the selector .*another tag.*olderThan.*nothing was deleted/);
    // 60 volumes and 120 snapshots: every snapshot waits for every volume, so the plan passes its byte bound.
    const wide = many(60);
    for (let s = 0; s < 120; s++) wide.resources.push({ id: `snap-${hex(s)}`, kind: 'snapshot', tags, state: 'completed' });
    assert.match(planTooLarge(planCleanup(wide, input())) ?? '', /deletes 180 resources \(60 volume, 120 snapshot\).* bytes; one cleanup plans at most/);
  });
});

describe('a cleanup of more resources than one chunk', { timeout: 240_000 }, () => {
  let env: Env;
  let client: Client;
  let worker: RunningWorker;
  let ec2: EC2Client;
  let bundlePath: string | undefined;
  const runIds: string[] = [];

  before(async () => {
    const services = await testServices();
    env = services.env;
    bundlePath = services.bundlePath;
    client = await testClient(env);
    worker = await startWorker({ env, bundlePath });
    ec2 = ec2For(env);
  });
  after(() => deleteTaggedFixtures(ec2, RUN_TAG, runIds));

  const tagList = (t: Record<string, string>) => Object.entries(t).map(([Key, Value]) => ({ Key, Value }));
  async function volumes(run: string, n: number, extra: Record<string, string>): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i += 16) {
      const batch = Array.from({ length: Math.min(16, n - i) }, () =>
        ec2.send(
          new CreateVolumeCommand({
            AvailabilityZone: AZ,
            Size: 1,
            TagSpecifications: [{ ResourceType: 'volume', Tags: tagList({ [RUN_TAG]: run, ...extra }) }],
          }),
        ),
      );
      ids.push(...(await Promise.all(batch)).map((v) => v.VolumeId!));
    }
    return ids;
  }
  async function liveVolumes(run: string): Promise<string[]> {
    const res = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: `tag:${RUN_TAG}`, Values: [run] }] }));
    return sorted((res.Volumes ?? []).filter((v) => v.State !== 'deleted' && v.State !== 'deleting').map((v) => v.VolumeId!));
  }
  async function snapshots(run: string): Promise<string[]> {
    const res = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [{ Name: `tag:${RUN_TAG}`, Values: [run] }] }));
    return sorted((res.Snapshots ?? []).map((s) => s.SnapshotId!));
  }

  /** Every run of a workflow id, first to last, by following continue-as-new from the first run. */
  async function runsOf(workflowId: string, firstRunId: string): Promise<{ runId: string; events: number; bytes: number; continuedAs?: string }[]> {
    const out: { runId: string; events: number; bytes: number; continuedAs?: string }[] = [];
    let runId: string | undefined = firstRunId;
    while (runId) {
      const history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      const events = history.events ?? [];
      const next: string | undefined = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      out.push({
        runId,
        events: events.length,
        bytes: proto.temporal.api.history.v1.History.encode(history).finish().length,
        ...(next ? { continuedAs: next } : {}),
      });
      runId = next;
    }
    return out;
  }

  test('an approved plan of 240 volumes runs in 4 chunks of 60 (3 continue-as-new), each run under its event budget; exactly the plan is deleted, a stale hash and a late volume are not honoured, and the report covers everything', async () => {
    const started = Date.now();
    const run = randomUUID();
    runIds.push(run);
    const planned = await volumes(run, 239, MANAGED);
    const kept = [
      ...(await volumes(run, 3, { ...MANAGED, 'trainctl:protected': 'true' })),
      ...(await volumes(run, 3, {})), // not managed, not listed: never a candidate
    ];
    // Snapshots of the run: with them the plan passes its byte bound (each waits for every volume).
    const snaps = await Promise.all(
      Array.from({ length: 40 }, () =>
        ec2.send(
          new CreateSnapshotCommand({ VolumeId: kept[0], TagSpecifications: [{ ResourceType: 'snapshot', Tags: tagList({ [RUN_TAG]: run, ...MANAGED }) }] }),
        ),
      ),
    );
    assert.equal(snaps.length, 40);
    const request = (over: Partial<CleanupRequest>): CleanupRequest => ({
      region: REGION,
      selector: { tags: { [RUN_TAG]: run }, kinds: ['volume'] },
      chunkSize: 60,
      concurrency: 8,
      ...over,
    });
    const opts = () => ({ taskQueue: worker.taskQueue, workflowId: uniqueName('cleanup/chunks') });

    // Too large: refused as InvalidInput before anything is deleted, naming how to narrow the selector.
    const tooLarge = await startCleanup(client, request({ dryRun: false, selector: { tags: { [RUN_TAG]: run }, kinds: ['volume', 'snapshot'] } }), opts());
    await assert.rejects(
      tooLarge.result(),
      (err: unknown) =>
        err instanceof WorkflowFailedError &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === 'InvalidInput' &&
        /plan is too large: it deletes 279 resources \(239 volume, 40 snapshot\).*narrow the selector/.test(err.cause.message),
    );
    assert.equal((await liveVolumes(run)).length, 245);
    assert.equal((await snapshots(run)).length, 40);

    // Plan A (a dry run), then one more managed volume: the apply's plan B differs from A.
    const planA = (await (await startCleanup(client, request({ dryRun: true }), opts())).result()).plan;
    assert.equal(planA.resources.length, 239);
    const [extra] = await volumes(run, 1, MANAGED);
    const handle = await startCleanup(client, request({ dryRun: false }), opts());
    const plan = await awaitPlan(handle, { pollMs: 200 });
    assert.ok(plan, 'the apply waits for approval (240 resources, more than the threshold of 10)');
    const firstRunId = (await handle.describe()).runId;
    assert.equal(plan.resources.length, 240);
    assert.deepEqual(sorted(plan.resources.map((r) => r.id)), sorted([...planned, extra!]));
    assert.deepEqual(sorted(plan.skipped.map((s) => s.id)), sorted(kept));
    assert.notEqual(plan.hash, planA.hash);
    await assert.rejects(
      handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: planA.hash }] }),
      (err: unknown) => err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'InvalidInput',
    );
    assert.equal((await handle.query(cleanupStatusQuery)).phase, 'awaiting-approval');
    assert.equal((await liveVolumes(run)).length, 246, 'a refused approval deletes nothing');
    await handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan.hash }] });
    // Made after the approval: matches the selector, but is in no plan anyone approved.
    const [late] = await volumes(run, 1, MANAGED);

    const result = await handle.result();
    assert.equal(result.outcome, 'completed');
    assert.equal(result.plan.hash, plan.hash);
    assert.deepEqual(sorted(result.report.deleted), sorted(plan.resources.map((r) => r.id)));
    assert.deepEqual(result.report.failed, []);
    assert.deepEqual(result.report.alreadyGone, []);
    assert.deepEqual(sorted(result.report.skipped.map((s) => s.id)), sorted(kept));
    assert.deepEqual(await liveVolumes(run), sorted([...kept, late!]), 'exactly the plan was deleted; protected, unmanaged and late volumes are kept');
    assert.equal((await snapshots(run)).length, 40);

    const chunks = chunkPlan(plan.resources, 60);
    assert.deepEqual(
      chunks.map((c) => c.length),
      [60, 60, 60, 60],
    );
    const runs = await runsOf(handle.workflowId, firstRunId);
    assert.equal(runs.length, 4, 'four runs');
    assert.equal(runs.filter((r) => r.continuedAs).length, 3, 'continued as new three times');
    runs.forEach((r, n) => {
      const steps = chunks[n]!.reduce((sum, i) => sum + plan.resources[i]!.steps.length, 0);
      assert.ok(r.events <= 7 * steps + FIXED_EVENTS, `run ${n + 1}: ${r.events} events, budget ${7 * steps + FIXED_EVENTS}`);
    });
    const last = await client.workflow.getHandle(handle.workflowId, runs.at(-1)!.runId).query(cleanupStatusQuery);
    assert.deepEqual(last.chunk, { index: 4, count: 4 });
    console.log(
      `240 volumes in 4 chunks of 60: events per run ${runs.map((r) => r.events).join(', ')} (budget ${7 * 60 + FIXED_EVENTS}); ` +
        `history bytes per run ${runs.map((r) => r.bytes).join(', ')} (the plan: ${JSON.stringify(plan).length} bytes); ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });

  test('a cancel in the second of three chunks finishes the step in flight, deletes nothing of the chunks after it, and reports them as not done', async () => {
    const run = randomUUID();
    runIds.push(run);
    const ids = sorted(await volumes(run, 6, MANAGED));
    // The first deletion of chunk 2 (plan order is by id) takes 8 s: the cancel lands while it is in
    // flight, with room for a loaded 2-core machine between seeing it in flight and the cancel arriving.
    const slow = createEc2Client(env, { maxAttempts: 1 });
    injectFaults(slow, [{ command: 'DeleteVolume', times: 1, delayMs: 8_000, match: (input) => input.VolumeId === ids[2] }]);
    const w = await startWorker({ env, bundlePath, deps: { ec2: () => slow } });
    const handle = await startCleanup(
      client,
      { region: REGION, selector: { tags: { [RUN_TAG]: run }, kinds: ['volume'] }, dryRun: false, chunkSize: 2, concurrency: 1 },
      { taskQueue: w.taskQueue, workflowId: uniqueName('cleanup/chunks-cancel') },
    );
    const status = await waitFor(
      async () => {
        const s = await handle.query(cleanupStatusQuery);
        return s.chunk?.index === 2 && s.inFlight.length === 1 ? s : undefined;
      },
      { what: 'the first deletion of chunk 2 in flight', timeoutMs: 60_000, intervalMs: 50 },
    );
    assert.deepEqual(status.chunk, { index: 2, count: 3 });
    assert.deepEqual(status.inFlight, [{ id: ids[2], step: 'delete-volume' }]);
    await handle.cancel();
    await assert.rejects(handle.result(), (err: unknown) => err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure);
    const report = (await handle.query(cleanupStatusQuery)).report;
    assert.deepEqual(sorted(report.deleted), ids.slice(0, 3));
    assert.deepEqual(sorted(report.skipped.map((s) => s.id)), ids.slice(3));
    for (const s of report.skipped) assert.match(s.reason, /^not done: cleanup cancelled/);
    assert.deepEqual(await liveVolumes(run), ids.slice(3));
    await w.stop();
  });

  test('work carried into a start (not a continue-as-new) is refused before anything is deleted, even with a correctly hashed plan', async () => {
    const run = randomUUID();
    runIds.push(run);
    const [target] = await volumes(run, 1, { ...MANAGED, 'trainctl:protected': 'true' });
    const input = CleanupInputSchema.parse({ region: REGION, dryRun: false, selector: { tags: { [RUN_TAG]: run }, kinds: ['volume'] }, chunkSize: 1 });
    const line = (id: string): PlannedResource => ({
      id,
      kind: 'volume',
      steps: ['delete-volume'],
      dependsOn: [],
      expect: { protection: 'protected' },
      target: {},
    });
    const body = { region: REGION, force: false, snapshotBeforeDelete: false, resources: [line('vol-00000000'), line(target!)], skipped: [] };
    const forged = { ...body, hash: planHash(body), dryRun: false, discoveredAt: new Date().toISOString(), needsApproval: false, approvalReasons: [] };
    const carried: CleanupCarried = {
      planHash: forged.hash,
      plan: forged,
      nextChunk: 1,
      report: { deleted: [], alreadyGone: [], skipped: [], failed: [], snapshots: [] },
      fromRunId: 'a-run-id-the-forger-guessed',
    };
    const handle = await client.workflow.start(CleanupWorkflowType, {
      taskQueue: worker.taskQueue,
      workflowId: uniqueName('cleanup/forged'),
      args: [input, carried],
    });
    await assert.rejects(
      handle.result(),
      (err: unknown) =>
        err instanceof WorkflowFailedError &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === 'InvalidInput' &&
        /only by a run the cleanup itself continued as new/.test(err.cause.message),
    );
    const history = await handle.fetchHistory();
    assert.equal(history.events?.filter((e) => e.activityTaskScheduledEventAttributes).length, 0, 'no activity was scheduled');
    assert.deepEqual(await liveVolumes(run), [target]);
  });
});
