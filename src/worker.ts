import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { HostIdSchema, hostTaskQueue, loadEnv, type Env } from './config.js';
import { createEc2Client, createS3Client, type AwsClientOptions } from './aws/clients.js';
import { checkProfileReach, loadProfile, profileS3Client } from './aws/profiles.js';
import { createActivities, type ActivityDeps } from './activities/index.js';
import { createHostActivities } from './activities/host.js';
import { createConfinedFs, createHostFs } from './activities/host-fs.js';
import { connectWorker, ensureSearchAttributes } from './temporal.js';
import { describeError } from './errors/classify.js';
import { bundleInChild } from './workflow-bundle.js';

/** The bundle entry: the one workflowsPath (`.ts` under tsx, `.js` once compiled). */
export const workflowsPath = fileURLToPath(new URL(`./workflows/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/**
 * Per-region AWS clients, made on first use and shared by every activity. An S3 location that
 * names a profile gets that profile's client (read from the shared config files when first named;
 * a profile that is missing is looked up again next time, so adding it needs no restart).
 */
export function awsClientsFor(env: Env, opts: AwsClientOptions = {}): Pick<ActivityDeps, 'ec2' | 's3'> {
  const ec2 = new Map<string, EC2Client>();
  const s3 = new Map<string, Promise<S3Client>>();
  const files = { configFile: env.AWS_CONFIG_FILE, credentialsFile: env.AWS_SHARED_CREDENTIALS_FILE };
  return {
    ec2(region) {
      let c = ec2.get(region);
      if (!c) ec2.set(region, (c = createEc2Client({ ...env, AWS_REGION: region }, opts)));
      return c;
    },
    s3({ region, profile }) {
      const key = `${profile ?? ''}@${region}`;
      let c = s3.get(key);
      if (!c) {
        c =
          profile === undefined
            ? Promise.resolve(createS3Client({ ...env, AWS_REGION: region }, opts))
            : loadProfile(profile, files).then((p) => {
                checkProfileReach(p, env.TRAINCTL_AWS);
                return profileS3Client(p, region, files, opts);
              });
        s3.set(key, c);
        c.catch(() => s3.delete(key));
      }
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
  /**
   * Without a prebuilt bundle: bundle in a child process (see workflow-bundle.ts), so that webpack's
   * memory does not stay in this long-lived process's heap. `trainctl worker` does.
   */
  bundleInChild?: boolean;
}

/**
 * The orchestration worker: every workflow and activity on one task queue. Its transfers touch
 * only files under `deps.localRoots` (default: the folder it was started in); a root that does not
 * exist or is not a folder fails here, before the worker polls.
 */
export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  await createConfinedFs(opts.deps.localRoots ?? [process.cwd()], 'worker', '--root');
  const workflowBundle = opts.workflowBundle ?? (opts.bundleInChild ? await bundleInChild(workflowsPath, repoRootOf()) : undefined);
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: createActivities({
      ...opts.deps,
      bootstrap: { version: packageVersion(), temporalNamespace: opts.namespace, taskQueue: opts.taskQueue, ...opts.deps.bootstrap },
    }),
    ...(workflowBundle ? { workflowBundle } : { workflowsPath }),
  });
}

export interface CreateHostWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  hostId: string;
  /** Folders this host's activities may read and write; everything else is refused. */
  roots: string[];
  env: Env;
}

/**
 * A host worker for a training instance: activities only (no workflows), on `trainctl-host-ID`,
 * with file access confined to `roots`.
 */
export async function createHostWorker(opts: CreateHostWorkerOptions): Promise<Worker> {
  const hostId = HostIdSchema.parse(opts.hostId);
  const fs = await createHostFs(opts.roots);
  const { s3 } = awsClientsFor(opts.env);
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: hostTaskQueue(hostId),
    activities: createHostActivities({ hostId, fs, s3 }),
    // An activity learns of its cancellation only from a heartbeat's reply, and the SDK sends
    // heartbeats every 80 % of the heartbeat timeout (48 s for training's default 60 s): a stop or
    // cancel would reach the training program that late, and `run status` show stale log lines.
    maxHeartbeatThrottleInterval: '2 seconds',
  });
}

/** What instances this worker launches install and connect to: this package's version and this worker's Temporal. */
export function bootstrapFor(env: Env): ActivityDeps['bootstrap'] {
  return {
    temporalAddress: env.TEMPORAL_ADDRESS,
    temporalNamespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.TRAINCTL_TASK_QUEUE,
    region: env.AWS_REGION,
    ...(env.TEMPORAL_TLS === 'true' || env.TEMPORAL_API_KEY ? { temporalTls: true } : {}),
  };
}

/** This package's version (what a launched instance installs). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(repoRootOf(), 'package.json'), 'utf8')) as { version: string }).version;
}

function repoRootOf(): string {
  // src/worker.ts or dist/src/worker.js: the package root is where package.json is, above.
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/**
 * Whether the orchestration worker registers missing search attributes at start: on unless
 * `--no-register-search-attributes` or `TRAINCTL_REGISTER_SEARCH_ATTRIBUTES=false`.
 */
export function registersSearchAttributes(flagOff: boolean | undefined, environment: Record<string, string | undefined>): boolean {
  if (flagOff) return false;
  const setting = environment.TRAINCTL_REGISTER_SEARCH_ATTRIBUTES?.trim().toLowerCase();
  return !(setting === 'false' || setting === '0' || setting === 'no' || setting === 'off');
}

/**
 * The orchestration worker's local roots: every `--root`, else `TRAINCTL_LOCAL_ROOTS`
 * (colon-separated), else the folder it was started in.
 */
export function localRootsFrom(flags: readonly string[] | undefined, environment: Record<string, string | undefined>, cwd: string): string[] {
  if (flags && flags.length > 0) return [...flags];
  const fromEnv = (environment.TRAINCTL_LOCAL_ROOTS ?? '').split(':').filter(Boolean);
  return fromEnv.length > 0 ? fromEnv : [cwd];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      root: { type: 'string', multiple: true },
      'no-register-search-attributes': { type: 'boolean' },
    },
  });
  const env = loadEnv(process.env);
  const connection = await connectWorker(env);
  let worker: Worker;
  let queue: string;
  if (values.host !== undefined) {
    const roots = values.root ?? (process.env.TRAINCTL_HOST_ROOTS ?? '').split(':').filter(Boolean);
    worker = await createHostWorker({ connection, namespace: env.TEMPORAL_NAMESPACE, hostId: values.host, roots, env });
    queue = `${hostTaskQueue(values.host)} (roots: ${roots.join(', ')})`;
  } else {
    await ensureSearchAttributes(connection, {
      address: env.TEMPORAL_ADDRESS,
      namespace: env.TEMPORAL_NAMESPACE,
      enabled: registersSearchAttributes(values['no-register-search-attributes'], process.env),
      info: (message) => console.error(`trainctl worker: ${message}`),
      warn: (message) => console.error(`trainctl worker: warning: ${message}`),
    });
    const localRoots = localRootsFrom(values.root, process.env, process.cwd());
    worker = await createWorker({
      connection,
      namespace: env.TEMPORAL_NAMESPACE,
      taskQueue: env.TRAINCTL_TASK_QUEUE,
      deps: { ...awsClientsFor(env), bootstrap: bootstrapFor(env), localRoots },
      bundleInChild: true,
    });
    queue = `${env.TRAINCTL_TASK_QUEUE} (local roots: ${localRoots.join(', ')})`;
  }
  console.error(`trainctl worker polling ${queue} on ${env.TEMPORAL_ADDRESS} (namespace ${env.TEMPORAL_NAMESPACE}); Ctrl-C stops it`);
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
