import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import {
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { onCleanup, startWorker, testClient, testServices, uniqueName, ec2For, type TestServices } from './helpers/harness.js';
import { MS_PER_HOUR } from '../src/cost-model.js';
import { quote } from '../src/pricing.js';
import {
  PROJECT_TAG,
  costTrackerWorkflowId,
  type CostTrackerRequest,
  type ResourceStarted,
  byTagQuery,
  reconciliationQuery,
  resourceQuery,
  resourceStartedSignal,
  resourceStoppedSignal,
  resourceUsageSignal,
  runningQuery,
  setBudgetUpdate,
  setRateUpdate,
  summaryQuery,
  totalCostQuery,
} from '../src/contracts/cost.js';
import type { costTracker } from '../src/workflows/cost-tracker.js';
import { ensureReconcileSchedule } from '../src/api/cost.js';
import { provision as startProvisionVolume } from '../src/api/volume.js';
import { volumeJanitor } from './helpers/volumes.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { waitFor } from './helpers/wait.js';

let svc: TestServices;
let client: Client;
let taskQueue: string;
let ec2: EC2Client;

before(async () => {
  svc = await testServices();
  client = await testClient(svc.env);
  taskQueue = (await startWorker({ env: svc.env, bundlePath: svc.bundlePath })).taskQueue;
  ec2 = ec2For(svc.env);
});

/** Starts (or signals) a tracker for a fresh project; terminated when the file ends. */
async function tracker(project: string, extra: Partial<CostTrackerRequest> = {}) {
  const handle = await client.workflow.start<typeof costTracker>('costTracker', {
    taskQueue,
    workflowId: costTrackerWorkflowId(project),
    args: [{ project, ...extra }],
  });
  onCleanup(() =>
    client.workflow
      .getHandle(handle.workflowId)
      .terminate('test over')
      .catch(() => undefined),
  );
  return handle;
}

function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  return waitFor(fn, { what, timeoutMs, intervalMs: 100 });
}

/** An independent price: BigInt µ$ for one stretch at `rate` µ$/h. */
function bigCost(rate: number, ms: number): bigint {
  return ms <= 0 ? 0n : (BigInt(rate) * BigInt(ms)) / BigInt(MS_PER_HOUR);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

describe('cost tracker on the dev server', () => {
  test('a volume made by the provisioning workflow appears in running at its table rate, and once stopped costs rate × lifetime to the cent', async () => {
    const project = uniqueName('prov');
    const name = volumeJanitor(ec2)(uniqueName('cost-vol'));
    // The largest io2 volume there is, so that seconds of life cost whole cents.
    const request = { name, region: 'us-east-1', sizeGiB: 65_536, volumeType: 'io2' as const, iops: 256_000, availabilityZone: 'us-east-1a', project };
    const handle = await startProvisionVolume(client, request, { taskQueue });
    onCleanup(() =>
      client.workflow
        .getHandle(costTrackerWorkflowId(project))
        .terminate('test over')
        .catch(() => undefined),
    );
    const result = await handle.result();
    const tracker = client.workflow.getHandle<typeof costTracker>(costTrackerWorkflowId(project));

    const running = await eventually('the volume is tracked', async () => (await tracker.query(runningQuery)).find((r) => r.id === result.volumeId));
    const q = quote({ kind: 'volume', type: 'io2', region: 'us-east-1', sizeGiB: 65_536, iops: 256_000 });
    assert.ok(q.priced);
    assert.equal(running.hourlyMicroUsd, q.microUsdPerHour, 'the table rate of a 64 TiB io2 volume with 256,000 IOPS');
    assert.equal(running.rateSource, 'table');
    assert.equal(running.tags['Name'], name);
    const at36h = await tracker.query(resourceQuery, result.volumeId, { asOf: Date.parse(running.startedAt) + 36 * MS_PER_HOUR });
    assert.equal(BigInt(at36h!.costMicroUsd), bigCost(q.microUsdPerHour, 36 * MS_PER_HOUR), 'priced at any moment from its rate');

    // Seconds of life, so that the cost is whole cents.
    await waitFor(() => Date.now() - Date.parse(running.startedAt) >= 2_000, { what: 'the volume to have lived 2 s', timeoutMs: 10_000, intervalMs: 100 });
    await tracker.signal(resourceStoppedSignal, { id: result.volumeId });
    const stopped = await eventually('the volume is stopped', async () => {
      const r = await tracker.query(resourceQuery, result.volumeId);
      return r?.stoppedAt ? r : undefined;
    });
    const lifetime = Date.parse(stopped.stoppedAt!) - Date.parse(stopped.startedAt);
    assert.ok(lifetime >= 2_000);
    const expected = bigCost(q.microUsdPerHour, lifetime);
    assert.equal(BigInt(stopped.costMicroUsd), expected, 'rate × lifetime to the µ$');
    assert.equal(stopped.costUsd, Math.round(Number(expected) / 10_000) / 100, 'and to the cent');
    assert.ok(stopped.costUsd >= 0.01, `a few seconds of this volume cost cents (${stopped.costUsd})`);
    const later = await tracker.query(resourceQuery, result.volumeId, { asOf: Date.now() + MS_PER_HOUR });
    assert.equal(later!.costMicroUsd, stopped.costMicroUsd, 'a stopped resource costs nothing more');
  });

  test('5,000 signals from parallel clients across at least two continue-as-new runs add up exactly to an independent computation, and queries answer during the storm', async () => {
    const project = uniqueName('storm');
    const handle = await tracker(project, { continueAsNewAfterEvents: 700 });
    const firstRunId = handle.firstExecutionRunId;

    const now = Date.now();
    const asOf = now + 60_000;
    const types = ['g5.xlarge', 'p3.2xlarge', 't3.micro', 'c5.large'];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    // 1,250 starts + 1,000 stops + 2,750 usage reports = 5,000 signals.
    const plans = Array.from({ length: 1_250 }, (_, i) => {
      const start = now - 10 * 24 * MS_PER_HOUR + rnd(9 * 24 * MS_PER_HOUR);
      const stop = i < 1_000 ? start + 1 + rnd(now - start - 1) : undefined;
      const override = i % 3 === 0 ? (rnd(50_000_000) + 1) / 1_000_000 : undefined;
      const type = types[i % types.length]!;
      const team = `team-${i % 5}`;
      return { id: `i-storm${String(i).padStart(8, '0')}`, start, stop, override, type, team, usage: i < 1_000 ? 2 : 3 };
    });
    let expected = 0n;
    const expectedByTeam = new Map<string, bigint>();
    for (const p of plans) {
      const q = quote({ kind: 'instance', type: p.type, region: 'us-east-1' });
      assert.ok(q.priced);
      const rate = p.override !== undefined ? Math.round(p.override * 1_000_000) : q.microUsdPerHour;
      const c = bigCost(rate, (p.stop ?? asOf) - p.start);
      expected += c;
      expectedByTeam.set(p.team, (expectedByTeam.get(p.team) ?? 0n) + c);
    }
    const totalSignals = plans.reduce((n, p) => n + 1 + (p.stop !== undefined ? 1 : 0) + p.usage, 0);
    assert.equal(totalSignals, 5_000);

    const clients = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const connection = await Connection.connect({ address: svc.env.TEMPORAL_ADDRESS });
        onCleanup(() => connection.close());
        return new Client({ connection, namespace: svc.env.TEMPORAL_NAMESPACE });
      }),
    );

    let storming = true;
    const latencies: number[] = [];
    const slow: string[] = [];
    const t00 = performance.now();
    const querier = Promise.all(
      [0, 1].map(async () => {
        const h = client.workflow.getHandle(handle.workflowId);
        while (storming) {
          const t0 = performance.now();
          await h.query(totalCostQuery, { asOf });
          const ms = performance.now() - t0;
          latencies.push(ms);
          if (ms > 500) slow.push(`${((t0 - t00) / 1000).toFixed(1)}s:${ms.toFixed(0)}ms`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }),
    );

    const started = Date.now();
    const lanes = 48;
    const waves = 5;
    // Waves of ~1,000 signals from 48 concurrent lanes over 4 connections. The tracker can only
    // continue as new in a moment when no signal is in flight (the server refuses to close a run
    // with unhandled signals), so the short pause between waves is where runs hand over.
    let sent = 0;
    for (let w = 0; w < waves; w++) {
      const wave = plans.filter((_, i) => i % waves === w);
      await Promise.all(
        Array.from({ length: lanes }, async (_, lane) => {
          const c = clients[lane % clients.length]!;
          const h = c.workflow.getHandle<typeof costTracker>(handle.workflowId);
          for (let i = lane; i < wave.length; i += lanes) {
            const p = wave[i]!;
            const resource: ResourceStarted = { id: p.id, kind: 'instance', type: p.type, region: 'us-east-1', tags: { team: p.team }, at: p.start };
            if (p.override !== undefined) resource.hourlyRate = p.override;
            await h.signal(resourceStartedSignal, resource);
            for (let u = 0; u < p.usage; u++) {
              await h.signal(resourceUsageSignal, {
                id: p.id,
                cpuPercent: 10 * u,
                gpuPercent: 90,
                memoryPercent: 50,
                networkBytes: 1_000 * u,
                at: p.start + u + 1,
              });
            }
            if (p.stop !== undefined) await h.signal(resourceStoppedSignal, { id: p.id, at: p.stop });
          }
        }),
      );
      console.log(`[cost storm] wave ${w + 1} sent at ${((performance.now() - t00) / 1000).toFixed(1)} s`);
      sent += wave.reduce((n, p) => n + 1 + (p.stop !== undefined ? 1 : 0) + p.usage, 0);
      await eventually(`wave ${w + 1} handled`, async () => {
        const s = await handle.query(summaryQuery);
        return s.counters.accepted + s.counters.duplicates + s.counters.rejected >= sent;
      });
    }
    const stormSeconds = (Date.now() - started) / 1000;

    const summary = await eventually('every signal counted', async () => {
      const s = await handle.query(summaryQuery, { asOf, tagKey: 'team' });
      const seen = s.counters.accepted + s.counters.duplicates + s.counters.rejected;
      return seen >= 5_000 ? s : undefined;
    });
    storming = false;
    await querier;

    assert.equal(summary.counters.accepted, 5_000, 'every signal was accepted once');
    assert.equal(summary.counters.duplicates, 0);
    assert.equal(summary.counters.rejected, 0, JSON.stringify(summary.rejected.recent.slice(0, 3)));
    assert.ok(summary.runs >= 3, `crossed at least two continue-as-new boundaries (runs: ${summary.runs})`);
    const handedOver = summary.previousRuns.reduce((n, r) => n + r.events, 0);
    assert.ok(summary.previousRuns.length >= 2 && summary.previousRuns.every((r) => r.events >= 700), JSON.stringify(summary.previousRuns));
    const total = await handle.query(totalCostQuery, { asOf });
    assert.equal(BigInt(total.totalMicroUsd), expected, 'total equals the independent BigInt computation to the µ$');
    assert.equal(total.running, 250);
    assert.deepEqual(total.unpriced, []);
    for (const [team, micros] of expectedByTeam) {
      assert.equal(BigInt(summary.byTag!.groups[team]!.totalMicroUsd), micros, `team ${team}`);
    }
    const byTag = await handle.query(byTagQuery, 'team', 'team-3', { asOf });
    assert.equal(BigInt(byTag.totalMicroUsd), expectedByTeam.get('team-3'));
    // Resources stopped more than a week ago are folded into totals at a continue-as-new: counted, not listed.
    assert.equal(byTag.resources.length + byTag.folded, 250);
    const one = await handle.query(resourceQuery, plans[1_005]!.id, { asOf });
    assert.equal(one?.usage?.samples, 3, 'usage is kept as latest + average, not a list');

    assert.ok(latencies.length > 0, 'queries ran during the storm');
    const sorted = [...latencies].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    console.log(
      `[cost storm] 5,000 signals in ${stormSeconds.toFixed(1)} s over ${summary.runs} runs (${summary.previousRuns.map((r) => r.events).join(' + ')} + ${5_000 - handedOver} signals; first run ${firstRunId}); ` +
        `${latencies.length} totalCost queries during the storm: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms; slow: ${slow.join(' ')}`,
    );
  });

  test('bad signals never crash or wedge the tracker: they are logged, counted and listed in rejected', async () => {
    const project = uniqueName('bad');
    const handle = await tracker(project);
    const h = client.workflow.getHandle(handle.workflowId);
    const bad: [string, unknown][] = [
      ['resourceStarted', { id: 'vol-neg', kind: 'volume', type: 'gp3', sizeGiB: -5, region: 'us-east-1' }],
      ['resourceStarted', 'garbage'],
      ['resourceStarted', { id: 'x', kind: 'spaceship', type: 'big', region: 'us-east-1' }],
      ['resourceStarted', { id: 'late', kind: 'instance', type: 't3.micro', region: 'us-east-1', at: Date.now() + 24 * MS_PER_HOUR }],
      ['resourceStopped', { id: 'never-started' }],
      ['resourceStopped', 42],
      ['resourceUsage', { id: 'never-started', cpuPercent: 5 }],
      ['resourceUsage', { id: 'x', cpuPercent: 500 }],
    ];
    for (const [name, payload] of bad) await h.signal(name, payload);
    await h.signal(resourceStartedSignal, { id: 'i-good', kind: 'instance', type: 't3.micro', region: 'us-east-1', at: Date.now() - MS_PER_HOUR });
    await h.signal(resourceStoppedSignal, { id: 'i-good', at: Date.now() - 2 * MS_PER_HOUR });
    await h.signal(resourceStartedSignal, { id: 'i-good', kind: 'instance', type: 't3.micro', region: 'us-east-1', at: Date.now() - MS_PER_HOUR });

    const s = await eventually('all signals handled', async () => {
      const s = await handle.query(summaryQuery);
      return s.counters.accepted + s.counters.rejected + s.counters.duplicates === bad.length + 3 ? s : undefined;
    });
    assert.equal(s.counters.rejected, bad.length + 1, 'every bad signal and the stop before start are rejected');
    assert.equal(s.counters.accepted, 1);
    assert.equal(s.counters.duplicates, 1, 'the repeated start of a running resource is a duplicate, not a second resource');
    assert.equal(s.rejected.count, bad.length + 1);
    assert.ok(s.rejected.recent.some((r) => r.id === 'never-started' && /unknown resource id/.test(r.reason)));
    assert.ok(s.rejected.recent.some((r) => r.id === 'vol-neg' && /sizeGiB/.test(r.reason)));
    assert.ok(s.rejected.recent.some((r) => r.id === 'late' && /future/.test(r.reason)));
    assert.ok(s.rejected.recent.some((r) => /before the resource started/.test(r.reason)));
    const running = await handle.query(runningQuery);
    assert.deepEqual(
      running.map((r) => r.id),
      ['i-good'],
    );
  });

  test('setBudget and setRate reject bad values in their validators and record nothing', async () => {
    const project = uniqueName('valid');
    const handle = await tracker(project);
    for (const bad of [{ limitUsd: -5 }, { limitUsd: 0 }, { limitUsd: 10, window: 'weekly' }, { limitUsd: 10, action: 'explode' }, { limitUsd: Number.NaN }]) {
      await assert.rejects(
        handle.executeUpdate(setBudgetUpdate, { args: [bad as never] }),
        (err: unknown) => err instanceof WorkflowUpdateFailedError,
        JSON.stringify(bad),
      );
    }
    for (const bad of [
      { type: 'g5.xlarge', usdPerHour: -1 },
      { type: '', usdPerHour: 1 },
      { type: 'g5.xlarge', usdPerHour: 1e9 },
    ]) {
      await assert.rejects(
        handle.executeUpdate(setRateUpdate, { args: [bad] }),
        (err: unknown) => err instanceof WorkflowUpdateFailedError,
        JSON.stringify(bad),
      );
    }
    const s = await handle.query(summaryQuery);
    assert.deepEqual(s.budgets, []);
    assert.equal(s.counters.updates, 0, 'no rejected update reached the handler');

    const ok = await handle.executeUpdate(setBudgetUpdate, { args: [{ limitUsd: 12.5, window: 'monthly', tagFilter: { key: 'team', value: 'a' } }] });
    assert.equal(ok.limitUsd, 12.5);
    assert.equal(ok.action, 'alert');
    const after = await handle.query(summaryQuery);
    assert.equal(after.budgets.length, 1);
    assert.equal(after.budgets[0]!.window, 'monthly');
  });

  test('an unknown instance type is listed as unpriced in every answer, never as $0, until setRate prices its whole life', async () => {
    const project = uniqueName('unpriced');
    const handle = await tracker(project);
    const at = Date.now() - 2 * MS_PER_HOUR;
    await handle.signal(resourceStartedSignal, { id: 'i-mystery', kind: 'instance', type: 'x9.galactic', region: 'us-east-1', tags: { team: 'a' }, at });
    await handle.signal(resourceStartedSignal, { id: 'i-known', kind: 'instance', type: 'g5.xlarge', region: 'us-east-1', tags: { team: 'a' }, at });
    const asOf = at + 2 * MS_PER_HOUR;

    const total = await eventually('both started', async () => {
      const t = await handle.query(totalCostQuery, { asOf });
      return t.running === 2 ? t : undefined;
    });
    assert.deepEqual(
      total.unpriced.map((u) => [u.id, u.type]),
      [['i-mystery', 'x9.galactic']],
    );
    assert.match(total.unpriced[0]!.reason, /x9\.galactic/);
    assert.equal(total.totalMicroUsd, 2 * 1_006_000, 'only the priced instance adds to the total');
    const running = await handle.query(runningQuery, { asOf });
    const mystery = running.find((r) => r.id === 'i-mystery')!;
    assert.equal(mystery.pricing, 'unpriced');
    assert.equal(mystery.hourlyUsd, null, 'no rate rather than a $0 rate');
    assert.equal(running.find((r) => r.id === 'i-known')!.hourlyMicroUsd, 1_006_000);
    const s = await handle.query(summaryQuery, { asOf, tagKey: 'team' });
    assert.equal(s.unpriced.length, 1);
    assert.equal(s.byKind.instance!.unpriced, 1);
    assert.equal(s.byTag!.groups['a']!.unpriced, 1);
    const byTag = await handle.query(byTagQuery, 'team', 'a', { asOf });
    assert.equal(byTag.unpriced[0]!.id, 'i-mystery');
    assert.equal((await handle.query(resourceQuery, 'i-mystery'))!.pricing, 'unpriced');

    const res = await handle.executeUpdate(setRateUpdate, { args: [{ type: 'x9.galactic', usdPerHour: 3 }] });
    assert.equal(res.affected, 1);
    const priced = await handle.query(totalCostQuery, { asOf });
    assert.deepEqual(priced.unpriced, []);
    assert.equal(priced.totalMicroUsd, 2 * 1_006_000 + 2 * 3_000_000, 'the new rate covers its whole life');
  });

  test('a budget with the stop-instances action stops the matching instance in EC2 once spend crosses the limit', async () => {
    const project = uniqueName('budget');
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const imageId = images.Images?.[0]?.ImageId;
    assert.ok(imageId, 'moto ships an AMI');
    // Issue 10 guard 14: a budget stops only instances EC2 shows as managed by trainctl in its project.
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        InstanceType: 't3.micro',
        MinCount: 2,
        MaxCount: 2,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'trainctl:managed', Value: 'true' },
              { Key: 'trainctl:project', Value: project },
            ],
          },
        ],
      }),
    );
    const ids = (run.Instances ?? []).map((i) => i.InstanceId!);
    onCleanup(() => ec2.send(new TerminateInstancesCommand({ InstanceIds: ids })));
    const [guarded, other] = ids as [string, string];

    const handle = await tracker(project);
    const at = Date.now() - 2 * MS_PER_HOUR;
    await handle.signal(resourceStartedSignal, {
      id: guarded,
      kind: 'instance',
      type: 't3.micro',
      region: 'us-east-1',
      tags: { team: 'ml' },
      at,
      hourlyRate: 1,
    });
    await handle.signal(resourceStartedSignal, {
      id: other,
      kind: 'instance',
      type: 't3.micro',
      region: 'us-east-1',
      tags: { team: 'web' },
      at,
      hourlyRate: 1,
    });
    const view = await handle.executeUpdate(setBudgetUpdate, {
      args: [{ name: 'ml-cap', limitUsd: 1.5, action: 'stop-instances', tagFilter: { key: 'team', value: 'ml' } }],
    });
    assert.ok(view.spentUsd >= 1.5, 'two hours at $1/h already cross $1.50');

    const s = await eventually('the budget acted', async () => {
      const s = await handle.query(summaryQuery);
      return s.alerts.length ? s : undefined;
    });
    assert.equal(s.alerts[0]!.budget, 'ml-cap');
    assert.match(s.alerts[0]!.outcome, new RegExp(`stopped ${guarded}`));
    const states = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
    const state = new Map(states.Reservations!.flatMap((r) => r.Instances!).map((i) => [i.InstanceId, i.State?.Name]));
    assert.ok(['stopping', 'stopped'].includes(state.get(guarded)!), `guarded instance is ${state.get(guarded)}`);
    assert.equal(state.get(other), 'running', 'an instance outside the tag filter is left alone');
    const running = await handle.query(runningQuery);
    assert.deepEqual(
      running.map((r) => r.id),
      [other],
    );
    assert.ok(s.budgets[0]!.firedAt);
    const desc = await handle.describe();
    assert.equal(desc.searchAttributes['TrainctlBudgetExceeded']?.[0], true);
    assert.equal((desc.memo?.['budgetAlert'] as { budget?: string } | undefined)?.budget, 'ml-cap');
  });

  test('a budget with the cleanup action starts a cleanup of the matching volume that waits for approval and deletes nothing on its own', async () => {
    const project = uniqueName('budget-clean');
    const made = await ec2.send(
      new CreateVolumeCommand({
        AvailabilityZone: 'us-east-1a',
        Size: 1,
        TagSpecifications: [
          {
            ResourceType: 'volume',
            Tags: [
              { Key: 'trainctl:managed', Value: 'true' },
              { Key: 'team', Value: 'ml' },
            ],
          },
        ],
      }),
    );
    const volumeId = made.VolumeId!;
    onCleanup(() => ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId })).catch(() => undefined));
    const handle = await tracker(project);
    await handle.signal(resourceStartedSignal, {
      id: volumeId,
      kind: 'volume',
      type: 'gp3',
      sizeGiB: 1,
      region: 'us-east-1',
      tags: { team: 'ml' },
      at: Date.now() - 2 * MS_PER_HOUR,
      hourlyRate: 1,
    });
    await handle.executeUpdate(setBudgetUpdate, { args: [{ name: 'ml-clean', limitUsd: 1, action: 'cleanup', tagFilter: { key: 'team', value: 'ml' } }] });
    const s = await eventually('the budget acted', async () => {
      const s = await handle.query(summaryQuery);
      return s.alerts.length ? s : undefined;
    });
    const cleanupId = /started (cleanup\/us-east-1\/budget-\S+):/.exec(s.alerts[0]!.outcome)?.[1];
    assert.ok(cleanupId, s.alerts[0]!.outcome);
    const child = client.workflow.getHandle(cleanupId);
    onCleanup(() => child.terminate().catch(() => undefined));
    const status = await eventually('the cleanup planned', async () => {
      const st = await child.query<{ phase: string; plan: { resources: { id: string }[]; hash: string } | null }>('status');
      return st.phase === 'awaiting-approval' ? st : undefined;
    });
    assert.deepEqual(
      status.plan?.resources.map((r) => r.id),
      [volumeId],
    );
    const still = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }));
    assert.equal(still.Volumes?.[0]?.State, 'available', 'nothing is deleted before someone approves');
  });

  test('reconciliation started by the Schedule registers an orphan volume created directly in EC2 and stops a tracked volume EC2 no longer has', async () => {
    const project = uniqueName('recon');
    const created = await ec2.send(
      new CreateVolumeCommand({
        AvailabilityZone: 'us-east-1a',
        Size: 50,
        VolumeType: 'gp3',
        TagSpecifications: [
          {
            ResourceType: 'volume',
            Tags: [
              { Key: 'Name', Value: project },
              { Key: 'trainctl:managed', Value: 'true' },
              { Key: PROJECT_TAG, Value: project },
              { Key: 'team', Value: 'data' },
            ],
          },
        ],
      }),
    );
    const orphanId = created.VolumeId!;
    onCleanup(() => ec2.send(new DeleteVolumeCommand({ VolumeId: orphanId })).catch(() => undefined));

    const handle = await tracker(project);
    await handle.signal(resourceStartedSignal, {
      id: 'vol-0000000000deadbee',
      kind: 'volume',
      type: 'gp3',
      sizeGiB: 10,
      region: 'us-east-1',
      at: Date.now() - MS_PER_HOUR,
    });

    const schedule = await ensureReconcileSchedule(client, { project, regions: ['us-east-1'], every: '1h', taskQueue });
    onCleanup(() => schedule.delete().catch(() => undefined));
    await schedule.trigger();

    const report = await eventually('a reconciliation report', () => handle.query(reconciliationQuery).then((r) => r ?? undefined), 30_000);
    assert.deepEqual(report.orphans, [orphanId]);
    assert.deepEqual(report.vanished, ['vol-0000000000deadbee']);
    assert.equal(report.checked, 1);
    const orphan = await handle.query(resourceQuery, orphanId);
    assert.equal(orphan?.orphan, true);
    assert.equal(
      orphan?.hourlyMicroUsd,
      (quote({ kind: 'volume', type: 'gp3', region: 'us-east-1', sizeGiB: 50 }) as { microUsdPerHour: number }).microUsdPerHour,
    );
    assert.equal(orphan?.tags['team'], 'data');
    const gone = await handle.query(resourceQuery, 'vol-0000000000deadbee');
    assert.equal(gone?.running, false);
    const s = await handle.query(summaryQuery);
    assert.deepEqual(s.reconciliation?.orphans, [orphanId], 'the summary shows the report too');
    const desc = await schedule.describe();
    assert.equal(desc.spec.intervals?.[0]?.every, MS_PER_HOUR);
  });

  test('the CLI sets a budget with update-with-start, rejects a bad one before connecting, and shows the costs as a table or JSON', async () => {
    const project = uniqueName('cli');
    onCleanup(() =>
      client.workflow
        .getHandle(costTrackerWorkflowId(project))
        .terminate('test over')
        .catch(() => undefined),
    );
    const env = cliEnv(svc.env, taskQueue);
    const bad = await runCli(['cost', 'budget', 'set', '--project', project, '--limit-usd=-3', '--json'], env);
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal(JSON.parse(bad.stdout).issues[0].path, 'limitUsd');
    const typo = await runCli(['cost', 'budget', 'set', '--project', project, '--limit', '3'], env);
    assert.equal(typo.code, 2, typo.stderr);
    assert.match(typo.stderr, /Unknown option '--limit'/);
    await assert.rejects(client.workflow.getHandle(costTrackerWorkflowId(project)).describe(), 'no tracker was started by the bad commands');

    const set = await runCli(
      ['cost', 'budget', 'set', '--project', project, '--limit-usd', '50', '--window', 'monthly', '--tag-filter', 'team=ml', '--json'],
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), {
      ok: true,
      name: 'default',
      limitUsd: 50,
      window: 'monthly',
      action: 'alert',
      tagFilter: { key: 'team', value: 'ml' },
      spentMicroUsd: 0,
      spentUsd: 0,
      burnUsdPerHour: 0,
    });

    const handle = client.workflow.getHandle(costTrackerWorkflowId(project));
    await handle.signal(resourceStartedSignal, {
      id: 'i-cli',
      kind: 'instance',
      type: 'g5.xlarge',
      region: 'us-east-1',
      tags: { team: 'ml' },
      at: Date.now() - MS_PER_HOUR,
    });
    await handle.signal(resourceStartedSignal, { id: 'i-odd', kind: 'instance', type: 'x9.galactic', region: 'us-east-1', tags: { team: 'ml' } });
    const json = await runCli(['cost', 'show', '--project', project, '--by-tag', 'team', '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    const shown = JSON.parse(json.stdout);
    assert.equal(shown.running.length, 2);
    assert.ok(shown.totalUsd >= 1.0, 'an hour of g5.xlarge');
    assert.equal(shown.byTag.groups.ml.resources, 2);
    const text = await runCli(['cost', 'show', '--project', project, '--by-tag', 'team'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /UNPRICED \(cost unknown, not \$0\): i-odd \(x9\.galactic\)/);
    assert.match(text.stdout, /i-cli\s+instance\s+g5\.xlarge\s+us-east-1\s+.*\$1\.0060\/h/);
    assert.match(text.stdout, /budget default: \$\d+\.\d\d of \$50\.00 \(monthly, alert\)/);
  });
});
