import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { transfer } from '../src/workflows/transfer.js';
import type { prewarm } from '../src/workflows/prewarm.js';
import { PrewarmWorkflowType } from '../src/contracts/prewarm.js';
import { join } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { loadEnv } from '../src/config.js';
import { createEc2Client, createS3Client } from '../src/aws/clients.js';
import { injectFaults } from '../src/dev/faults.js';
import { repoRoot, toolPath, startMoto, startTemporalDevServer, stopAll } from '../src/dev/services.js';
import { awsClientsFor, createHostWorker, createWorker } from '../src/worker.js';
import { provision } from '../src/api/volume.js';
import { AttachVolumeCommand, CreateTagsCommand, CreateVolumeCommand, DescribeImagesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { resourceStartedSignal, resourceStoppedSignal, setBudgetUpdate } from '../src/contracts/cost.js';
import type { costTracker } from '../src/workflows/cost-tracker.js';
import { cleanupApproveUpdate, cleanupStatusQuery } from '../src/contracts/cleanup.js';
import type { cleanup } from '../src/workflows/cleanup.js';

/**
 * `npm run record-histories`: runs each recorded scenario against a fresh dev server and moto and
 * writes its event history to test/fixtures/histories/, where the replay test (test/replay.test.ts)
 * replays it against the current workflow code. Re-record only on purpose: a history that no
 * longer replays means running workflows would break on deploy.
 */
const outDir = join(repoRoot, 'test', 'fixtures', 'histories');

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const [temporal, moto] = await Promise.all([startTemporalDevServer({ headless: true }), startMoto()]);
  const env = loadEnv({ TEMPORAL_ADDRESS: temporal.address, AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'us-east-1' });
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const client = new Client({ connection });
  const workerConnection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  // Slow "available" for the cancel scenario: the state stays `creating` until the run is cancelled.
  const ec2 = createEc2Client(env);
  let holdCreating = false;
  const hold = (out: Record<string, unknown>) => {
    if (!holdCreating) return;
    if (out.State === 'available') out.State = 'creating';
    for (const v of (out.Volumes as { State?: string }[] | undefined) ?? []) if (v.State === 'available') v.State = 'creating';
  };
  injectFaults(ec2, [
    { command: 'CreateVolume', mutate: hold },
    { command: 'DescribeVolumes', mutate: hold },
  ]);
  const worker = await createWorker({
    connection: workerConnection,
    namespace: 'default',
    taskQueue: 'record',
    deps: { ...awsClientsFor(env), ec2: () => ec2, pollIntervalMs: 200, localRoots: [tmpdir()] },
  });
  const running = worker.run();
  mkdirSync(outDir, { recursive: true });
  const save = async (file: string, workflowId: string, runId: string) => {
    // The CLI's JSON is the format the Web UI downloads and Worker.runReplayHistory reads.
    const json = execFileSync(
      toolPath('temporal'),
      ['workflow', 'show', '--address', env.TEMPORAL_ADDRESS, '-w', workflowId, '-r', runId, '--output', 'json'],
      {
        encoding: 'utf8',
      },
    );
    writeFileSync(join(outDir, file), json.trim() + '\n');
    console.log(`recorded ${file} (${(JSON.parse(json) as { events: unknown[] }).events.length} events)`);
  };
  try {
    const req = { name: 'recorded-volume', region: 'us-east-1', sizeGiB: 8, availabilityZone: 'us-east-1a', tags: { project: 'replay' } };
    const created = await provision(client, req, { taskQueue: 'record' });
    await created.result();
    await save('provision-volume-created.json', created.workflowId, created.firstExecutionRunId);
    const reused = await provision(client, req, { taskQueue: 'record' });
    await reused.result();
    await save('provision-volume-reused.json', reused.workflowId, reused.firstExecutionRunId);

    holdCreating = true;
    const cancelled = await provision(client, { ...req, name: 'recorded-cancelled' }, { taskQueue: 'record' });
    await new Promise((r) => setTimeout(r, 1_500));
    await cancelled.cancel();
    await cancelled.result().catch((err: unknown) => {
      if (!(err instanceof WorkflowFailedError)) throw err;
    });
    await save('provision-volume-cancelled.json', cancelled.workflowId, cancelled.firstExecutionRunId);
    holdCreating = false;

    // The cost tracker: signals, a budget that fires, and a continue-as-new after 10 messages.
    const tracker = await client.workflow.start<typeof costTracker>('costTracker', {
      taskQueue: 'record',
      workflowId: 'cost-tracker/recorded',
      args: [{ project: 'recorded', continueAsNewAfterEvents: 10 }],
    });
    const hourAgo = Date.now() - 3_600_000;
    for (let i = 0; i < 6; i++) {
      await tracker.signal(resourceStartedSignal, {
        id: `vol-recorded${i}`,
        kind: 'volume',
        type: 'gp3',
        sizeGiB: 100,
        region: 'us-east-1',
        tags: { team: i % 2 ? 'a' : 'b' },
        at: hourAgo,
      });
    }
    await tracker.executeUpdate(setBudgetUpdate, { args: [{ name: 'cap', limitUsd: 0.01, action: 'alert' }] });
    for (let i = 0; i < 6; i++) await tracker.signal(resourceStoppedSignal, { id: `vol-recorded${i}` });
    await tracker.signal(resourceStoppedSignal, { id: 'vol-unknown' });
    for (let i = 0; i < 50; i++) {
      const d = await client.workflow.getHandle(tracker.workflowId, tracker.firstExecutionRunId).describe();
      if (d.status.name !== 'RUNNING') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await save('cost-tracker-continued.json', tracker.workflowId, tracker.firstExecutionRunId);
    await client.workflow.getHandle(tracker.workflowId).terminate('recorded');

    // A cleanup that waits for approval, is approved by its plan hash, and deletes in order.
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: (await ec2.send(new DescribeImagesCommand({}))).Images?.[0]?.ImageId,
        MinCount: 1,
        MaxCount: 1,
        Placement: { AvailabilityZone: 'us-east-1a' },
      }),
    );
    const instanceId = run.Instances?.[0]?.InstanceId ?? '';
    const tags = [
      { Key: 'trainctl:managed', Value: 'true' },
      { Key: 'recorded', Value: 'yes' },
    ];
    await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: tags }));
    const attached = await ec2.send(
      new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1, TagSpecifications: [{ ResourceType: 'volume', Tags: tags }] }),
    );
    await ec2.send(new AttachVolumeCommand({ VolumeId: attached.VolumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
    await ec2.send(
      new CreateVolumeCommand({
        AvailabilityZone: 'us-east-1a',
        Size: 1,
        TagSpecifications: [{ ResourceType: 'volume', Tags: [...tags, { Key: 'trainctl:protected', Value: 'true' }] }],
      }),
    );
    const cleanupRun = await client.workflow.start<typeof cleanup>('cleanup', {
      taskQueue: 'record',
      workflowId: 'cleanup/us-east-1/recorded',
      args: [{ region: 'us-east-1', selector: { tags: { recorded: 'yes' } }, dryRun: false, approvalThreshold: 0 }],
    });
    let hash: string | undefined;
    for (let i = 0; i < 50 && !hash; i++) {
      const status = await cleanupRun.query(cleanupStatusQuery);
      if (status.phase === 'awaiting-approval') hash = status.plan?.hash;
      else await new Promise((r) => setTimeout(r, 200));
    }
    await cleanupRun.executeUpdate(cleanupApproveUpdate, { args: [{ planHash: hash ?? '' }] });
    await cleanupRun.result();
    await save('cleanup-approved.json', cleanupRun.workflowId, cleanupRun.firstExecutionRunId);

    // A transfer up and back down, with a multi-part file, a small-file batch and a sync skip.
    const s3 = createS3Client(env);
    await s3.send(new CreateBucketCommand({ Bucket: 'recorded-data' }));
    const tree = mkdtempSync(join(tmpdir(), 'trainctl-record-'));
    const back = mkdtempSync(join(tmpdir(), 'trainctl-record-back-'));
    try {
      mkdirSync(join(tree, 'sub'));
      writeFileSync(join(tree, 'big.bin'), Buffer.alloc(12 * 1024 * 1024, 3));
      writeFileSync(join(tree, 'sub', 'a.txt'), 'alpha');
      writeFileSync(join(tree, 'empty.txt'), '');
      const up = await client.workflow.start<typeof transfer>('transfer', {
        taskQueue: 'record',
        workflowId: 'transfer/recorded-up',
        args: [{ source: { kind: 'local', path: tree }, destination: { kind: 's3', uri: 's3://recorded-data/ds' }, partSizeMiB: 5 }],
      });
      await up.result();
      await save('transfer-upload.json', up.workflowId, up.firstExecutionRunId);
      const down = await client.workflow.start<typeof transfer>('transfer', {
        taskQueue: 'record',
        workflowId: 'transfer/recorded-down',
        args: [{ source: { kind: 's3', uri: 's3://recorded-data/ds' }, destination: { kind: 'local', path: back }, sync: true }],
      });
      await down.result();
      await save('transfer-download.json', down.workflowId, down.firstExecutionRunId);

      // A prewarm on a host worker (in-process here), reading every block of a small device.
      const hostWorker = await createHostWorker({ connection: workerConnection, namespace: 'default', hostId: 'recorded-host', roots: [tree], env });
      const hostRunning = hostWorker.run();
      try {
        const warm = await client.workflow.start<typeof prewarm>(PrewarmWorkflowType, {
          taskQueue: 'record',
          workflowId: 'prewarm/recorded',
          args: [{ strategy: 'PreWarmedEBS', hostId: 'recorded-host', device: 'big.bin', fio: 'never', cost: { project: 'recorded', region: 'us-east-1' } }],
        });
        await warm.result();
        await save('prewarm-device.json', warm.workflowId, warm.firstExecutionRunId);
      } finally {
        hostWorker.shutdown();
        await hostRunning;
      }
    } finally {
      rmSync(tree, { recursive: true, force: true });
      rmSync(back, { recursive: true, force: true });
    }
  } finally {
    worker.shutdown();
    await running;
    await workerConnection.close();
    await connection.close();
    await stopAll();
  }
}

main().catch(async (err: unknown) => {
  console.error('recording failed:', err);
  await stopAll();
  process.exit(1);
});
