import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateVolumeCommand } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { loadEnv } from '../src/config.js';
import { createEc2Client, createS3Client } from '../src/aws/clients.js';
import { cleanup as cleanupApi, transfer as transferApi } from '../src/api/index.js';
import { startFaultProxy } from '../src/dev/fault-proxy.js';
import { startMoto, startTemporalDevServer, stopAll } from '../src/dev/services.js';
import { awsClientsFor, createWorker } from '../src/worker.js';
import { saveHistory } from './history-file.js';
import { resourceStartedSignal, resourceStoppedSignal, resourceUsageSignal, setRateUpdate } from '../src/contracts/cost.js';
import type { costTracker } from '../src/workflows/cost-tracker.js';

/**
 * `npm run record-branch-histories`: records the branches the other recorders leave out — a
 * transfer cancelled mid-upload, a transfer failed (a tampered object, Integrity), an S3 → S3 copy
 * through an AWS profile, a transfer paged over two runs (each run saved), a cleanup whose plan was
 * rejected, a cleanup run in chunks (its first run and a resumed one, each continued as new), and a
 * cost tracker carrying its resources packed (first run and resumed run) — into
 * test/fixtures/histories/, leaving every other history alone. Names given (`npm run
 * record-branch-histories -- cleanup-continued`) record only those. Re-record only on purpose: a
 * history that no longer replays means running workflows would break on deploy.
 */
async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const wanted = (...names: string[]) => only.length === 0 || names.some((n) => only.includes(n));
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const [temporal, moto] = await Promise.all([startTemporalDevServer({ headless: true }), startMoto()]);
  const proxy = await startFaultProxy(moto.endpoint);
  const work = mkdtempSync(join(tmpdir(), 'trainctl-record-branches-'));
  // A profile that reaches the emulator, as another store would be reached.
  writeFileSync(join(work, 'config'), `[profile store]\nregion = us-east-1\nendpoint_url = ${moto.endpoint}\ns3 =\n    addressing_style = path\n`);
  writeFileSync(join(work, 'credentials'), '[store]\naws_access_key_id = testing\naws_secret_access_key = testing\n');
  const env = loadEnv({
    TEMPORAL_ADDRESS: temporal.address,
    AWS_ENDPOINT_URL: proxy.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(work, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'credentials'),
  });
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const client = new Client({ connection });
  const workerConnection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  const worker = await createWorker({
    connection: workerConnection,
    namespace: 'default',
    taskQueue: 'record',
    deps: { ...awsClientsFor(env), pollIntervalMs: 200, localRoots: [work] },
  });
  const running = worker.run();
  const save = (file: string, workflowId: string, runId?: string) => saveHistory(env.TEMPORAL_ADDRESS, file, workflowId, runId);
  const opts = (workflowId: string) => ({ taskQueue: 'record', workflowId });
  try {
    const s3 = createS3Client(loadEnv({ AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'us-east-1' }));
    await s3.send(new CreateBucketCommand({ Bucket: 'recorded-branches' }));
    await s3.send(new CreateBucketCommand({ Bucket: 'recorded-copies' }));
    mkdirSync(join(work, 'src'));
    writeFileSync(join(work, 'src', 'big.bin'), Buffer.alloc(30 * 1024 * 1024, 7));
    writeFileSync(join(work, 'src', 'small.txt'), 'small\n');

    if (wanted('transfer-cancelled')) {
      // Cancelled mid-upload: parts are slowed by the proxy, the cancel lands after the first.
      await proxy.setRules([{ op: 'UploadPart', fault: 'latency', latencyMs: 1_000 }]);
      const cancelled = await transferApi.start(
        client,
        {
          source: { kind: 'local', path: join(work, 'src') },
          destination: { kind: 's3', uri: 's3://recorded-branches/cancelled/' },
          partSizeMiB: 5,
          concurrency: 1,
          heartbeatTimeoutSeconds: 3,
        },
        opts('transfer/recorded-cancelled'),
      );
      for (let i = 0; i < 300 && !(await proxy.log()).some((e) => e.op === 'UploadPart' && e.status === 200); i++) await new Promise((r) => setTimeout(r, 100));
      await transferApi.cancel(cancelled);
      await cancelled.result().catch(() => undefined);
      save('transfer-cancelled.json', cancelled.workflowId, cancelled.firstExecutionRunId);
      await proxy.setRules([]);
    }

    if (wanted('transfer-failed')) {
      // Failed: the object changed after upload, so the download fails with Integrity.
      await transferApi.execute(
        client,
        { source: { kind: 'local', path: join(work, 'src', 'small.txt') }, destination: { kind: 's3', uri: 's3://recorded-branches/t/small.txt' } },
        opts('transfer/recorded-up-small'),
      );
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'recorded-branches', Key: 't/small.txt' }));
      await s3.send(new PutObjectCommand({ Bucket: 'recorded-branches', Key: 't/small.txt', Body: 'tampered\n', Metadata: head.Metadata }));
      const failed = await transferApi.start(
        client,
        { source: { kind: 's3', uri: 's3://recorded-branches/t/small.txt' }, destination: { kind: 'local', path: join(work, 'out', 'small.txt') } },
        opts('transfer/recorded-failed'),
      );
      await failed.result().catch(() => undefined);
      save('transfer-failed.json', failed.workflowId, failed.firstExecutionRunId);
    }

    if (wanted('transfer-copy-profile')) {
      // S3 → S3 through a profile: the stores checked, then a multipart object and a small one copied.
      await transferApi.execute(
        client,
        { source: { kind: 'local', path: join(work, 'src') }, destination: { kind: 's3', uri: 's3://recorded-branches/copy-src/' }, partSizeMiB: 5 },
        opts('transfer/recorded-copy-src'),
      );
      const copied = await transferApi.start(
        client,
        { source: { kind: 's3', uri: 's3://recorded-branches/copy-src/' }, destination: { kind: 's3', uri: 's3://store@recorded-copies/copy/' } },
        opts('transfer/recorded-copy'),
      );
      await copied.result();
      save('transfer-copy-profile.json', copied.workflowId, copied.firstExecutionRunId);
    }

    if (wanted('transfer-paged-first', 'transfer-paged-last')) {
      // Paged: two files in pages of one, so the first run continues-as-new (with the page marker) and the last completes.
      const paged = await transferApi.start(
        client,
        { source: { kind: 'local', path: join(work, 'src') }, destination: { kind: 's3', uri: 's3://recorded-branches/paged/' }, pageFiles: 1 },
        opts('transfer/recorded-paged'),
      );
      await paged.result();
      save('transfer-paged-first.json', paged.workflowId, paged.firstExecutionRunId);
      save('transfer-paged-last.json', paged.workflowId);
    }

    if (wanted('cleanup-rejected')) {
      // A cleanup whose plan is rejected: nothing is deleted.
      const rejected = await cleanupApi.startCleanup(
        client,
        { region: 'us-east-1', selector: { kinds: ['s3-prefix'], ids: ['s3://recorded-branches/cancelled/'] }, dryRun: false },
        opts('cleanup/us-east-1/recorded-rejected'),
      );
      const plan = await cleanupApi.awaitPlan(rejected);
      if (!plan) throw new Error('the cleanup never showed its plan');
      await cleanupApi.reject(rejected, 'recorded: not today');
      await rejected.result();
      save('cleanup-rejected.json', rejected.workflowId);
    }

    // A cleanup of three volumes, a chunk of one each: three runs, continued as new twice; the first two are recorded.
    if (wanted('cleanup-continued', 'cleanup-continued-resumed')) {
      const ec2 = createEc2Client(loadEnv({ AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'us-east-1' }));
      const Tags = [
        { Key: 'trainctl:managed', Value: 'true' },
        { Key: 'recorded', Value: 'chunks' },
      ];
      for (let i = 0; i < 3; i++)
        await ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1, TagSpecifications: [{ ResourceType: 'volume', Tags }] }));
      const chunked = await cleanupApi.startCleanup(
        client,
        { region: 'us-east-1', selector: { tags: { recorded: 'chunks' }, kinds: ['volume'] }, dryRun: false, chunkSize: 1, approvalThreshold: 0 },
        opts('cleanup/us-east-1/recorded-continued'),
      );
      // Approved in the first run, as `cleanup apply` does; the plan is read while that run waits.
      const chunkPlan = await cleanupApi.awaitPlan(chunked);
      if (!chunkPlan) throw new Error('the chunked cleanup never showed its plan');
      const firstRunId = (await chunked.describe()).runId;
      await cleanupApi.approve(chunked, chunkPlan.hash);
      await chunked.result();
      const second = (await client.workflow.getHandle(chunked.workflowId, firstRunId).fetchHistory()).events?.at(-1)
        ?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      if (!second) throw new Error('the chunked cleanup did not continue as new');
      save('cleanup-continued.json', chunked.workflowId, firstRunId);
      save('cleanup-continued-resumed.json', chunked.workflowId, second);
    }

    // A cost tracker whose resources are carried packed: a first run (starts with tags, a restart, usage,
    // setRate, a stop) continued as new after 10 messages, and the run it continued as (unpacked, then
    // continued again). Both recorded.
    if (wanted('cost-tracker-packed', 'cost-tracker-packed-resumed')) {
      const tracker = await client.workflow.start<typeof costTracker>('costTracker', {
        ...opts('cost-tracker/recorded-packed'),
        args: [{ project: 'recorded-packed', continueAsNewAfterEvents: 10 }],
      });
      const hourAgo = Date.now() - 3_600_000;
      const runIds: string[] = [tracker.firstExecutionRunId];
      const nextRun = async (after: string) => {
        for (let i = 0; i < 100; i++) {
          const last = (await client.workflow.getHandle(tracker.workflowId, after).fetchHistory()).events?.at(-1);
          const next = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
          if (next) return next;
          await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error('the cost tracker did not continue as new');
      };
      for (let run = 0; run < 2; run++) {
        for (let i = 0; i < 4; i++) {
          const id = `i-packed${run}-${i}`;
          await tracker.signal(resourceStartedSignal, {
            id,
            kind: 'instance',
            type: 't3.micro',
            region: 'us-east-1',
            tags: { team: `t${i % 2}` },
            at: hourAgo,
          });
          await tracker.signal(resourceUsageSignal, { id, cpuPercent: 10 * i, gpuPercent: 50 });
        }
        await tracker.signal(resourceStoppedSignal, { id: `i-packed${run}-0`, at: hourAgo + 60_000 });
        await tracker.executeUpdate(setRateUpdate, { args: [{ type: 't3.micro', usdPerHour: 0.02 }] });
        await tracker.signal(resourceStartedSignal, { id: `i-packed${run}-0`, kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: {} });
        runIds.push(await nextRun(runIds.at(-1)!));
      }
      save('cost-tracker-packed.json', tracker.workflowId, runIds[0]);
      save('cost-tracker-packed-resumed.json', tracker.workflowId, runIds[1]);
      await client.workflow.getHandle(tracker.workflowId).terminate('recorded');
    }
  } finally {
    worker.shutdown();
    await running;
    await workerConnection.close();
    await connection.close();
    await proxy.stop();
    rmSync(work, { recursive: true, force: true });
    await stopAll();
  }
}

main().catch(async (err: unknown) => {
  console.error('recording failed:', err);
  await stopAll();
  process.exit(1);
});
