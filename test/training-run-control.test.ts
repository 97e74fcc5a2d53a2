import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteVolumeCommand, DescribeVolumesCommand, DetachVolumeCommand } from '@aws-sdk/client-ec2';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ApplicationFailure, CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import * as run from '../src/api/run.js';
import * as volume from '../src/api/volume.js';
import { RunOutcome, TRAINING_FAILED, type RunRequest } from '../src/contracts/run.js';
import { startFaultProxy, type FaultProxy, type FaultRule, type ProxyLogEntry } from '../src/dev/fault-proxy.js';
import { toolPath } from '../src/dev/services.js';
import { awsClientsFor } from '../src/worker.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { onCleanup, startWorker, testServices, type RunningWorker } from './helpers/harness.js';
import { waitUntil } from './helpers/run-evidence.js';
import { leftovers, runName, runSuite, type RunSuite } from './helpers/run.js';

let suite: RunSuite;
let proxy: FaultProxy;
/** The orchestration worker whose AWS clients go through the fault proxy; every run here uses its queue. */
let slow: RunningWorker;

before(async () => {
  const services = await testServices();
  proxy = await startFaultProxy(services.env.AWS_ENDPOINT_URL!);
  onCleanup(() => proxy.stop());
  // The simulated instances' host workers go through the proxy too, so host-side steps (data
  // staging, checkpoint syncs) can be slowed from outside like the orchestration side.
  suite = await runSuite('runctl', { simulatorAwsEndpoint: proxy.endpoint });
  slow = await startWorker({ ...services, deps: awsClientsFor({ ...services.env, AWS_ENDPOINT_URL: proxy.endpoint }) });
});

const start = (request: RunRequest) => run.start(suite.client, request, { taskQueue: slow.taskQueue });

/** Polls `check` until it returns a value, failing after `timeoutMs` with what was last seen. */
const waitFor = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> => waitUntil(check, timeoutMs, what);

async function keys(prefix: string): Promise<string[]> {
  const res = await suite.s3.send(new ListObjectsV2Command({ Bucket: suite.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

async function s3Text(key: string): Promise<string> {
  const got = await suite.s3.send(new GetObjectCommand({ Bucket: suite.bucket, Key: key }));
  return got.Body!.transformToString();
}

async function multipartUploads(prefix: string): Promise<string[]> {
  const res = await suite.s3.send(new ListMultipartUploadsCommand({ Bucket: suite.bucket, Prefix: prefix }));
  return (res.Uploads ?? []).map((u) => u.Key!);
}

const stagingPrefix = (name: string) => `trainctl-staging/run-${name}/`;
const proxied = (entries: ProxyLogEntry[], op: string, keyPrefix?: string) =>
  entries.some((e) => e.op === op && (keyPrefix === undefined || (e.key ?? '').startsWith(keyPrefix)));
const stepOf = (line: string) => Number(/^step (\d+)\//.exec(line)?.[1] ?? NaN);
/** The ckpt step numbers of the run's checkpoints in S3, ascending. */
const ckptSteps = async (name: string) => (await keys(`runs/${name}/checkpoints/`)).map((k) => Number(/ckpt-(\d+)\.json$/.exec(k)?.[1])).filter((n) => n >= 0);

/** A training program slow enough to be caught mid-way: 200 steps of 0.2 s. */
const slowTraining = (every = 5): Partial<RunRequest['training']> => ({
  command: ['python3', 'train.py', '--steps', '200', '--checkpoint-every', String(every), '--step-seconds', '0.2'],
  stopGraceSeconds: 10,
});

/** The training logs of the run on its host (one per workflow run). */
function trainLogs(name: string, instanceId: string): string[] {
  const runDir = join(suite.hostsDir, instanceId, 'root', '.trainctl', 'runs', name);
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .map((d) => join(runDir, d, 'train.log'))
    .filter((f) => existsSync(f));
}

/**
 * Has the training program logged its first steps? Read from its log on the host: the status
 * query's last lines come from heartbeats, which the SDK sends to the server only every 80 % of
 * the heartbeat timeout.
 */
const training = (s: run.RunStatusView) =>
  s.step === 'train' &&
  !!s.resources.instanceId &&
  trainLogs(s.name, s.resources.instanceId).some((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .some((l) => stepOf(l) >= 2),
  );

interface CancelAt {
  /** What the run is made to do slowly, from outside, so the cancel lands in the step. */
  rules(name: string): FaultRule[];
  training?: Partial<RunRequest['training']>;
  /** The run is in the step (and what the rules slow down is in flight). */
  reached(name: string, s: run.RunStatusView, h: run.RunHandle): Promise<boolean>;
  /** Besides the instance: what the compensation must say it undid. */
  undone: RegExp[];
}

const cancelAt: Record<'launch' | 'volume' | 'data' | 'training' | 'checkpoint sync', CancelAt> = {
  launch: {
    rules: () => [{ op: 'RunInstances', fault: 'latency', latencyMs: 3_000 }],
    reached: async (_n, s) => s.step === 'launch' && proxied(await proxy.log(), 'RunInstances'),
    undone: [],
  },
  volume: {
    rules: () => [
      { op: 'CreateVolume', fault: 'latency', latencyMs: 4_000 },
      { op: 'AttachVolume', fault: 'latency', latencyMs: 4_000 },
    ],
    reached: async (_n, s) => s.step === 'volume' && proxied(await proxy.log(), 'CreateVolume'),
    undone: [/volume step cancelled in flight: volume\/us-east-1\/c-volume-\w+-data deleted what it had created/],
  },
  data: {
    // The training code goes local → staging → host; the host's download from staging is held,
    // so the staging prefix holds the uploaded code when the cancel comes.
    rules: (name) => [{ op: 'GetObject', fault: 'latency', latencyMs: 10_000, keyPrefix: stagingPrefix(name) }],
    reached: async (name, s) => s.step === 'data' && proxied(await proxy.log(), 'GetObject', stagingPrefix(name)),
    undone: [/deleted volume vol-/],
  },
  training: {
    rules: () => [],
    training: slowTraining(),
    reached: async (_n, s) => training(s),
    undone: [/deleted volume vol-/],
  },
  'checkpoint sync': {
    // A checkpoint every step; their uploads to the run's checkpoint prefix are held.
    rules: (name) => [{ op: 'PutObject', fault: 'latency', latencyMs: 10_000, keyPrefix: `runs/${name}/checkpoints/` }],
    training: slowTraining(1),
    reached: async (_n, s, h) => {
      if (training(s) && !s.currentChild) await run.checkpointNow(h);
      return s.step === 'train' && (s.currentChild?.workflowId.includes('/checkpoint-') ?? false) && proxied(await proxy.log(), 'PutObject');
    },
    undone: [/deleted volume vol-/],
  },
};

const cancelVia = {
  'temporal workflow cancel': async (name: string) => {
    const env = suite.services.env;
    await new Promise<void>((resolve, reject) =>
      execFile(
        toolPath('temporal'),
        ['workflow', 'cancel', '--address', env.TEMPORAL_ADDRESS, '--namespace', env.TEMPORAL_NAMESPACE, '--workflow-id', `run/${name}`],
        { timeout: 30_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`temporal workflow cancel: ${err.message}\n${stdout}\n${stderr}`)) : resolve()),
      ),
    );
  },
  'trainctl run cancel': async (name: string) => {
    const r = await runCli(['run', 'cancel', name], cliEnv(suite.services.env, slow.taskQueue));
    assert.equal(r.code, 0, `trainctl run cancel: ${r.stderr}`);
  },
} as const;

/** The run ended cancelled, left nothing it created, and its memo says what it undid. */
async function assertCancelledAndClean(name: string, h: run.RunHandle, undone: RegExp[]): Promise<string> {
  const err = await h.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `the run ended with ${String(err)}`);
  assert.ok(err.cause instanceof CancelledFailure, `the run ended cancelled, not with ${String(err.cause)}`);
  assert.deepEqual(await leftovers(suite.ec2, name), { instances: [], volumes: [] }, 'no instance or volume of the run is left');
  assert.deepEqual(await multipartUploads(`runs/${name}/`), [], 'no multipart upload under the run’s prefixes');
  assert.deepEqual(await multipartUploads(stagingPrefix(name)), [], 'no multipart upload under the run’s staging prefix');
  assert.deepEqual(await keys(stagingPrefix(name)), [], 'no staging object is left');
  const memo = (await h.describe()).memo as { compensation?: string } | undefined;
  const compensation = memo?.compensation ?? '';
  assert.match(compensation, /terminated instance i-/, 'the memo lists the instance it terminated');
  for (const re of undone) assert.match(compensation, re);
  return compensation;
}

for (const [via, cancel] of Object.entries(cancelVia)) {
  for (const [at, c] of Object.entries(cancelAt)) {
    test(`a run cancelled with ${via} during ${at} ends cancelled, leaves nothing it created and lists what it undid`, { timeout: 300_000 }, async (t) => {
      const name = runName(`c-${at.split(' ')[0]}`);
      await proxy.clearLog();
      await proxy.setRules(c.rules(name));
      try {
        const h = await start(suite.request(name, c.training));
        await waitFor(`the run in ${at}`, async () => ((await c.reached(name, await run.status(h), h)) ? true : undefined));
        await cancel(name);
        // The slow-down has done its job; the compensation runs at normal speed.
        await proxy.setRules([]);
        t.diagnostic(await assertCancelledAndClean(name, h, c.undone));
        if (at === 'volume') {
          // The volume child the cancel stopped deleted the volume it had created, and says which.
          const child = (await suite.client.workflow.getHandle(`volume/us-east-1/${name}-data`).describe()).memo as { compensation?: string } | undefined;
          assert.match(child?.compensation ?? '', /deleted vol-/);
        }
        if (at === 'training') {
          // The program got SIGTERM and its grace period; the checkpoint it wrote then was synced.
          const instanceId = (await run.status(h)).resources.instanceId!;
          const trainLog = trainLogs(name, instanceId).map((f) => readFileSync(f, 'utf8'));
          assert.equal(trainLog.length, 1, 'one training log');
          const stoppedAt = Number(/received SIGTERM at step (\d+); checkpointing/.exec(trainLog[0]!)?.[1]);
          assert.ok(stoppedAt > 0 && stoppedAt < 200, `the program was stopped by SIGTERM:\n${trainLog[0]}`);
          assert.equal((await ckptSteps(name)).at(-1), stoppedAt, 'the checkpoint written on SIGTERM reached S3');
        }
      } finally {
        await proxy.setRules([]);
      }
    });
  }
}

test('a cancelled run that reused a volume by name leaves that volume in place and says so', { timeout: 300_000 }, async () => {
  const name = runName('c-reuse');
  const volName = runName('reused');
  const vol = await volume.execute(
    suite.client,
    { name: volName, region: 'us-east-1', availabilityZone: 'us-east-1a', sizeGiB: 1 },
    { taskQueue: slow.taskQueue },
  );
  onCleanup(async () => {
    const v = (await suite.ec2.send(new DescribeVolumesCommand({ VolumeIds: [vol.volumeId] }))).Volumes?.[0];
    if (!v) return;
    if (v.Attachments?.length) {
      await suite.ec2.send(new DetachVolumeCommand({ VolumeId: vol.volumeId, Force: true }));
      await waitFor('the reused volume detached', async () =>
        (await suite.ec2.send(new DescribeVolumesCommand({ VolumeIds: [vol.volumeId] }))).Volumes?.[0]?.State === 'available' ? true : undefined,
      );
    }
    await suite.ec2.send(new DeleteVolumeCommand({ VolumeId: vol.volumeId }));
  });
  const h = await start(suite.request(name, slowTraining(), { volume: { existingName: volName } }));
  await waitFor('training', async () => (training(await run.status(h)) ? true : undefined));
  await cancelVia['trainctl run cancel'](name);
  const compensation = await assertCancelledAndClean(name, h, [new RegExp(`left volume ${vol.volumeId} alone`)]);
  assert.doesNotMatch(compensation, new RegExp(`deleted volume ${vol.volumeId}`));
  const after = (await suite.ec2.send(new DescribeVolumesCommand({ VolumeIds: [vol.volumeId] }))).Volumes?.[0];
  assert.ok(after && after.State !== 'deleting' && after.State !== 'deleted', `the reused volume ${vol.volumeId} still exists (${after?.State})`);
});

test(
  'trainctl run stop during training sends the program SIGTERM, syncs its last checkpoint byte-identical, tears down and ends stopped',
  { timeout: 300_000 },
  async () => {
    const name = runName('stop');
    const h = await start(suite.request(name, slowTraining()));
    await waitFor('training', async () => (training(await run.status(h)) ? true : undefined));
    const r = await runCli(['run', 'stop', name, '--reason', 'enough for the test'], cliEnv(suite.services.env, slow.taskQueue));
    assert.equal(r.code, 0, `trainctl run stop: ${r.stderr}`);
    const report = await h.result();
    assert.equal(report.outcome, RunOutcome.Stopped);
    assert.equal(report.stopRequested?.reason, 'enough for the test');
    const instanceId = report.resources.instanceId!;
    const root = join(suite.hostsDir, instanceId, 'root');
    // The program's own log: it saw SIGTERM, checkpointed, and never finished.
    const logs = trainLogs(name, instanceId);
    assert.equal(logs.length, 1, 'one training log');
    const trainLog = readFileSync(logs[0]!, 'utf8');
    assert.match(trainLog, /received SIGTERM at step \d+; checkpointing/);
    assert.doesNotMatch(trainLog, /^done steps=/m, 'the program did not run to completion');
    const stoppedAt = Number(/received SIGTERM at step (\d+)/.exec(trainLog)![1]);
    const steps = await ckptSteps(name);
    assert.equal(steps.at(-1), stoppedAt, `the checkpoint written on SIGTERM (step ${stoppedAt}) is the last one in S3 (${steps.join(', ')})`);
    assert.ok(stoppedAt < 200);
    const last = `ckpt-${String(stoppedAt).padStart(8, '0')}.json`;
    assert.equal(
      await s3Text(`runs/${name}/checkpoints/${last}`),
      readFileSync(join(root, 'checkpoints', last), 'utf8'),
      'the final checkpoint is byte-identical',
    );
    assert.ok(
      report.steps.some((s) => s.step === 'teardown' && s.endedAt && !s.error),
      'teardown ran',
    );
    assert.deepEqual(await leftovers(suite.ec2, name), { instances: [], volumes: [] }, 'teardown left nothing');
  },
);

test(
  'a training command that exits non-zero fails the run naming the step, exit code and last lines, after syncing checkpoints and tearing down',
  { timeout: 300_000 },
  async () => {
    const name = runName('fail');
    const h = await start(
      suite.request(name, { command: ['python3', 'train.py', '--steps', '20', '--checkpoint-every', '5', '--step-seconds', '0.02', '--fail-at', '8'] }),
    );
    const err = await h.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, `the run failed: ${String(err)}`);
    const failure = err.cause;
    assert.ok(failure instanceof ApplicationFailure, `an ApplicationFailure: ${String(failure)}`);
    assert.equal(failure.type, TRAINING_FAILED);
    assert.match(failure.message, /step train/);
    assert.match(failure.message, /exited with 7/);
    assert.match(failure.message, /error: injected failure at step 8/, 'the last log lines are in the failure');
    assert.match(failure.message, /step 7\/20/);
    assert.deepEqual(await ckptSteps(name), [5], 'the checkpoint of step 5 was synced after the failure');
    assert.deepEqual(await leftovers(suite.ec2, name), { instances: [], volumes: [] }, 'teardown ran: nothing is left');
    const report = failure.details?.[0] as { undone?: string[] } | undefined;
    assert.ok(
      report?.undone?.some((u) => /terminated instance i-/.test(u)),
      `the failure's report lists the teardown: ${JSON.stringify(report?.undone)}`,
    );
  },
);
