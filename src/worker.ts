import { fileURLToPath } from 'node:url';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { loadEnv, type Env } from './config.js';
import { createEc2Client, createS3Client, type AwsClientOptions } from './aws.js';
import { createActivities, type ActivityDeps } from './activities/index.js';
import { connectWorker } from './temporal.js';
import { describeError } from './errors.js';

/** The bundle entry: the one workflowsPath (`.ts` under tsx, `.js` once compiled). */
export const workflowsPath = fileURLToPath(new URL(`./workflows/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** Per-region AWS clients, made on first use and shared by every activity. */
export function awsClientsFor(env: Env, opts: AwsClientOptions = {}): Pick<ActivityDeps, 'ec2' | 's3'> {
  const ec2 = new Map<string, EC2Client>();
  const s3 = new Map<string, S3Client>();
  return {
    ec2(region) {
      let c = ec2.get(region);
      if (!c) ec2.set(region, (c = createEc2Client({ ...env, AWS_REGION: region }, opts)));
      return c;
    },
    s3(region) {
      let c = s3.get(region);
      if (!c) s3.set(region, (c = createS3Client({ ...env, AWS_REGION: region }, opts)));
      return c;
    },
  };
}

export interface CreateWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** A prebuilt bundle (tests build one per suite); otherwise the worker bundles workflowsPath. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/** The orchestration worker: every workflow and activity on one task queue. */
export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: createActivities(opts.deps),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath }),
  });
}

async function main(): Promise<void> {
  const env = loadEnv(process.env);
  const connection = await connectWorker(env);
  const worker = await createWorker({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.TRAINCTL_TASK_QUEUE,
    deps: awsClientsFor(env),
  });
  console.error(`trainctl worker polling ${env.TRAINCTL_TASK_QUEUE} on ${env.TEMPORAL_ADDRESS} (namespace ${env.TEMPORAL_NAMESPACE}); Ctrl-C stops it`);
  // Worker.run resolves after SIGINT/SIGTERM: it stops polling and lets running tasks finish.
  await worker.run();
  await connection.close();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`trainctl worker: ${describeError(err)}`);
    process.exit(1);
  });
}
