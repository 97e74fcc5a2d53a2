import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../../src/config.js';
import { onCleanup, uniqueName } from './harness.js';
import { startWorkerProcess, type WorkerProcess } from './worker-process.js';

export interface HostWorkerProcess extends WorkerProcess {
  hostId: string;
  /** The host's root folder (its "disk"); removed when the test file ends. */
  root: string;
}

/**
 * A real second worker process standing in for a training instance: `src/worker.ts --host ID
 * --root DIR`, reaching this suite's dev server and emulator. Stopped when the test file ends.
 */
export async function startHostWorker(env: Env, opts: { hostId?: string; root?: string; extraEnv?: Record<string, string> } = {}): Promise<HostWorkerProcess> {
  const hostId = opts.hostId ?? uniqueName('host');
  const root = opts.root ?? mkdtempSync(join(tmpdir(), `trainctl-${hostId}-`));
  // Registered before the process's own cleanup, so it runs after the process has stopped.
  if (!opts.root) onCleanup(() => rmSync(root, { recursive: true, force: true }));
  const proc = await startWorkerProcess(env, {
    name: `host worker ${hostId}`,
    args: ['--host', hostId, '--root', root],
    ...(opts.extraEnv ? { extraEnv: opts.extraEnv } : {}),
  });
  return { hostId, root, ...proc };
}
