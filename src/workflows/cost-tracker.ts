import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { z } from 'zod';
import {
  CostTrackerInputSchema,
  SetBudgetSchema,
  SetRateSchema,
  byTagQuery,
  reconcileReportSignal,
  reconciliationQuery,
  resourceQuery,
  resourceStartedSignal,
  resourceStoppedSignal,
  resourceUsageSignal,
  runningQuery,
  setBudgetUpdate,
  setRateUpdate,
  summaryQuery,
  totalCostQuery,
  type CostTrackerInput,
  type CostTrackerRequest,
} from '../contracts/cost.js';
import {
  applyReconcileReport,
  countOutcome,
  newTrackerState,
  recordContinuedRun,
  recordUsage,
  setBudget,
  setRate,
  startResource,
  stopResource,
  type Outcome,
  type TrackerState,
} from '../cost/ledger.js';
import { asOfTime, byTagView, checkBudget, detailsLine, earlier, resourceView, runningView, summaryView, totals, type Wake } from '../cost/views.js';
import { compactState, migrateState } from '../cost/compaction.js';
import { CarriedSize, packResources } from '../cost/packing.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { SA } from '../search-attributes.js';
import { fireBudget } from './cost-budget-actions.js';

// Moved to the contract; re-exported while other families' tests still import them from here.
export { resourceQuery, runningQuery } from '../contracts/cost.js';

/**
 * Workflow time in epoch ms: in the sandbox the clock is the start of the current workflow task, the
 * same on every replay, so costs computed from it are deterministic.
 */
function workflowNow(): number {
  return new Date().getTime();
}

function failureFromZod(err: z.ZodError): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: describeFailure(err) });
}

/** Counts of this run, which decide when it continues as new, and whether anything changed since the last look. */
interface RunMarks {
  events: number;
  dirty: boolean;
  /** Workflow time the totals were last computed at (and the details line last set at). */
  pricedAt?: number;
  detailsAt?: number;
}

/** The run's details line in the UI is refreshed at most this often (workflow time) between pricings. */
const DETAILS_EVERY_MS = 10_000;

/**
 * The cost tracker of one project: an entity workflow, id `cost-tracker/PROJECT`, started on demand
 * with signal-with-start by whatever creates or ends a resource. It accumulates each resource's
 * lifetime × rate in integer µ$ from `resourceStarted` / `resourceStopped` signals, answers cost
 * queries at any moment, and enforces budgets with a timer set to when the burn rate crosses the
 * limit (recomputed after every signal and update), then alerts, stops instances, or starts a
 * cleanup of the matching resources that waits for approval.
 *
 * Idempotent per message: a repeated start or stop of the same resource is counted as a duplicate
 * and changes nothing; malformed or impossible signals are logged and listed in `rejected`, never
 * thrown. Runs until terminated, continuing as new (after its handlers finish, carrying its whole
 * state) when the server suggests it or after `continueAsNewAfterEvents` messages. On cancel it ends.
 */
export async function costTracker(request: CostTrackerRequest): Promise<void> {
  const parsed = CostTrackerInputSchema.safeParse(request);
  if (!parsed.success) throw failureFromZod(parsed.error);
  const opts = parsed.data;
  // State carried from a run before compaction existed (no stateVersion) is migrated: it gains an empty archive.
  const state: TrackerState = migrateState((opts.state as TrackerState | undefined) ?? newTrackerState(opts.project));
  state.runs++;
  const marks: RunMarks = { events: 0, dirty: true };
  // What this run will carry into the next: a new resource that would take it over the payload limit is rejected.
  const carried = new CarriedSize(state, opts.keepRejected);

  // Handlers first, before any await, so no message that arrives with the first task is dropped.
  registerSignals(state, opts, marks, carried);
  registerQueries(state);
  registerUpdates(state, marks, carried);
  if (opts.searchAttributes) upsertSearchAttributes([{ key: SA.project, value: opts.project }]);
  /**
   * Pricing every resource on every workflow task made each task O(resources): under a stream of
   * signals the tasks grew slow enough for the server to force-close them (more than 100 signals
   * buffered behind one), and their replay after each force-close O(tasks × resources). Patched, the
   * loop prices them at most once per `costAttributeIntervalMs` of workflow time, which changes the
   * timers it starts. Can become `deprecatePatch` once no tracker run started before 2026-11-30 is open.
   */
  const pricedLazily = patched('cost-tracker-prices-once-per-interval');
  /**
   * Carried whole, 10,000 running resources are over the 2 MB payload limit and the continue-as-new
   * fails its task forever; patched, the resources are carried packed (`src/cost/packing.ts`), which
   * changes the continue-as-new's input. Can become `deprecatePatch` once no tracker run started before 2026-11-30 is open.
   */
  const carriesPacked = patched('cost-tracker-carries-packed-resources');

  const shouldContinueAsNew = () => workflowInfo().continueAsNewSuggested || marks.events >= opts.continueAsNewAfterEvents;
  for (;;) {
    const budgetWake = await enforceBudgets(state, opts);
    const wake = earlier(budgetWake, refreshCostAttribute(state, opts, marks, pricedLazily));
    if (shouldContinueAsNew()) break;
    marks.dirty = false;
    const woken = () => marks.dirty || shouldContinueAsNew();
    if (wake === undefined) await condition(woken);
    else await condition(woken, Math.max(1, wake.at - workflowNow()), { summary: wake.why });
  }

  await condition(allHandlersFinished);
  recordContinuedRun(state, workflowInfo().runId, marks.events);
  // Resources stopped over a week ago fold into totals, so the carried state stays bounded however
  // many have come and gone. It changes the state carried, not the commands: old histories replay.
  const folded = compactState(state, workflowNow());
  log.info('cost tracker continuing as new', { runs: state.runs, events: marks.events, resources: Object.keys(state.resources).length, folded });
  const carry: TrackerState = carriesPacked ? { ...state, resources: {}, packedResources: packResources(state.resources) } : state;
  await continueAsNew<typeof costTracker>({ ...opts, state: carry });
}

/** The resource signals: each one a ledger transition, counted as accepted, duplicate or rejected. */
function registerSignals(state: TrackerState, opts: CostTrackerInput, marks: RunMarks, carried: CarriedSize): void {
  const on = (message: string, raw: unknown, apply: (now: number) => Outcome) => {
    marks.events++;
    marks.dirty = true;
    const now = workflowNow();
    countOutcome(state, message, apply(now), raw, now, opts.keepRejected, log);
  };
  setHandler(resourceStartedSignal, (raw) => on('resourceStarted', raw, (now) => startResource(state, raw, false, now, log, carried)));
  setHandler(resourceStoppedSignal, (raw) => on('resourceStopped', raw, (now) => stopResource(state, raw, now)));
  setHandler(resourceUsageSignal, (raw) => on('resourceUsage', raw, (now) => recordUsage(state, raw, now, carried)));
  setHandler(reconcileReportSignal, (raw) => on('reconcileReport', raw, (now) => applyReconcileReport(state, raw, now, log, carried)));
}

/** The queries: pure reads of the state, priced at `asOf` (default: workflow time). */
function registerQueries(state: TrackerState): void {
  setHandler(totalCostQuery, (o) => totals(state, asOfTime(o, workflowNow())));
  setHandler(runningQuery, (o) => runningView(state, asOfTime(o, workflowNow())));
  setHandler(resourceQuery, (id, o) => {
    const r = typeof id === 'string' ? state.resources[id] : undefined;
    return r ? resourceView(r, asOfTime(o, workflowNow())) : null;
  });
  setHandler(byTagQuery, (key, value, o) => byTagView(state, key, value, asOfTime(o, workflowNow())));
  setHandler(summaryQuery, (o) => summaryView(state, o, asOfTime(o, workflowNow())));
  setHandler(reconciliationQuery, () => state.reconciliation ?? null);
}

/** The updates: validators reject bad input before it is recorded; the handlers change the ledger. */
function registerUpdates(state: TrackerState, marks: RunMarks, carried: CarriedSize): void {
  const received = () => {
    marks.events++;
    marks.dirty = true;
  };
  setHandler(
    setBudgetUpdate,
    (raw) => {
      const view = setBudget(state, raw, workflowNow());
      received();
      log.info('budget set', { name: view.name, limitUsd: view.limitUsd, window: view.window, action: view.action });
      return view;
    },
    {
      validator: (raw) => {
        const p = SetBudgetSchema.safeParse(raw);
        if (!p.success) throw failureFromZod(p.error);
      },
    },
  );
  setHandler(
    setRateUpdate,
    (raw) => {
      const result = setRate(state, raw, workflowNow(), carried);
      received();
      return result;
    },
    {
      validator: (raw) => {
        const p = SetRateSchema.safeParse(raw);
        if (!p.success) throw failureFromZod(p.error);
      },
    },
  );
}

/** Fires every budget crossed by now; returns the earliest moment one will cross (or re-arm). */
async function enforceBudgets(state: TrackerState, opts: CostTrackerInput): Promise<Wake | undefined> {
  const now = workflowNow();
  let wake: Wake | undefined;
  for (const b of Object.values(state.budgets)) {
    const check = checkBudget(state, b, now);
    if (check.due) await fireBudget(state, opts, b, check.spent, now);
    else wake = earlier(wake, check.wake);
  }
  return wake;
}

/**
 * Upserts the TrainctlCostUsd search attribute at most every `costAttributeIntervalMs`, shows the
 * totals in the run's details, and returns when the attribute is next due while the cost moves.
 * Priced `lazily` (patched), the resources are priced at most once per interval (the details line
 * at most every {@link DETAILS_EVERY_MS}), not on every workflow task.
 */
function refreshCostAttribute(state: TrackerState, opts: CostTrackerInput, marks: RunMarks, lazily: boolean): Wake | undefined {
  const t = workflowNow();
  const why = 'refresh the cost search attribute';
  if (lazily && marks.pricedAt !== undefined && t - marks.pricedAt < opts.costAttributeIntervalMs) {
    if (t - (marks.detailsAt ?? 0) >= DETAILS_EVERY_MS) {
      setCurrentDetails(detailsLine(state, totals(state, t), t));
      marks.detailsAt = t;
    }
    return { at: marks.pricedAt + opts.costAttributeIntervalMs, why };
  }
  const total = totals(state, t);
  marks.pricedAt = marks.detailsAt = t;
  const due = !state.costAttribute || t - state.costAttribute.at >= opts.costAttributeIntervalMs;
  if (due && state.costAttribute?.usd !== total.totalUsd) {
    if (opts.searchAttributes) upsertSearchAttributes([{ key: SA.costUsd, value: total.totalUsd }]);
    state.costAttribute = { at: t, usd: total.totalUsd };
  }
  let wake: Wake | undefined;
  if (total.burnMicroUsdPerHour > 0 || (state.costAttribute && state.costAttribute.usd !== total.totalUsd)) {
    // Unpatched, a due attribute whose cents had not moved woke at once (the last upsert + interval is past).
    wake = { at: (lazily ? t : (state.costAttribute?.at ?? t)) + opts.costAttributeIntervalMs, why };
  }
  setCurrentDetails(detailsLine(state, total, t));
  return wake;
}
