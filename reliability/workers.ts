/**
 * Worker processes for the campaign: the real `src/worker.ts` entry started as its own process (so
 * SIGKILL is a real crash), each in its own process group with a watchdog (src/dev/services.ts), and
 * restarted the way systemd would. Nothing here reaches into the worker: readiness is read from its
 * log ("trainctl worker polling"), as a person would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { emulatorWorkerEnv } from '../src/dev/instances.js';
import { alive, repoRoot, startProcess, type ManagedProcess } from '../src/dev/services.js';

const POLLING = 'trainctl worker polling';

export interface WorkerSpec {
  name: string;
  temporalAddress: string;
  /** The AWS endpoint this worker's clients use: the emulator, or the fault proxy in front of it. */
  awsEndpoint: string;
  taskQueue: string;
  /** Local roots (orchestration worker) or the host root (with `hostId`). */
  roots: string[];
  hostId?: string;
  extraEnv?: Record<string, string>;
}

/** A process a scenario may crash: SIGKILLed, then started again (or waited for, when something else restarts it). */
export interface Killable {
  readonly name: string;
  /** The families whose work it does (a host worker's); all when absent. */
  readonly reaches?: readonly string[];
  /** SIGKILL; false when there was nothing to kill. */
  kill(): Promise<boolean>;
  /** Resolves once it polls again. */
  start(): Promise<void>;
}

export interface CampaignWorker extends Killable {
  readonly spec: WorkerSpec;
  /** Whether a process is running now. */
  running(): boolean;
  /** Stops it for good (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
  /** How many processes were started. */
  starts(): number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** A worker process that can be crashed and restarted any number of times. Not started yet. */
export function campaignWorker(spec: WorkerSpec, startTimeoutMs = 180_000): CampaignWorker {
  let proc: ManagedProcess | undefined;
  let count = 0;
  const args = spec.hostId !== undefined ? ['--host', spec.hostId, ...spec.roots.flatMap((r) => ['--root', r])] : [];
  const env: NodeJS.ProcessEnv = {
    ...emulatorWorkerEnv({
      TEMPORAL_ADDRESS: spec.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      AWS_ENDPOINT_URL: spec.awsEndpoint,
      AWS_REGION: 'us-east-1',
    }),
    TRAINCTL_TASK_QUEUE: spec.taskQueue,
    TRAINCTL_LOCAL_ROOTS: spec.roots.join(':'),
    // The orchestration worker's search attributes are registered by the harness once, not by every restart.
    TRAINCTL_REGISTER_SEARCH_ATTRIBUTES: 'false',
    ...spec.extraEnv,
  };
  const node = process.execPath;
  const self: CampaignWorker = {
    name: spec.name,
    spec,
    running: () => proc !== undefined && alive(proc.pid),
    async kill() {
      const p = proc;
      if (!p) return false;
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      for (let i = 0; i < 100 && alive(p.pid); i++) await sleep(50);
      await p.stop();
      proc = undefined;
      return true;
    },
    async start() {
      if (self.running()) return;
      count++;
      const p = startProcess(`rel-${spec.name}`, node, ['--import', 'tsx', join(repoRoot, 'src', 'worker.ts'), ...args], env);
      proc = p;
      const deadline = Date.now() + startTimeoutMs;
      for (;;) {
        const text = logText(p.logFile);
        if (text.includes(POLLING)) return;
        if (!alive(p.pid)) throw new Error(`${spec.name} exited during start:\n${text.slice(-2_000)}`);
        if (Date.now() > deadline) {
          await p.stop();
          throw new Error(`${spec.name} did not poll within ${startTimeoutMs} ms; see ${p.logFile}`);
        }
        await sleep(200);
      }
    },
    async stop() {
      await proc?.stop();
      proc = undefined;
    },
    starts: () => count,
  };
  return self;
}
