/**
 * Issue 10, cleanup guards 1–5 and guard 14 (cost): adversarial, table-driven cases. The planner
 * and ledger cases are pure; the rest run the cleanup workflow on the dev server against moto.
 * Every test names the guard it proves; each would fail on the code before the guard.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  AttachVolumeCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  ModifyVolumeCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutBucketTaggingCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Env } from '../src/config.js';
import { createS3Client } from '../src/aws/clients.js';
import { formatPlan } from '../src/cli/cleanup.js';
import { startCleanup } from '../src/api/cleanup.js';
import { planCleanup, type DiscoveredResource, type Discovery } from '../src/cleanup-plan.js';
import { CleanupInputSchema, cleanupApproveUpdate, cleanupStatusQuery, cleanupWorkflowId, type CleanupRequest } from '../src/contracts/cleanup.js';
import { TagsSchema } from '../src/contracts/common.js';
import { sha256Hex } from '../src/contracts/sha256.js';
import { createCostActivities } from '../src/activities/cost.js';
import { newTrackerState, startResource } from '../src/cost/ledger.js';
import { MAX_READ_BUFFER_BYTES, readSlots } from '../src/prewarm/reader.js';
import { ec2For, startWorker, testClient, testServices, uniqueName, type RunningWorker } from './helpers/harness.js';
import { deleteTaggedFixtures } from './helpers/volumes.js';
import { waitFor } from './helpers/wait.js';

const REGION = 'us-east-1';
const AZ = 'us-east-1a';
const RUN_TAG = 'trainctl:test-run';
const NOW = '2026-11-28T12:00:00.000Z';
const MANAGED = { 'trainctl:managed': 'true' };

// ---------------------------------------------------------------- pure planner cases

function input(over: Partial<CleanupRequest> = {}, selector: Partial<CleanupRequest['selector']> = {}) {
  return CleanupInputSchema.parse({ region: REGION, ...over, selector: { tags: { [RUN_TAG]: 'r' }, ...selector } });
}
function vol(id: string, tags: Record<string, string>, extra: Partial<DiscoveredResource> = {}): DiscoveredResource {
  return { id, kind: 'volume', tags: { [RUN_TAG]: 'r', ...tags }, state: 'available', createdAt: '2026-11-01T00:00:00.000Z', sizeGiB: 1, ...extra };
}
function discovery(resources: DiscoveredResource[]): Discovery {
  return { region: REGION, discoveredAt: NOW, resources, missingIds: [] };
}
const reasonOf = (plan: ReturnType<typeof planCleanup>, id: string) => plan.skipped.find((s) => s.id === id)?.reason;

describe('guard 1: protection and candidacy fail closed', () => {
  const keys = [' TRAINCTL:Protected ', 'trainctl:protected', 'Trainctl:PROTECTED', 'trainctl:protected\t'];
  const values: [string, boolean][] = [
    ['', true],
    ['maybe', true],
    ['true', true],
    ['yes', true],
    ['keep', true],
    ['false', false],
    ['FALSE ', false],
    ['no', false],
    [' Off', false],
    ['0', false],
  ];
  for (const key of keys) {
    for (const [value, protects] of values) {
      test(`guard 1: tag ${JSON.stringify(key)}=${JSON.stringify(value)} ${protects ? 'protects' : 'does not protect'} a managed volume`, () => {
        const plan = planCleanup(discovery([vol('vol-00000001', { ...MANAGED, [key]: value })]), input());
        if (protects) assert.match(reasonOf(plan, 'vol-00000001') ?? '', /^protected \(tag /);
        else
          assert.deepEqual(
            plan.resources.map((r) => r.id),
            ['vol-00000001'],
          );
      });
    }
  }

  const duplicates: [Record<string, string>, boolean][] = [
    [{ 'trainctl:protected': 'false', 'Trainctl:Protected': 'true' }, true],
    [{ 'trainctl:protected': 'false', ' TRAINCTL:PROTECTED ': '' }, true],
    [{ 'trainctl:protected': 'no', 'TRAINCTL:PROTECTED': 'FALSE' }, false],
  ];
  for (const [tags, protects] of duplicates) {
    test(`guard 1: duplicate spellings ${JSON.stringify(tags)} ${protects ? 'protect (conflicting duplicates protect)' : 'do not protect (all explicit false)'}`, () => {
      const plan = planCleanup(discovery([vol('vol-00000002', { ...MANAGED, ...tags })]), input());
      assert.equal(plan.resources.length === 0, protects);
    });
  }

  test('guard 1: a key-only trainctl:important tag needs force, and force then plans it as important', () => {
    const d = discovery([vol('vol-00000003', { ...MANAGED, ' Trainctl:Important': '' })]);
    assert.match(reasonOf(planCleanup(d, input()), 'vol-00000003') ?? '', /^important .*deleted only with force/);
    assert.equal(planCleanup(d, input({ force: true })).resources[0]?.protection, 'important');
  });

  const managedCases: [Record<string, string>, boolean][] = [
    [{ 'trainctl:managed': 'true' }, true],
    [{ ' Trainctl:Managed ': 'TRUE' }, true],
    [{ 'trainctl:managed': '' }, false],
    [{ 'trainctl:managed': 'maybe' }, false],
    [{ 'trainctl:managed': 'false' }, false],
    [{ 'trainctl:managed': 'true', ' trainctl:managed': 'false' }, false],
    [{ 'Trainctl:Managed': 'true', 'trainctl:managed': 'no' }, false],
  ];
  for (const [tags, candidate] of managedCases) {
    test(`guard 1: managed tags ${JSON.stringify(tags)} ${candidate ? 'make' : 'do not make'} a candidate without --id`, () => {
      const plan = planCleanup(discovery([vol('vol-00000004', tags)]), input());
      assert.equal(plan.resources.length, candidate ? 1 : 0);
      if (!candidate) assert.match(reasonOf(plan, 'vol-00000004') ?? '', /not managed by trainctl/);
    });
  }

  const reserved = ['trainctl:protected', ' trainctl:protected', 'TRAINCTL:managed', 'Trainctl:Important', ' TrainCtl:anything '];
  for (const key of reserved) {
    test(`guard 1: provisioning tags refuse the reserved key ${JSON.stringify(key)}`, () => {
      const r = TagsSchema.safeParse({ [key]: 'x' });
      assert.equal(r.success, false);
      // zod reports a record key's failure nested under 'Invalid key in record'.
      assert.match(JSON.stringify(r.error!.issues), /trainctl:\* in any case are reserved/);
    });
  }
  test('guard 1: ordinary provisioning tags are still accepted', () => {
    assert.deepEqual(TagsSchema.parse({ team: 'vision', 'project:x': 'y' }), { team: 'vision', 'project:x': 'y' });
  });
});

describe('guard 2 and 3: S3 targets, approval and the plan hash (planner)', () => {
  const prefix = (id: string, count: number, tags: Record<string, string> = MANAGED): DiscoveredResource => ({
    id,
    kind: 's3-prefix',
    tags: { [RUN_TAG]: 'r', ...tags },
    state: 'present',
    bucket: 'b-bucket',
    prefix: id.slice('s3://b-bucket/'.length),
    objects: { count, bytes: count * 10, sample: [] },
  });

  test('guard 2: an S3 prefix or an unmanaged id listed explicitly always needs approval, whatever the threshold', () => {
    const s3 = planCleanup(discovery([prefix('s3://b-bucket/data/', 1)]), input({ dryRun: false, approvalThreshold: 100 }, { kinds: ['s3-prefix'] }));
    assert.equal(s3.needsApproval, true);
    assert.match(s3.approvalReasons.join(';'), /deletes S3 data: s3:\/\/b-bucket\/data\/ \(1 objects, 10 bytes\)/);
    const unmanaged = planCleanup(discovery([vol('vol-00000005', {})]), input({ dryRun: false, approvalThreshold: 100 }, { ids: ['vol-00000005'] }));
    assert.equal(unmanaged.needsApproval, true);
    assert.match(unmanaged.approvalReasons.join(';'), /not managed by trainctl, listed by id: vol-00000005/);
  });

  test('guard 2: the printed plan shows what the prefix holds (count, bytes, first keys) and marks unmanaged ids', () => {
    const plan = planCleanup(
      discovery([{ ...prefix('s3://b-bucket/data/', 2, {}), objects: { count: 12, bytes: 345, sample: ['data/a.txt', 'data/b.txt'] } }]),
      input({ dryRun: false }, { ids: ['s3://b-bucket/data'] }),
    );
    const text = formatPlan(plan);
    assert.match(text, /s3:\/\/b-bucket\/data\/ +s3-prefix +\[not managed\] delete-s3-prefix \(12 objects, 345 bytes: data\/a.txt, data\/b.txt, …\)/);
    assert.match(text, /needs approval: deletes S3 data/);
  });

  test('guard 2: s3://BUCKET/data given without the slash names the folder data/ that discovery reports', () => {
    const plan = planCleanup(discovery([prefix('s3://b-bucket/data/', 2, {})]), input({}, { ids: ['s3://b-bucket/data'] }));
    assert.deepEqual(
      plan.resources.map((r) => r.id),
      ['s3://b-bucket/data/'],
    );
  });

  const variants: [string, (d: Discovery) => void][] = [
    [
      'a DeleteOnTermination volume that goes with the instance (a note)',
      (d) => {
        d.resources[0]!.volumes![0]!.volumeId = 'vol-0000000b';
      },
    ],
    [
      'the device of a planned attachment (a target)',
      (d) => {
        d.resources[1]!.attachment!.device = '/dev/sdg';
      },
    ],
    [
      'the size of a volume (what is re-checked)',
      (d) => {
        d.resources[1]!.sizeGiB = 2;
      },
    ],
  ];
  for (const [what, change] of variants) {
    test(`guard 3: a hash copied from one plan never names another that differs only in ${what}`, () => {
      const make = (): Discovery =>
        discovery([
          {
            id: 'i-0000000a',
            kind: 'instance',
            tags: { [RUN_TAG]: 'r', ...MANAGED },
            state: 'stopped',
            createdAt: '2026-11-01T00:00:00.000Z',
            volumes: [{ volumeId: 'vol-0000000a', device: '/dev/sda1', deleteOnTermination: true, tags: {} }],
          },
          vol('vol-00000006', MANAGED, { attachment: { instanceId: 'i-0000000a', device: '/dev/sdf', instanceState: 'stopped' }, state: 'in-use' }),
        ]);
      const a = planCleanup(make(), input({ dryRun: false }));
      const changed = make();
      change(changed);
      const b = planCleanup(changed, input({ dryRun: false }));
      assert.equal(a.resources.length, b.resources.length);
      assert.notEqual(a.hash, b.hash);
      assert.match(a.hash, /^[0-9a-f]{64}$/);
    });
  }

  test('guard 3: a hash from one plan never names another whose prefix holds other objects', () => {
    const a = planCleanup(discovery([prefix('s3://b-bucket/data/', 1)]), input({}, { kinds: ['s3-prefix'] }));
    const b = planCleanup(discovery([prefix('s3://b-bucket/data/', 1000)]), input({}, { kinds: ['s3-prefix'] }));
    assert.notEqual(a.hash, b.hash);
  });

  const inputChanges: [string, Partial<CleanupRequest>][] = [
    ['protected ids', { protectedIds: ['vol-00000009'] }],
    ['the approval threshold', { approvalThreshold: 11 }],
    ['the approval timeout', { approvalTimeout: '2h' }],
    ['the concurrency', { concurrency: 5 }],
    ['the cost project', { costProject: 'vision' }],
  ];
  for (const [what, over] of inputChanges) {
    test(`guard 3: the apply workflow id differs when only ${what} differ(s), so apply never joins that run`, () => {
      assert.notEqual(cleanupWorkflowId(input({ dryRun: false, ...over })), cleanupWorkflowId(input({ dryRun: false })));
    });
  }

  test('guard 3: the pure SHA-256 matches the published vectors', () => {
    assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });
});

describe('guard 5: backups are never tag-selected (planner)', () => {
  for (const key of ['trainctl:source-volume', ' Trainctl:Source-Volume ']) {
    test(`guard 5: a snapshot tagged ${JSON.stringify(key)} is skipped by tags and planned only by --id`, () => {
      const snap: DiscoveredResource = {
        id: 'snap-00000001',
        kind: 'snapshot',
        tags: { [RUN_TAG]: 'r', ...MANAGED, [key]: 'vol-00000001' },
        state: 'completed',
      };
      const byTag = planCleanup(discovery([snap]), input({}, { kinds: ['snapshot'] }));
      assert.match(reasonOf(byTag, 'snap-00000001') ?? '', /backup taken by snapshot-before-delete/);
      const byId = planCleanup(discovery([snap]), input({}, { kinds: ['snapshot'], ids: ['snap-00000001'] }));
      assert.deepEqual(
        byId.resources.map((r) => r.id),
        ['snap-00000001'],
      );
    });
  }
});

describe('guard 14: the cost ledger bounds start times', () => {
  const now = Date.parse(NOW);
  const cases: [string, number, boolean][] = [
    ['epoch 0', 0, false],
    ['before EC2 existed (2005)', Date.UTC(2005, 0, 1), false],
    ['four years ago', now - 4 * 365 * 86_400_000, false],
    ['one hour in the future', now + 3_600_000, false],
    ['one year ago', now - 365 * 86_400_000, true],
    ['a minute ago', now - 60_000, true],
  ];
  for (const [what, at, accepted] of cases) {
    test(`guard 14: a resourceStarted at ${what} is ${accepted ? 'accepted' : 'rejected'}`, () => {
      const state = newTrackerState('p');
      const out = startResource(state, { id: 'vol-1', kind: 'volume', type: 'gp3', sizeGiB: 1, region: REGION, at }, false, now, { warn: () => undefined });
      if (accepted) assert.equal(out, 'accepted');
      else assert.ok(typeof out === 'object' && 'rejected' in out, `expected a rejection, got ${JSON.stringify(out)}`);
    });
  }
});

// ---------------------------------------------------------------- against the dev server and moto

let env: Env;
let client: Client;
let worker: RunningWorker;
let ec2: EC2Client;
let imageId: string;
const runIds: string[] = [];

before(async () => {
  const services = await testServices();
  env = services.env;
  client = await testClient(env);
  worker = await startWorker({ env, bundlePath: services.bundlePath });
  ec2 = ec2For(env);
  imageId = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images?.[0]?.ImageId ?? '';
  assert.ok(imageId, 'the emulator ships a default AMI');
});

after(() => deleteTaggedFixtures(ec2, RUN_TAG, runIds));

function newRun(): string {
  const run = randomUUID();
  runIds.push(run);
  return run;
}

const asTags = (t: Record<string, string>) => Object.entries(t).map(([Key, Value]) => ({ Key, Value }));

async function volume(run: string, tags: Record<string, string>, size = 1): Promise<string> {
  const v = await ec2.send(
    new CreateVolumeCommand({ AvailabilityZone: AZ, Size: size, TagSpecifications: [{ ResourceType: 'volume', Tags: asTags({ [RUN_TAG]: run, ...tags }) }] }),
  );
  return v.VolumeId!;
}

async function instance(run: string, tags: Record<string, string>): Promise<string> {
  const res = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 't3.micro',
      Placement: { AvailabilityZone: AZ },
      TagSpecifications: [{ ResourceType: 'instance', Tags: asTags({ [RUN_TAG]: run, ...tags }) }],
    }),
  );
  return res.Instances![0]!.InstanceId!;
}

async function volumeState(id: string): Promise<{ exists: boolean; attachedTo?: string }> {
  try {
    const v = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes?.[0];
    return { exists: v !== undefined && v.State !== 'deleted', attachedTo: v?.Attachments?.[0]?.InstanceId };
  } catch (err) {
    if ((err as { name?: string }).name === 'InvalidVolume.NotFound') return { exists: false };
    throw err;
  }
}

async function start(req: CleanupRequest) {
  return startCleanup(client, req, { taskQueue: worker.taskQueue, workflowId: uniqueName('cleanup-safety') });
}

/** Waits (by query, bounded) until the run waits for approval, and returns its plan. */
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

describe('cleanup on the dev server and the emulator', { timeout: 180_000 }, () => {
  test('guard 4: what changed between plan and apply (protection tag added, attached elsewhere, now running, resized) is skipped as "changed since the plan"; the rest is deleted', async () => {
    const run = newRun();
    const other = await instance(run, {}); // not managed: never selected
    await ec2.send(new StopInstancesCommand({ InstanceIds: [other] }));
    const elsewhere = await instance(run, {});
    const restarted = await instance(run, MANAGED);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [restarted] }));
    const tagged = await volume(run, MANAGED);
    const moved = await volume(run, MANAGED);
    await ec2.send(new AttachVolumeCommand({ VolumeId: moved, InstanceId: other, Device: '/dev/sdf' }));
    const resized = await volume(run, MANAGED);
    const control = await volume(run, MANAGED);

    const handle = await start({ region: REGION, selector: { tags: { [RUN_TAG]: run } }, dryRun: false, approvalThreshold: 0 });
    const plan = await planAwaitingApproval(handle);
    const planned = plan.resources.map((r) => r.id);
    for (const id of [restarted, tagged, moved, resized, control]) assert.ok(planned.includes(id), `${id} is planned`);
    assert.deepEqual(plan.resources.find((r) => r.id === moved)?.target, { instanceId: other, device: '/dev/sdf' });

    // The world changes after the plan was made, before it is approved.
    await ec2.send(new CreateTagsCommand({ Resources: [tagged], Tags: [{ Key: ' Trainctl:Protected', Value: '' }] }));
    await ec2.send(new DetachVolumeCommand({ VolumeId: moved, InstanceId: other, Device: '/dev/sdf' }));
    await ec2.send(new AttachVolumeCommand({ VolumeId: moved, InstanceId: elsewhere, Device: '/dev/sdg' }));
    await ec2.send(new StartInstancesCommand({ InstanceIds: [restarted] }));
    await ec2.send(new ModifyVolumeCommand({ VolumeId: resized, Size: 2 }));

    await handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan.hash }] });
    const result = await handle.result();
    const reason = (id: string) => result.report.skipped.find((s) => s.id === id)?.reason ?? '';
    assert.match(reason(tagged), /^changed since the plan: it is protected now/);
    assert.match(reason(moved), /^changed since the plan: it is attached to i-\w+ \(the plan saw i-/);
    assert.match(reason(restarted), /^changed since the plan: it is running now \(the plan saw it stopped\)/);
    assert.match(reason(resized), /^changed since the plan: its size is 2 GiB \(the plan saw 1 GiB\)/);
    assert.deepEqual(result.report.deleted, [control]);
    assert.deepEqual(result.report.failed, []);
    assert.equal((await volumeState(control)).exists, false);
    for (const id of [tagged, moved, resized]) assert.equal((await volumeState(id)).exists, true, `${id} still exists`);
    assert.equal((await volumeState(moved)).attachedTo, elsewhere, 'detach never touches an attachment the plan did not name');
    const state = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [restarted] }))).Reservations?.[0]?.Instances?.[0]?.State?.Name;
    assert.equal(state, 'running');
  });

  test('guard 3: approving one plan with the hash of another is refused, even when both plans delete the same number of resources', async () => {
    const runA = newRun();
    const runB = newRun();
    await volume(runA, MANAGED);
    await volume(runB, MANAGED, 2);
    const a = await start({ region: REGION, selector: { tags: { [RUN_TAG]: runA } }, dryRun: false, approvalThreshold: 0 });
    const b = await start({ region: REGION, selector: { tags: { [RUN_TAG]: runB } }, dryRun: false, approvalThreshold: 0 });
    const planA = await planAwaitingApproval(a);
    const planB = await planAwaitingApproval(b);
    assert.notEqual(planA.hash, planB.hash);
    await assert.rejects(b.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: planA.hash }] }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.match(String((err.cause as Error).message), /is not this plan's/);
      return true;
    });
    for (const h of [a, b]) await h.cancel();
  });

  test('guard 3: apply with the same selector but other protected ids starts a new run instead of joining the pending one', async () => {
    const run = newRun();
    await volume(run, MANAGED);
    const req: CleanupRequest = { region: REGION, selector: { tags: { [RUN_TAG]: run } }, dryRun: false, approvalThreshold: 0 };
    const first = await startCleanup(client, req, { taskQueue: worker.taskQueue });
    const second = await startCleanup(client, { ...req, protectedIds: ['vol-0123456789abcdef0'] }, { taskQueue: worker.taskQueue });
    const again = await startCleanup(client, req, { taskQueue: worker.taskQueue });
    assert.notEqual(first.workflowId, second.workflowId);
    assert.equal(again.workflowId, first.workflowId, 'the identical request still joins');
    for (const h of [first, second]) await h.cancel();
  });

  for (const given of ['data', 'data/']) {
    test(`guard 2: prefix ${JSON.stringify(given)} deletes only keys under data/ — never data-old/ or database.txt — and the plan shows count, bytes and keys`, async () => {
      const s3 = createS3Client(env);
      const bucket = uniqueName('safety').toLowerCase();
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      try {
        await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: asTags(MANAGED) } }));
        for (const [Key, Body] of [
          ['data/a.txt', 'aaa'],
          ['data/sub/b.txt', 'bb'],
          ['data-old/c.txt', 'c'],
          ['database.txt', 'd'],
        ])
          await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body }));
        const handle = await start({
          region: REGION,
          selector: { kinds: ['s3-prefix'], s3: { bucket, prefix: given } },
          dryRun: false,
          approvalThreshold: 100,
        });
        const plan = await planAwaitingApproval(handle);
        assert.deepEqual(
          plan.resources.map((r) => [r.id, r.objects]),
          [[`s3://${bucket}/data/`, { count: 2, bytes: 5, sample: ['data/a.txt', 'data/sub/b.txt'] }]],
        );
        await handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan.hash }] });
        const result = await handle.result();
        assert.deepEqual(result.report.deleted, [`s3://${bucket}/data/`]);
        const left = (await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents?.map((o) => o.Key);
        assert.deepEqual(left, ['data-old/c.txt', 'database.txt']);
      } finally {
        const keys = (await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [];
        if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((k) => ({ Key: k.Key })) } }));
        await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
      }
    });
  }

  test('guard 2 and 4: objects added under the prefix after the plan was approved skip it as changed, deleting nothing', async () => {
    const s3 = createS3Client(env);
    const bucket = uniqueName('safety').toLowerCase();
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    try {
      await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: asTags(MANAGED) } }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'data/a.txt', Body: 'a' }));
      const handle = await start({ region: REGION, selector: { ids: [`s3://${bucket}/data`] }, dryRun: false });
      const plan = await planAwaitingApproval(handle);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'data/new-checkpoint.pt', Body: 'precious' }));
      await handle.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: plan.hash }] });
      const result = await handle.result();
      assert.match(result.report.skipped.find((s) => s.id === `s3://${bucket}/data/`)?.reason ?? '', /^changed since the plan: it holds 2 objects/);
      assert.equal((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount, 2);
    } finally {
      const keys = (await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [];
      if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((k) => ({ Key: k.Key })) } }));
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    }
  });

  test('guard 5: a snapshot taken by snapshot-before-delete (it carries the volume tags) is not selected by a later tag cleanup, only by --id', async () => {
    const run = newRun();
    const v = await volume(run, MANAGED);
    const first = await (await start({ region: REGION, selector: { tags: { [RUN_TAG]: run } }, dryRun: false, snapshotBeforeDelete: true })).result();
    assert.deepEqual(first.report.deleted, [v]);
    const snapshotId = first.report.snapshots[0]?.snapshotId;
    assert.ok(snapshotId);
    const byTag = await (await start({ region: REGION, selector: { tags: { [RUN_TAG]: run }, kinds: ['snapshot'] }, dryRun: false })).result();
    assert.deepEqual(byTag.report.deleted, []);
    assert.match(byTag.report.skipped.find((s) => s.id === snapshotId)?.reason ?? '', /backup taken by snapshot-before-delete/);
    const byId = await (await start({ region: REGION, selector: { ids: [snapshotId] }, dryRun: false })).result();
    assert.deepEqual(byId.report.deleted, [snapshotId]);
  });

  test('guard 14: the budget stop-instances action stops only the managed instances of its project', async () => {
    const run = newRun();
    const mine = await instance(run, { ...MANAGED, 'trainctl:project': 'vision' });
    const unmanaged = await instance(run, { 'trainctl:project': 'vision' });
    const otherProject = await instance(run, { ...MANAGED, 'trainctl:project': 'speech' });
    const keyOnly = await instance(run, { 'trainctl:managed': '', 'trainctl:project': 'vision' });
    const acts = createCostActivities({ ec2: () => ec2 });
    const ids = [mine, unmanaged, otherProject, keyOnly];
    const res = (await new MockActivityEnvironment().run(acts.stopInstances, { region: REGION, instanceIds: ids, project: 'vision' })) as Awaited<
      ReturnType<typeof acts.stopInstances>
    >;
    assert.deepEqual(res.stopped, [mine]);
    assert.deepEqual(res.refused.map((r) => r.id).sort(), [unmanaged, otherProject, keyOnly].sort());
    const states = new Map(
      ((await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }))).Reservations ?? [])
        .flatMap((r) => r.Instances ?? [])
        .map((i) => [i.InstanceId, i.State?.Name]),
    );
    assert.equal(states.get(mine), 'stopped');
    for (const id of [unmanaged, otherProject, keyOnly]) assert.equal(states.get(id), 'running', `${id} is left running`);
  });
});

describe('guard 14: prewarm read buffers are capped', () => {
  const cases: [number, number, number, number][] = [
    // blockSize, concurrency, blocks, expected reads in flight
    [64 * 1024 * 1024, 256, 1_000, 4],
    [1024 * 1024, 256, 1_000, 256],
    [16 * 1024 * 1024, 32, 1_000, 16],
    [64 * 1024 * 1024, 256, 2, 2],
    [512 * 1024 * 1024, 8, 10, 1],
  ];
  for (const [blockSize, concurrency, blocks, expected] of cases) {
    test(`guard 14: ${blockSize / 1024 / 1024} MiB blocks × ${concurrency} reads hold at most ${MAX_READ_BUFFER_BYTES / 1024 / 1024} MiB (${expected} in flight)`, () => {
      const slots = readSlots(concurrency, blocks, blockSize);
      assert.equal(slots, expected);
      assert.ok(slots === 1 || slots * blockSize <= MAX_READ_BUFFER_BYTES);
    });
  }
});
