import { loadEnv } from '../src/config.js';
import { connectWorker } from '../src/temporal.js';
import { awsClientsFor, createWorker } from '../src/worker.js';

/**
 * The orchestration worker for bench/transfer.ts, run as its own process so its memory can be
 * measured alone. It loads a prebuilt workflow bundle (BENCH_BUNDLE), so webpack's memory is not
 * counted as the transfer's.
 */
const env = loadEnv(process.env);
const connection = await connectWorker(env);
const worker = await createWorker({
  connection,
  namespace: env.TEMPORAL_NAMESPACE,
  taskQueue: env.TRAINCTL_TASK_QUEUE,
  deps: awsClientsFor(env),
  workflowBundle: { codePath: process.env.BENCH_BUNDLE ?? '' },
});
console.error('trainctl worker polling');
await worker.run();
await connection.close();
