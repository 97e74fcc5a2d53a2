import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/dev/services.js';
import type { Env } from '../../src/config.js';
import { onCleanup, uniqueName } from './harness.js';

export interface HostWorkerProcess {
  hostId: string;
  /** The host's root folder (its "disk"); removed when the test file ends. */
  root: string;
  pid(): number | undefined;
  /** Kills the process (SIGKILL by default: a crash, not a shutdown) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again with the same host id and root, and waits until it polls. */
  restart(): Promise<void>;
  /** Everything the process wrote to stderr, for failure messages. */
  output(): string;
}

/**
 * A real second worker process standing in for a training instance: `src/worker.ts --host ID
 * --root DIR`, reaching this suite's dev server and emulator. Stopped when the test file ends.
 */
export async function startHostWorker(env: Env, opts: { hostId?: string; root?: string; extraEnv?: Record<string, string> } = {}): Promise<HostWorkerProcess> {
  const hostId = opts.hostId ?? uniqueName('host');
  const root = opts.root ?? mkdtempSync(join(tmpdir(), `trainctl-${hostId}-`));
  let child: ChildProcess | undefined;
  let log = '';

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'worker.ts'), '--host', hostId, '--root', root], {
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS,
          TEMPORAL_NAMESPACE: env.TEMPORAL_NAMESPACE,
          AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL ?? '',
          AWS_REGION: env.AWS_REGION,
          TRAINCTL_AWS: 'emulator',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...opts.extraEnv,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = c;
      const timer = setTimeout(() => reject(new Error(`host worker ${hostId} did not start:\n${log}`)), 60_000);
      c.stderr?.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('trainctl worker polling')) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`host worker ${hostId} exited with ${code}:\n${log}`));
      });
    });

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  };

  await start();
  onCleanup(async () => {
    await kill('SIGTERM');
    if (!opts.root) rmSync(root, { recursive: true, force: true });
  });
  return { hostId, root, pid: () => child?.pid, kill, restart: start, output: () => log };
}
