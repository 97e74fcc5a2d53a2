/**
 * One batch of a scenario: every family's runs started at random points of a window while the
 * scenario's fault driver crashes, restarts or throttles things, each run then checked on its own
 * (reliability/checks.ts) and its time to recover read from its workflow history as the server
 * recorded it.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { RunOutcome, Scenario } from './types.js';
import type { Counts } from './checks.js';

/** What a family's run needs to know about the scenario it runs in. */
export interface RunContext {
  client: Client;
  taskQueue: string;
  /** Straight at the emulator: fixtures and checks never go through the fault proxy. */
  s3: S3Client;
  ec2: EC2Client;
  /** The scenario's bucket; each run works under its own prefix. */
  bucket: string;
  /** The orchestration workers' local root: each run works in its own folder below it. */
  workDir: string;
  /** The batch's host worker (a stand-in training instance): its id and root folder. */
  host: { id: string; root: string };
  /** A copy of examples/train under `workDir`, the training program runs stage. */
  trainingCode: string;
  /** Unique per scenario batch: prefixes, volume names and the tag every fixture carries. */
  tag: string;
  /** The cost tracker project volumes of this batch are recorded with. */
  project: string;
  heartbeatSeconds: number;
  /** Smaller data in the smoke version. */
  smoke: boolean;
  /** Whether the batch has given up waiting (its deadline passed): loops that retry stop. */
  expired(): boolean;
}

export interface Ending {
  ended: RunOutcome['ended'];
  detail: string;
}

/** One run of a family: fixtures made by `prepare`, then started, waited for and checked. */
export interface FamilyRun {
  workflowId: string;
  start(): Promise<void>;
  settle(): Promise<Ending>;
  check(ending: Ending): Promise<Counts>;
}

export interface Family {
  name: string;
  /** What a run does and what its check reads, for the report. */
  what: string;
  /** At most this many runs per scenario, whatever `--runs` says (a heavy family). */
  maxRuns?: number;
  /** Whether its runs make no AWS request at all (so an AWS fault cannot touch them). */
  awsFree?: boolean;
  /** Whether its runs launch instances, which the instance simulator must play. */
  needsSimulator?: boolean;
  prepare(ctx: RunContext, run: number): Promise<FamilyRun>;
}

/** The tag every fixture and volume of the campaign carries (its value names the batch), for checks and housekeeping. */
export const CAMPAIGN_TAG = 'trainctl-reliability';

/** The campaign's only source of randomness, so a seed replays kill points and delays. */
export { seededRandom } from '../src/dev/fault-proxy.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function describe(err: unknown): string {
  if (err instanceof WorkflowFailedError) {
    const cause = err.cause as { type?: string; message?: string; name?: string } | undefined;
    return `${cause?.type ?? cause?.name ?? 'failed'}: ${cause?.message ?? err.message}`;
  }
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * Calls `fn` until it succeeds, the batch expires, or it fails with a workflow's own failure: a
 * server being restarted or a worker being down (queries, updates) is waited out, as a user's
 * script would.
 */
export async function persist<T>(ctx: Pick<RunContext, 'expired'>, fn: () => Promise<T>, pauseMs = 1_000): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WorkflowFailedError || ctx.expired()) throw err;
      await sleep(pauseMs);
    }
  }
}

/** Starts a workflow through `start`, treating "already started" (a reply lost to a server restart) as started. */
export async function startOnce(ctx: Pick<RunContext, 'expired'>, start: () => Promise<unknown>): Promise<void> {
  await persist(ctx, async () => {
    try {
      await start();
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  });
}

/** Waits for a workflow's result: completed, or its failure as an unexpected ending. */
export async function settleResult<T>(ctx: Pick<RunContext, 'expired'>, result: () => Promise<T>, judge: (r: T) => Ending): Promise<Ending> {
  try {
    return judge(await persist(ctx, result));
  } catch (err) {
    return { ended: 'unexpected', detail: ctx.expired() ? `did not end before the batch deadline (${describe(err)})` : describe(err) };
  }
}

const E = proto.temporal.api.enums.v1.EventType;
/** Events that only a live worker (or the workflow's end) produces: the run moving forward. */
const PROGRESS = new Set<number>([
  E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
  E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
]);
const CLOSED = new Set<number>([
  E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
]);

function ms(ts: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(ts?.seconds ?? 0) * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6);
}

/** A fault: when it struck, and when it was lifted (the worker or server back); epoch ms. */
export interface Fault {
  at: number;
  until: number;
  /** The families it can touch (a host worker's crash only those whose activities run there); all when absent. */
  reaches?: readonly string[];
  /** Known only to lie somewhere between `at` and `until`: it struck only the runs open for all of that. */
  somewhere?: boolean;
}

/** The faults of `faults` that can touch a run of `family`. */
export function reaching(faults: readonly Fault[], family: string): Fault[] {
  return faults.filter((f) => f.reaches === undefined || f.reaches.includes(family));
}

/**
 * For each fault that struck while the run was open (or that the run began under), the time from
 * the fault — or the run's start, if later — to the next event that only a live worker writes (a
 * workflow task or activity completed, or the run's end), in seconds; the longest of them, or
 * undefined when no fault struck this run.
 */
export async function recoveryOf(ctx: RunContext, workflowId: string, faults: readonly Fault[]): Promise<number | undefined> {
  if (faults.length === 0) return undefined;
  const history = await persist(ctx, () => ctx.client.workflow.getHandle(workflowId).fetchHistory());
  const events = (history.events ?? []).map((e) => ({ type: Number(e.eventType), at: ms(e.eventTime) }));
  if (events.length === 0) return undefined;
  const opened = events[0]!.at;
  const closed = events.find((e) => CLOSED.has(e.type))?.at ?? Infinity;
  let worst: number | undefined;
  for (const f of faults) {
    if (f.until < opened || f.at >= closed) continue;
    if (f.somewhere && (opened > f.at || closed < f.until)) continue;
    const from = Math.max(f.at, opened);
    const next = events.find((e) => e.at > from && PROGRESS.has(e.type));
    if (!next) continue;
    worst = Math.max(worst ?? 0, (next.at - from) / 1000);
  }
  return worst;
}

/** What a fault driver sees of the batch. */
export interface InFlight {
  /** Whether any run has not ended yet (and the batch has not expired). */
  pending(): boolean;
  /** Waits until at least one run has started and not yet ended (false: none will be any more). */
  running(): Promise<boolean>;
  /**
   * Waits until a run is open (its start accepted, its end not yet seen) that none of `faults` (an
   * open fault has `until` Infinity) reaching its family overlapped, and returns the families of such
   * runs; empty once none can be any more: every run started and each open one already struck, or
   * the batch over.
   */
  unstruck(faults: readonly Fault[]): Promise<string[]>;
}

/**
 * The drivers' shared rhythm: strike whenever a run is open that no fault has struck yet (a random
 * 0.2–1 s into it, so it is past its start), at least `planned` times while runs are open and at
 * most `max`; `strike` injects one fault (narrowing its `reaches` if it touches only some families;
 * `targets` are the families of the open runs not yet struck, empty for a strike beyond them) and
 * resolves once it is lifted (false: nothing to strike).
 * Between faults a random 0.5–1.5 s lets the runs move on. Returns the faults, each from its
 * injection to its lifting.
 */
export async function strikeEveryRun(
  runs: InFlight,
  random: () => number,
  limits: { planned: number; max: number },
  strike: (round: number, fault: Fault, targets: readonly string[]) => Promise<boolean>,
): Promise<Fault[]> {
  const struck: Fault[] = [];
  for (let round = 0; struck.length < limits.max && runs.pending(); round++) {
    const targets = await runs.unstruck(struck);
    if (targets.length === 0 && (struck.length >= limits.planned || !(await runs.running()))) break;
    await sleep(200 + random() * 800);
    const fault: Fault = { at: Date.now(), until: Infinity };
    struck.push(fault);
    if (!(await strike(round, fault, targets))) {
      struck.pop();
      continue;
    }
    fault.until = Date.now();
    await sleep(500 + random() * 1_000);
  }
  return struck;
}

export interface BatchOptions {
  scenario: Scenario;
  families: Family[];
  runs: number;
  ctx: Omit<RunContext, 'expired'>;
  random: () => number;
  /** Run starts are spread uniformly over this window (ms). */
  spreadMs: number;
  /** How long the batch may take before a run still open is reported as unexpected. */
  deadlineMs: number;
  /** Injects the scenario's faults while runs are in flight; returns when each struck and was lifted. */
  drive(runs: InFlight): Promise<Fault[]>;
  log(message: string): void;
}

/** Runs the batch and returns one outcome per run, each judged on its own. */
export async function runBatch(opts: BatchOptions): Promise<RunOutcome[]> {
  const deadline = Date.now() + opts.deadlineMs;
  const ctx: RunContext = { ...opts.ctx, expired: () => Date.now() > deadline };
  const planned = opts.families.flatMap((family) =>
    Array.from({ length: Math.min(opts.runs, family.maxRuns ?? opts.runs) }, (_, i) => ({ family, run: i + 1 })),
  );
  opts.log(`${opts.scenario}: preparing ${planned.length} runs (${opts.families.map((f) => f.name).join(', ')} × ${opts.runs})`);
  const prepared: { family: Family; run: number; handle: FamilyRun }[] = [];
  for (let i = 0; i < planned.length; i += 8) {
    const group = planned.slice(i, i + 8);
    prepared.push(...(await Promise.all(group.map(async (p) => ({ ...p, handle: await p.family.prepare(ctx, p.run) })))));
  }
  let open = prepared.length;
  let active = 0;
  let unstarted = prepared.length;
  let starting = 0;
  /** Each started run's client-side window: from its start being accepted to its end being seen. */
  const windows: { family: string; from: number; to: number }[] = [];
  const offsets = prepared.map(() => Math.floor(opts.random() * opts.spreadMs));
  const t0 = Date.now();
  opts.log(`${opts.scenario}: starting runs over ${Math.round(opts.spreadMs / 1000)} s`);
  const settled = prepared.map(async (p, i) => {
    await sleep(offsets[i]!);
    const began = Date.now();
    let ending: Ending;
    active++;
    unstarted--;
    const window = { family: p.family.name, from: Infinity, to: Infinity };
    starting++;
    try {
      try {
        await startOnce(ctx, () => p.handle.start());
      } finally {
        starting--;
      }
      window.from = Date.now();
      windows.push(window);
      ending = await p.handle.settle();
    } catch (err) {
      ending = { ended: 'unexpected', detail: `could not start: ${describe(err)}` };
    }
    window.to = Date.now();
    active--;
    open--;
    return { ...p, ending, seconds: (Date.now() - began) / 1000 };
  });
  const pending = () => open > 0 && !ctx.expired();
  const faults = opts.drive({
    pending,
    async running() {
      while (active === 0 && pending()) await sleep(50);
      return active > 0;
    },
    async unstruck(faults) {
      const hit = (w: (typeof windows)[number]) => reaching(faults, w.family).some((f) => f.at <= w.to && f.until >= w.from);
      for (;;) {
        if (!pending()) return [];
        const now = Date.now();
        const open = windows.filter((w) => w.to > now && !hit(w));
        if (open.length > 0) return [...new Set(open.map((w) => w.family))];
        if (unstarted === 0 && starting === 0) return [];
        await sleep(100);
      }
    },
  });
  const ends = await Promise.all(settled);
  const struck = await faults;
  opts.log(`${opts.scenario}: all runs ended after ${Math.round((Date.now() - t0) / 1000)} s; ${struck.length} faults injected; checking`);
  const outcomes: RunOutcome[] = [];
  for (const e of ends) {
    const counts = await e.handle.check(e.ending);
    const recovery = await recoveryOf(ctx, e.handle.workflowId, reaching(struck, e.family.name)).catch(() => undefined);
    const detail = [e.ending.detail, ...counts.findings].filter(Boolean).join('; ');
    outcomes.push({
      family: e.family.name,
      scenario: opts.scenario,
      run: e.run,
      // A run that says it completed while the emulator lacks what it made did not complete.
      ended: counts.unmet > 0 ? 'unexpected' : e.ending.ended,
      detail,
      duplicates: counts.duplicates,
      leaked: counts.leaked,
      corruptBytes: counts.corruptBytes,
      wrongDeletions: counts.wrongDeletions,
      ...(recovery !== undefined ? { recoverySeconds: recovery } : {}),
      durationSeconds: e.seconds,
    });
  }
  return outcomes;
}
