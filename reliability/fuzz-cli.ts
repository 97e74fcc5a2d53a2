/**
 * Fuzz (e), the CLI side: every command and subcommand of `trainctl` run in this process (its
 * `run(argv, env)` entry, the same code bin/trainctl.mjs runs) with fuzzed flags, values, words and
 * run files. Each case gets a task queue of its own that no worker polls: a workflow the command
 * starts is seen there (and terminated by the fuzzer), so "accepted" and "refused before any side
 * effect" are told apart from outside. A refusal must exit non-zero with a message whose first
 * paragraph names the field (flag, word or value), with no stack trace and no "Failed to start Workflow".
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Client } from '@temporalio/client';
import { run as cli } from '../src/cli/main.js';
import { RunInputSchema } from '../src/contracts/run.js';
import { RUN_SEED, junk, mutated, refusedFields } from './fuzz-inputs.js';
import { startedOn } from './fuzz-workflows.js';
import { outcome } from './support.js';
import { commands, type CliCommand, type Flag } from './fuzz-cli-commands.js';
import type { RunOutcome, ScenarioContext } from './types.js';

type Edit =
  | { op: 'value'; at: number; value: string }
  | { op: 'drop'; at: number }
  | { op: 'unknown'; value: string }
  | { op: 'add'; at: number; value: string }
  | { op: 'word'; at: number; value: string }
  | { op: 'positional'; at: number; value: string };

const text: fc.Arbitrary<string> = junk.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('value' as const), at: fc.nat(), value: text }),
  fc.record({ op: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('unknown' as const), value: text }),
  fc.record({ op: fc.constant('add' as const), at: fc.nat(), value: text }),
  fc.record({ op: fc.constant('word' as const), at: fc.nat(), value: text }),
  fc.record({ op: fc.constant('positional' as const), at: fc.nat(), value: text }),
);

/** A fuzzed command line, and the names a clear refusal of it may use. */
function apply(c: CliCommand, edits: Edit[]): { argv: string[]; names: string[] } {
  const words = [...c.words];
  const positionals = [...(c.positionals ?? [])];
  const flags: Flag[] = c.flags.map(([f, v]) => [f, v]);
  const names = new Set<string>();
  // A value is named as typed; one starting with a dash may be read as an option (`-2` of `-2.5e9`).
  const typed = (v: string) => {
    names.add(v);
    if (v.startsWith('-')) names.add(v.slice(0, 2));
  };
  const fuzzable = () => flags.map((f, i) => [f, i] as const).filter(([[f]]) => !c.fixed?.includes(f));
  for (const e of edits) {
    if (e.op === 'value' || e.op === 'drop') {
      const options = fuzzable();
      const pick = options[e.at % Math.max(options.length, 1)];
      if (!pick) continue;
      const [[flag], i] = pick;
      names.add(flag);
      if (e.op === 'drop' && c.keep?.includes(flag)) continue;
      if (e.op === 'drop') flags.splice(i, 1);
      else {
        flags[i] = [flag, e.value];
        typed(e.value);
      }
    } else if (e.op === 'unknown') {
      const flag = `--${e.value.replace(/^-+/, '') || 'x'}`;
      names.add(flag);
      names.add(flag.split('=')[0]!);
      flags.push([flag, true]);
    } else if (e.op === 'add') {
      const flag = c.more?.[e.at % c.more.length];
      if (!flag) continue;
      names.add(flag);
      flags.push([flag, e.value]);
      typed(e.value);
    } else if (e.op === 'word') {
      const i = e.at % words.length;
      words[i] = e.value;
      names.add(e.value);
    } else {
      const i = e.at % (positionals.length + 1);
      positionals[i] = e.value;
      typed(e.value);
      // Either end may be named: a bogus SRC read as a local path makes "DST: local → local" the complaint.
      names.add('SRC');
      names.add('DST');
    }
  }
  const argv = [...words, ...flags.flatMap(([f, v]) => (v === true ? [f] : [f, v])), ...positionals];
  return { argv, names: [...names] };
}

/* eslint-disable no-console -- the CLI prints through console; run in process, its output is captured here */
/** Runs the CLI in this process, capturing what it prints. */
async function runCli(argv: string[], environment: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = { log: console.log, error: console.error, warn: console.warn };
  const fmt = (args: unknown[]) =>
    args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? (a.stack ?? a.message) : JSON.stringify(a))).join(' ') + '\n';
  console.log = (...a: unknown[]) => void (stdout += fmt(a));
  console.error = (...a: unknown[]) => void (stderr += fmt(a));
  console.warn = console.error;
  // Nobody answers a prompt here: run from a terminal, the CLI must still see no terminal (cleanup apply asks otherwise).
  const tty = Object.getOwnPropertyDescriptor(process.stdin, 'isTTY');
  Object.defineProperty(process.stdin, 'isTTY', { value: false, configurable: true });
  try {
    const code = await cli(argv, environment);
    return { code, stdout, stderr };
  } finally {
    Object.assign(console, saved);
    if (tty) Object.defineProperty(process.stdin, 'isTTY', tty);
    else delete (process.stdin as { isTTY?: boolean }).isTTY;
  }
}
/* eslint-enable no-console */

interface Deps {
  ctx: ScenarioContext;
  client: Client;
  idPrefix: string;
  /** A short token unique to this fuzz, for names (projects, runs) no one else uses. */
  tag: string;
  /** Workflow ids started on a case's queue, by queue: the final sweep checks them again. */
  queues: Map<string, { family: string; run: number }>;
}

/** One CLI case, judged. */
async function cliCase(d: Deps, c: CliCommand, argv: string[], names: string[], run: number): Promise<RunOutcome> {
  const t0 = Date.now();
  const family = `cli:${c.name}`;
  const taskQueue = `${d.idPrefix}cli-${run}-${c.name.replace(/\W+/g, '-')}`;
  d.queues.set(taskQueue, { family, run });
  const environment = {
    TEMPORAL_ADDRESS: d.ctx.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    AWS_ENDPOINT_URL: d.ctx.awsEndpoint,
    AWS_REGION: 'us-east-1',
    TRAINCTL_AWS: 'emulator',
    TRAINCTL_TASK_QUEUE: taskQueue,
  };
  // What the command starts is stopped by the fuzzer: no worker will ever run it.
  const started = new Set<string>();
  let running = true;
  const stopStarted = async () => {
    for (const id of await startedOn(d.client, taskQueue).catch(() => [])) {
      if (started.has(id)) continue;
      started.add(id);
      await d.client.workflow
        .getHandle(id)
        .terminate('fuzz: no worker runs this case')
        .catch(() => undefined);
    }
  };
  const watcher = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 300));
      await stopStarted();
    }
  })();
  const deadline = new Promise<{ code: number; stdout: string; stderr: string }>((r) =>
    setTimeout(() => r({ code: -1, stdout: '', stderr: 'fuzz: the command did not return within 60 s' }), 60_000),
  );
  const res = await Promise.race([runCli(argv, environment), deadline]);
  running = false;
  await watcher;
  await stopStarted();
  if (c.name === 'cost reconcile schedule' && res.code === 0) {
    const project = argv[argv.indexOf('--project') + 1] ?? 'default';
    await d.client.schedule
      .getHandle(`cost-reconcile/${project}`)
      .delete()
      .catch(() => undefined);
  }
  const said = `${res.stderr}${res.stdout}`.trim();
  const first = said.split(/\n\s*\n/)[0] ?? '';
  const line = said.replace(/\s+/g, ' ').slice(0, 300);
  let ended: RunOutcome['ended'] = 'unexpected';
  let detail: string;
  if (res.code === -1) detail = res.stderr;
  else if (/\n\s+at \S/.test(said) || /Failed to start Workflow/.test(said)) detail = `exit ${res.code} with a stack trace or opaque start error: ${line}`;
  else if (res.code === 0) {
    ended = 'completed';
    detail = `accepted (exit 0)${started.size ? `, started ${[...started].join(', ')}` : ''}`;
  } else if (started.size) {
    // Accepted: it started a workflow, which the fuzzer stopped (no worker runs it), so the command then
    // failed (terminated, or a query of the stopped run); a usage error after a start is a refusal too late.
    ended = res.code === 2 ? 'unexpected' : 'completed';
    detail =
      res.code === 2
        ? `refused after starting ${[...started].join(', ')}: ${line}`
        : `accepted: started ${[...started].join(', ')}, stopped by the fuzzer (exit ${res.code}: ${line.slice(0, 120)})`;
  } else if (res.code === 2) {
    // An empty or odd word is named quoted (`unknown command ""`, `"\u0000"`); no edit at all leaves the usage text.
    const mentions = (n: string) =>
      n.trim() === '' ? first.includes(JSON.stringify(n)) || first.includes(`'${n}'`) : first.includes(n) || first.includes(JSON.stringify(n).slice(1, -1));
    const named = names.length === 0 || names.some(mentions);
    ended = named ? 'documented' : 'unexpected';
    detail = named ? `refused (exit 2): ${line}` : `refused (exit 2) without naming ${names.slice(0, 6).join(' ')}: ${line}`;
  } else if (/\(Unknown\)/.test(first)) detail = `exit ${res.code}, kind Unknown (opaque): ${line}`;
  else {
    ended = 'documented';
    detail = `failed, nothing started (exit ${res.code}): ${line}`;
  }
  return outcome('fuzz', family, run, t0, { ended, detail: `${argv.join(' ').slice(0, 160)} → ${detail}`.slice(0, 500) });
}

/** Every CLI command, `ctx.runs` fuzzed command lines each (run start also gets a fuzzed run file each). */
export async function fuzzCli(d: Deps): Promise<RunOutcome[]> {
  const out: RunOutcome[] = [];
  const dir = d.ctx.workDir;
  const cmds = commands(`fz-${d.tag}`, dir);
  const runFiles = fc.sample(mutated(RUN_SEED), { seed: d.ctx.seed + 1000, numRuns: d.ctx.runs });
  for (const [k, c] of cmds.entries()) {
    const cases = fc.sample(fc.array(edit, { minLength: 1, maxLength: 3 }), { seed: d.ctx.seed + 100 + k, numRuns: d.ctx.runs });
    for (const [i, edits] of cases.entries()) {
      // run start: every case gets a fuzzed run file; every other case keeps the command line as it is.
      const fileOnly = c.name === 'run start' && i % 2 === 1;
      const fileNames =
        c.name === 'run start' ? [...refusedFields(RunInputSchema, runFiles[i]).map((f) => (f === '(input)' ? 'run file' : f)), 'run.json'] : [];
      if (c.name === 'run start') writeFileSync(join(dir, 'run.json'), runFileText(runFiles[i], `fz-${d.tag}-${i}`));
      const { argv, names } = apply(c, fileOnly ? [] : edits);
      out.push(await cliCase(d, c, argv, [...names, ...fileNames], i + 1));
    }
    d.ctx.log(`fuzz cli ${c.name}: ${cases.length} command lines`);
  }
  return out;
}

/** A fuzzed run file: the seed mutated (every other case), as JSON; the run name made unique. */
function runFileText(v: unknown, name: string): string {
  const named = v && typeof v === 'object' && !Array.isArray(v) && (v as { name?: unknown }).name === RUN_SEED.name ? { ...v, name } : v;
  return JSON.stringify(named ?? null);
}
