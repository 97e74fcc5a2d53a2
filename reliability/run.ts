/**
 * `npm run reliability`: every workflow family, N runs each, under each fault scenario, each run
 * checked on its own against the emulator and the files; writes docs/RELIABILITY.md. Not part of
 * `npm test` (test/reliability-smoke.test.ts runs the `--smoke` version).
 *
 *   node --import tsx reliability/run.ts [--runs 20] [--only worker-kill,fault-mix,…] [--families transfer,…]
 *        [--seed N] [--smoke] [--out docs/RELIABILITY.md] [--json FILE] [--temporal HOST:PORT --aws-endpoint URL]
 *
 * Without --temporal/--aws-endpoint it starts a dev server and moto of its own (the server-restart
 * scenario always starts its own persisted server). Exits 1 when any run is not clean.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, startMoto, startTemporalDevServer, stopAll } from '../src/dev/services.js';
import type { RunOutcome, Scenario, ScenarioContext } from './types.js';
import { selectFamilies } from './families.js';
import type { Family } from './campaign.js';
import { clean, writeReport, type CampaignInfo } from './report.js';
import { runWorkerKill } from './worker-kill.js';
import { runServerRestart } from './server-restart.js';
import { runFaultMix } from './fault-mix.js';
import { runScaleOut } from './scale-out.js';
import { runFullDisk } from './full-disk.js';
import { runFuzz } from './fuzz.js';

interface ScenarioEntry {
  name: Scenario;
  run(ctx: ScenarioContext): Promise<RunOutcome[]>;
  /** What it does, for the report. */
  what: string;
  /** Whether it runs the families of `--families` (fuzz and full disk choose their own). */
  usesFamilies?: boolean;
}

/** Every scenario, in the order they run. Scenarios (d) full disk and (e) fuzz register here too. */
const SCENARIOS: ScenarioEntry[] = [
  {
    name: 'worker-kill',
    run: runWorkerKill,
    usesFamilies: true,
    what: 'the orchestration worker, the host worker and a live simulated instance’s host worker (in turn from a random first one, skipping one whose crash reaches none of the runs still to strike; an instance kill with no instance up is skipped) are SIGKILLed while runs (started at random offsets over the first 30 s) are in flight, the workers’ AWS slowed by 1 s a request: a kill 0.2–1 s after a run is seen open that no kill reaching its family has struck yet (a host worker’s reaches only the families whose activities it runs), so every run lives through one; the first two are restarted after a random 0.5–3 s, the instance’s by the simulator; at least 3 kills (2 in the smoke version), at most 16 (8).',
  },
  {
    name: 'server-restart',
    run: runServerRestart,
    usesFamilies: true,
    what: 'a dev server persisting to a database file is stopped while runs are in flight (0.2–1 s after a run is seen open that no restart has struck yet, the workers’ AWS slowed by 1 s a request so their activities are mid-request) and started again on the same port with the same file 0.5–3 s later; at least 2 restarts (1 in the smoke version), at most 12 (6); workers and the client reconnect by themselves.',
  },
  {
    name: 'fault-mix',
    run: runFaultMix,
    usesFamilies: true,
    what: 'every AWS request of the orchestration worker and the host worker goes through the fault proxy: 10 % throttled (503 SlowDown / RequestLimitExceeded), 2 % reset, 1 % 500 InternalError, 1 % response lost after the emulator acted; one SDK attempt per call (AWS_MAX_ATTEMPTS=1), so trainctl’s own retries and idempotency handle every fault; the requests are slowed by 1 s first, as in the other scenarios. Struck: a run open for all of a 0.25 s interval between two reads of the proxy log in which a fault was injected (not necessarily on its own request); the cost tracker makes no AWS request, so the mix cannot strike it.',
  },
  {
    name: 'scale-out',
    run: runScaleOut,
    usesFamilies: true,
    what: 'three orchestration workers poll one task queue, their AWS slowed by 1 s a request; one picked at random is SIGKILLed (back 2–10 s later) 0.2–1 s after a run is seen open that no kill has struck yet, and its work moves to the other two; at least 2 kills (1 in the smoke version), at most 12 (6).',
  },
  {
    name: 'full-disk',
    run: runFullDisk,
    what: 'an 8 MiB tmpfs (a loop-mounted ext4 image where tmpfs is refused; root only) is the root of a real host worker and of an orchestration worker; each run fills it to 1 MiB free and copies more than fits S3 → host or S3 → local. Documented end: QuotaExceeded naming ENOSPC, the earlier file unchanged, no temp file on the disk, no open upload; after the filler is removed a re-run completes byte-identical.',
  },
  {
    name: 'fuzz',
    run: runFuzz,
    what: 'seeded fast-check inputs: every workflow type started raw by name and through the client API with inputs the contract refuses, and every CLI command run with fuzzed arguments. Documented end: a refusal naming the field before any side effect (InvalidInput, no failed workflow task, no activity, nothing in the emulator; the CLI exits 2 with no stack trace); an accepted CLI case is completed.',
  },
];

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    only: { type: 'string' },
    families: { type: 'string' },
    seed: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string', default: join(repoRoot, 'docs', 'RELIABILITY.md') },
    json: { type: 'string' },
    temporal: { type: 'string' },
    'aws-endpoint': { type: 'string' },
  },
});

function fail(message: string): never {
  process.stderr.write(`reliability: ${message}\n`);
  process.exit(2);
}

const smoke = values.smoke === true;
const runs = Number(values.runs ?? (smoke ? 2 : 20));
if (!Number.isInteger(runs) || runs < 1 || runs > 200) fail(`--runs must be a whole number from 1 to 200, got ${values.runs}`);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be a whole number ≥ 0, got ${values.seed}`);
// The smoke version leaves fuzz and full disk to test/reliability-fuzz.test.ts, which runs them at the same size.
const only = values.only?.split(',').map((s) => s.trim()) ?? SCENARIOS.filter((s) => !smoke || s.usesFamilies).map((s) => s.name);
for (const name of only)
  if (!SCENARIOS.some((s) => s.name === name)) fail(`--only: unknown scenario ${name}; expected some of ${SCENARIOS.map((s) => s.name).join(', ')}`);
/** The smoke version's families: the S3 → local download shares its engine with the host pull, so it is left to the full campaign. */
const SMOKE_FAMILIES = ['transfer (local', 'transfer (S3 → host', 'provisionVolume', 'cleanup', 'costTracker'];
const familyNames = values.families?.split(',').map((s) => s.trim()) ?? (smoke ? SMOKE_FAMILIES : undefined);
let chosen: Family[];
try {
  chosen = selectFamilies(familyNames);
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
const families = chosen.map((f) => f.name);
if ((values.temporal === undefined) !== (values['aws-endpoint'] === undefined)) fail('--temporal and --aws-endpoint go together');

const logLines: string[] = [];
const t0 = Date.now();
const log = (message: string) => {
  const line = `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${message}`;
  process.stderr.write(`[reliability] ${line}\n`);
  if (/SIGKILL|stopped the dev server|proxy saw|housekeeping|failed/.test(message)) logLines.push(line);
};

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const loadAtStart = os.loadavg();
  // The code that ran: read before the campaign, so a commit made meanwhile is not credited with it.
  const ranCommit = commit();
  let temporalAddress = values.temporal;
  let awsEndpoint = values['aws-endpoint'];
  if (!temporalAddress || !awsEndpoint) {
    log('starting a dev server and moto');
    const [t, m] = await Promise.all([startTemporalDevServer({ headless: true }), startMoto()]);
    temporalAddress = t.address;
    awsEndpoint = m.endpoint;
  }
  const scratch = mkdtempSync(join(os.tmpdir(), 'trainctl-reliability-'));
  const outcomes: RunOutcome[] = [];
  const failures: string[] = [];
  try {
    for (const entry of SCENARIOS.filter((s) => only.includes(s.name))) {
      const started = Date.now();
      log(`${entry.name}: begins`);
      mkdirSync(join(scratch, entry.name), { recursive: true });
      const ctx: ScenarioContext = {
        runs,
        seed,
        temporalAddress,
        awsEndpoint,
        workDir: join(scratch, entry.name),
        log,
        smoke,
        families,
      };
      try {
        const got = await entry.run(ctx);
        outcomes.push(...got);
        log(`${entry.name}: ${got.length} runs, ${got.filter(clean).length} clean, in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      } catch (err) {
        const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
        failures.push(`${entry.name}: ${msg.split('\n').slice(0, 3).join(' ')}`);
        log(`${entry.name}: failed: ${msg}`);
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await stopAll();
  }
  const cpus = os.cpus();
  const info: CampaignInfo = {
    date: new Date().toISOString(),
    commit: ranCommit,
    seed,
    runs,
    smoke,
    command: `npm run reliability --${process.argv
      .slice(2)
      .filter((a) => !/^--(temporal|aws-endpoint)/.test(a))
      .map((a) => ` ${a}`)
      .join('')}`.replace(/ --$/, ''),
    wallSeconds: (Date.now() - t0) / 1000,
    machine: {
      cores: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      memoryGiB: os.totalmem() / 2 ** 30,
      kernel: os.release(),
      node: process.version,
      loadAtStart,
    },
    scenarios: SCENARIOS.filter((s) => only.includes(s.name)).map((s) => ({ name: s.name, what: s.what, families: s.usesFamilies ? families : ['its own'] })),
    families: chosen.map((f) => ({ name: f.name, what: f.what })),
    failures,
    log: logLines,
  };
  const out = resolve(values.out);
  writeReport(out, outcomes, info);
  if (values.json) writeFileSync(resolve(values.json), JSON.stringify({ outcomes, failures, seed, wallSeconds: info.wallSeconds }, null, 2));
  const bad = outcomes.filter((o) => !clean(o));
  log(
    `wrote ${relative(process.cwd(), out)}: ${outcomes.length} runs, ${bad.length} not clean, ${failures.length} scenarios failed; ${(info.wallSeconds / 60).toFixed(1)} min`,
  );
  return bad.length === 0 && failures.length === 0 && outcomes.length > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`reliability: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await stopAll();
    process.exit(2);
  },
);
