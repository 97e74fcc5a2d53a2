import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeImagesCommand, DescribeInstancesCommand, DescribeVolumesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { createS3Client } from '../../src/aws/clients.js';
import { startInstanceSimulator, type InstanceSimulator } from '../../src/dev/instances.js';
import { repoRoot } from '../../src/dev/services.js';
import type { RunRequest } from '../../src/contracts/run.js';
import { ec2For, onCleanup, startWorker, testClient, testServices, uniqueName, type RunningWorker, type TestServices } from './harness.js';
import { testBucket } from './transfer.js';

/** Everything a training-run test file needs: servers, a worker, the instance simulator, a bucket with a dataset. */
export interface RunSuite {
  services: TestServices;
  client: Client;
  worker: RunningWorker;
  ec2: EC2Client;
  s3: S3Client;
  sim: InstanceSimulator;
  hostsDir: string;
  bucket: string;
  ami: string;
  /** A run request with the suite's dataset and the example training program; `extra` overrides fields. */
  request(name: string, training?: Partial<RunRequest['training']>, extra?: Partial<RunRequest>): RunRequest;
}

/** The tag that ties an instance to the test file (and its instance simulator) that launched it. */
export const SUITE_TAG = 'trainctl-test-suite';

/**
 * @param opts.simulatorAwsEndpoint where the simulated instances' host workers (and the simulator's
 *   own polls) send their AWS calls — a fault proxy in front of the emulator, so that a test can slow
 *   the host side too; the emulator itself by default.
 */
export async function runSuite(prefix: string, opts: { simulatorAwsEndpoint?: string } = {}): Promise<RunSuite> {
  const services = await testServices();
  const client = await testClient(services.env);
  const worker = await startWorker(services);
  const ec2 = ec2For(services.env);
  const s3 = createS3Client(services.env);
  const bucket = await testBucket(s3, prefix);
  const hostsDir = mkdtempSync(join(tmpdir(), `trainctl-hosts-${prefix}-`));
  onCleanup(() => rmSync(hostsDir, { recursive: true, force: true }));
  // This file's runs carry this tag and only they get host workers from this file's simulator:
  // simulators of test files running side by side share the emulator.
  const suiteTag = { [SUITE_TAG]: uniqueName(prefix) };
  const sim = startInstanceSimulator({
    env: { ...services.env, ...(opts.simulatorAwsEndpoint ? { AWS_ENDPOINT_URL: opts.simulatorAwsEndpoint } : {}) },
    pollMs: 300,
    hostsDir,
    graceMs: 5_000,
    tags: suiteTag,
  });
  onCleanup(() => sim.stop());
  const images = await ec2.send(new DescribeImagesCommand({}));
  const ami = images.Images?.find((i) => /^ami-[0-9a-f]{8,17}$/.test(i.ImageId ?? ''))?.ImageId;
  assert.ok(ami, 'the emulator lists an AMI');
  // A small dataset of a few files; the training program hashes every byte of it.
  for (let i = 0; i < 4; i++) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `dataset/shard-${i}.txt`, Body: `shard ${i}\n`.repeat(1000 + i) }));
  }
  // A project of this file's own: its cost tracker is not shared with other test files' signals and queries.
  const project = uniqueName(`${prefix}-proj`);
  const request = (name: string, training: Partial<RunRequest['training']> = {}, extra: Partial<RunRequest> = {}): RunRequest => ({
    name,
    project,
    region: 'us-east-1',
    availabilityZone: 'us-east-1a',
    instance: { type: 'g5.xlarge', ami },
    volume: { sizeGiB: 8 },
    dataset: { source: { kind: 's3', uri: `s3://${bucket}/dataset/` }, strategy: 'LocalCache' },
    training: {
      command: ['python3', 'train.py', '--steps', '20', '--checkpoint-every', '5', '--step-seconds', '0.02'],
      codeFrom: { kind: 'local', path: join(repoRoot, 'examples', 'train') },
      checkpointUri: `s3://${bucket}/runs/${name}/checkpoints/`,
      outputsUri: `s3://${bucket}/runs/${name}/outputs/`,
      checkpointEverySeconds: 10,
      stopGraceSeconds: 10,
      ...training,
    },
    ...extra,
    tags: { ...extra.tags, ...suiteTag },
  });
  return { services, client, worker, ec2, s3, sim, hostsDir, bucket, ami, request };
}

/** A run name no other test uses. */
export const runName = (p: string) => uniqueName(p);

/** Instances and volumes of a run still alive in the emulator (found by the run's tag). */
export async function leftovers(ec2: EC2Client, name: string): Promise<{ instances: string[]; volumes: string[] }> {
  const inst = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:trainctl:run', Values: [name] }] }));
  const instances = (inst.Reservations ?? [])
    .flatMap((r) => r.Instances ?? [])
    .filter((i) => i.State?.Name !== 'terminated')
    .map((i) => `${i.InstanceId} (${i.State?.Name})`);
  const vols = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:Name', Values: [`${name}-data`] }] }));
  const volumes = (vols.Volumes ?? []).filter((v) => v.State !== 'deleted' && v.State !== 'deleting').map((v) => `${v.VolumeId} (${v.State})`);
  return { instances, volumes };
}
