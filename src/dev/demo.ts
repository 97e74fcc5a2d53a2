import { parseArgs } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { CreateBucketCommand as CreateS3Bucket, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { loadEnv, type Env } from '../config.js';
import { connectClient, connectWorker, ensureSearchAttributes, workflowUiUrl } from '../temporal.js';
import { createWorker, awsClientsFor, bootstrapFor } from '../worker.js';
import { createEc2Client, createS3Client } from '../aws/clients.js';
import { cost, run, transfer } from '../api/index.js';
import type { RunReport, RunRequest } from '../contracts/run.js';
import { readRunFile } from '../run/run-file.js';
import { formatBytes, progressLine } from '../transfer/report.js';
import { startInstanceSimulator } from './instances.js';
import { repoRoot, startMoto, startTemporalDevServer, stopAll } from './services.js';

/**
 * `npm run demo`: the whole job on the embedded defaults. A dev server (persisted in .trainctl/),
 * the AWS emulator, a worker and the instance simulator; a generated dataset is uploaded to S3,
 * then one training run launches an instance, provisions and attaches a volume, stages the data
 * and the example program, trains, syncs checkpoints, and tears down. It prints progress, the Web
 * UI links, the report and the cost table, checks the results against the emulator, and stops
 * everything it started unless --keep.
 */
async function main(): Promise<number> {
  const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false }, 'dataset-mib': { type: 'string', default: '256' } } });
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
  // The demo creates instances and volumes, so it always runs on the emulator, whatever TRAINCTL_AWS says.
  const moto = await startMoto();
  Object.assign(env, { AWS_ENDPOINT_URL: moto.endpoint, TRAINCTL_AWS: 'emulator', AWS_REGION: env.AWS_REGION ?? 'us-east-1' });
  console.log(`AWS emulator (moto) on ${moto.endpoint} (log: ${moto.logFile})`);

  const parsed = loadEnv(env);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const taskQueue = `${parsed.TRAINCTL_TASK_QUEUE}-demo`;
  env.TRAINCTL_TASK_QUEUE = taskQueue;
  const connection = await connectWorker(parsed);
  if (process.env.TEMPORAL_ADDRESS) {
    await ensureSearchAttributes(connection, {
      address: parsed.TEMPORAL_ADDRESS,
      namespace: parsed.TEMPORAL_NAMESPACE,
      enabled: true,
      info: (m) => console.log(m),
      warn: (m) => console.warn(m),
    });
  }
  const worker = await createWorker({
    connection,
    namespace: parsed.TEMPORAL_NAMESPACE,
    taskQueue,
    // The demo's dataset lives under .tools: the worker's one local root.
    deps: {
      ...awsClientsFor(parsed),
      bootstrap: bootstrapFor({ ...parsed, TRAINCTL_TASK_QUEUE: taskQueue }),
      localRoots: [join(repoRoot, '.tools'), join(repoRoot, 'examples')],
    },
  });
  const running = worker.run();
  const hostsDir = join(repoRoot, '.tools', 'hosts');
  const sim = startInstanceSimulator({ env: parsed, hostsDir });
  console.log(`Worker polling ${taskQueue}; instance simulator watching the emulator (hosts in ${hostsDir})\n`);

  const client = await connectClient(parsed);
  let code = 0;
  try {
    const work = story(client, parsed, taskQueue, hostsDir, Number(values['dataset-mib']));
    const report = await Promise.race([work, interrupted.then(() => undefined)]);
    if (!report) code = 130;
    else if (report.outcome !== 'completed') code = 1;
  } catch (err) {
    console.error(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`);
    code = 1;
  }
  if (values.keep && code === 0) {
    console.log('\nKept running (--keep): the dev server, the emulator, the worker and the instance simulator. From another terminal:');
    console.log(`  export TEMPORAL_ADDRESS=${env.TEMPORAL_ADDRESS} AWS_ENDPOINT_URL=${moto.endpoint} TRAINCTL_TASK_QUEUE=${taskQueue}`);
    console.log('  npx trainctl run list --project demo');
    console.log(`hosts: ${hostsDir}`);
    console.log('Ctrl-C here stops the worker, the simulator, the emulator and the dev server.');
    await interrupted;
  } else if (stopRequested) {
    code = 130;
  }
  await client.connection.close();
  await sim.stop();
  if (worker.getState() === 'RUNNING') worker.shutdown();
  await running;
  await connection.close();
  await stopAll();
  console.log(
    code === 0 ? 'Demo done; everything it started is stopped.' : `Demo ${stopRequested ? 'interrupted' : 'failed'}; everything it started is stopped.`,
  );
  return code;
}

/** Writes `mib` MiB of dataset files (deterministic per file, fast to generate) into a fresh folder. */
function generateDataset(dir: string, mib: number): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = Math.max(1, Math.min(16, Math.ceil(mib / 32)));
  const per = Math.ceil((mib * 2 ** 20) / files);
  const block = randomBytes(2 ** 20);
  for (let i = 0; i < files; i++) {
    const buf = Buffer.alloc(per);
    for (let off = 0; off < per; off += block.length) block.copy(buf, off, 0, Math.min(block.length, per - off));
    buf.writeUInt32LE(i, 0);
    writeFileSync(join(dir, `shard-${String(i).padStart(3, '0')}.bin`), buf);
  }
}

async function story(client: Client, env: Env, taskQueue: string, hostsDir: string, datasetMiB: number): Promise<RunReport> {
  const s3 = createS3Client(env);
  const ec2 = createEc2Client(env);
  const bucket = 'trainctl-demo';
  await s3.send(new CreateS3Bucket({ Bucket: bucket }));
  const datasetDir = join(repoRoot, '.tools', 'demo-dataset');
  console.log(`1. Generating a ${datasetMiB} MiB dataset in ${datasetDir}`);
  generateDataset(datasetDir, datasetMiB);

  console.log(`2. Uploading it to s3://${bucket}/datasets/demo/ (resumable, verified)`);
  const up = await transfer.start(
    client,
    { source: { kind: 'local', path: datasetDir }, destination: { kind: 's3', uri: `s3://${bucket}/datasets/demo/` } },
    { taskQueue },
  );
  console.log(`   ui: ${workflowUiUrl(env, up.workflowId)}`);
  const upReport = await up.result();
  console.log(`   ${upReport.files} files, ${formatBytes(upReport.bytes)} in ${upReport.seconds.toFixed(1)} s, ${upReport.verified} verified`);

  const images = await ec2.send(new DescribeImagesCommand({}));
  const ami = images.Images?.find((i) => /^ami-[0-9a-f]{8,17}$/.test(i.ImageId ?? ''))?.ImageId ?? 'ami-0123456789abcdef0';
  const request: RunRequest = readRunFile(readFileSync(join(repoRoot, 'examples', 'run.yaml'), 'utf8'), [
    `instance.ami=${ami}`,
    `dataset.source.uri=s3://${bucket}/datasets/demo/`,
    `training.codeFrom.path=${join(repoRoot, 'examples', 'train')}`,
    `training.checkpointUri=s3://${bucket}/runs/demo-run/checkpoints/`,
    `training.outputsUri=s3://${bucket}/runs/demo-run/outputs/`,
    'training.command=[python3, train.py, --steps, "200", --checkpoint-every, "20", --step-seconds, "0.1"]',
    'dataset.strategy=LocalCache',
    'training.checkpointEverySeconds=10',
    'training.stopGraceSeconds=10',
    'budget.limitUsd=5',
  ]);
  console.log(`3. Starting training run ${request.name} (examples/run.yaml)`);
  const handle = await run.start(client, request, { taskQueue });
  console.log(`   ui: ${workflowUiUrl(env, handle.workflowId)}`);
  let last = '';
  for await (const s of run.watch(handle, 1_000)) {
    const line = `   [${s.step}]${s.transfer ? ` ${progressLine(s.transfer)}` : ''}${s.step === 'train' && s.lastLogLines.length ? ` ${s.lastLogLines.at(-1)}` : ''}`;
    if (line !== last) console.log(line);
    last = line;
  }
  const report = await handle.result();
  console.log(
    `4. Run ${report.name} ${report.outcome}: exit code ${report.exitCode}, ${formatBytes(report.bytesMoved)} moved, ${report.checkpointsSynced} checkpoint syncs`,
  );
  for (const step of report.steps) {
    console.log(`   ${step.step.padEnd(10)} ${((Date.parse(step.endedAt ?? step.startedAt) - Date.parse(step.startedAt)) / 1000).toFixed(1).padStart(6)} s`);
  }
  for (const u of report.undone) console.log(`   teardown: ${u}`);
  await verify(s3, bucket, hostsDir, report);

  const summary = await cost.summary(client, 'demo');
  console.log(`5. Cost of project demo: $${summary.totalUsd.toFixed(6)} so far, ${summary.running} resources still running`);
  for (const [kind, g] of Object.entries(summary.byKind))
    console.log(`   ${kind.padEnd(10)} ${String(g?.resources ?? 0).padStart(3)} resources  $${(g?.totalUsd ?? 0).toFixed(6)}`);
  console.log(`   ui: ${workflowUiUrl(env, `cost-tracker/demo`)}`);
  return report;
}

/** Checks from outside the run: its last checkpoint and model in S3 are byte-identical to the instance's files. */
async function verify(s3: S3Client, bucket: string, hostsDir: string, report: RunReport): Promise<void> {
  const root = join(hostsDir, report.resources.instanceId ?? 'none', 'root');
  const sha = (b: Uint8Array | Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);
  const ckpts = readdirSync(join(root, 'checkpoints'))
    .filter((f) => f.startsWith('ckpt-'))
    .sort();
  const lastCkpt = ckpts.at(-1);
  for (const [key, file] of [
    [`runs/${report.name}/checkpoints/${lastCkpt}`, join(root, 'checkpoints', lastCkpt ?? '')],
    [`runs/${report.name}/outputs/model.json`, join(root, 'outputs', 'model.json')],
  ] as const) {
    const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const remote = sha(await obj.Body!.transformToByteArray());
    const local = sha(readFileSync(file));
    console.log(`   verified: s3://${bucket}/${key} ${remote === local ? '==' : '!='} the instance's ${file.slice(root.length + 1)} (sha256 ${remote})`);
    if (remote !== local) throw new Error(`s3://${bucket}/${key} differs from the instance's file`);
  }
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error('demo failed:', err instanceof Error ? err.message : err);
    await stopAll();
    process.exit(1);
  },
);
