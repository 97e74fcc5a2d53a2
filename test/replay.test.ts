import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { workflowsPath } from '../src/worker.js';
import * as workflowIndex from '../src/workflows/index.js';

// Histories recorded by `npm run record-histories`, `record-run-histories` and `record-branch-histories` from real runs on the dev server.
const dir = fileURLToPath(new URL('./fixtures/histories/', import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();
Runtime.install({ logger: new DefaultLogger('ERROR') });

function load(file: string): { workflowId: string; history: unknown } {
  return { workflowId: file.replace(/\.json$/, ''), history: JSON.parse(readFileSync(join(dir, file), 'utf8')) as unknown };
}

/** The workflow type a recorded history is of (its first event). */
function workflowTypeOf(file: string): string {
  const h = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[];
  };
  return h.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '';
}

/** The workflows (exported by the workflow index) that no recorded history is of. */
function workflowsWithoutHistory(workflows: string[], historyTypes: string[]): string[] {
  return workflows.filter((w) => !historyTypes.includes(w)).sort();
}

test('every workflow the worker registers (the workflow index) has a recorded history', () => {
  const registered = Object.keys(workflowIndex);
  assert.ok(registered.length >= 8, registered.join(', '));
  assert.deepEqual(workflowsWithoutHistory(registered, files.map(workflowTypeOf)), []);
});

test('the gate notices a workflow added without a history', () => {
  const types = files.map(workflowTypeOf);
  assert.deepEqual(workflowsWithoutHistory([...Object.keys(workflowIndex), 'newWorkflowWithoutHistory'], types), ['newWorkflowWithoutHistory']);
});

test('the main branches are recorded: provisioning created/reused/cancelled (before and after cost tracking), the cost tracker continued-as-new (carrying its state whole, and packed: first and resumed run), a cleanup approved, rejected and continued-as-new in chunks (first and resumed run), a transfer each way, cancelled, failed, S3 → S3 by profile and paged over two runs, a prewarm, a training run completed/stopped/failed/cancelled', () => {
  const expected = ['provision-volume-created', 'provision-volume-reused', 'provision-volume-cancelled'].flatMap((n) => [n, `${n}-before-cost`]);
  const runs = ['training-run-completed', 'training-run-stopped', 'training-run-failed', 'training-run-cancelled', 'check-host', 'reconcile-cost'];
  const branches = [
    'cleanup-rejected',
    'cleanup-continued',
    'cleanup-continued-resumed',
    'transfer-cancelled',
    'transfer-failed',
    'transfer-copy-profile',
    'transfer-paged-first',
    'transfer-paged-last',
    'cost-tracker-packed',
    'cost-tracker-packed-resumed',
  ];
  for (const name of [
    ...expected,
    'cost-tracker-continued',
    'cleanup-approved',
    'transfer-upload',
    'transfer-download',
    'prewarm-device',
    ...runs,
    ...branches,
  ]) {
    assert.ok(files.includes(`${name}.json`), `${name}.json is recorded`);
  }
});

test('every recorded history replays against the current workflow code without a determinism error', async () => {
  const bundle = process.env.TRAINCTL_TEST_BUNDLE;
  const opts = bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath };
  let replayed = 0;
  for await (const result of Worker.runReplayHistories(opts, files.map(load))) {
    assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
    replayed += 1;
  }
  assert.equal(replayed, files.length);
});

test('a deliberately non-deterministic edit of provisionVolume fails the replay with a DeterminismViolationError', async () => {
  const changed = fileURLToPath(new URL('./fixtures/nondeterministic/workflows.ts', import.meta.url));
  const { history } = load('provision-volume-created.json');
  await assert.rejects(Worker.runReplayHistory({ workflowsPath: changed }, history, 'provision-volume-created'), DeterminismViolationError);
});
