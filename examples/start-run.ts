/**
 * Start a training run from a script and print its report.
 *
 *   npx tsx examples/start-run.ts examples/run.yaml [--set key.path=value …]
 *
 * It talks to Temporal as the CLI does (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TRAINCTL_TASK_QUEUE …);
 * a trainctl worker must poll that queue. In your own project import from 'trainctl'.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connect, run } from '../src/client.js';
import { readRunFile } from '../src/run/run-file.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { set: { type: 'string', multiple: true } } });
const file = positionals[0];
if (!file) {
  console.error('usage: npx tsx examples/start-run.ts RUN.yaml [--set key.path=value …]');
  process.exit(2);
}
const request = readRunFile(readFileSync(file, 'utf8'), values.set ?? []);
const client = await connect();
try {
  const handle = await run.start(client, request, { taskQueue: process.env.TRAINCTL_TASK_QUEUE ?? 'trainctl' });
  console.log(`started ${handle.workflowId}`);
  let last = '';
  for await (const s of run.watch(handle, 1_000)) {
    const line = `${s.step}${s.transfer ? ` ${s.transfer.phase} ${s.transfer.bytesDone}/${s.transfer.bytesTotal} bytes` : ''}${s.lastLogLines.length ? ` | ${s.lastLogLines.at(-1)}` : ''}`;
    if (line !== last) console.log(line);
    last = line;
  }
  const report = await handle.result();
  console.log(JSON.stringify(report, null, 2));
} finally {
  await client.connection.close();
}
