import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { loadEnv } from '../src/config.js';
import { createEc2Client, createS3Client } from '../src/aws/clients.js';
import { cost, run } from '../src/api/index.js';
import type { RunRequest } from '../src/contracts/run.js';
import { startInstanceSimulator } from '../src/dev/instances.js';
import { repoRoot, startMoto, startTemporalDevServer, stopAll } from '../src/dev/services.js';
import { awsClientsFor, createWorker } from '../src/worker.js';
import { saveHistory } from './history-file.js';

/**
 * `npm run record-run-histories`: records the training run's branches (completed, stopped,
 * failed, cancelled), its `checkHost` child and a `reconcileCost` into test/fixtures/histories/,
 * next to the histories `scripts/record-histories.ts` records, which it leaves alone. Re-record only
 * on purpose: a history that no longer replays means running workflows would break on deploy.
 */
async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const [temporal, moto] = await Promise.all([startTemporalDevServer({ headless: true }), startMoto()]);
  const env = loadEnv({ TEMPORAL_ADDRESS: temporal.address, AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'us-east-1' });
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const client = new Client({ connection });
  const workerConnection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  const worker = await createWorker({
    connection: workerConnection,
    namespace: 'default',
    taskQueue: 'record',
    deps: { ...awsClientsFor(env), pollIntervalMs: 200, localRoots: [join(repoRoot, 'examples')] },
  });
  const running = worker.run();
  const hostsDir = mkdtempSync(join(tmpdir(), 'trainctl-record-hosts-'));
  const sim = startInstanceSimulator({ env, pollMs: 300, hostsDir, graceMs: 5_000 });
  const save = (file: string, workflowId: string, runId?: string) => saveHistory(env.TEMPORAL_ADDRESS, file, workflowId, runId);
  try {
    const s3 = createS3Client(env);
    const bucket = 'recorded-runs';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    for (let i = 0; i < 3; i++) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `dataset/shard-${i}.txt`, Body: `shard ${i}\n`.repeat(500) }));
    const ami =
      (await createEc2Client(env).send(new DescribeImagesCommand({}))).Images?.find((i) => /^ami-[0-9a-f]{8,17}$/.test(i.ImageId ?? ''))?.ImageId ?? '';
    const request = (name: string, command: string[]): RunRequest => ({
      name,
      project: 'recorded',
      region: 'us-east-1',
      availabilityZone: 'us-east-1a',
      instance: { type: 'g5.xlarge', ami },
      volume: { sizeGiB: 8 },
      dataset: { source: { kind: 's3', uri: `s3://${bucket}/dataset/` }, strategy: 'LocalCache' },
      training: {
        command,
        codeFrom: { kind: 'local', path: join(repoRoot, 'examples', 'train') },
        checkpointUri: `s3://${bucket}/runs/${name}/checkpoints/`,
        outputsUri: `s3://${bucket}/runs/${name}/outputs/`,
        checkpointEverySeconds: 10,
        stopGraceSeconds: 10,
        heartbeatTimeoutSeconds: 10,
      },
    });
    const train = (steps: number, extra: string[] = []) => ['python3', 'train.py', '--steps', String(steps), '--checkpoint-every', '5', ...extra];
    const until = async (h: run.RunHandle, pred: (s: run.RunStatusView) => boolean) => {
      for (let i = 0; i < 600; i++) {
        if (pred(await run.status(h))) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`timed out waiting on ${h.workflowId}`);
    };
    const ended = (p: Promise<unknown>) => p.catch((err: unknown) => void (err instanceof WorkflowFailedError || Promise.reject(err)));

    // Completed, with a periodic checkpoint sync (the program runs longer than the interval).
    const done = await run.start(client, request('recorded-completed', train(40, ['--step-seconds', '0.4'])), { taskQueue: 'record' });
    await done.result();
    save('training-run-completed.json', done.workflowId, done.firstExecutionRunId);
    save('check-host.json', `${done.workflowId}/host-check`);

    // Stopped during training.
    const stopped = await run.start(client, request('recorded-stopped', train(400, ['--step-seconds', '0.1'])), { taskQueue: 'record' });
    await until(stopped, (s) => s.step === 'train' && s.lastLogLines.some((l) => l.startsWith('step ')));
    await run.stop(stopped, 'recorded');
    await stopped.result();
    save('training-run-stopped.json', stopped.workflowId, stopped.firstExecutionRunId);

    // Failed: the program exits 7 at step 8.
    const failed = await run.start(client, request('recorded-failed', train(20, ['--fail-at', '8'])), { taskQueue: 'record' });
    await ended(failed.result());
    save('training-run-failed.json', failed.workflowId, failed.firstExecutionRunId);

    // Cancelled during training.
    const cancelled = await run.start(client, request('recorded-cancelled', train(400, ['--step-seconds', '0.1'])), { taskQueue: 'record' });
    await until(cancelled, (s) => s.step === 'train' && s.lastLogLines.some((l) => l.startsWith('step ')));
    await run.cancel(cancelled);
    await ended(cancelled.result());
    save('training-run-cancelled.json', cancelled.workflowId, cancelled.firstExecutionRunId);

    // One reconciliation of the project these runs reported to.
    const reconcile = await cost.startReconcile(
      client,
      { project: 'recorded', regions: ['us-east-1'] },
      { taskQueue: 'record', workflowId: 'cost-reconcile/recorded/manual' },
    );
    await reconcile.result();
    save('reconcile-cost.json', reconcile.workflowId);
  } finally {
    await sim.stop();
    worker.shutdown();
    await running;
    await workerConnection.close();
    await connection.close();
    await stopAll();
    rmSync(hostsDir, { recursive: true, force: true });
  }
}

main().catch(async (err: unknown) => {
  console.error('recording failed:', err);
  await stopAll();
  process.exit(1);
});
