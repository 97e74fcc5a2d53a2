import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import * as run from '../src/api/run.js';
import * as cost from '../src/api/cost.js';
import { RunOutcome } from '../src/contracts/run.js';
import { leftovers, runName, runSuite, type RunSuite } from './helpers/run.js';

let suite: RunSuite;

before(async () => {
  suite = await runSuite('run');
});

async function s3Text(key: string): Promise<string> {
  const got = await suite.s3.send(new GetObjectCommand({ Bucket: suite.bucket, Key: key }));
  return got.Body!.transformToString();
}

async function keys(prefix: string): Promise<string[]> {
  const res = await suite.s3.send(new ListObjectsV2Command({ Bucket: suite.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

test('a run launches, trains, syncs checkpoints and outputs byte-identical to what the program wrote, and tears down what it created', async () => {
  const name = runName('happy');
  const project = runName('runproj');
  const report = await run.execute(suite.client, suite.request(name, {}, { project, budget: { limitUsd: 5, action: 'alert' } }), {
    taskQueue: suite.worker.taskQueue,
  });
  assert.equal(report.outcome, RunOutcome.Completed);
  assert.equal(report.exitCode, 0);
  assert.deepEqual(
    report.steps.map((s) => s.step),
    ['launch', 'volume', 'data', 'train', 'checkpoint', 'outputs', 'teardown'],
  );
  const instanceId = report.resources.instanceId!;
  assert.equal(report.resources.instanceCreated, true);
  assert.equal(report.resources.volumeCreated, true);
  // The host's files (the simulator keeps the root after termination) against S3.
  const root = join(suite.hostsDir, instanceId, 'root');
  const ckptDir = join(root, 'checkpoints');
  const local = readdirSync(ckptDir)
    .filter((f) => f.startsWith('ckpt-'))
    .sort();
  assert.ok(local.length >= 4, `checkpoints written: ${local.join(', ')}`);
  const inS3 = (await keys(`runs/${name}/checkpoints/`)).map((k) => k.split('/').pop());
  assert.deepEqual(inS3, local, 'every checkpoint reached S3');
  const last = local[local.length - 1]!;
  assert.equal(await s3Text(`runs/${name}/checkpoints/${last}`), readFileSync(join(ckptDir, last), 'utf8'), 'the last checkpoint is byte-identical');
  assert.equal(await s3Text(`runs/${name}/outputs/model.json`), readFileSync(join(root, 'outputs', 'model.json'), 'utf8'), 'the model is byte-identical');
  assert.deepEqual(await leftovers(suite.ec2, name), { instances: [], volumes: [] }, 'no running instance and no volume of the run is left');
  assert.ok(
    report.undone.some((u) => u.includes(`terminated instance ${instanceId}`)),
    report.undone.join('; '),
  );
  // The run's cost, from the project's tracker: the instance at its type's rate for its lifetime.
  assert.ok(report.costUsd !== undefined && report.costUsd > 0, `the report carries the run's cost: ${report.costUsd}`);
  const summary = await cost.summary(suite.client, project);
  const budget = summary.budgets.find((b) => b.name === `run-${name}`);
  assert.deepEqual(
    budget && { limitUsd: budget.limitUsd, action: budget.action, tagFilter: budget.tagFilter },
    { limitUsd: 5, action: 'alert', tagFilter: { key: 'run', value: name } },
    'the run set its budget on the project tracker, over its own resources',
  );
});
