import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { workflowsPath } from '../src/worker.js';

// Histories recorded by `npm run record-histories` from real runs on the dev server.
const dir = fileURLToPath(new URL('./fixtures/histories/', import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();
Runtime.install({ logger: new DefaultLogger('ERROR') });

function load(file: string): { workflowId: string; history: unknown } {
  return { workflowId: file.replace(/\.json$/, ''), history: JSON.parse(readFileSync(join(dir, file), 'utf8')) as unknown };
}

test('there are recorded histories of every provisioning outcome (before and after cost tracking), the cost tracker, an approved cleanup, a transfer each way and a prewarm', () => {
  const expected = ['provision-volume-created', 'provision-volume-reused', 'provision-volume-cancelled'].flatMap((n) => [n, `${n}-before-cost`]);
  for (const name of [...expected, 'cost-tracker-continued', 'cleanup-approved', 'transfer-upload', 'transfer-download', 'prewarm-device']) {
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
