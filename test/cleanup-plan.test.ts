import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CleanupInputSchema, CleanupStep, cleanupWorkflowId, fnv1a64, type CleanupRequest } from '../src/contracts/cleanup.js';
import { durationMs, planCleanup, tagIsTrue, type DiscoveredResource, type Discovery } from '../src/cleanup-plan.js';

const NOW = '2026-11-28T12:00:00.000Z';
const RUN = { 'trainctl:test-run': 'r1' };
const MANAGED = { ...RUN, 'trainctl:managed': 'true' };

function input(over: Partial<CleanupRequest> = {}, selector: Partial<CleanupRequest['selector']> = {}) {
  return CleanupInputSchema.parse({ region: 'us-east-1', ...over, selector: { tags: RUN, ...selector } });
}

function vol(id: string, tags: Record<string, string>, extra: Partial<DiscoveredResource> = {}): DiscoveredResource {
  return { id, kind: 'volume', tags, state: extra.attachment ? 'in-use' : 'available', createdAt: '2026-11-01T00:00:00.000Z', ...extra };
}

function discovery(resources: DiscoveredResource[], missingIds: string[] = []): Discovery {
  return { region: 'us-east-1', discoveredAt: NOW, resources, missingIds };
}

/** The fixture of acceptance point 1, as discovery would report it. */
function fixture(): Discovery {
  return discovery([
    vol('vol-00000001', MANAGED),
    vol('vol-00000002', MANAGED, { attachment: { instanceId: 'i-0000000a', device: '/dev/sdf', instanceState: 'running' } }),
    vol('vol-00000003', { ...MANAGED, 'trainctl:protected': 'true' }),
    vol('vol-00000004', { ...MANAGED, 'trainctl:important': 'yes' }),
    vol('vol-00000005', RUN),
    vol('vol-00000006', { ...MANAGED, 'Trainctl:Protected': 'TRUE' }),
    {
      id: 'i-0000000a',
      kind: 'instance',
      tags: MANAGED,
      state: 'running',
      createdAt: '2026-11-01T00:00:00.000Z',
      volumes: [
        { volumeId: 'vol-0000000r', device: '/dev/sda1', deleteOnTermination: true, tags: {} },
        { volumeId: 'vol-00000002', device: '/dev/sdf', deleteOnTermination: false, tags: MANAGED },
      ],
    },
  ]);
}

const reasonOf = (plan: ReturnType<typeof planCleanup>, id: string) => plan.skipped.find((s) => s.id === id)?.reason;
const stepsOf = (plan: ReturnType<typeof planCleanup>, id: string) => plan.resources.find((r) => r.id === id)?.steps;

describe('protection tags', () => {
  test('tag keys compare case-insensitively and true, yes and 1 (any case) count as set', () => {
    assert.equal(tagIsTrue({ 'Trainctl:Protected': 'TRUE' }, 'trainctl:protected'), true);
    assert.equal(tagIsTrue({ 'trainctl:protected': 'Yes' }, 'trainctl:protected'), true);
    assert.equal(tagIsTrue({ 'TRAINCTL:PROTECTED': ' 1 ' }, 'trainctl:protected'), true);
    assert.equal(tagIsTrue({ 'trainctl:protected': 'false' }, 'trainctl:protected'), false);
    assert.equal(tagIsTrue({ 'trainctl:protected': 'on' }, 'trainctl:protected'), false);
    assert.equal(tagIsTrue({}, 'trainctl:protected'), false);
  });
});

describe('planCleanup', () => {
  test('a plan without force deletes only unprotected managed resources and says why each other one is skipped', () => {
    const plan = planCleanup(fixture(), input());
    assert.deepEqual(plan.resources.map((r) => r.id).sort(), ['i-0000000a', 'vol-00000001', 'vol-00000002']);
    assert.match(reasonOf(plan, 'vol-00000003')!, /^protected \(tag trainctl:protected=true\): deleted only with force and its id listed explicitly/);
    assert.match(reasonOf(plan, 'vol-00000004')!, /^important \(tag trainctl:important=yes\): deleted only with force/);
    assert.match(reasonOf(plan, 'vol-00000005')!, /not managed by trainctl/);
    assert.match(reasonOf(plan, 'vol-00000006')!, /^protected \(tag Trainctl:Protected=TRUE\)/);
    assert.equal(plan.skipped.length, 4);
  });

  test('an instance is stopped before its volume is detached, and terminated only after the volume has settled', () => {
    const plan = planCleanup(fixture(), input());
    assert.deepEqual(stepsOf(plan, 'i-0000000a'), ['stop-instance', 'wait-instance-stopped', 'terminate-instance', 'wait-instance-terminated']);
    assert.deepEqual(stepsOf(plan, 'vol-00000002'), ['detach-volume', 'wait-volume-available', 'delete-volume']);
    assert.deepEqual(stepsOf(plan, 'vol-00000001'), ['delete-volume']);
    const v2 = plan.resources.find((r) => r.id === 'vol-00000002')!;
    assert.deepEqual(v2.dependsOn, [{ beforeStep: CleanupStep.detachVolume, resourceId: 'i-0000000a', after: CleanupStep.waitInstanceStopped }]);
    const inst = plan.resources.find((r) => r.id === 'i-0000000a')!;
    assert.deepEqual(inst.dependsOn, [{ beforeStep: CleanupStep.terminateInstance, resourceId: 'vol-00000002', after: 'settled' }]);
    assert.deepEqual(inst.notes, ['AWS deletes vol-0000000r with it (DeleteOnTermination)']);
  });

  test('force deletes important resources but not protected ones; force with the explicit id deletes a protected one', () => {
    const forced = planCleanup(fixture(), input({ force: true }));
    assert.ok(stepsOf(forced, 'vol-00000004'));
    assert.equal(forced.resources.find((r) => r.id === 'vol-00000004')?.protection, 'important');
    assert.match(reasonOf(forced, 'vol-00000003')!, /^protected/);
    const explicit = planCleanup(fixture(), input({ force: true }, { ids: ['vol-00000003'] }));
    assert.ok(stepsOf(explicit, 'vol-00000003'));
    assert.match(reasonOf(explicit, 'vol-00000006')!, /^protected/);
    const explicitWithoutForce = planCleanup(fixture(), input({}, { ids: ['vol-00000003'] }));
    assert.match(reasonOf(explicitWithoutForce, 'vol-00000003')!, /^protected/);
  });

  test('the protected-ids list protects like the tag', () => {
    const plan = planCleanup(fixture(), input({ force: true, protectedIds: ['vol-00000001'] }));
    assert.match(reasonOf(plan, 'vol-00000001')!, /^protected \(its id is in the protected-ids list\)/);
  });

  test('an explicitly listed id is a candidate without the managed tag', () => {
    const plan = planCleanup(fixture(), input({}, { ids: ['vol-00000005'] }));
    assert.deepEqual(stepsOf(plan, 'vol-00000005'), ['delete-volume']);
  });

  test('snapshotBeforeDelete puts a snapshot and its wait before every volume deletion', () => {
    const plan = planCleanup(fixture(), input({ snapshotBeforeDelete: true }));
    assert.deepEqual(stepsOf(plan, 'vol-00000002'), ['detach-volume', 'wait-volume-available', 'snapshot-volume', 'wait-snapshot-completed', 'delete-volume']);
    assert.deepEqual(stepsOf(plan, 'vol-00000001'), ['snapshot-volume', 'wait-snapshot-completed', 'delete-volume']);
  });

  test('a volume attached to a running instance the cleanup does not stop is skipped; to a stopped one it is detached', () => {
    const running = vol('vol-00000007', MANAGED, { attachment: { instanceId: 'i-0000000b', device: '/dev/sdg', instanceState: 'running' } });
    const stopped = vol('vol-00000008', MANAGED, { attachment: { instanceId: 'i-0000000c', device: '/dev/sdg', instanceState: 'stopped' } });
    const plan = planCleanup(discovery([running, stopped]), input());
    assert.match(reasonOf(plan, 'vol-00000007')!, /attached to running instance i-0000000b, which this cleanup does not stop/);
    assert.deepEqual(stepsOf(plan, 'vol-00000008'), ['detach-volume', 'wait-volume-available', 'delete-volume']);
    assert.deepEqual(plan.resources.find((r) => r.id === 'vol-00000008')?.dependsOn, []);
  });

  test('an instance whose termination would delete a protected DeleteOnTermination volume is skipped', () => {
    const inst: DiscoveredResource = {
      id: 'i-0000000d',
      kind: 'instance',
      tags: MANAGED,
      state: 'running',
      volumes: [{ volumeId: 'vol-00000009', device: '/dev/sda1', deleteOnTermination: true, tags: { 'trainctl:protected': '1' } }],
    };
    const plan = planCleanup(discovery([inst]), input());
    assert.match(reasonOf(plan, 'i-0000000d')!, /would delete its volume vol-00000009 \(DeleteOnTermination\), which is protected/);
  });

  test('olderThan keeps resources created within the window', () => {
    const young = vol('vol-0000000a', MANAGED, { createdAt: '2026-11-28T11:00:00.000Z' });
    const old = vol('vol-0000000b', MANAGED, { createdAt: '2026-11-20T11:00:00.000Z' });
    const plan = planCleanup(discovery([young, old]), input({}, { olderThan: '2d' }));
    assert.deepEqual(
      plan.resources.map((r) => r.id),
      ['vol-0000000b'],
    );
    assert.equal(reasonOf(plan, 'vol-0000000a'), 'newer than 2d');
  });

  test('snapshots wait for every volume line, and missing explicit ids are reported as skipped', () => {
    const snap: DiscoveredResource = { id: 'snap-00000001', kind: 'snapshot', tags: MANAGED, state: 'completed' };
    const plan = planCleanup(
      discovery([snap, vol('vol-00000001', MANAGED)], ['vol-0000dead']),
      input({}, { kinds: ['volume', 'snapshot'], ids: ['vol-0000dead'] }),
    );
    assert.deepEqual(plan.resources.find((r) => r.id === 'snap-00000001')?.dependsOn, [
      { beforeStep: 'delete-snapshot', resourceId: 'vol-00000001', after: 'settled' },
    ]);
    assert.match(reasonOf(plan, 'vol-0000dead')!, /^not found/);
  });

  test('the plan hash is stable across discovery order and time, and changes when the plan changes', () => {
    const a = planCleanup(fixture(), input());
    const shuffled = fixture();
    shuffled.resources.reverse();
    shuffled.discoveredAt = '2026-11-28T12:05:00.000Z';
    assert.equal(planCleanup(shuffled, input()).hash, a.hash);
    assert.notEqual(planCleanup(fixture(), input({ force: true })).hash, a.hash);
    const fewer = fixture();
    fewer.resources = fewer.resources.filter((r) => r.id !== 'vol-00000001');
    assert.notEqual(planCleanup(fewer, input()).hash, a.hash);
    assert.match(a.hash, /^[0-9a-f]{64}$/);
  });

  test('approval is needed over the threshold or for anything protected or important, and never for a dry run', () => {
    assert.equal(planCleanup(fixture(), input({ dryRun: false, approvalThreshold: 3 })).needsApproval, false);
    const over = planCleanup(fixture(), input({ dryRun: false, approvalThreshold: 2 }));
    assert.equal(over.needsApproval, true);
    assert.match(over.approvalReasons[0]!, /deletes 3 resources, more than the approval threshold of 2/);
    const risky = planCleanup(fixture(), input({ dryRun: false, force: true }));
    assert.equal(risky.needsApproval, true);
    assert.match(risky.approvalReasons.join(';'), /vol-00000004 \(important\)/);
    assert.equal(planCleanup(fixture(), input({ approvalThreshold: 0 })).needsApproval, false);
  });
});

describe('helpers', () => {
  test('FNV-1a 64 matches the published test vectors', () => {
    assert.equal(fnv1a64(''), 'cbf29ce484222325');
    assert.equal(fnv1a64('a'), 'af63dc4c8601ec8c');
    assert.equal(fnv1a64('foobar'), '85944171f73967e8');
  });

  test('durations convert to milliseconds', () => {
    assert.equal(durationMs('30s'), 30_000);
    assert.equal(durationMs('2h'), 7_200_000);
    assert.equal(durationMs('1w'), 604_800_000);
    assert.throws(() => durationMs('1y'));
  });

  test('workflow ids are readable and separate dry runs from applies', () => {
    const id = cleanupWorkflowId(input());
    assert.match(id, /^cleanup\/us-east-1\/plan-[0-9a-f]{64}$/);
    assert.match(cleanupWorkflowId(input({ dryRun: false })), /^cleanup\/us-east-1\/apply-[0-9a-f]{64}$/);
    assert.equal(cleanupWorkflowId(input()), id);
  });
});

describe('CleanupInputSchema', () => {
  test('rejects bad input with a message naming each field', () => {
    const r = CleanupInputSchema.safeParse({
      region: 'mars',
      selector: { tags: { '': 'x' }, ids: ['vol-nothex'], kinds: ['database'], olderThan: '3 days' },
      concurrency: 0,
      approvalThreshold: -1,
      protectedIds: ['nope'],
    });
    assert.equal(r.success, false);
    const byPath = new Map(r.error!.issues.map((i) => [i.path.join('.'), i.message]));
    assert.match(byPath.get('region')!, /AWS region/);
    assert.match(byPath.get('selector.ids.0')!, /must be an instance/);
    assert.match(byPath.get('selector.kinds.0')!, /must be one of instance, volume/);
    assert.match(byPath.get('selector.olderThan')!, /duration such as/);
    assert.match(byPath.get('concurrency')!, /at least 1/);
    assert.match(byPath.get('approvalThreshold')!, /0 or more/);
    assert.match(byPath.get('protectedIds.0')!, /must be an instance/);
  });

  test('refuses an empty selector, which would match the whole region', () => {
    const r = CleanupInputSchema.safeParse({ region: 'us-east-1', selector: {} });
    assert.equal(r.success, false);
    assert.match(r.error!.issues[0]!.message, /empty selector would match every resource/);
  });

  test('defaults to a dry run of instances and volumes without force', () => {
    const v = CleanupInputSchema.parse({ region: 'us-east-1', selector: { tags: { a: 'b' } } });
    assert.equal(v.dryRun, true);
    assert.equal(v.force, false);
    assert.deepEqual(v.selector.kinds, ['instance', 'volume']);
  });
});

test('a planned resource carries its trainctl:project tag, so its deletion reaches the tracker that counted it', () => {
  const plan = planCleanup(
    discovery([vol('vol-0000000p', { ...MANAGED, 'trainctl:project': 'vision' }), vol('vol-0000000q', MANAGED)]),
    input({ dryRun: false }),
  );
  const byId = new Map(plan.resources.map((r) => [r.id, r]));
  assert.equal(byId.get('vol-0000000p')?.project, 'vision');
  assert.equal(byId.get('vol-0000000q')?.project, undefined);
});
