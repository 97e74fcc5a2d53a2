import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../src/dev/services.js';
import type { Env } from '../../src/config.js';
import { onCleanup } from './harness.js';
import { emulatorWorkerEnv } from '../../src/dev/instances.js';

const POLLING = 'trainctl worker polling';

export interface WorkerProcess {
  pid(): number | undefined;
  /** Kills the process (SIGKILL by default: a crash, not a shutdown) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again with the same arguments and waits until this new process polls. */
  restart(): Promise<void>;
  /** Everything the process wrote to stderr, across restarts, for failure messages and log checks. */
  output(): string;
}

/**
 * `node --import tsx src/worker.ts ARGS` as a real process reaching this suite's dev server and
 * emulator, started and restarted the way systemd would: resolves once it logs that it polls.
 * Without arguments it is an orchestration worker (give `TRAINCTL_TASK_QUEUE` in `extraEnv`);
 * with `--host ID --root DIR` a host worker. Stopped (SIGTERM) when the test file ends.
 */
export async function startWorkerProcess(
  env: Env,
  opts: { name: string; args?: string[]; extraEnv?: Record<string, string>; startTimeoutMs?: number },
): Promise<WorkerProcess> {
  let child: ChildProcess | undefined;
  let log = '';

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'worker.ts'), ...(opts.args ?? [])], {
        cwd: repoRoot,
        env: { ...emulatorWorkerEnv(env), ...opts.extraEnv },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = c;
      // Only this process's own output counts: an earlier one's "polling" must not end the wait.
      const from = log.length;
      const timeoutMs = opts.startTimeoutMs ?? 90_000;
      const timer = setTimeout(() => reject(new Error(`${opts.name} did not start polling within ${timeoutMs} ms:\n${log.slice(from)}`)), timeoutMs);
      c.stderr?.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.indexOf(POLLING, from) >= 0) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${opts.name} exited (${code ?? signal}):\n${log.slice(from)}`));
      });
    });

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  };

  onCleanup(async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await kill('SIGTERM');
    clearTimeout(timer);
  });
  await start();
  return { pid: () => child?.pid, kill, restart: start, output: () => log };
}
