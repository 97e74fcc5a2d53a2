import { createHash } from 'node:crypto';
import { mkdir, writeFile, cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Context, log } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { toFailure } from '../errors/classify.js';
import { attach, startTraining, stop, tailLog, wait, type ExitStatus, type TrainingHandle } from '../run/training-process.js';
import type { HostFs } from './host-fs.js';

export interface TrainingDeps {
  hostId: string;
  fs: HostFs;
  /** How often a running training heartbeats its last log lines. */
  heartbeatIntervalMs?: number;
}

export interface RunTrainingInput {
  /** The run's name: folders and files of this run are named after it. */
  runName: string;
  argv: string[];
  /** Paths relative to the host root (or absolute inside it). */
  workdir: string;
  dataDir: string;
  checkpointDir: string;
  outputsDir: string;
  env: Record<string, string>;
  /** A checkpoint file or folder the program resumes from (`TRAINCTL_RESUME_FROM`). */
  resumeFrom?: string;
  graceSeconds: number;
  /** How many log lines the heartbeat and the result carry. */
  tailLines?: number;
}

export interface TrainingHeartbeat {
  pid: number;
  lastLines: string[];
  /** The attempt that started the process (later attempts re-attach to it). */
  startedByAttempt: number;
}

export interface RunTrainingResult {
  exitCode: number | null;
  signal: string | null;
  lastLines: string[];
  /** The log file on the host (inside its root). */
  logFile: string;
  /** Whether this attempt re-attached to a process an earlier attempt started. */
  reattached: boolean;
}

/** Where one workflow run keeps its training state on the host: `<root>/.trainctl/runs/<run>/<workflow run id hash>/`. */
async function stateDir(fs: HostFs, runName: string): Promise<string> {
  const info = Context.current().info;
  const key = createHash('sha256').update(`${info.workflowExecution?.workflowId}/${info.workflowExecution?.runId}`).digest('hex').slice(0, 16);
  const dir = await fs.resolve(join('.trainctl', 'runs', runName, key));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Host activities of a training run: run the command (re-attaching after a host worker restart),
 * write a file the run generated (the DataLoader module), copy the training code into place.
 */
export function createTrainingActivities(deps: TrainingDeps) {
  return {
    /**
     * Runs the training command on this host without a shell, in its working folder, with
     * `TRAINCTL_DATA_DIR`, `TRAINCTL_CHECKPOINT_DIR`, `TRAINCTL_OUTPUT_DIR` (and, when resuming,
     * `TRAINCTL_RESUME_FROM`) set and nothing of the worker's own environment but PATH/HOME/LANG.
     * Output goes to a log file inside the root; its last lines go to the heartbeat.
     *
     * Idempotent per workflow run: a retry after the host worker died re-attaches to the process
     * the earlier attempt started (pid + start time), or reads the exit status it left, instead
     * of starting a second copy. On cancellation it sends SIGTERM to the program's process group,
     * waits `graceSeconds`, then SIGKILL, and reports cancelled.
     */
    async runTraining(input: RunTrainingInput): Promise<RunTrainingResult> {
      const ctx = Context.current();
      const tail = input.tailLines ?? 20;
      try {
        const dir = await stateDir(deps.fs, input.runName);
        const stateFile = join(dir, 'training.json');
        const logFile = join(dir, 'train.log');
        const [cwd, dataDir, checkpointDir, outputsDir] = await Promise.all(
          [input.workdir, input.dataDir, input.checkpointDir, input.outputsDir].map((p) => deps.fs.resolve(p)),
        );
        let handle: TrainingHandle;
        let reattached = false;
        const found = attach(stateFile);
        if (found.status === 'running') {
          handle = found.handle;
          reattached = true;
          log.info('re-attached to the training process', { pid: handle.pid, attempt: ctx.info.attempt });
        } else if (found.status === 'exited') {
          log.info('the training process ended while no worker watched it', { pid: found.state.pid, code: found.exit.code });
          return { exitCode: found.exit.code, signal: found.exit.signal, lastLines: tailLog(logFile, tail), logFile, reattached: true };
        } else {
          await Promise.all([cwd, checkpointDir, outputsDir].map((d) => mkdir(d!, { recursive: true })));
          const env: Record<string, string> = {
            ...input.env,
            TRAINCTL_DATA_DIR: dataDir!,
            TRAINCTL_CHECKPOINT_DIR: checkpointDir!,
            TRAINCTL_OUTPUT_DIR: outputsDir!,
            ...(input.resumeFrom ? { TRAINCTL_RESUME_FROM: await deps.fs.resolve(input.resumeFrom) } : {}),
          };
          handle = startTraining({ argv: input.argv, cwd: cwd!, env, logFile, stateFile });
          log.info('training started', { pid: handle.pid, argv0: input.argv[0] });
        }
        const beat = () =>
          ctx.heartbeat({ pid: handle.pid, lastLines: tailLog(logFile, tail), startedByAttempt: ctx.info.attempt } satisfies TrainingHeartbeat);
        beat();
        const every = deps.heartbeatIntervalMs ?? 2_000;
        let last = Date.now();
        let exit: ExitStatus;
        try {
          exit = await wait(handle, {
            signal: ctx.cancellationSignal,
            onTick: () => {
              if (Date.now() - last >= every) {
                last = Date.now();
                beat();
              }
            },
          });
        } catch (err) {
          if (!ctx.cancellationSignal.aborted) throw err;
          // Only a cancel the workflow asked for stops the program. A worker shutting down (a
          // restart, a deploy) or a timed-out attempt leaves it running: the next attempt re-attaches.
          if (!ctx.cancellationDetails?.cancelRequested) {
            log.info('activity ends without stopping the program (not a cancel request)', { pid: handle.pid });
            throw err;
          }
          log.info('training cancelled: stopping the program', { pid: handle.pid, graceSeconds: input.graceSeconds });
          const stopped = await stop(handle, { graceMs: input.graceSeconds * 1000 });
          log.info('training program stopped', { code: stopped.code, signal: stopped.signal });
          throw new CancelledFailure(`training stopped on request (exit ${stopped.code ?? stopped.signal})`);
        }
        return { exitCode: exit.code, signal: exit.signal, lastLines: tailLog(logFile, tail), logFile, reattached };
      } catch (err) {
        if (err instanceof CancelledFailure) throw err;
        throw toFailure(err, `run training ${input.runName}`);
      }
    },

    /** Writes a generated text file (the DataLoader module) inside the host's root. Idempotent. */
    async writeHostFile(input: { path: string; content: string }): Promise<{ path: string; bytes: number }> {
      try {
        const abs = await deps.fs.resolve(input.path);
        await mkdir(join(abs, '..'), { recursive: true });
        await writeFile(abs, input.content, { mode: 0o644 });
        return { path: abs, bytes: Buffer.byteLength(input.content) };
      } catch (err) {
        throw toFailure(err, `write ${input.path}`);
      }
    },

    /** Copies a folder inside the host's root to another (the training code into its working folder). Idempotent. */
    async copyHostFolder(input: { from: string; to: string }): Promise<void> {
      try {
        const [from, to] = await Promise.all([deps.fs.resolve(input.from), deps.fs.resolve(input.to)]);
        if (from === to) return;
        await rm(to, { recursive: true, force: true });
        await cp(from!, to!, { recursive: true, verbatimSymlinks: true });
      } catch (err) {
        throw toFailure(err, `copy ${input.from} to ${input.to}`);
      }
    },
  };
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
