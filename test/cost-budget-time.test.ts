import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { testServices, uniqueName } from './helpers/harness.js';
import { timeSkippingEnv } from './helpers/time-skipping.js';
import { awsClientsFor, createWorker } from '../src/worker.js';
import { MS_PER_HOUR, segmentMicros } from '../src/cost-model.js';
import { costTrackerWorkflowId, resourceQuery, resourceStartedSignal, setBudgetUpdate, summaryQuery, totalCostQuery } from '../src/contracts/cost.js';
import type { costTracker } from '../src/workflows/cost-tracker.js';

let env: TestWorkflowEnvironment;
let worker: Worker;
const taskQueue = uniqueName('cost-time');

before(async () => {
  const svc = await testServices();
  env = await timeSkippingEnv();
  worker = await createWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    deps: awsClientsFor(svc.env),
    ...(svc.bundlePath ? { workflowBundle: { codePath: svc.bundlePath } } : {}),
  });
});

/** The first moment at which the two resources' exact cost reaches `limit` µ$ (a search over ms). */
function crossing(limit: number, parts: { rate: number; from: number }[], lo: number, hi: number): number {
  const cost = (t: number) => parts.reduce((n, p) => n + segmentMicros(p.rate, t - p.from), 0);
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (cost(mid) >= limit) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

describe('cost tracker budgets in simulated time', () => {
  test('a budget the burn rate crosses within 30 simulated hours fires its alert at the right time, recomputed when a second resource starts', async () => {
    await worker.runUntil(async () => {
      const project = uniqueName('sim');
      const handle = await env.client.workflow.signalWithStart<typeof costTracker, [unknown]>('costTracker', {
        taskQueue,
        workflowId: costTrackerWorkflowId(project),
        // sdk-java's test server has no way to register custom search attributes; the dev-server tests cover them.
        args: [{ project, costAttributeIntervalMs: MS_PER_HOUR, searchAttributes: false }],
        signal: resourceStartedSignal,
        signalArgs: [{ id: 'i-gpu', kind: 'instance', type: 'g5.xlarge', region: 'us-east-1', tags: { team: 'ml' } }],
      });
      const first = await handle.query(resourceQuery, 'i-gpu');
      assert.ok(first, 'the first instance is tracked');
      assert.equal(first.hourlyMicroUsd, 1_006_000);
      const budget = await handle.executeUpdate(setBudgetUpdate, { args: [{ name: 'cap', limitUsd: 20, action: 'alert' }] });
      const s1 = Date.parse(first.startedAt);
      // Alone, $1.006/h reaches $20 after ~19.9 h.
      assert.ok(budget.projectedAt);
      assert.ok(Math.abs(Date.parse(budget.projectedAt) - crossing(20_000_000, [{ rate: 1_006_000, from: s1 }], s1, s1 + 40 * MS_PER_HOUR)) <= 60_000);

      await env.sleep(5 * MS_PER_HOUR);
      await handle.signal(resourceStartedSignal, {
        id: 'i-cpu',
        kind: 'instance',
        type: 'c5.xlarge',
        region: 'us-east-1',
        tags: { team: 'ml' },
        hourlyRate: 1,
      });
      const second = await handle.query(resourceQuery, 'i-cpu');
      assert.ok(second);
      const s2 = Date.parse(second.startedAt);
      assert.ok(s2 - s1 >= 5 * MS_PER_HOUR, 'five simulated hours passed');
      const expected = crossing(
        20_000_000,
        [
          { rate: 1_006_000, from: s1 },
          { rate: 1_000_000, from: s2 },
        ],
        s2,
        s1 + 40 * MS_PER_HOUR,
      );
      const before = await handle.query(summaryQuery);
      assert.equal(before.alerts.length, 0, 'nothing fired yet');
      assert.ok(Math.abs(Date.parse(before.budgets[0]!.projectedAt!) - expected) <= 60_000, 'the projection moved with the new burn rate');

      await env.sleep(25 * MS_PER_HOUR);
      const after = await handle.query(summaryQuery);
      assert.equal(after.alerts.length, 1, 'the budget fired once');
      const firedAt = Date.parse(after.budgets[0]!.firedAt!);
      assert.ok(Math.abs(firedAt - expected) <= 60_000, `fired at ${new Date(firedAt).toISOString()}, expected ${new Date(expected).toISOString()} ± 1 min`);
      assert.ok(firedAt - s1 < 30 * MS_PER_HOUR);
      assert.equal(after.alerts[0]!.outcome, 'alerted');
      assert.ok(after.alerts[0]!.spentUsd >= 20);
      const total = await handle.query(totalCostQuery);
      assert.ok(Date.parse(total.asOf) - s1 >= 29 * MS_PER_HOUR, 'workflow time moved on by about 30 hours');
      const desc = await handle.describe();
      assert.equal((desc.memo?.['budgetAlert'] as { budget?: string } | undefined)?.budget, 'cap');
      await handle.terminate('test over');
    });
  });
});
