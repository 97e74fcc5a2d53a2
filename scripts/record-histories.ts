import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { loadEnv } from '../src/config.js';
import { createEc2Client } from '../src/aws.js';
import { injectFaults } from '../src/dev/faults.js';
import { repoRoot, toolPath, startMoto, startTemporalDevServer, stopAll } from '../src/dev/services.js';
import { awsClientsFor, createWorker } from '../src/worker.js';
import { startProvisionVolume } from '../src/cli/volume.js';

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
    deps: { ...awsClientsFor(env), ec2: () => ec2, pollIntervalMs: 200 },
  });
  const running = worker.run();
  mkdirSync(outDir, { recursive: true });
  const save = async (file: string, workflowId: string, runId: string) => {
    // The CLI's JSON is the format the Web UI downloads and Worker.runReplayHistory reads.
    const json = execFileSync(toolPath('temporal'), ['workflow', 'show', '--address', env.TEMPORAL_ADDRESS, '-w', workflowId, '-r', runId, '--output', 'json'], {
      encoding: 'utf8',
    });
    writeFileSync(join(outDir, file), json.trim() + '\n');
    console.log(`recorded ${file} (${(JSON.parse(json) as { events: unknown[] }).events.length} events)`);
  };
  try {
    const req = { name: 'recorded-volume', region: 'us-east-1', sizeGiB: 8, availabilityZone: 'us-east-1a', tags: { project: 'replay' } };
    const created = await startProvisionVolume(client, 'record', req);
    await created.result();
    await save('provision-volume-created.json', created.workflowId, created.firstExecutionRunId);
    const reused = await startProvisionVolume(client, 'record', req);
    await reused.result();
    await save('provision-volume-reused.json', reused.workflowId, reused.firstExecutionRunId);

    holdCreating = true;
    const cancelled = await startProvisionVolume(client, 'record', { ...req, name: 'recorded-cancelled' });
    await new Promise((r) => setTimeout(r, 1_500));
    await cancelled.cancel();
    await cancelled.result().catch((err: unknown) => {
      if (!(err instanceof WorkflowFailedError)) throw err;
    });
    await save('provision-volume-cancelled.json', cancelled.workflowId, cancelled.firstExecutionRunId);
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
