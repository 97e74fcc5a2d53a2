import { spawn } from 'node:child_process';
import { childEnv } from '../child-env.js';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';

/**
 * Runs a training command on a host so that it outlives the worker that started it, and lets a
 * restarted worker find it again instead of starting a second copy.
 *
 * The command runs under a tiny Node wrapper (an inline `-e` program, so nothing has to be copied
 * next to a build): the wrapper is the leader of a new process group, spawns the command without a
 * shell, and when the command ends writes `{ code, signal }` to an exit file. A process that is not
 * our child cannot be waited for, so every wait polls /proc and then reads that file.
 *
 * Identity is pid plus the start time in /proc/PID/stat (field 22): a pid the kernel recycled for
 * another process has another start time and is never taken for the training.
 *
 * The state file is written synchronously right after spawn returns; only a worker killed between
 * those two statements could leave a command running without a state file.
 */

const StartOptionsSchema = z.object({
  argv: z
    .array(
      z
        .string()
        .min(1)
        .refine((s) => !s.includes('\0'), 'no NUL bytes'),
    )
    .min(1),
  cwd: z.string().min(1),
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
      z.string().refine((s) => !s.includes('\0'), 'no NUL bytes'),
    )
    .default({}),
  logFile: z.string().min(1),
  stateFile: z.string().min(1),
});
export type StartTrainingOptions = z.input<typeof StartOptionsSchema>;

const TrainingStateSchema = z.object({
  version: z.literal(1),
  pid: z.number().int().positive(),
  /** /proc/PID/stat field 22, clock ticks since boot, as text (it can exceed 2^53 in theory). */
  startTime: z.string(),
  argv: z.array(z.string()),
  cwd: z.string(),
  logFile: z.string(),
  exitFile: z.string(),
  startedAt: z.string(),
});
export type TrainingState = z.infer<typeof TrainingStateSchema>;

/** A running (or just finished) training process: what the state file says about it. */
export interface TrainingHandle extends TrainingState {
  stateFile: string;
}

/**
 * How the command ended. `code` is its exit code, `signal` the signal that ended it; both null when
 * no status was recorded (the wrapper itself was killed, or the host restarted).
 */
export interface ExitStatus {
  code: number | null;
  signal: string | null;
  /** Set when the command could not be started at all (e.g. ENOENT); `code` is then 127. */
  error?: string;
}

export type AttachResult =
  | { status: 'running'; handle: TrainingHandle }
  | { status: 'exited'; exit: ExitStatus; state: TrainingState }
  | { status: 'gone'; state?: TrainingState };

export class TrainingAlreadyRunningError extends Error {
  constructor(
    readonly pid: number,
    stateFile: string,
  ) {
    super(`a training process (pid ${pid}) recorded in ${stateFile} is still running`);
    this.name = 'TrainingAlreadyRunningError';
  }
}

/** The variables a command gets from the parent; everything else comes from the caller, by name. */
const WRAPPER = `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [exitFile, file, ...args] = process.argv.slice(1);
let done = false;
const finish = (status) => {
  if (done) return;
  done = true;
  const tmp = exitFile + '.tmp';
  fs.writeFileSync(tmp, JSON.stringify(status));
  fs.renameSync(tmp, exitFile);
  console.error('[trainctl] command ended: ' + JSON.stringify(status));
  process.exit(0);
};
// stop() signals the whole process group, so the command already got it: the wrapper stays to
// record the exit status (forwarding as well would deliver the signal twice).
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => {});
const child = spawn(file, args, { stdio: 'inherit', shell: false });
child.on('error', (err) => finish({ code: 127, signal: null, error: String(err.code || err.message) }));
child.on('exit', (code, signal) => finish({ code, signal }));
`;

/** The start time of a live, non-zombie process, or undefined. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) is in parentheses and may itself hold spaces or ')': split after the last one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

function writeJsonAtomic(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

function readExit(exitFile: string): ExitStatus | undefined {
  try {
    const raw = JSON.parse(readFileSync(exitFile, 'utf8')) as Partial<ExitStatus>;
    return { code: raw.code ?? null, signal: raw.signal ?? null, ...(raw.error ? { error: raw.error } : {}) };
  } catch {
    return undefined;
  }
}

function readState(stateFile: string): TrainingState | undefined {
  let text: string;
  try {
    text = readFileSync(stateFile, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = TrainingStateSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

function isAlive(handle: Pick<TrainingState, 'pid' | 'startTime'>): boolean {
  return processStartTime(handle.pid) === handle.startTime;
}

/**
 * Starts `argv` (no shell) in `cwd` under the exit-recording wrapper, in its own process group,
 * detached from the caller. Its environment is `env` plus PATH, HOME and LANG of the caller —
 * never the caller's whole environment. stdout and stderr are appended to `logFile`.
 * Throws {@link TrainingAlreadyRunningError} when `stateFile` names a process that still runs.
 */
export function startTraining(options: StartTrainingOptions): TrainingHandle {
  const opts = StartOptionsSchema.parse(options);
  const existing = attach(opts.stateFile);
  if (existing.status === 'running') throw new TrainingAlreadyRunningError(existing.handle.pid, opts.stateFile);
  if (!statSync(opts.cwd).isDirectory()) throw new Error(`working folder ${opts.cwd} is not a folder`);

  const exitFile = `${opts.stateFile}.exit`;
  rmSync(exitFile, { force: true });
  mkdirSync(dirname(opts.logFile), { recursive: true });
  // A minimal environment: the allowlist and the run's declared variables, never the worker's secrets.
  const env = childEnv(process.env, opts.env);

  const [file, ...args] = opts.argv as [string, ...string[]];
  const log = openSync(opts.logFile, 'a');
  let pid: number | undefined;
  try {
    const child = spawn(process.execPath, ['-e', WRAPPER, '--', exitFile, file, ...args], {
      cwd: opts.cwd,
      env,
      shell: false,
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.unref();
    pid = child.pid;
    if (pid === undefined) throw new Error(`could not start the training wrapper for ${file}`);
  } finally {
    closeSync(log);
  }
  const startTime = processStartTime(pid);
  // The wrapper cannot have exited and been reaped yet: reaping happens on our event loop.
  if (startTime === undefined) throw new Error(`the training wrapper (pid ${pid}) vanished at once`);
  const state: TrainingState = {
    version: 1,
    pid,
    startTime,
    argv: opts.argv,
    cwd: opts.cwd,
    logFile: opts.logFile,
    exitFile,
    startedAt: new Date().toISOString(),
  };
  writeJsonAtomic(opts.stateFile, state);
  return { ...state, stateFile: opts.stateFile };
}

/**
 * Finds the process a state file describes: `running` (same pid and start time, so a recycled pid
 * never matches), `exited` (its exit status was recorded) or `gone` (no state, or the process
 * ended without a record).
 */
export function attach(stateFile: string): AttachResult {
  const state = readState(stateFile);
  if (!state) return { status: 'gone' };
  if (isAlive(state)) return { status: 'running', handle: { ...state, stateFile } };
  const exit = readExit(state.exitFile);
  return exit ? { status: 'exited', exit, state } : { status: 'gone', state };
}

export interface WaitOptions {
  /** Stops waiting (rejects with the signal's reason); the process keeps running. */
  signal?: AbortSignal;
  /** Called on every poll while the process runs, e.g. to heartbeat. */
  onTick?: () => void | Promise<void>;
  pollMs?: number;
}

/** Resolves with the exit status once the process has ended; works for re-attached processes too. */
export async function wait(handle: TrainingHandle, opts: WaitOptions = {}): Promise<ExitStatus> {
  const pollMs = opts.pollMs ?? 250;
  for (;;) {
    opts.signal?.throwIfAborted();
    if (!isAlive(handle)) {
      // The wrapper renames the exit file into place before it exits: present now, or never.
      return readExit(handle.exitFile) ?? { code: null, signal: null };
    }
    await opts.onTick?.();
    await delay(pollMs, undefined, opts.signal ? { signal: opts.signal } : {}).catch((err: unknown) => {
      throw opts.signal?.aborted ? (opts.signal.reason as unknown) : err;
    });
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * SIGTERM to the process group, up to `graceMs` for it to end, then SIGKILL to the group.
 * Resolves with the exit status; a command that had to be killed reports `signal: 'SIGKILL'`.
 */
export async function stop(handle: TrainingHandle, opts: { graceMs: number; pollMs?: number }): Promise<ExitStatus> {
  if (!isAlive(handle)) return readExit(handle.exitFile) ?? { code: null, signal: null };
  killGroup(handle.pid, 'SIGTERM');
  const grace = AbortSignal.timeout(opts.graceMs);
  try {
    return await wait(handle, { signal: grace, pollMs: opts.pollMs ?? 100 });
  } catch (err) {
    if (!grace.aborted) throw err;
  }
  // Checked again right before the kill: the pid must still be the wrapper's.
  if (isAlive(handle)) killGroup(handle.pid, 'SIGKILL');
  const status = await wait(handle, { pollMs: 50 });
  if (status.code !== null || status.signal !== null) return status;
  const killed: ExitStatus = { code: null, signal: 'SIGKILL' };
  if (!existsSync(handle.exitFile)) writeJsonAtomic(handle.exitFile, killed);
  return killed;
}

/** The last `lines` lines of a log file, reading at most `maxBytes` from its end. */
export function tailLog(logFile: string, lines: number, maxBytes = 64 * 1024): string[] {
  let fd: number;
  try {
    fd = openSync(logFile, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const size = statSync(logFile).size;
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    const all = buf.toString('utf8').split('\n');
    if (length < size) all.shift(); // a partial first line
    if (all.at(-1) === '') all.pop();
    return lines > 0 ? all.slice(-lines) : [];
  } finally {
    closeSync(fd);
  }
}
