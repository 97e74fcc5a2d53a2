import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketTaggingCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Env } from '../src/config.js';
import { createEc2Client, createS3Client } from '../src/aws/clients.js';
import { injectFaults, type FaultRule } from '../src/dev/faults.js';
import { startCleanup } from '../src/api/cleanup.js';
import {
  cleanupApproveUpdate,
  cleanupPlanQuery,
  cleanupRejectUpdate,
  cleanupStatusQuery,
  type CleanupRequest,
  type CleanupResult,
} from '../src/contracts/cleanup.js';
import { costTrackerWorkflowId, resourceQuery, resourceStartedSignal } from '../src/contracts/cost.js';
import type { costTracker } from '../src/workflows/cost-tracker.js';
import { ec2For, startWorker, testClient, testServices, uniqueName, type RunningWorker } from './helpers/harness.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { deleteTaggedFixtures } from './helpers/volumes.js';
import { waitFor } from './helpers/wait.js';

const REGION = 'us-east-1';
const AZ = 'us-east-1a';
const RUN_TAG = 'trainctl:test-run';

let env: Env;
let bundlePath: string | undefined;
let client: Client;
let worker: RunningWorker;
let ec2: EC2Client;
let imageId: string;
const runIds: string[] = [];

before(async () => {
  ({ env, bundlePath } = await testServices());
  client = await testClient(env);
  worker = await startWorker({ env, bundlePath });
  ec2 = ec2For(env);
  const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  imageId = images.Images?.[0]?.ImageId ?? '';
  assert.ok(imageId, 'the emulator ships a default AMI');
});

/** Deletes everything a test run tagged, whatever the test left behind. */
after(() => deleteTaggedFixtures(ec2, RUN_TAG, runIds));

interface Fixture {
  run: string;
  free: string;
  attached: string;
  instance: string;
  protectedVol: string;
  important: string;
  unmanaged: string;
  caseProtected: string;
}

async function volume(run: string, tags: Record<string, string>): Promise<string> {
  const all = { [RUN_TAG]: run, ...tags };
  const v = await ec2.send(
    new CreateVolumeCommand({
      AvailabilityZone: AZ,
      Size: 1,
      TagSpecifications: [{ ResourceType: 'volume', Tags: Object.entries(all).map(([Key, Value]) => ({ Key, Value })) }],
    }),
  );
  return v.VolumeId!;
}

/**
 * Acceptance point 1's fixture, tagged with a fresh run id: managed volumes (one attached to a
 * managed instance, one not), a protected, an important, an unmanaged volume, and a volume tagged
 * `Trainctl:Protected=TRUE`.
 */
async function makeFixture(): Promise<Fixture> {
  const run = randomUUID();
  runIds.push(run);
  const managed = { 'trainctl:managed': 'true' };
  const res = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 't3.micro',
      Placement: { AvailabilityZone: AZ },
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: RUN_TAG, Value: run },
            { Key: 'trainctl:managed', Value: 'true' },
          ],
        },
      ],
    }),
  );
  const instance = res.Instances![0]!.InstanceId!;
  const attached = await volume(run, { ...managed, Name: 'attached' });
  await ec2.send(new AttachVolumeCommand({ VolumeId: attached, InstanceId: instance, Device: '/dev/sdf' }));
  return {
    run,
    instance,
    attached,
    free: await volume(run, { ...managed, Name: 'free' }),
    protectedVol: await volume(run, { ...managed, 'trainctl:protected': 'true' }),
    important: await volume(run, { ...managed, 'trainctl:important': 'true' }),
    unmanaged: await volume(run, { Name: 'unmanaged' }),
    caseProtected: await volume(run, { ...managed, 'Trainctl:Protected': 'TRUE' }),
  };
}

function request(f: { run: string }, over: Partial<CleanupRequest> = {}, ids: string[] = []): CleanupRequest {
  return { region: REGION, selector: { tags: { [RUN_TAG]: f.run }, ids }, approvalThreshold: 10, ...over };
}

async function start(req: CleanupRequest, taskQueue = worker.taskQueue) {
  return startCleanup(client, req, { taskQueue, workflowId: uniqueName('cleanup-test') });
}

async function volumeExists(id: string): Promise<boolean> {
  try {
    const v = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes?.[0];
    return v !== undefined && v.State !== 'deleted' && v.State !== 'deleting';
  } catch (err) {
    if ((err as { name?: string }).name === 'InvalidVolume.NotFound') return false;
    throw err;
  }
}

async function instanceState(id: string): Promise<string | undefined> {
  const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return r.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

/** Polls the status query until the run waits for approval, and returns its plan. */
function planAwaitingApproval(handle: Awaited<ReturnType<typeof start>>) {
  return waitFor(
    async () => {
      const s = await handle.query(cleanupStatusQuery);
      assert.notEqual(s.phase, 'done', 'the run ended instead of waiting for approval');
      return s.phase === 'awaiting-approval' ? s.plan : undefined;
    },
    { what: 'the run to wait for approval', timeoutMs: 60_000, intervalMs: 100 },
  );
}

const sorted = (xs: string[]) => [...xs].sort();
const skipReason = (r: CleanupResult, id: string) => r.report.skipped.find((s) => s.id === id)?.reason ?? '';

describe('cleanup workflow', () => {
  test('a dry run deletes nothing and lists every fixture resource with its steps or its skip reason', async () => {
    const f = await makeFixture();
    const handle = await start(request(f));
    const result = await handle.result();
    assert.equal(result.outcome, 'planned');
    const plan = result.plan;
    const stepsOf = (id: string) => plan.resources.find((r) => r.id === id)?.steps;
    assert.deepEqual(stepsOf(f.instance), ['stop-instance', 'wait-instance-stopped', 'terminate-instance', 'wait-instance-terminated']);
    assert.deepEqual(stepsOf(f.attached), ['detach-volume', 'wait-volume-available', 'delete-volume']);
    assert.deepEqual(stepsOf(f.free), ['delete-volume']);
    assert.equal(plan.resources.length, 3);
    const reason = (id: string) => plan.skipped.find((s) => s.id === id)?.reason ?? '';
    assert.match(reason(f.protectedVol), /^protected \(tag trainctl:protected=true\): deleted only with force and its id listed explicitly/);
    assert.match(reason(f.caseProtected), /^protected \(tag Trainctl:Protected=TRUE\)/);
    assert.match(reason(f.important), /^important \(tag trainctl:important=true\): deleted only with force/);
    assert.match(reason(f.unmanaged), /^not managed by trainctl/);
    assert.equal(plan.skipped.length, 4);
    assert.deepEqual(result.report.deleted, []);
    // The plan query answers the same plan, also after the run ended.
    assert.deepEqual(await handle.query(cleanupPlanQuery), plan);
    for (const id of [f.free, f.attached, f.protectedVol, f.important, f.unmanaged, f.caseProtected]) assert.equal(await volumeExists(id), true, id);
    assert.equal(await instanceState(f.instance), 'running');
  });

  test('apply without force deletes exactly the unprotected managed resources in dependency order, and the report matches EC2', async () => {
    const f = await makeFixture();
    const handle = await start(request(f, { dryRun: false }));
    const result = await handle.result();
    assert.equal(result.outcome, 'completed');
    assert.deepEqual(sorted(result.report.deleted), sorted([f.instance, f.attached, f.free]));
    assert.deepEqual(result.report.failed, []);
    assert.deepEqual(sorted(result.report.skipped.map((s) => s.id)), sorted([f.protectedVol, f.important, f.unmanaged, f.caseProtected]));
    // The report matches EC2: what it says is deleted is gone, what it skipped is still there.
    assert.equal(await volumeExists(f.free), false);
    assert.equal(await volumeExists(f.attached), false);
    assert.equal(await instanceState(f.instance), 'terminated');
    for (const id of [f.protectedVol, f.important, f.unmanaged, f.caseProtected]) assert.equal(await volumeExists(id), true, id);

    // The history's activity order: the instance stopped before its volume is detached, detached
    // (and available) before it is deleted, and terminated only after the detach.
    const history = await handle.fetchHistory();
    const scheduled = new Map<number, { type: string; arg: Record<string, unknown> }>();
    const completedAt = new Map<number, number>();
    const decoder = new TextDecoder();
    for (const e of history.events ?? []) {
      const id = Number(e.eventId);
      const s = e.activityTaskScheduledEventAttributes;
      if (s) {
        const data = s.input?.payloads?.[0]?.data;
        scheduled.set(id, { type: s.activityType?.name ?? '', arg: data ? (JSON.parse(decoder.decode(data)) as Record<string, unknown>) : {} });
      }
      const c = e.activityTaskCompletedEventAttributes;
      if (c) completedAt.set(Number(c.scheduledEventId), id);
    }
    const find = (type: string, pred: (arg: Record<string, unknown>) => boolean) => {
      const hit = [...scheduled].find(([, v]) => v.type === type && pred(v.arg));
      assert.ok(hit, `${type} was scheduled`);
      return { scheduledAt: hit[0], completedAt: completedAt.get(hit[0]) ?? Infinity };
    };
    const stop = find('cleanupStopInstance', (a) => a.instanceId === f.instance);
    const stopped = find('cleanupWaitInstance', (a) => a.instanceId === f.instance && a.state === 'stopped');
    const detach = find('cleanupDetachVolume', (a) => a.volumeId === f.attached);
    const available = find('cleanupWaitVolumeAvailable', (a) => a.volumeId === f.attached);
    const del = find('cleanupDeleteVolume', (a) => a.volumeId === f.attached);
    const terminate = find('cleanupTerminateInstance', (a) => a.instanceId === f.instance);
    assert.ok(stop.completedAt < stopped.scheduledAt, 'stop completes before the wait for stopped starts');
    assert.ok(stopped.completedAt < detach.scheduledAt, 'the instance is stopped before its volume is detached');
    assert.ok(detach.completedAt < available.scheduledAt, 'detach completes before the wait for available');
    assert.ok(available.completedAt < del.scheduledAt, 'the volume is available before it is deleted');
    assert.ok(detach.completedAt < terminate.scheduledAt, 'the instance is terminated only after its volume was detached');
    // The other managed volume was deleted too, and protected ones never reached a delete.
    find('cleanupDeleteVolume', (a) => a.volumeId === f.free);
    for (const id of [f.protectedVol, f.important, f.unmanaged, f.caseProtected]) {
      assert.ok(![...scheduled.values()].some((v) => v.arg.volumeId === id), `no step was scheduled for ${id}`);
    }
  });

  test('force deletes the important volume but not the protected ones; force with the explicit id deletes the protected one', async () => {
    const f = await makeFixture();
    const forced = await start(request(f, { dryRun: false, force: true }));
    // Deleting something important always waits for approval, whatever the threshold.
    const plan = await planAwaitingApproval(forced);
    assert.equal(plan.needsApproval, true);
    await forced.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan.hash }] });
    const r1 = await forced.result();
    assert.ok(r1.report.deleted.includes(f.important));
    assert.match(skipReason(r1, f.protectedVol), /^protected/);
    assert.match(skipReason(r1, f.caseProtected), /^protected/);
    assert.equal(await volumeExists(f.important), false);
    assert.equal(await volumeExists(f.protectedVol), true);

    const explicit = await start(request(f, { dryRun: false, force: true }, [f.protectedVol]));
    const plan2 = await planAwaitingApproval(explicit);
    assert.deepEqual(
      plan2.resources.map((r) => [r.id, r.protection]),
      [[f.protectedVol, 'protected']],
    );
    await explicit.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan2.hash }] });
    const r2 = await explicit.result();
    assert.deepEqual(r2.report.deleted, [f.protectedVol]);
    assert.equal(await volumeExists(f.protectedVol), false);
    // Only the explicitly named protected volume went; the other protected one is untouched.
    assert.equal(await volumeExists(f.caseProtected), true);
    assert.equal(await volumeExists(f.unmanaged), true);
  });

  test('snapshotBeforeDelete leaves a completed snapshot, tagged with the volume tags and its source, per deleted volume', async () => {
    const f = await makeFixture();
    const result = await (await start(request(f, { dryRun: false, snapshotBeforeDelete: true }))).result();
    assert.deepEqual(sorted(result.report.snapshots.map((s) => s.volumeId)), sorted([f.attached, f.free]));
    for (const { snapshotId, volumeId } of result.report.snapshots) {
      const s = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots?.[0];
      assert.equal(s?.State, 'completed');
      assert.equal(s?.VolumeId, volumeId);
      const tags = Object.fromEntries((s?.Tags ?? []).map((t) => [t.Key, t.Value]));
      assert.equal(tags['trainctl:source-volume'], volumeId);
      assert.equal(tags[RUN_TAG], f.run);
      assert.equal(tags['trainctl:managed'], 'true');
      assert.equal(tags.Name, volumeId === f.attached ? 'attached' : 'free');
      assert.equal(await volumeExists(volumeId), false);
    }
  });

  test('a volume deleted by someone else between plan and apply counts as already gone and the run succeeds', async () => {
    const f = await makeFixture();
    const handle = await start(request(f, { dryRun: false, approvalThreshold: 0 }));
    const plan = await planAwaitingApproval(handle);
    assert.ok(plan.resources.some((r) => r.id === f.free));
    await ec2.send(new DeleteVolumeCommand({ VolumeId: f.free }));
    await handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan.hash }] });
    const result = await handle.result();
    assert.equal(result.outcome, 'completed');
    assert.deepEqual(result.report.alreadyGone, [f.free]);
    assert.deepEqual(result.report.failed, []);
    assert.deepEqual(sorted(result.report.deleted), sorted([f.instance, f.attached]));
  });

  test('over the approval threshold the run waits; a wrong plan hash is refused by the validator, the right one proceeds', async () => {
    const f = await makeFixture();
    const handle = await start(request(f, { dryRun: false, approvalThreshold: 2 }));
    const plan = await planAwaitingApproval(handle);
    assert.match(plan.approvalReasons.join(';'), /deletes 3 resources, more than the approval threshold of 2/);
    const description = await handle.describe();
    assert.equal(description.status.name, 'RUNNING');
    await assert.rejects(
      handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: '0000000000000000' }] }),
      (err: unknown) => err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'InvalidInput',
    );
    // Refused by the validator: nothing was deleted and the run still waits.
    assert.equal((await handle.query(cleanupStatusQuery)).phase, 'awaiting-approval');
    assert.equal(await volumeExists(f.free), true);
    await handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan.hash }] });
    const result = await handle.result();
    assert.equal(result.outcome, 'completed');
    assert.deepEqual(sorted(result.report.deleted), sorted([f.instance, f.attached, f.free]));
  });

  test('reject, or no approval before the timeout, ends the run with nothing deleted', async () => {
    const f = await makeFixture();
    const rejected = await start(request(f, { dryRun: false, approvalThreshold: 0 }));
    await planAwaitingApproval(rejected);
    await rejected.executeUpdate(cleanupRejectUpdate, { args: [{ reason: 'not today' }] });
    const r1 = await rejected.result();
    assert.equal(r1.outcome, 'rejected');
    assert.deepEqual(r1.report.deleted, []);
    const timedOut = await start(request(f, { dryRun: false, approvalThreshold: 0, approvalTimeout: '1s' }));
    const r2 = await timedOut.result();
    assert.equal(r2.outcome, 'approval-timed-out');
    assert.deepEqual(r2.report.deleted, []);
    for (const id of [f.free, f.attached]) assert.equal(await volumeExists(id), true);
    assert.equal(await instanceState(f.instance), 'running');
  });

  test('running apply twice: the second run finds nothing to do', async () => {
    const f = await makeFixture();
    const first = await (await start(request(f, { dryRun: false }))).result();
    assert.equal(first.report.deleted.length, 3);
    const second = await (await start(request(f, { dryRun: false }))).result();
    assert.equal(second.outcome, 'completed');
    assert.deepEqual(second.plan.resources, []);
    assert.deepEqual(second.report.deleted, []);
    assert.deepEqual(second.report.failed, []);
    assert.deepEqual(second.report.alreadyGone, []);
    assert.deepEqual(sorted(second.report.skipped.map((s) => s.id)), sorted([f.protectedVol, f.important, f.unmanaged, f.caseProtected]));
  });
});

describe('cleanup and the cost tracker', () => {
  test('every deletion is signalled to the project cost tracker as resourceStopped, and a missing tracker fails nothing', async () => {
    const f = await makeFixture();
    const project = uniqueName('cleanup-cost');
    const tracker = await client.workflow.start<typeof costTracker>('costTracker', {
      taskQueue: worker.taskQueue,
      workflowId: costTrackerWorkflowId(project),
      args: [{ project }],
    });
    try {
      for (const [id, kind] of [
        [f.free, 'volume'],
        [f.instance, 'instance'],
      ] as const) {
        await tracker.signal(resourceStartedSignal, {
          id,
          kind,
          type: kind === 'volume' ? 'gp3' : 't3.micro',
          ...(kind === 'volume' ? { sizeGiB: 1 } : {}),
          region: REGION,
          tags: {},
        });
      }
      const result = await (await start(request(f, { dryRun: false, costProject: project }))).result();
      assert.deepEqual(sorted(result.report.deleted), sorted([f.instance, f.attached, f.free]));
      for (const id of [f.free, f.instance]) {
        const view = await tracker.query(resourceQuery, id);
        assert.ok(view?.stoppedAt, `the tracker saw ${id} stop`);
      }
      // No tracker runs for this project: the cleanup still succeeds.
      const g = await makeFixture();
      const orphan = await (await start(request(g, { dryRun: false, costProject: uniqueName('no-tracker') }))).result();
      assert.equal(orphan.outcome, 'completed');
      assert.deepEqual(orphan.report.failed, []);
      assert.equal(orphan.report.deleted.length, 3);
    } finally {
      await tracker.terminate('test over');
    }
  });
});

describe('cleanup of S3', () => {
  test('aborts the multipart uploads and deletes the prefix of a managed bucket, leaving other keys and unmanaged buckets alone', async () => {
    const s3 = createS3Client(env);
    const run = randomUUID();
    const managed = uniqueName('cleanup-managed').toLowerCase();
    const unmanaged = uniqueName('cleanup-unmanaged').toLowerCase();
    try {
      for (const [bucket, tags] of [
        [managed, { 'trainctl:managed': 'true', [RUN_TAG]: run }],
        [unmanaged, { [RUN_TAG]: run }],
      ] as const) {
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
        await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) } }));
        await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'data/stale.bin' }));
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'data/a.txt', Body: 'a' }));
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'keep/b.txt', Body: 'b' }));
      }
      const sel = (bucket: string): CleanupRequest => ({
        region: REGION,
        selector: { tags: { [RUN_TAG]: run }, kinds: ['multipart-upload', 's3-prefix'], s3: { bucket, prefix: 'data/' } },
        dryRun: false,
      });
      // Issue 10 guard 2 changed this: S3 targets always wait for approval, and the plan shows what is under the prefix.
      const handle = await start(sel(managed));
      const plan = await planAwaitingApproval(handle);
      assert.deepEqual(plan.resources.find((r) => r.kind === 's3-prefix')?.objects, { count: 1, bytes: 1, sample: ['data/a.txt'] });
      await handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan.hash }] });
      const result = await handle.result();
      assert.equal(result.report.deleted.length, 2);
      assert.ok(result.report.deleted.includes(`s3://${managed}/data/`));
      assert.ok(result.report.deleted.some((id) => id.startsWith(`s3://${managed}/data/stale.bin#`)));
      assert.deepEqual((await s3.send(new ListMultipartUploadsCommand({ Bucket: managed }))).Uploads ?? [], []);
      const left = (await s3.send(new ListObjectsV2Command({ Bucket: managed }))).Contents?.map((o) => o.Key);
      assert.deepEqual(left, ['keep/b.txt']);

      const skipped = await (await start(sel(unmanaged))).result();
      assert.deepEqual(skipped.report.deleted, []);
      assert.equal(skipped.report.skipped.length, 2);
      for (const s of skipped.report.skipped) assert.match(s.reason, /not managed by trainctl/);
      assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: unmanaged }))).Uploads?.length, 1);
    } finally {
      for (const bucket of [managed, unmanaged]) {
        const uploads = (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket })).catch(() => undefined))?.Uploads ?? [];
        for (const u of uploads) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => undefined);
        const keys = (await s3.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined))?.Contents ?? [];
        if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((k) => ({ Key: k.Key })) } }));
        await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
      }
    }
  });
});

describe('cleanup under faults', () => {
  async function faultWorker(rules: FaultRule[]) {
    const faulty = createEc2Client(env, { maxAttempts: 1 });
    const faults = injectFaults(faulty, rules);
    const w = await startWorker({ env, bundlePath, deps: { ec2: () => faulty } });
    return { w, faults };
  }

  async function managedVolumes(n: number) {
    const run = randomUUID();
    runIds.push(run);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await volume(run, { 'trainctl:managed': 'true' }));
    return { run, ids: sorted(ids) };
  }

  test('PermissionDenied fails only that volume, a VolumeInUse conflict is retried until it clears, and the rest are deleted', async () => {
    const { run, ids } = await managedVolumes(3);
    const [denied, busy, fine] = ids as [string, string, string];
    const { w, faults } = await faultWorker([
      { command: 'DeleteVolume', error: { name: 'UnauthorizedOperation', status: 403 }, match: (input) => input.VolumeId === denied },
      { command: 'DeleteVolume', times: 2, error: { name: 'VolumeInUse', status: 400 }, match: (input) => input.VolumeId === busy },
    ]);
    const result = await (await start(request({ run }, { dryRun: false }), w.taskQueue)).result();
    assert.equal(result.outcome, 'completed');
    assert.deepEqual(sorted(result.report.deleted), sorted([busy, fine]));
    assert.equal(result.report.failed.length, 1);
    assert.equal(result.report.failed[0]?.id, denied);
    assert.equal(result.report.failed[0]?.kind, 'PermissionDenied');
    assert.equal(result.report.failed[0]?.step, 'delete-volume');
    assert.equal(faults.injected.filter((i) => i.kind === 'error').length, 3, 'one denial and two conflicts were injected');
    assert.equal(await volumeExists(denied), true);
    assert.equal(await volumeExists(busy), false);
    await w.stop();
  });

  test('a cancel mid-cleanup finishes the step in flight, starts no new deletion and reports what was and was not done', async () => {
    const { run, ids } = await managedVolumes(3);
    const { w } = await faultWorker([{ command: 'DeleteVolume', times: 1, delayMs: 2_000 }]);
    const handle = await start(request({ run }, { dryRun: false, concurrency: 1 }), w.taskQueue);
    const inFlight = await waitFor(
      async () => {
        const s = await handle.query(cleanupStatusQuery);
        return s.inFlight.length > 0 ? s.inFlight : undefined;
      },
      { what: 'a deletion in flight', timeoutMs: 30_000, intervalMs: 50 },
    );
    assert.deepEqual(inFlight, [{ id: ids[0], step: 'delete-volume' }]);
    await handle.cancel();
    await assert.rejects(handle.result(), (err: unknown) => err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure);
    const status = await handle.query(cleanupStatusQuery);
    assert.deepEqual(status.report.deleted, [ids[0]]);
    assert.deepEqual(sorted(status.report.skipped.map((s) => s.id)), sorted([ids[1]!, ids[2]!]));
    for (const s of status.report.skipped) assert.match(s.reason, /^not done: cleanup cancelled/);
    assert.equal(await volumeExists(ids[0]!), false);
    assert.equal(await volumeExists(ids[1]!), true);
    assert.equal(await volumeExists(ids[2]!), true);
    await w.stop();
  });
});

describe('trainctl cleanup CLI', () => {
  test('plan prints a table naming every resource; apply --yes approves that plan and prints the report', async () => {
    const f = await makeFixture();
    const sel = ['--tag', `${RUN_TAG}=${f.run}`];
    const planned = await runCli(['cleanup', 'plan', ...sel], cliEnv(env, worker.taskQueue));
    assert.equal(planned.code, 0, planned.stderr);
    // Issue 10 guard 3: the plan hash is SHA-256 (64 hex digits) over the complete plan.
    assert.match(planned.stdout, /^plan [0-9a-f]{64} in us-east-1: delete 3, skip 4/m);
    assert.match(planned.stdout, new RegExp(`${f.attached}\\s+volume\\s+attached\\s+detach-volume → wait-volume-available → delete-volume`));
    assert.match(planned.stdout, new RegExp(`${f.caseProtected}\\s+volume\\s+skip: protected \\(tag Trainctl:Protected=TRUE\\)`));
    assert.equal(await volumeExists(f.free), true);

    const applied = await runCli(['cleanup', 'apply', ...sel, '--yes', '--json'], cliEnv(env, worker.taskQueue));
    assert.equal(applied.code, 0, applied.stderr);
    const out = JSON.parse(applied.stdout) as { ok: boolean; outcome: string; report: CleanupResult['report'] };
    assert.equal(out.ok, true);
    assert.equal(out.outcome, 'completed');
    assert.deepEqual(sorted(out.report.deleted), sorted([f.instance, f.attached, f.free]));

    const refused = await runCli(['cleanup', 'apply', '--kind', 'database'], cliEnv(env, worker.taskQueue));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--kind: must be one of instance/);
  });
});
