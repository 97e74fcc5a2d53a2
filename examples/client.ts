/**
 * trainctl from a script: provision a volume, upload a folder with a live progress line, ask the
 * cost tracker what the project costs, and cancel a second transfer half-way.
 *
 *   npx tsx examples/client.ts --bucket my-bucket --folder ./data [--project demo] [--az us-east-1a]
 *
 * It talks to Temporal as the CLI does (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TRAINCTL_TASK_QUEUE,
 * TEMPORAL_API_KEY …); a trainctl worker must be polling that task queue. In your own project
 * import from 'trainctl' instead of '../src/client.js'.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { connect, cost, transfer, volume } from '../src/client.js';

const { values } = parseArgs({
  options: {
    bucket: { type: 'string' },
    folder: { type: 'string' },
    project: { type: 'string', default: 'default' },
    az: { type: 'string', default: 'us-east-1a' },
    name: { type: 'string', default: 'example-scratch' },
  },
});
if (!values.bucket || !values.folder) {
  console.error('usage: npx tsx examples/client.ts --bucket BUCKET --folder DIR [--project P] [--az ZONE] [--name VOLUME]');
  process.exit(2);
}
const taskQueue = process.env.TRAINCTL_TASK_QUEUE ?? 'trainctl';
const region = values.az.slice(0, -1);
const client = await connect();

try {
  // 1. A volume, idempotent by name: a second run of this script reuses it.
  const vol = await volume.execute(client, { name: values.name, region, sizeGiB: 8, availabilityZone: values.az, project: values.project }, { taskQueue });
  console.log(`volume ${vol.volumeId} ${vol.created ? 'created' : 'reused'} (${vol.sizeGiB} GiB ${vol.volumeType})`);

  // 2. An upload, with a progress line from the `progress` query while it runs.
  const source = { kind: 'local' as const, path: resolve(values.folder) };
  const upload = await transfer.start(client, { source, destination: { kind: 's3', uri: `s3://${values.bucket}/example/upload/` } }, { taskQueue });
  const report = await watch(upload);
  console.log(`uploaded ${report.files} files, ${report.bytes} bytes in ${report.seconds.toFixed(1)} s (${report.verified} verified)`);

  // 3. What the project costs so far.
  const summary = await cost.summary(client, values.project);
  console.log(
    `project ${values.project}: ${summary.running} resources running, $${summary.totalUsd.toFixed(6)} so far, burning $${summary.burnUsdPerHour.toFixed(4)}/h`,
  );

  // 4. A second transfer, cancelled as soon as it has moved something: it aborts its multipart
  // uploads. A cancel reaches a running file activity with its next heartbeat, so this one
  // heartbeats often (heartbeatTimeoutSeconds).
  const second = await transfer.start(
    client,
    { source, destination: { kind: 's3', uri: `s3://${values.bucket}/example/cancelled/` }, partSizeMiB: 5, concurrency: 1, heartbeatTimeoutSeconds: 2 },
    { taskQueue },
  );
  for (;;) {
    const p = await transfer.progress(second);
    if (p.bytesDone > 0 || p.phase === 'done') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await transfer.cancel(second);
  try {
    await second.result();
    console.log('the second transfer finished before the cancel reached it');
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure) console.log(`second transfer cancelled: ${second.workflowId}`);
    else throw err;
  }
} finally {
  await client.connection.close();
}

async function watch(h: transfer.StartedTransferHandle): Promise<Awaited<ReturnType<typeof h.result>>> {
  const done = h.result();
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => undefined);
  while (!finished) {
    const p = await transfer.progress(h).catch(() => undefined);
    if (p) process.stdout.write(`\rprogress: ${p.phase} ${p.filesDone}/${p.filesTotal} files, ${p.bytesDone}/${p.bytesTotal} bytes   `);
    await new Promise((r) => setTimeout(r, 200));
  }
  process.stdout.write('\n');
  return done;
}
