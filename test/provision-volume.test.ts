import { spawn } from 'node:child_process';
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { RunInstancesCommand, TerminateInstancesCommand, DescribeImagesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { ProvisionVolumeWorkflowType, volumeWorkflowId, type ProvisionVolumeRequest, type ProvisionVolumeResult } from '../src/contracts/volume.js';
import { createEc2Client } from '../src/aws/clients.js';
import { injectFaults } from '../src/dev/faults.js';
import { toolPath } from '../src/dev/services.js';
import * as volume from '../src/api/volume.js';
import type { provisionVolume } from '../src/workflows/provision-volume.js';
import { resourceQuery, runningQuery } from '../src/workflows/cost-tracker.js';
import { onCleanup, testServices, testClient, startWorker, uniqueName, ec2For, type TestServices, type RunningWorker } from './helpers/harness.js';
import { runCli, cliEnv } from './helpers/cli.js';
import { volumeJanitor, volumesNamed } from './helpers/volumes.js';
import { waitFor } from './helpers/wait.js';

const { temporal } = proto;
const EventType = temporal.api.enums.v1.EventType;
type ActivityStarted = proto.temporal.api.history.v1.IActivityTaskStartedEventAttributes;

let services: TestServices;
let client: Client;
let ec2: EC2Client;
let worker: RunningWorker;
let track: (name: string) => string;

before(async () => {
  services = await testServices();
  client = await testClient(services.env);
  ec2 = ec2For(services.env);
  track = volumeJanitor(ec2);
  worker = await startWorker(services);
});

function request(name: string, extra: Partial<ProvisionVolumeRequest> = {}): ProvisionVolumeRequest {
  return { name: track(name), region: 'us-east-1', sizeGiB: 8, availabilityZone: 'us-east-1a', ...extra };
}

async function provision(req: ProvisionVolumeRequest, taskQueue = worker.taskQueue) {
  const handle = await volume.provision(client, req, { taskQueue });
  return { handle, result: handle.result() };
}

/** The failure at the bottom of a failed workflow run. */
async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure | CancelledFailure> {
  const err = await p.then(
    () => assert.fail('expected the workflow to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
  let cause: unknown = err.cause;
  if (cause instanceof ActivityFailure) cause = cause.cause;
  assert.ok(cause instanceof ApplicationFailure || cause instanceof CancelledFailure, `unexpected cause ${String(cause)}`);
  return cause;
}

describe('provisioning', () => {
  test('a new name creates one available volume tagged Name, trainctl:managed and the workflow id, and a second run reuses it', async () => {
    const req = request(uniqueName('fresh'), { tags: { team: 'vision' } });
    const first = await (await provision(req)).result;
    assert.equal(first.created, true);
    assert.match(first.volumeId, /^vol-/);
    assert.equal(first.state, 'available');
    const [vol, ...others] = await volumesNamed(ec2, req.name);
    assert.equal(others.length, 0);
    const tags = Object.fromEntries((vol?.Tags ?? []).map((t) => [t.Key, t.Value]));
    assert.equal(tags['trainctl:managed'], 'true');
    assert.equal(tags['trainctl:workflow-id'], volumeWorkflowId('us-east-1', req.name));
    assert.equal(tags.team, 'vision');
    assert.equal(vol?.Size, 8);

    const second = await (await provision(req)).result;
    assert.deepEqual({ volumeId: second.volumeId, created: second.created }, { volumeId: first.volumeId, created: false });
    assert.equal((await volumesNamed(ec2, req.name)).length, 1);
  });

  test('ten concurrent CLI processes provisioning one name leave exactly one volume and all print its id and a UI link', async () => {
    const name = track(uniqueName('concurrent'));
    const env = cliEnv(services.env, worker.taskQueue);
    const runs = await Promise.all(
      Array.from({ length: 10 }, () => runCli(['volume', 'create', '--name', name, '--size-gib', '8', '--az', 'us-east-1a', '--json'], env)),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const outputs = runs.map((r) => JSON.parse(r.stdout.trim()) as ProvisionVolumeResult & { ok: boolean; ui: string; runId: string });
    const ids = new Set(outputs.map((o) => o.volumeId));
    assert.equal(ids.size, 1, `one volume id expected, got ${[...ids].join(', ')}`);
    assert.match([...ids][0] ?? '', /^vol-/);
    for (const o of outputs) assert.match(o.ui, /^http:\/\/localhost:\d+\/namespaces\/default\/workflows\/volume%2Fus-east-1%2F/);
    assert.equal((await volumesNamed(ec2, name)).length, 1);
  });

  test('an existing volume of another size fails with AlreadyExists naming the size mismatch, and ifExists fail refuses any existing volume', async () => {
    const req = request(uniqueName('mismatch'));
    await (
      await provision(req)
    ).result;

    const bigger = await failureOf((await provision({ ...req, sizeGiB: 16 })).result);
    assert.ok(bigger instanceof ApplicationFailure);
    assert.equal(bigger.type, 'AlreadyExists');
    assert.match(bigger.message, /size: existing 8 GiB, requested 16 GiB/);

    const refuse = await failureOf((await provision({ ...req, ifExists: 'fail' })).result);
    assert.ok(refuse instanceof ApplicationFailure);
    assert.equal(refuse.type, 'AlreadyExists');
    assert.match(refuse.message, /ifExists is 'fail'/);
    assert.equal((await volumesNamed(ec2, req.name)).length, 1);
  });

  test('attaching to an instance waits for in-use and reports the attachment', async () => {
    const images = await ec2.send(new DescribeImagesCommand({}));
    const imageId = images.Images?.[0]?.ImageId;
    assert.ok(imageId, 'the emulator lists at least one AMI');
    const run = await ec2.send(
      new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro', Placement: { AvailabilityZone: 'us-east-1a' } }),
    );
    const instanceId = run.Instances?.[0]?.InstanceId;
    assert.ok(instanceId);
    onCleanup(() => ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    const result = await (await provision(request(uniqueName('attached'), { attachTo: { instanceId, device: '/dev/sdf' } }))).result;
    assert.equal(result.state, 'in-use');
    assert.deepEqual(result.attachedTo, { instanceId, device: '/dev/sdf' });
  });
});

describe('failures by taxonomy', () => {
  test('throttling on the first three CreateVolume calls is retried by Temporal with backoff and the run succeeds; the history shows attempt 4', async () => {
    const faulty = createEc2Client(services.env, { maxAttempts: 1 });
    const faults = injectFaults(faulty, [{ command: 'CreateVolume', times: 3, error: { name: 'RequestLimitExceeded', status: 503 } }]);
    const w = await startWorker({ ...services, deps: { ec2: () => faulty, throttleBackoff: { baseMs: 100, maxMs: 1_000 } } });
    const { handle, result } = await provision(request(uniqueName('throttled')), w.taskQueue);
    const res = await result;
    assert.equal(res.created, true);
    assert.equal(faults.calls.CreateVolume, 4);
    const history = await handle.fetchHistory();
    const scheduled = new Map<string, string>();
    let createStarted: ActivityStarted | undefined;
    for (const e of history.events ?? []) {
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes?.activityType?.name ?? '');
      if (
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED &&
        scheduled.get(String(e.activityTaskStartedEventAttributes?.scheduledEventId)) === 'createVolume'
      ) {
        createStarted = e.activityTaskStartedEventAttributes ?? undefined;
      }
    }
    assert.equal(createStarted?.attempt, 4);
    assert.equal(createStarted?.lastFailure?.applicationFailureInfo?.type, 'Throttled');
    await w.stop();
  });

  test('UnauthorizedOperation fails the run at once as PermissionDenied without a retry', async () => {
    const faulty = createEc2Client(services.env, { maxAttempts: 1 });
    const faults = injectFaults(faulty, [{ command: 'CreateVolume', error: { name: 'UnauthorizedOperation', status: 403 } }]);
    const w = await startWorker({ ...services, deps: { ec2: () => faulty } });
    const req = request(uniqueName('denied'));
    const failure = await failureOf((await provision(req, w.taskQueue)).result);
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(failure.type, 'PermissionDenied');
    assert.equal(failure.nonRetryable, true);
    assert.equal(faults.calls.CreateVolume, 1);
    assert.equal((await volumesNamed(ec2, req.name)).length, 0);
    await w.stop();
  });
});

describe('invalid input', () => {
  const cases: { title: string; args: string[]; field: string; message: RegExp }[] = [
    { title: 'size 0', args: ['--name', 'x', '--size-gib', '0', '--az', 'us-east-1a'], field: 'sizeGiB', message: /at least 1 GiB/ },
    {
      title: 'io2 without IOPS',
      args: ['--name', 'x', '--size-gib', '100', '--az', 'us-east-1a', '--type', 'io2'],
      field: 'iops',
      message: /required for io2/,
    },
    {
      title: 'gp3 throughput out of range',
      args: ['--name', 'x', '--size-gib', '100', '--az', 'us-east-1a', '--throughput', '5000'],
      field: 'throughputMiBps',
      message: /between 125 and 2000/,
    },
    {
      title: 'an unknown AZ format',
      args: ['--name', 'x', '--size-gib', '8', '--az', 'east-1'],
      field: 'availabilityZone',
      message: /availability zone such as us-east-1a/,
    },
    { title: 'an empty name', args: ['--name', '', '--size-gib', '8', '--az', 'us-east-1a'], field: 'name', message: /must not be empty/ },
  ];
  for (const c of cases) {
    test(`the CLI rejects ${c.title} naming ${c.field}, exit 2, without contacting Temporal or AWS`, async () => {
      // Both endpoints point at a closed port: any contact would fail differently.
      const env = { ...cliEnv(services.env, 'nowhere'), TEMPORAL_ADDRESS: '127.0.0.1:9', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' };
      const r = await runCli(['volume', 'create', ...c.args, '--json'], env);
      assert.equal(r.code, 2, r.stderr);
      const out = JSON.parse(r.stdout) as { ok: boolean; kind: string; issues: { path: string; message: string }[] };
      assert.equal(out.kind, 'InvalidInput');
      const issue = out.issues.find((i) => i.path === c.field);
      assert.ok(issue, `an issue for ${c.field}: ${r.stdout}`);
      assert.match(issue.message, c.message);
    });
  }

  test('the human output names the flag and shows no stack trace', async () => {
    const env = { ...cliEnv(services.env, 'nowhere'), TEMPORAL_ADDRESS: '127.0.0.1:9' };
    const r = await runCli(['volume', 'create', '--name', 'x', '--size-gib', '0', '--az', 'us-east-1a', '--type', 'io2'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--size-gib: must be at least 1 GiB/);
    assert.match(r.stderr, /--iops: is required for io2/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('a workflow started without the CLI still rejects bad input as InvalidInput before any AWS call', async () => {
    const counted = createEc2Client(services.env);
    const faults = injectFaults(counted, []);
    const w = await startWorker({ ...services, deps: { ec2: () => counted } });
    // Straight to the server, past the API's validation: the workflow must check its input itself.
    const handle = await client.workflow.start<typeof provisionVolume>(ProvisionVolumeWorkflowType, {
      taskQueue: w.taskQueue,
      workflowId: uniqueName('volume/us-east-1/raw'),
      args: [{ name: 'ok-name', region: 'us-east-1', sizeGiB: 0, availabilityZone: 'us-east-1a', volumeType: 'gp3', throughputMiBps: 9 }],
    });
    const failure = await failureOf(handle.result());
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, /sizeGiB/);
    assert.match(failure.message, /throughputMiBps/);
    assert.deepEqual(faults.calls, {});
    await w.stop();
  });
});

describe('cancellation', () => {
  test('temporal workflow cancel while waiting for available deletes the volume the run created and records it in the memo', async () => {
    const slow = createEc2Client(services.env);
    // Real volumes take seconds to become available; here they never do until the run is cancelled.
    injectFaults(slow, [
      { command: 'CreateVolume', mutate: (out) => void (out.State = 'creating') },
      {
        command: 'DescribeVolumes',
        mutate: (out) => {
          for (const v of (out.Volumes as { State?: string }[] | undefined) ?? []) if (v.State === 'available') v.State = 'creating';
        },
      },
    ]);
    const w = await startWorker({ ...services, deps: { ec2: () => slow } });
    const req = request(uniqueName('cancel-wait'));
    const { handle, result } = await provision(req, w.taskQueue);
    await waitFor(async () => (await volumesNamed(ec2, req.name)).length > 0, { what: 'the volume to be created', timeoutMs: 30_000, intervalMs: 100 });
    assert.equal((await volumesNamed(ec2, req.name)).length, 1, 'the volume was created before the cancel');

    const cancel = spawn(toolPath('temporal'), ['workflow', 'cancel', '--address', services.env.TEMPORAL_ADDRESS, '--workflow-id', handle.workflowId], {
      stdio: 'ignore',
    });
    assert.equal(await new Promise((r) => cancel.on('exit', r)), 0);

    const failure = await failureOf(result);
    assert.ok(failure instanceof CancelledFailure);
    assert.equal((await volumesNamed(ec2, req.name)).length, 0, 'no volume left behind');
    const desc = await handle.describe();
    assert.equal(desc.status.name, 'CANCELLED');
    assert.match(String(desc.memo?.compensation), /deleted vol-\w+, created by this run/);
    await w.stop();
  });

  test('a cancel that arrives while CreateVolume is in flight still leaves no volume behind', async () => {
    const slow = createEc2Client(services.env);
    injectFaults(slow, [{ command: 'CreateVolume', delayMs: 1_500 }]);
    const w = await startWorker({ ...services, deps: { ec2: () => slow } });
    const req = request(uniqueName('cancel-create'));
    const { handle, result } = await provision(req, w.taskQueue);
    await waitFor(async () => (await volumesNamed(ec2, req.name)).length > 0, {
      what: 'CreateVolume to reach the emulator',
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    await handle.cancel();
    const failure = await failureOf(result);
    assert.ok(failure instanceof CancelledFailure);
    assert.equal((await volumesNamed(ec2, req.name)).length, 0);
    await w.stop();
  });

  test('a run cancelled after the cost tracker recorded its volume deletes it and tells the tracker it stopped', async () => {
    const images = await ec2.send(new DescribeImagesCommand({}));
    const run = await ec2.send(
      new RunInstancesCommand({ ImageId: images.Images?.[0]?.ImageId, MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: 'us-east-1a' } }),
    );
    const instanceId = run.Instances?.[0]?.InstanceId;
    assert.ok(instanceId);
    onCleanup(() => ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    const slow = createEc2Client(services.env);
    // The attachment never reports in-use, so the run is cancelled while it waits for it.
    injectFaults(slow, [
      {
        command: 'DescribeVolumes',
        mutate: (out) => {
          for (const v of (out.Volumes as { State?: string }[] | undefined) ?? []) if (v.State === 'in-use') v.State = 'available';
        },
      },
    ]);
    const w = await startWorker({ ...services, deps: { ec2: () => slow } });
    const project = uniqueName('proj');
    const req = request(uniqueName('cancel-costed'), { project, attachTo: { instanceId, device: '/dev/sdg' } });
    const { handle, result } = await provision(req, w.taskQueue);
    const tracker = client.workflow.getHandle(`cost-tracker/${project}`);
    onCleanup(() => tracker.terminate().catch(() => undefined));
    // The tracker starts with the run's first signal: until then the query fails, and the wait goes on.
    const volumeId = await waitFor(async () => (await tracker.query(runningQuery))[0]?.id, {
      what: 'the tracker to record the volume before the cancel',
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    await handle.cancel();
    await failureOf(result);
    assert.equal((await volumesNamed(ec2, req.name)).length, 0);
    const view = await tracker.query(resourceQuery, volumeId);
    assert.equal(view?.running, false, 'the tracker knows the volume is gone');
    await w.stop();
  });

  test('cancelling a run that reused an existing volume leaves that volume alone', async () => {
    const req = request(uniqueName('cancel-reuse'));
    const made = await (await provision(req)).result;
    const slow = createEc2Client(services.env);
    injectFaults(slow, [{ command: 'DescribeVolumes', delayMs: 1_000 }]);
    const w = await startWorker({ ...services, deps: { ec2: () => slow } });
    const { handle, result } = await provision(req, w.taskQueue);
    // Cancel while the (slowed) lookup of the existing volume is in flight, as the server sees it.
    await waitFor(async () => ((await handle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'findVolumesByName'), {
      what: 'the lookup of the existing volume to start',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    await handle.cancel();
    await failureOf(result);
    const left = await volumesNamed(ec2, req.name);
    assert.deepEqual(
      left.map((v) => v.VolumeId),
      [made.volumeId],
    );
    await w.stop();
  });
});
