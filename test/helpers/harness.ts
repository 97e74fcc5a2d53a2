import { after } from 'node:test';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { loadEnv, type Env } from '../../src/config.js';
import { awsClientsFor, createWorker } from '../../src/worker.js';
import { createEc2Client } from '../../src/aws/clients.js';
import type { ActivityDeps } from '../../src/activities/index.js';
import { join } from 'node:path';
import { repoRoot, startMoto, startTemporalDevServer, stopAll } from '../../src/dev/services.js';

const cleanups: (() => unknown)[] = [];
// Registered when the module loads, so it belongs to the file's root: an `after` called inside a
// `before` hook would run as soon as that hook ended. Cleanups run last-in first-out, each even
// when an earlier one throws.
after(async () => {
  const errors: unknown[] = [];
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length) throw new AggregateError(errors, 'test cleanup failed');
});

/** Runs `fn` when the test file ends, pass or fail. */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

let installed = false;
function quietRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({ logger: new DefaultLogger(process.env.TRAINCTL_TEST_LOG_LEVEL === 'debug' ? 'INFO' : 'WARN') });
}

export interface TestServices {
  env: Env;
  bundlePath: string | undefined;
  /** The dev server's Web UI (the browser test opens it). */
  uiUrl: string | undefined;
}

let services: Promise<TestServices> | undefined;

/**
 * The dev server and moto of this suite: the ones `npm test` started (by environment), or, when a
 * test file is run on its own, a pair started for this process and stopped when it ends.
 */
export function testServices(): Promise<TestServices> {
  services ??= (async () => {
    quietRuntime();
    let address = process.env.TRAINCTL_TEST_TEMPORAL_ADDRESS;
    let endpoint = process.env.TRAINCTL_TEST_AWS_ENDPOINT;
    let uiUrl = process.env.TRAINCTL_TEST_TEMPORAL_UI || undefined;
    if (!address || !endpoint) {
      // With its Web UI, as `npm test` starts it: a file run on its own can run the browser test too.
      const [t, m] = await Promise.all([startTemporalDevServer({}), startMoto()]);
      address = t.address;
      endpoint = m.endpoint;
      uiUrl = t.uiUrl;
      onCleanup(() => stopAll());
    }
    const env = loadEnv({
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'default',
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: 'us-east-1',
      TRAINCTL_AWS: 'emulator',
    });
    return { env, bundlePath: process.env.TRAINCTL_TEST_BUNDLE || undefined, uiUrl };
  })();
  return services;
}

/** A name no other test (or earlier run against the same emulator) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export async function testClient(env: Env): Promise<Client> {
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  onCleanup(() => connection.close());
  return new Client({ connection, namespace: env.TEMPORAL_NAMESPACE });
}

export interface RunningWorker {
  worker: Worker;
  taskQueue: string;
  stop(): Promise<void>;
}

/**
 * Starts an orchestration worker on its own task queue for one test file, with the activity deps
 * given (default: emulator clients, the OS temp folder as its only local root). Stopped by `stop()` and, at the latest, when the file ends.
 */
export async function startWorker(opts: {
  env: Env;
  bundlePath: string | undefined;
  deps?: Partial<ActivityDeps>;
  taskQueue?: string;
}): Promise<RunningWorker> {
  const taskQueue = opts.taskQueue ?? uniqueName('test');
  const connection = await NativeConnection.connect({ address: opts.env.TEMPORAL_ADDRESS });
  const worker = await createWorker({
    connection,
    namespace: opts.env.TEMPORAL_NAMESPACE,
    taskQueue,
    // Tests keep their files in temp folders: those are this worker's local roots unless a test says otherwise.
    // Test files write their local data under the OS temp folder; runs stage the example program.
    deps: { ...awsClientsFor(opts.env), pollIntervalMs: 200, localRoots: [tmpdir(), join(repoRoot, 'examples')], ...opts.deps },
    ...(opts.bundlePath ? { workflowBundle: { codePath: opts.bundlePath } } : {}),
  });
  const running = worker.run();
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    })());
  onCleanup(stop);
  return { worker, taskQueue, stop };
}

/** An EC2 client for assertions, straight at the emulator. */
export function ec2For(env: Env) {
  return createEc2Client(env);
}
