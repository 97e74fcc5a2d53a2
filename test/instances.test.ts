import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import type { Client } from '@temporalio/client';
import { startInstanceSimulator, type InstanceSimulator } from '../src/dev/instances.js';
import { encodeUserData, generateUserData } from '../src/run/user-data.js';
import { ec2For, onCleanup, startWorker, testClient, testServices, uniqueName, type RunningWorker, type TestServices } from './helpers/harness.js';
import { SUITE_TAG } from './helpers/run.js';
import { waitFor as pollUntil } from './helpers/wait.js';

let services: TestServices;
let client: Client;
let worker: RunningWorker;
let ec2: EC2Client;
let sim: InstanceSimulator;
let hostsDir: string;
/** This file's instances carry it; its simulator takes only them (other files' simulators share the emulator). */
const suiteTag = uniqueName('instances');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const waitFor = (what: string, check: () => boolean, timeoutMs = 30_000) => pollUntil(check, { what, timeoutMs, intervalMs: 100 });

async function launch(userData: string): Promise<string> {
  const images = await ec2.send(new DescribeImagesCommand({}));
  const imageId = images.Images?.[0]?.ImageId;
  assert.ok(imageId, 'the emulator lists at least one AMI');
  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 't3.micro',
      Placement: { AvailabilityZone: 'us-east-1a' },
      UserData: encodeUserData(userData),
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: SUITE_TAG, Value: suiteTag }] }],
    }),
  );
  const id = run.Instances?.[0]?.InstanceId;
  assert.ok(id);
  onCleanup(() => ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })));
  return id;
}

before(async () => {
  services = await testServices();
  client = await testClient(services.env);
  worker = await startWorker(services);
  ec2 = ec2For(services.env);
  hostsDir = mkdtempSync(join(tmpdir(), 'trainctl-hosts-'));
  onCleanup(() => rmSync(hostsDir, { recursive: true, force: true }));
  sim = startInstanceSimulator({
    env: services.env,
    pollMs: 300,
    hostsDir,
    graceMs: 5_000,
    tags: { [SUITE_TAG]: suiteTag },
    onError: (err) => console.error('simulator:', err),
  });
  onCleanup(() => sim.stop());
});

const bootstrap = () =>
  generateUserData({
    version: '0.1.0',
    root: '/opt/trainctl/root',
    temporalAddress: 'temporal.example.internal:7233',
    temporalNamespace: 'default',
    taskQueue: 'trainctl',
    region: 'us-east-1',
  });

test(
  'an instance with trainctl user-data gets a host worker that answers on trainctl-host-ID; terminating it ends the worker; stop() leaves no process',
  { timeout: 240_000 },
  async () => {
    const instanceId = await launch(bootstrap());
    const foreignId = await launch('#!/bin/bash\necho "not trainctl"\n');
    const host = await sim.waitForHost(instanceId, 120_000);
    assert.equal(host.root, join(hostsDir, instanceId, 'root'));

    const info = (await client.workflow.execute('checkHost', { taskQueue: worker.taskQueue, workflowId: uniqueName('sim-check'), args: [instanceId, 60] })) as {
      hostId: string;
      roots: { path: string }[];
    };
    assert.equal(info.hostId, instanceId);
    assert.deepEqual(
      info.roots.map((r) => r.path),
      [realpathSync(host.root)],
    );

    await sim.nextPass();
    assert.equal(sim.hosts().has(foreignId), false, 'foreign user-data gets no worker');
    assert.equal(existsSync(join(hostsDir, foreignId)), false);

    const volume = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 }));
    assert.ok(volume.VolumeId);
    await ec2.send(new AttachVolumeCommand({ VolumeId: volume.VolumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
    await sim.nextPass();
    assert.ok(existsSync(join(host.root, 'volumes', volume.VolumeId)), 'an attached volume is a folder named by its id');

    await sim.kill(instanceId, 'SIGKILL');
    assert.equal(alive(host.pid), false);
    const restarted = await sim.waitForHost(instanceId, 120_000);
    assert.notEqual(restarted.pid, host.pid, 'a dead worker on a running instance is started again');

    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    await waitFor('the worker of the terminated instance to exit', () => !alive(restarted.pid), 60_000);
    await sim.nextPass();
    assert.equal(sim.hosts().has(instanceId), false);

    const second = await launch(bootstrap());
    const other = await sim.waitForHost(second, 120_000);
    await sim.stop();
    assert.equal(alive(other.pid), false, 'stop() ended every host worker');
    assert.equal(sim.hosts().size, 0);
  },
);
