import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { DescribeInstanceAttributeCommand, paginateDescribeInstances, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import type { Env } from '../config.js';
import { createEc2Client } from '../aws/clients.js';
import { parseUserData, type BootstrapParams } from '../run/user-data.js';
import { endWithParent, repoRoot, toolsDir } from './services.js';

/**
 * The instance simulator: what "the machine boots and runs its user-data" means on a machine with
 * no EC2. It polls the emulator for instances, and for every running one whose user-data is
 * trainctl's bootstrap ({@link parseUserData}) it runs a real host worker process —
 * `node --import tsx src/worker.ts --host i-… --root HOSTS/i-…/root` — the way the bootstrap's
 * systemd unit would. When the instance is stopped or terminated the worker gets SIGTERM (SIGKILL
 * after a grace period), and so does every process still running out of that instance's folder
 * (training the worker started in its own process group), as a powered-off machine would.
 *
 * A dead worker on a running instance is started again on the next poll, as systemd's
 * `Restart=always` would do, unless it was killed with `kill(id, signal, { restart: false })`.
 *
 * Volumes: each EBS volume attached to an instance (its block device mappings, root device
 * excepted) appears as the folder `HOSTS/i-…/root/volumes/vol-…`. The volume id is used rather
 * than the device name because device names contain '/' and are renamed by the OS (xvdf, nvme1n1),
 * while the id is what trainctl's workflows know. The folder stays after a detach, with its files.
 *
 * The connection settings come from the simulator's own `env` (the dev server and the emulator),
 * not from the user-data, whose Temporal address may name a place unreachable from here. Only the
 * Temporal and emulator variables reach a worker — never this process's whole environment.
 */

export type SimulatorEnv = Pick<Env, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE' | 'AWS_ENDPOINT_URL' | 'AWS_REGION'> & Partial<Pick<Env, 'TRAINCTL_AWS'>>;

export interface InstanceSimulatorOptions {
  env: SimulatorEnv;
  /** How often the emulator is asked for instances (default 1000 ms). */
  pollMs?: number;
  /** Where each instance's folder lives (default `.tools/hosts`). */
  hostsDir?: string;
  /** SIGTERM to SIGKILL, when a worker is stopped (default 10 s). */
  graceMs?: number;
  /**
   * Only instances carrying every one of these tags (default: every instance with trainctl's
   * bootstrap). Simulators sharing one emulator — test files running side by side — must each take
   * their own instances: two host workers for one instance, with different roots, would split its
   * host activities between two "disks".
   */
  tags?: Record<string, string>;
  /**
   * Which running instances this simulator plays (default: every one whose user-data is trainctl's
   * bootstrap). Test files sharing one emulator each give their own, so that two simulators never
   * run a worker for the same instance (two workers on one host queue, with different roots).
   */
  adopt?: (instance: Instance) => boolean;
  /** Called with errors of a poll (the next poll still runs); default: printed to stderr. */
  onError?: (err: unknown) => void;
}

export interface SimulatedHost {
  pid: number;
  /** The host's root folder (`--root`), its "disk". */
  root: string;
  /** The worker's stdout and stderr, appended across restarts. */
  logFile: string;
}

export interface InstanceSimulator {
  /** Stops every host worker (and the processes of its instance), waits for them to exit, stops polling. */
  stop(): Promise<void>;
  /** The instances that have a live host worker now. */
  hosts(): Map<string, SimulatedHost>;
  /**
   * Kills an instance's worker abruptly (SIGKILL by default) and waits for it to exit. With
   * `restart: false` it stays down until the instance is stopped and started again.
   */
  kill(instanceId: string, signal?: NodeJS.Signals, opts?: { restart?: boolean }): Promise<void>;
  /** Resolves once the instance's current worker has logged that it polls (rejects after timeoutMs). */
  waitForHost(instanceId: string, timeoutMs: number): Promise<SimulatedHost>;
  /** Resolves after one whole poll that started after this call. */
  nextPass(): Promise<void>;
}

const POLLING = 'trainctl worker polling';

interface Managed {
  instanceId: string;
  root: string;
  logFile: string;
  child: ChildProcess;
  /** Log size when this process started: its own output begins there. */
  logOffset: number;
  exited: Promise<void>;
}

function exitedPromise(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
}

function isLive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * The whole environment of a worker process that plays a machine on the emulator: where Temporal
 * and the emulator are, and nothing else of this process's (no credentials, no API keys).
 */
export function emulatorWorkerEnv(env: {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  AWS_ENDPOINT_URL?: string | undefined;
  AWS_REGION: string;
}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: env.TEMPORAL_NAMESPACE,
    AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL ?? '',
    AWS_REGION: env.AWS_REGION,
    TRAINCTL_AWS: 'emulator',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
}

/** Processes (other than ours) whose command line or working folder lies inside `dir`. */
function processesUnder(dir: string): number[] {
  const prefix = resolve(dir) + '/';
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${name}/cwd`) + '/';
      } catch {
        // another user's process: not ours to stop
      }
      if (cmdline.includes(prefix) || cwd.startsWith(prefix)) found.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function startInstanceSimulator(opts: InstanceSimulatorOptions): InstanceSimulator {
  if (!opts.env.AWS_ENDPOINT_URL || opts.env.TRAINCTL_AWS === 'real') {
    throw new Error('the instance simulator runs only against an AWS emulator (AWS_ENDPOINT_URL, TRAINCTL_AWS=emulator)');
  }
  const env = opts.env;
  const pollMs = opts.pollMs ?? 1000;
  const graceMs = opts.graceMs ?? 10_000;
  const hostsDir = resolve(opts.hostsDir ?? join(toolsDir, 'hosts'));
  const onError = opts.onError ?? ((err: unknown) => console.error(`instance simulator: ${err instanceof Error ? err.message : String(err)}`));
  const ec2: EC2Client = createEc2Client({ AWS_REGION: env.AWS_REGION, AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL, TRAINCTL_AWS: 'emulator' });

  /** Parsed bootstrap of each instance seen running (null: not trainctl's); forgotten when it stops. */
  const userData = new Map<string, BootstrapParams | null>();
  const workers = new Map<string, Managed>();
  const heldDown = new Set<string>();
  let stopping = false;
  let passWaiters: (() => void)[] = [];

  const wanted = Object.entries(opts.tags ?? {});
  const carriesTags = (instance: Instance) => wanted.every(([k, v]) => instance.Tags?.some((t) => t.Key === k && t.Value === v));

  async function bootstrapOf(instanceId: string): Promise<BootstrapParams | null> {
    const cached = userData.get(instanceId);
    if (cached !== undefined) return cached;
    const attr = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'userData' }));
    const b64 = attr.UserData?.Value;
    const params = (b64 && parseUserData(Buffer.from(b64, 'base64').toString('utf8'))) || null;
    userData.set(instanceId, params);
    return params;
  }

  function startWorker(instanceId: string): Managed {
    const dir = join(hostsDir, instanceId);
    const root = join(dir, 'root');
    const logFile = join(dir, 'worker.log');
    mkdirSync(join(root, 'volumes'), { recursive: true });
    const logOffset = existsSync(logFile) ? statSync(logFile).size : 0;
    const log = openSync(logFile, 'a');
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'worker.ts'), '--host', instanceId, '--root', root], {
        cwd: repoRoot,
        env: emulatorWorkerEnv(env),
        stdio: ['ignore', log, log],
      });
      // A SIGKILLed test or demo must not leave this "machine's" worker behind.
      if (child.pid !== undefined) endWithParent(child.pid, { group: false });
      const managed: Managed = { instanceId, root, logFile, child, logOffset, exited: exitedPromise(child) };
      child.once('error', onError);
      workers.set(instanceId, managed);
      return managed;
    } finally {
      closeSync(log);
    }
  }

  async function stopWorker(instanceId: string): Promise<void> {
    const w = workers.get(instanceId);
    workers.delete(instanceId);
    if (w && isLive(w.child)) {
      w.child.kill('SIGTERM');
      const timer = setTimeout(() => isLive(w.child) && w.child.kill('SIGKILL'), graceMs);
      await w.exited;
      clearTimeout(timer);
    }
    // The machine is off: what the worker started (training in its own process group) ends too.
    const root = join(hostsDir, instanceId, 'root');
    const left = processesUnder(root);
    if (left.length) {
      signalAll(left, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (processesUnder(root).length && Date.now() < deadline) await delay(100);
      signalAll(processesUnder(root), 'SIGKILL');
    }
  }

  function mountVolumes(instance: Instance): void {
    const root = join(hostsDir, instance.InstanceId!, 'root');
    for (const m of instance.BlockDeviceMappings ?? []) {
      const volumeId = m.Ebs?.VolumeId;
      if (!volumeId || m.DeviceName === instance.RootDeviceName || !/^vol-[0-9a-f]+$/.test(volumeId)) continue;
      mkdirSync(join(root, 'volumes', volumeId), { recursive: true });
    }
  }

  async function pass(): Promise<void> {
    const running = new Set<string>();
    for await (const page of paginateDescribeInstances({ client: ec2, pageSize: 100 }, {})) {
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          const id = instance.InstanceId;
          if (!id) continue;
          if (instance.State?.Name !== 'running') {
            // Stopped instances may get new user-data before they start again.
            userData.delete(id);
            heldDown.delete(id);
            continue;
          }
          if (!carriesTags(instance)) continue;
          if (opts.adopt && !opts.adopt(instance)) continue;
          if (!(await bootstrapOf(id))) continue;
          running.add(id);
          mountVolumes(instance);
          const w = workers.get(id);
          if (stopping || heldDown.has(id) || (w && isLive(w.child))) continue;
          startWorker(id);
        }
      }
    }
    await Promise.all([...workers.keys()].filter((id) => !running.has(id)).map((id) => stopWorker(id)));
  }

  const loop = (async () => {
    while (!stopping) {
      try {
        await pass();
      } catch (err) {
        if (!stopping) onError(err);
      }
      const waiters = passWaiters;
      passWaiters = [];
      for (const w of waiters) w();
      if (!stopping) await delay(pollMs);
    }
  })();

  let stopped: Promise<void> | undefined;
  return {
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        await loop;
        await Promise.all([...workers.keys()].map((id) => stopWorker(id)));
        for (const w of passWaiters) w();
        passWaiters = [];
        ec2.destroy();
      })()),

    hosts: () => {
      const out = new Map<string, SimulatedHost>();
      for (const [id, w] of workers) if (isLive(w.child) && w.child.pid) out.set(id, { pid: w.child.pid, root: w.root, logFile: w.logFile });
      return out;
    },

    async kill(instanceId, signal = 'SIGKILL', killOpts = {}) {
      if (killOpts.restart === false) heldDown.add(instanceId);
      const w = workers.get(instanceId);
      if (!w || !isLive(w.child)) return;
      w.child.kill(signal);
      await w.exited;
    },

    async waitForHost(instanceId, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const w = workers.get(instanceId);
        if (w && isLive(w.child) && w.child.pid) {
          const text = existsSync(w.logFile) ? readFileSync(w.logFile).subarray(w.logOffset).toString('utf8') : '';
          if (text.includes(POLLING)) return { pid: w.child.pid, root: w.root, logFile: w.logFile };
        }
        if (Date.now() > deadline) {
          const log = w && existsSync(w.logFile) ? readFileSync(w.logFile).subarray(w.logOffset).toString('utf8').slice(-2000) : '(no worker started)';
          throw new Error(`host worker of ${instanceId} did not start polling within ${timeoutMs} ms:\n${log}`);
        }
        await delay(100);
      }
    },

    nextPass() {
      if (stopping) return Promise.resolve();
      // A pass already under way may have missed what the caller just did: wait for the one after.
      return new Promise<void>((r) => passWaiters.push(() => passWaiters.push(r)));
    },
  };
}
