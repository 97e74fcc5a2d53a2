import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadEnv } from '../config.js';
import { connectWorker } from '../temporal.js';
import { createWorker, awsClientsFor } from '../worker.js';
import { run as runCli } from '../cli/main.js';
import { repoRoot, startMoto, startTemporalDevServer, stopAll } from './services.js';

/**
 * `npm run demo`: a dev server (persisted in .trainctl/), the AWS emulator and a worker; provisions
 * one volume twice through the CLI (the second run reuses it: created: false); stops all it started
 * unless --keep.
 */
async function main(): Promise<number> {
  const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false } } });
  // Ctrl-C (or a TERM) ends the demo in order: worker drained, then the servers stopped.
  let stopRequested = false;
  const interrupted = new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        stopRequested = true;
        resolve();
      });
    }
  });
  const env: Record<string, string | undefined> = { ...process.env };

  if (env.TEMPORAL_ADDRESS) {
    console.log(`Using the Temporal server at ${env.TEMPORAL_ADDRESS} (TEMPORAL_ADDRESS); starting none.`);
  } else {
    const dbFile = process.env.TRAINCTL_DEMO_DB ?? join(repoRoot, '.trainctl', 'demo-temporal.db');
    const temporal = await startTemporalDevServer({ dbFile, port: 7233, uiPort: 8233 });
    env.TEMPORAL_ADDRESS = temporal.address;
    env.TEMPORAL_UI_URL = temporal.uiUrl;
    console.log(`Temporal dev server on ${temporal.address}, Web UI ${temporal.uiUrl} (log: ${temporal.logFile})`);
  }
  // The demo creates volumes, so it always runs on the emulator, whatever TRAINCTL_AWS says.
  const moto = await startMoto();
  Object.assign(env, { AWS_ENDPOINT_URL: moto.endpoint, TRAINCTL_AWS: 'emulator', AWS_REGION: env.AWS_REGION ?? 'us-east-1' });
  console.log(`AWS emulator (moto) on ${moto.endpoint} (log: ${moto.logFile})`);

  const parsed = loadEnv(env);
  // The worker's own progress lines (bundling, state changes) would bury the demo's output.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const taskQueue = `${parsed.TRAINCTL_TASK_QUEUE}-demo`;
  env.TRAINCTL_TASK_QUEUE = taskQueue;
  const connection = await connectWorker(parsed);
  const worker = await createWorker({ connection, namespace: parsed.TEMPORAL_NAMESPACE, taskQueue, deps: awsClientsFor(parsed) });
  const running = worker.run();
  console.log(`Worker polling ${taskQueue}\n`);

  let code = 0;
  const args = ['volume', 'create', '--name', 'demo-dataset', '--size-gib', '20', '--az', `${parsed.AWS_REGION}a`, '--type', 'gp3', '--tag', 'project=demo'];
  for (const attempt of ['first', 'second']) {
    if (stopRequested) break;
    console.log(`$ trainctl ${args.join(' ')}    # ${attempt} time`);
    code = await Promise.race([runCli(args, env), interrupted.then(() => 130)]);
    console.log('');
    if (code !== 0) break;
  }

  if (values.keep && code === 0) {
    console.log('Kept running (--keep). From another terminal:');
    console.log(`  export TEMPORAL_ADDRESS=${env.TEMPORAL_ADDRESS} AWS_ENDPOINT_URL=${moto.endpoint} TRAINCTL_TASK_QUEUE=${taskQueue}`);
    console.log('  npx trainctl volume create --name another --size-gib 10 --az us-east-1a');
    console.log('Ctrl-C here stops the worker, the emulator and the dev server.');
    await interrupted;
  } else if (stopRequested) {
    code = 130;
  }
  // The worker may be draining already: the SDK shuts workers down on SIGINT/SIGTERM by itself.
  if (worker.getState() === 'RUNNING') worker.shutdown();
  await running;
  await connection.close();
  await stopAll();
  console.log(
    code === 0 ? 'Demo done; everything it started is stopped.' : `Demo ${stopRequested ? 'interrupted' : 'failed'}; everything it started is stopped.`,
  );
  return code;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error('demo failed:', err instanceof Error ? err.message : err);
    await stopAll();
    process.exit(1);
  },
);
