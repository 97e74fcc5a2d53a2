import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES, CLI_TYPE_NAMES } from '../search-attributes.js';

/** The repository (or installed package) root: two levels above this file, in src/ and dist/ alike. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const toolsDir = process.env.TRAINCTL_TOOLS_DIR ?? join(repoRoot, '.tools');
export const logDir = join(toolsDir, 'logs');

export function toolPath(name: 'temporal' | 'moto_server'): string {
  const p = join(toolsDir, 'venv', 'bin', name);
  if (!existsSync(p)) {
    throw new Error(`${p} is missing: run \`npm test\` or \`npm run demo\` once, which installs the local tools into .tools/`);
  }
  return p;
}

/** A port the OS says is free right now on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolvePort(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function isPortFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      res(true);
    });
    sock.once('error', () => res(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A process this module started; `stop()` ends its whole process group and is safe to call twice. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

const running = new Set<ManagedProcess>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Synchronous last resort: 'exit' handlers cannot await, so send SIGTERM to every group we own.
  process.on('exit', () => {
    for (const p of running) killGroup(p.pid, 'SIGTERM');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      // A program with its own handler for the signal (the demo) stops things in its own order
      // and calls stopAll itself; otherwise stop every service and exit as the signal would.
      if (process.listenerCount(sig) > 0) return;
      void stopAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone: nothing to stop.
  }
}

/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A watchdog outside this process: if we die without running our exit hooks (SIGKILL, a crash in
 * native code), it ends `pid` (its process group with `group`) — SIGTERM, then SIGKILL 5 s later —
 * so no server or worker outlives the demo or the tests. It ends by itself once `pid` is gone.
 */
export function endWithParent(pid: number, opts: { group: boolean }): ChildProcess {
  const target = opts.group ? `-${pid}` : `${pid}`;
  const watchdog = spawn(
    'sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${pid} 2>/dev/null; do sleep 1; done; kill -TERM ${target} 2>/dev/null; sleep 5; kill -KILL ${target} 2>/dev/null; true`,
    ],
    { stdio: 'ignore', detached: true },
  );
  watchdog.unref();
  return watchdog;
}

export function startProcess(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ManagedProcess {
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}-${process.pid}-${Date.now()}.log`);
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: true, env });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name} (${cmd}); see ${logFile}`);
  child.unref();
  const watchdog = endWithParent(pid, { group: true });
  let stopped: Promise<void> | undefined;
  const proc: ManagedProcess = {
    name,
    pid,
    logFile,
    stop() {
      stopped ??= (async () => {
        killGroup(pid, 'SIGTERM');
        for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
        if (alive(pid)) killGroup(pid, 'SIGKILL');
        if (watchdog.pid !== undefined) killGroup(watchdog.pid, 'SIGKILL');
        running.delete(proc);
      })();
      return stopped;
    },
  };
  running.add(proc);
  installExitHooks();
  child.once('exit', () => running.delete(proc));
  return proc;
}

/** Stops every service this process started. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface TemporalDevServer extends ManagedProcess {
  /** host:port of the frontend gRPC service. */
  readonly address: string;
  readonly namespace: string;
  /** Base URL of the Web UI, or undefined when headless. */
  readonly uiUrl: string | undefined;
}

export interface TemporalDevServerOptions {
  /** Persist state here across restarts (the demo); in memory when absent (the tests). */
  dbFile?: string;
  /** Preferred ports; a taken preferred port falls back to a free one. */
  port?: number;
  uiPort?: number;
  headless?: boolean;
  namespace?: string;
  /**
   * Register trainctl's search attributes at start (default true). `false` gives a plain server,
   * as a user's own `temporal server start-dev` is.
   */
  searchAttributes?: boolean;
  /** Extra `--dynamic-config-value KEY=VALUE` settings. */
  dynamicConfig?: Record<string, string | number | boolean>;
  startTimeoutMs?: number;
}

/**
 * The dev server's settings. `history.maximumBufferedEventsBatch` (default 100): the server
 * force-closes a started workflow task once more than that many events wait behind it, the worker
 * then drops the run from its cache and replays the whole history, which under a signal stream
 * (the cost tracker at a few hundred signals/s) takes longer than the next 100 signals: every
 * task is force-closed until the stream stops, and queries, answered with a task, wait for it
 * (`docs/LIMITS.md`, cost tracker). Raised, the 2 MiB of buffered events
 * (`history.maximumBufferedEventsSizeInBytes`) is the limit instead. A cluster of your own needs
 * the same setting for such streams; trainctl cannot set it on a server it did not start.
 */
export const DEV_SERVER_DYNAMIC_CONFIG: Record<string, string | number | boolean> = {
  'frontend.enableServerVersionCheck': false,
  'history.maximumBufferedEventsBatch': 10_000,
};

async function pickPort(preferred: number | undefined): Promise<number> {
  if (preferred !== undefined && (await isPortFree(preferred))) return preferred;
  return freePort();
}

/**
 * Starts `temporal server start-dev` from .tools and waits until its namespace answers. Started
 * by hand rather than through `TestWorkflowEnvironment.createLocal`, whose start waits only ~5 s.
 */
export async function startTemporalDevServer(opts: TemporalDevServerOptions = {}): Promise<TemporalDevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTemporalOnce(attempt === 1 ? opts : { ...opts, port: undefined, uiPort: undefined });
    } catch (err) {
      // A port can be taken between our check and the server's bind: a preferred one (two demos at
      // once), or a free one the OS then gave to an outgoing connection (a busy CI machine). Try
      // again on ports the OS hands out.
      const taken = err instanceof Error && /address already in use/.test(err.message);
      const preferred = opts.port !== undefined || opts.uiPort !== undefined;
      if (attempt >= 3 || !(taken || (attempt === 1 && preferred))) throw err;
    }
  }
}

async function startTemporalOnce(opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const namespace = opts.namespace ?? 'default';
  const port = await pickPort(opts.port);
  const uiPort = opts.headless ? undefined : await pickPort(opts.uiPort);
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--namespace', namespace, '--log-level', 'warn'];
  if (uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
  if (opts.dbFile) {
    mkdirSync(dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (opts.searchAttributes !== false) {
    for (const key of ALL_SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=${CLI_TYPE_NAMES[key.type]}`);
  }
  const dynamicConfig = { ...DEV_SERVER_DYNAMIC_CONFIG, ...opts.dynamicConfig };
  for (const [k, v] of Object.entries(dynamicConfig)) args.push('--dynamic-config-value', `${k}=${JSON.stringify(v)}`);

  const proc = startProcess('temporal', toolPath('temporal'), args);
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 90_000);
  for (;;) {
    if (!alive(proc.pid)) throw new Error(`the Temporal dev server exited during start; last lines of ${proc.logFile}:\n${tail(proc.logFile)}`);
    if (await canConnect(port)) {
      try {
        const conn = await Connection.connect({ address, connectTimeout: 2_000 });
        try {
          await conn.workflowService.describeNamespace({ namespace });
          break;
        } finally {
          await conn.close();
        }
      } catch {
        // Port open but the namespace is not registered yet: keep waiting.
      }
    }
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`the Temporal dev server did not answer on ${address} in time; see ${proc.logFile}`);
    }
    await sleep(250);
  }
  return { ...proc, stop: proc.stop, address, namespace, uiUrl: uiPort === undefined ? undefined : `http://localhost:${uiPort}` };
}

export interface MotoServer extends ManagedProcess {
  /** http://127.0.0.1:PORT — the AWS_ENDPOINT_URL for every client. */
  readonly endpoint: string;
  /** Clears all emulated state (`POST /moto-api/reset`). */
  reset(): Promise<void>;
}

/** Starts moto in server mode on a free loopback port and waits until it answers. */
export async function startMoto(opts: { port?: number; startTimeoutMs?: number } = {}): Promise<MotoServer> {
  const port = await pickPort(opts.port);
  // moto reads boto's configuration: keep the user's profile and keys away from it.
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };
  for (const k of ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_ENDPOINT_URL'])
    delete env[k];
  const proc = startProcess('moto', toolPath('moto_server'), ['-H', '127.0.0.1', '-p', String(port)], env);
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (!alive(proc.pid)) throw new Error(`moto exited during start; last lines of ${proc.logFile}:\n${tail(proc.logFile)}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`moto did not answer on ${endpoint} in time; see ${proc.logFile}`);
    }
    await sleep(200);
  }
  return {
    ...proc,
    stop: proc.stop,
    endpoint,
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
    },
  };
}
