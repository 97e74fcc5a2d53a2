import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { waitFor } from './wait.js';
import { DescribeInstancesCommand, DescribeVolumesCommand, type EC2Client } from '@aws-sdk/client-ec2';

/**
 * Polls `probe` until it returns a value other than undefined (or false), or fails after `timeoutMs`
 * naming `what`: {@link waitFor} with positional arguments, as the run tests call it.
 */
export function waitUntil<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string, pollMs = 500): Promise<T> {
  return waitFor(probe, { timeoutMs, what, intervalMs: pollMs });
}

/** The example program's command, slow enough (`steps` × `stepSeconds`) for a test to act while it trains. */
export function slowTraining(steps: number, stepSeconds: number): string[] {
  return ['python3', 'train.py', '--steps', String(steps), '--checkpoint-every', '10', '--step-seconds', String(stepSeconds)];
}

/** What runTraining left on the host: one state folder per workflow run that trained, its log and state file. */
export interface TrainingEvidence {
  /** Folders under `<root>/.trainctl/runs/NAME/`: one per workflow run that started training. */
  stateDirs: string[];
  log: string;
  state?: { pid: number; startTime: string };
}

export function trainingEvidence(root: string, runName: string): TrainingEvidence {
  const runsDir = join(root, '.trainctl', 'runs', runName);
  const stateDirs = existsSync(runsDir) ? readdirSync(runsDir) : [];
  if (stateDirs.length !== 1) return { stateDirs, log: '' };
  const dir = join(runsDir, stateDirs[0]!);
  const logFile = join(dir, 'train.log');
  const stateFile = join(dir, 'training.json');
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  let state: TrainingEvidence['state'];
  try {
    const parsed = JSON.parse(readFileSync(stateFile, 'utf8')) as { pid: number; startTime: string };
    state = { pid: parsed.pid, startTime: parsed.startTime };
  } catch {
    // not written yet
  }
  return { stateDirs, log, ...(state ? { state } : {}) };
}

/** How many `step N/M` lines the log holds. */
export function stepsLogged(log: string): number {
  return log.split('\n').filter((l) => /^step \d+\/\d+ /.test(l)).length;
}

/**
 * The log of one program that ran once from start to end: it read the data once, logged every
 * step 1..steps exactly once and in order, finished once, and the wrapper recorded one exit.
 */
export function assertTrainedOnce(log: string, steps: number): void {
  const lines = log.split('\n');
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  assert.equal(count(/^data \d+ files /), 1, `the program began once:\n${log}`);
  const stepNumbers = lines.flatMap((l) => {
    const m = /^step (\d+)\/(\d+) /.exec(l);
    return m ? [Number(m[1])] : [];
  });
  assert.deepEqual(
    stepNumbers,
    Array.from({ length: steps }, (_, i) => i + 1),
    'every step was logged exactly once, in order',
  );
  assert.equal(count(/^done steps=/), 1, 'the program finished once');
  assert.equal(count(/^\[trainctl\] command ended: /), 1, 'one exit was recorded');
  assert.equal(count(/^resumed from /), 0, 'the program was not restarted from a checkpoint');
}

/** Python processes running out of `root` (the training program; its Node wrapper is not counted). */
export function trainingProcesses(root: string): number[] {
  const prefix = resolve(root) + '/';
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      const cwd = readlinkSync(`/proc/${name}/cwd`) + '/';
      const state = readFileSync(`/proc/${name}/stat`, 'utf8');
      const zombie = / Z /.test(state.slice(state.lastIndexOf(')')));
      if (!zombie && basename(argv[0] ?? '').startsWith('python') && argv.includes('train.py') && cwd.startsWith(prefix)) found.push(Number(name));
    } catch {
      // exited while we looked, or not ours
    }
  }
  return found;
}

/** Every instance the emulator has with the run's tag (any state) and every volume named `NAME-data`. */
export async function runResources(
  ec2: EC2Client,
  name: string,
): Promise<{ instances: { id: string; state: string }[]; volumes: { id: string; state: string }[] }> {
  const inst = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:trainctl:run', Values: [name] }] }));
  const vols = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:Name', Values: [`${name}-data`] }] }));
  return {
    instances: (inst.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => ({ id: i.InstanceId!, state: i.State?.Name ?? '?' })),
    volumes: (vols.Volumes ?? []).map((v) => ({ id: v.VolumeId!, state: v.State ?? '?' })),
  };
}
