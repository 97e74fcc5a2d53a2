import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { onCleanup, startWorker, testClient, testServices, uniqueName, type TestServices } from './helpers/harness.js';
import { waitFor } from './helpers/wait.js';
import {
  costTrackerWorkflowId,
  reconcileReportSignal,
  resourceStartedSignal,
  summaryQuery,
  totalCostQuery,
  type ResourceStarted,
} from '../src/contracts/cost.js';
import type { costTracker } from '../src/workflows/cost-tracker.js';

let svc: TestServices;
let client: Client;
let taskQueue: string;

before(async () => {
  svc = await testServices();
  client = await testClient(svc.env);
  taskQueue = (await startWorker({ env: svc.env, bundlePath: svc.bundlePath })).taskQueue;
});

test(
  'a tracker with 10,000 running resources (two tags each) continues as new with all of them: the carried state is packed under the payload limit',
  { timeout: 240_000 },
  async () => {
    const project = uniqueName('capacity');
    const handle = await client.workflow.start<typeof costTracker>('costTracker', {
      taskQueue,
      workflowId: costTrackerWorkflowId(project),
      args: [{ project, continueAsNewAfterEvents: 10 }],
    });
    onCleanup(() => handle.terminate('test over').catch(() => undefined));
    const at = Date.now() - 3_600_000;
    const resources = 10_000;
    const perReport = 2_000;
    // Reconciliation reports register orphans in bulk: 5 messages load 10,000 running instances.
    for (let r = 0; r < resources / perReport; r++) {
      const orphans: ResourceStarted[] = Array.from({ length: perReport }, (_, i) => ({
        id: `i-cap${String(r * perReport + i).padStart(12, '0')}`,
        kind: 'instance',
        type: 't3.micro',
        region: 'us-east-1',
        tags: { team: `team-${i % 7}`, run: `run-${r}` },
        at,
      }));
      await handle.signal(reconcileReportSignal, { at: Date.now(), regions: ['us-east-1'], orphans, vanished: [], checked: perReport });
    }
    // Five more messages reach continueAsNewAfterEvents (10).
    for (let i = 0; i < 5; i++) {
      const extra: ResourceStarted = { id: `i-capextra${i}`, kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: {}, at };
      await handle.signal(resourceStartedSignal, extra);
    }
    const summary = await waitFor(
      async () => {
        const s = await handle.query(summaryQuery);
        return s.runs >= 2 ? s : undefined;
      },
      { what: 'the tracker continued as new', timeoutMs: 150_000, intervalMs: 200 },
    );
    const total = await handle.query(totalCostQuery);
    console.log(`[capacity] ${total.running} running after ${summary.runs} runs; previous runs ${JSON.stringify(summary.previousRuns)}`);
    assert.equal(total.running, resources + 5, 'every running resource was carried into the new run');
    assert.equal(summary.counters.accepted, 10);
    assert.equal(summary.counters.rejected, 0);
  },
);
