import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  log,
  ParentClosePolicy,
  proxyActivities,
  startChild,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities/index.js';
import type { cleanup } from './cleanup.js';
import type { ReconcileOutcome } from '../activities/cost.js';
import {
  CostTrackerInputSchema,
  ReconcileInputSchema,
  ReconcileReportSchema,
  ResourceStartedSchema,
  ResourceStoppedSchema,
  ResourceUsageSchema,
  SetBudgetSchema,
  SetRateSchema,
  MS_PER_HOUR,
  currentRate,
  isUnpriced,
  monthBounds,
  resourceMicros,
  resourceMicrosBetween,
  usdToMicros,
  type BudgetAction,
  type BudgetWindow,
  type CostTrackerRequest,
  type ReconcileRequest,
  type ReconcileReport,
  type ResourceStarted,
  type ResourceStopped,
  type ResourceUsage,
  type SetBudgetRequest,
  type SetRateRequest,
  type TrackedResource,
} from '../cost-model.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { microsToUsd, quote, type ResourceKind } from '../pricing.js';
import { SA } from '../search-attributes.js';
import { awsCall } from './options.js';

const aws = proxyActivities<Activities>(awsCall);
// Listing every managed resource of a few regions takes longer than one call.
const reconcileActivities = proxyActivities<Activities>({ ...awsCall, startToCloseTimeout: '5 minutes' });

/** A signal's `at` may run ahead of workflow time by this much (clock skew between senders). */
const FUTURE_TOLERANCE_MS = 5 * 60_000;
const KEEP_ALERTS = 50;

export interface BudgetState {
  name: string;
  limitMicroUsd: number;
  window: BudgetWindow;
  action: BudgetAction;
  tagFilter?: { key: string; value: string };
  setAt: number;
  firedAt?: number;
  /** The window the budget fired in (`total`, or `YYYY-MM`); a monthly budget re-arms next month. */
  firedWindow?: string;
}

export interface AlertRecord {
  at: string;
  budget: string;
  action: BudgetAction;
  spentUsd: number;
  limitUsd: number;
  outcome: string;
}

export interface RejectedRecord {
  at: string;
  message: string;
  id?: string;
  reason: string;
}

export interface ReconciliationView {
  at: string;
  regions: string[];
  checked: number;
  orphans: string[];
  vanished: string[];
}

/** Everything the tracker knows; carried whole across continue-as-new. */
export interface TrackerState {
  project: string;
  resources: Record<string, TrackedResource>;
  rates: Record<string, { microUsdPerHour: number; unit: 'resource' | 'GiB'; setAt: number }>;
  budgets: Record<string, BudgetState>;
  alerts: AlertRecord[];
  rejected: RejectedRecord[];
  /** Every signal lands in exactly one of accepted / duplicates / rejected. */
  counters: { accepted: number; duplicates: number; rejected: number; updates: number };
  /** Runs of this entity so far (1 + continue-as-new count). */
  runs: number;
  /** The last runs that continued as new, with the messages each handled. */
  previousRuns: { runId: string; events: number }[];
  costAttribute?: { at: number; usd: number };
  reconciliation?: ReconciliationView;
}

export interface AsOf {
  /** Epoch ms to price running resources at; default: workflow time. */
  asOf?: number;
}

export interface UnpricedView {
  id: string;
  kind: ResourceKind;
  type: string;
  reason: string;
}

export interface ResourceView {
  id: string;
  kind: ResourceKind;
  type: string;
  region: string;
  sizeGiB?: number;
  tags: Record<string, string>;
  startedAt: string;
  stoppedAt?: string;
  running: boolean;
  /** `unpriced` when no price is known for part of its life: its cost is then a lower bound. */
  pricing: 'priced' | 'unpriced';
  unpricedReason?: string;
  rateSource: TrackedResource['rateSource'];
  hourlyMicroUsd: number | null;
  hourlyUsd: number | null;
  costMicroUsd: number;
  costUsd: number;
  orphan?: boolean;
  usage?: TrackedResource['usage'];
}

export interface TotalCost {
  project: string;
  asOf: string;
  totalMicroUsd: number;
  totalUsd: number;
  burnMicroUsdPerHour: number;
  burnUsdPerHour: number;
  running: number;
  unpriced: UnpricedView[];
}

export interface CostGroup {
  resources: number;
  running: number;
  totalMicroUsd: number;
  totalUsd: number;
  burnMicroUsdPerHour: number;
  unpriced: number;
}

export interface BudgetView {
  name: string;
  limitUsd: number;
  window: BudgetWindow;
  action: BudgetAction;
  tagFilter?: { key: string; value: string };
  spentMicroUsd: number;
  spentUsd: number;
  burnUsdPerHour: number;
  /** When the current burn rate crosses the limit (absent when nothing burns or it fired). */
  projectedAt?: string;
  firedAt?: string;
}

export interface CostSummary extends TotalCost {
  byKind: Partial<Record<ResourceKind, CostGroup>>;
  byTag?: { key: string; groups: Record<string, CostGroup> };
  rejected: { count: number; recent: RejectedRecord[] };
  counters: TrackerState['counters'];
  runs: number;
  previousRuns: TrackerState['previousRuns'];
  budgets: BudgetView[];
  alerts: AlertRecord[];
  reconciliation?: ReconciliationView;
}

export interface ByTagView {
  key: string;
  value: string;
  totalMicroUsd: number;
  totalUsd: number;
  burnUsdPerHour: number;
  resources: ResourceView[];
  unpriced: UnpricedView[];
}

export const resourceStartedSignal = defineSignal<[ResourceStarted]>('resourceStarted');
export const resourceStoppedSignal = defineSignal<[ResourceStopped]>('resourceStopped');
export const resourceUsageSignal = defineSignal<[ResourceUsage]>('resourceUsage');
/** Sent by the reconciliation activity with what it found in EC2. */
export const reconcileReportSignal = defineSignal<[ReconcileReport]>('reconcileReport');

export const totalCostQuery = defineQuery<TotalCost, [AsOf?]>('totalCost');
export const runningQuery = defineQuery<ResourceView[], [AsOf?]>('running');
export const byTagQuery = defineQuery<ByTagView, [string, string, AsOf?]>('byTag');
export const resourceQuery = defineQuery<ResourceView | null, [string, AsOf?]>('resource');
export const summaryQuery = defineQuery<CostSummary, [({ tagKey?: string } & AsOf)?]>('summary');
export const reconciliationQuery = defineQuery<ReconciliationView | null>('reconciliation');

export const setBudgetUpdate = defineUpdate<BudgetView, [SetBudgetRequest]>('setBudget');
export const setRateUpdate = defineUpdate<{ type: string; microUsdPerHour: number; unit: 'resource' | 'GiB'; affected: number }, [SetRateRequest]>(
  'setRate',
);

function newState(project: string): TrackerState {
  return {
    project,
    resources: {},
    rates: {},
    budgets: {},
    alerts: [],
    rejected: [],
    counters: { accepted: 0, duplicates: 0, rejected: 0, updates: 0 },
    runs: 0,
    previousRuns: [],
  };
}

const iso = (t: number) => new Date(t).toISOString();

/**
 * Workflow time in epoch ms: in the sandbox the clock is the start of the current workflow task, the
 * same on every replay, so costs computed from it are deterministic.
 */
function workflowNow(): number {
  return new Date().getTime();
}

function asOfTime(opts: unknown): number {
  const v = typeof opts === 'object' && opts !== null ? (opts as { asOf?: unknown }).asOf : undefined;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : workflowNow();
}

function resourceView(r: TrackedResource, t: number): ResourceView {
  const rate = r.stoppedAt === undefined ? (r.segments[r.segments.length - 1]?.rate ?? null) : null;
  const micros = resourceMicros(r, t);
  const unpriced = isUnpriced(r);
  return {
    id: r.id,
    kind: r.kind,
    type: r.type,
    region: r.region,
    ...(r.sizeGiB !== undefined ? { sizeGiB: r.sizeGiB } : {}),
    tags: r.tags,
    startedAt: iso(r.startedAt),
    ...(r.stoppedAt !== undefined ? { stoppedAt: iso(r.stoppedAt) } : {}),
    running: r.stoppedAt === undefined,
    pricing: unpriced ? 'unpriced' : 'priced',
    ...(unpriced ? { unpricedReason: r.unpricedReason ?? 'no price known' } : {}),
    rateSource: r.rateSource,
    hourlyMicroUsd: rate,
    hourlyUsd: rate === null ? null : rate / 1_000_000,
    costMicroUsd: micros,
    costUsd: microsToUsd(micros),
    ...(r.orphan ? { orphan: true } : {}),
    ...(r.usage ? { usage: r.usage } : {}),
  };
}

function unpricedViews(rs: Iterable<TrackedResource>): UnpricedView[] {
  const out: UnpricedView[] = [];
  for (const r of rs) if (isUnpriced(r)) out.push({ id: r.id, kind: r.kind, type: r.type, reason: r.unpricedReason ?? 'no price known' });
  return out;
}

function group(rs: Iterable<TrackedResource>, t: number): CostGroup {
  const g: CostGroup = { resources: 0, running: 0, totalMicroUsd: 0, totalUsd: 0, burnMicroUsdPerHour: 0, unpriced: 0 };
  for (const r of rs) {
    g.resources++;
    if (r.stoppedAt === undefined) g.running++;
    g.totalMicroUsd += resourceMicros(r, t);
    g.burnMicroUsdPerHour += currentRate(r);
    if (isUnpriced(r)) g.unpriced++;
  }
  g.totalUsd = microsToUsd(g.totalMicroUsd);
  return g;
}

function matches(b: BudgetState, r: TrackedResource): boolean {
  return !b.tagFilter || r.tags[b.tagFilter.key] === b.tagFilter.value;
}

function windowKey(b: BudgetState, t: number): string {
  return b.window === 'total' ? 'total' : iso(monthBounds(t).start).slice(0, 7);
}

function budgetSpend(state: TrackerState, b: BudgetState, t: number): { spent: number; burn: number } {
  let spent = 0;
  let burn = 0;
  const from = b.window === 'monthly' ? monthBounds(t).start : undefined;
  for (const r of Object.values(state.resources)) {
    if (!matches(b, r)) continue;
    spent += from === undefined ? resourceMicros(r, t) : resourceMicrosBetween(r, from, t);
    burn += currentRate(r);
  }
  return { spent, burn };
}

/** When the burn rate takes the spend to the limit, or undefined when it never does at this rate. */
function crossingTime(spent: number, burn: number, limit: number, t: number): number | undefined {
  if (spent >= limit) return t;
  if (burn <= 0) return undefined;
  // Floating point is fine here: the loop re-checks the exact spend when the timer fires.
  return t + Math.ceil(((limit - spent) * MS_PER_HOUR) / burn);
}

function budgetView(state: TrackerState, b: BudgetState, t: number): BudgetView {
  const { spent, burn } = budgetSpend(state, b, t);
  const fired = b.firedWindow === windowKey(b, t);
  const projected = fired ? undefined : crossingTime(spent, burn, b.limitMicroUsd, t);
  return {
    name: b.name,
    limitUsd: b.limitMicroUsd / 1_000_000,
    window: b.window,
    action: b.action,
    ...(b.tagFilter ? { tagFilter: b.tagFilter } : {}),
    spentMicroUsd: spent,
    spentUsd: microsToUsd(spent),
    burnUsdPerHour: burn / 1_000_000,
    ...(projected !== undefined ? { projectedAt: iso(projected) } : {}),
    ...(b.firedAt !== undefined ? { firedAt: iso(b.firedAt) } : {}),
  };
}

function totals(state: TrackerState, t: number): TotalCost {
  const rs = Object.values(state.resources);
  const g = group(rs, t);
  return {
    project: state.project,
    asOf: iso(t),
    totalMicroUsd: g.totalMicroUsd,
    totalUsd: g.totalUsd,
    burnMicroUsdPerHour: g.burnMicroUsdPerHour,
    burnUsdPerHour: g.burnMicroUsdPerHour / 1_000_000,
    running: g.running,
    unpriced: unpricedViews(rs),
  };
}

function failureFromZod(err: z.ZodError): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: describeFailure(err) });
}

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
  const state: TrackerState = (opts.state as TrackerState | undefined) ?? newState(opts.project);
  state.runs++;
  let eventsThisRun = 0;
  let dirty = true;

  type Outcome = 'accepted' | 'duplicate' | { rejected: string };
  const count = (message: string, outcome: Outcome, raw: unknown) => {
    if (outcome === 'accepted') state.counters.accepted++;
    else if (outcome === 'duplicate') state.counters.duplicates++;
    else {
      const rawId = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
      const id = typeof rawId === 'string' ? rawId.slice(0, 256) : undefined;
      state.counters.rejected++;
      state.rejected.push({ at: iso(workflowNow()), message, reason: outcome.rejected.slice(0, 500), ...(id !== undefined ? { id } : {}) });
      if (state.rejected.length > opts.keepRejected) state.rejected.splice(0, state.rejected.length - opts.keepRejected);
      log.warn('cost tracker rejected a message', { message, reason: outcome.rejected, id });
    }
  };
  const received = () => {
    eventsThisRun++;
    dirty = true;
  };

  const rateFor = (r: Pick<TrackedResource, 'kind' | 'type' | 'region' | 'sizeGiB' | 'iops' | 'throughputMiBps'>, hourlyRate?: number) => {
    if (hourlyRate !== undefined) return { rate: usdToMicros(hourlyRate), source: 'override' as const, basis: `override $${hourlyRate}/h` };
    const set = state.rates[r.type];
    if (set) {
      const rate = set.unit === 'GiB' ? Math.round(set.microUsdPerHour * (r.sizeGiB ?? 0)) : set.microUsdPerHour;
      return { rate, source: 'set-rate' as const, basis: `setRate ${set.microUsdPerHour} µ$/h per ${set.unit}` };
    }
    const q = quote(r);
    return q.priced ? { rate: q.microUsdPerHour, source: 'table' as const, basis: q.basis } : { rate: null, source: 'unpriced' as const, reason: q.reason };
  };

  const stop = (r: TrackedResource, at: number) => {
    r.stoppedAt = at;
    const last = r.segments[r.segments.length - 1];
    if (last && last.to === undefined) last.to = at;
  };

  const startResource = (raw: unknown, orphan: boolean): Outcome => {
    const p = ResourceStartedSchema.safeParse(raw);
    if (!p.success) return { rejected: describeFailure(p.error) };
    const s = p.data;
    const now = workflowNow();
    const at = s.at ?? now;
    if (at > now + FUTURE_TOLERANCE_MS) return { rejected: `at ${iso(at)} is in the future` };
    const existing = state.resources[s.id];
    if (existing) {
      if (existing.orphan && !orphan) {
        // The creator's own report arrived after reconciliation registered the resource: adopt it.
        existing.orphan = false;
        existing.tags = { ...existing.tags, ...s.tags };
        return 'accepted';
      }
      if (existing.stoppedAt !== undefined && at > existing.stoppedAt) {
        // A stopped instance started again keeps its id: a new segment of its life.
        const price = rateFor(existing, s.hourlyRate);
        existing.segments.push({ from: at, rate: price.rate });
        delete existing.stoppedAt;
        return 'accepted';
      }
      return 'duplicate';
    }
    const price = rateFor(s, s.hourlyRate);
    state.resources[s.id] = {
      id: s.id,
      kind: s.kind,
      type: s.type,
      region: s.region,
      ...(s.sizeGiB !== undefined ? { sizeGiB: s.sizeGiB } : {}),
      ...(s.iops !== undefined ? { iops: s.iops } : {}),
      ...(s.throughputMiBps !== undefined ? { throughputMiBps: s.throughputMiBps } : {}),
      tags: s.tags,
      startedAt: at,
      rateSource: price.source,
      ...(price.rate === null ? { unpricedReason: price.reason } : {}),
      segments: [{ from: at, rate: price.rate }],
      ...(orphan ? { orphan: true } : {}),
    };
    if (price.rate === null) log.warn('resource is unpriced', { id: s.id, type: s.type, reason: price.reason });
    return 'accepted';
  };

  const stopResource = (raw: unknown): Outcome => {
    const p = ResourceStoppedSchema.safeParse(raw);
    if (!p.success) return { rejected: describeFailure(p.error) };
    const r = state.resources[p.data.id];
    if (!r) return { rejected: 'stop of an unknown resource id' };
    if (r.stoppedAt !== undefined) return 'duplicate';
    const now = workflowNow();
    const at = p.data.at ?? now;
    const from = r.segments[r.segments.length - 1]?.from ?? r.startedAt;
    if (at < from) return { rejected: `stop at ${iso(at)} is before the resource started (${iso(from)})` };
    if (at > now + FUTURE_TOLERANCE_MS) return { rejected: `at ${iso(at)} is in the future` };
    stop(r, at);
    return 'accepted';
  };

  // Handlers first, before any await, so no message that arrives with the first task is dropped.
  setHandler(resourceStartedSignal, (raw) => {
    received();
    count('resourceStarted', startResource(raw, false), raw);
  });
  setHandler(resourceStoppedSignal, (raw) => {
    received();
    count('resourceStopped', stopResource(raw), raw);
  });
  setHandler(resourceUsageSignal, (raw) => {
    received();
    const p = ResourceUsageSchema.safeParse(raw);
    if (!p.success) return count('resourceUsage', { rejected: describeFailure(p.error) }, raw);
    const r = state.resources[p.data.id];
    if (!r) return count('resourceUsage', { rejected: 'usage for an unknown resource id' }, raw);
    const { id: _id, at, ...metrics } = p.data;
    const u = (r.usage ??= { samples: 0, at: 0, latest: {}, average: {} });
    u.samples++;
    u.at = at ?? workflowNow();
    u.latest = metrics;
    for (const k of ['cpuPercent', 'memoryPercent', 'gpuPercent', 'networkBytes'] as const) {
      const v = metrics[k];
      if (v === undefined) continue;
      const prev = u.average[k];
      u.average[k] = prev === undefined ? v : prev * 0.8 + v * 0.2;
    }
    count('resourceUsage', 'accepted', raw);
  });
  setHandler(reconcileReportSignal, (raw) => {
    received();
    const p = ReconcileReportSchema.safeParse(raw);
    if (!p.success) return count('reconcileReport', { rejected: describeFailure(p.error) }, raw);
    const report = p.data;
    const orphans: string[] = [];
    const vanished: string[] = [];
    for (const o of report.orphans) {
      if (state.resources[o.id]) continue;
      const outcome = startResource(o, true);
      if (outcome === 'accepted') orphans.push(o.id);
      else if (outcome !== 'duplicate') log.warn('reconciliation found an orphan the tracker cannot record', { id: o.id, reason: outcome.rejected });
    }
    for (const v of report.vanished) {
      const r = state.resources[v.id];
      if (!r || r.stoppedAt !== undefined) continue;
      stop(r, Math.max(Math.min(report.at, workflowNow()), r.segments[r.segments.length - 1]?.from ?? r.startedAt));
      vanished.push(v.id);
    }
    state.reconciliation = { at: iso(report.at), regions: report.regions, checked: report.checked, orphans, vanished };
    if (orphans.length || vanished.length) log.warn('reconciliation changed the tracker', { orphans, vanished });
    count('reconcileReport', 'accepted', raw);
  });

  setHandler(totalCostQuery, (o) => totals(state, asOfTime(o)));
  setHandler(runningQuery, (o) => {
    const t = asOfTime(o);
    return Object.values(state.resources)
      .filter((r) => r.stoppedAt === undefined)
      .map((r) => resourceView(r, t));
  });
  setHandler(resourceQuery, (id, o) => {
    const r = typeof id === 'string' ? state.resources[id] : undefined;
    return r ? resourceView(r, asOfTime(o)) : null;
  });
  setHandler(byTagQuery, (key, value, o) => {
    const t = asOfTime(o);
    const rs = Object.values(state.resources).filter((r) => r.tags[key] === value);
    const g = group(rs, t);
    return {
      key,
      value,
      totalMicroUsd: g.totalMicroUsd,
      totalUsd: g.totalUsd,
      burnUsdPerHour: g.burnMicroUsdPerHour / 1_000_000,
      resources: rs.map((r) => resourceView(r, t)),
      unpriced: unpricedViews(rs),
    };
  });
  setHandler(summaryQuery, (o) => {
    const t = asOfTime(o);
    const rs = Object.values(state.resources);
    const byKind: Partial<Record<ResourceKind, TrackedResource[]>> = {};
    for (const r of rs) (byKind[r.kind] ??= []).push(r);
    const tagKey = typeof o === 'object' && o !== null && typeof o.tagKey === 'string' ? o.tagKey : undefined;
    let byTag: CostSummary['byTag'];
    if (tagKey !== undefined) {
      const groups: Record<string, TrackedResource[]> = {};
      for (const r of rs) (groups[r.tags[tagKey] ?? '(untagged)'] ??= []).push(r);
      byTag = { key: tagKey, groups: Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, group(v, t)])) };
    }
    return {
      ...totals(state, t),
      byKind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, group(v, t)])),
      ...(byTag ? { byTag } : {}),
      rejected: { count: state.counters.rejected, recent: state.rejected },
      counters: state.counters,
      runs: state.runs,
      previousRuns: state.previousRuns,
      budgets: Object.values(state.budgets).map((b) => budgetView(state, b, t)),
      alerts: state.alerts,
      ...(state.reconciliation ? { reconciliation: state.reconciliation } : {}),
    };
  });
  setHandler(reconciliationQuery, () => state.reconciliation ?? null);

  setHandler(
    setBudgetUpdate,
    (raw) => {
      const b = SetBudgetSchema.parse(raw);
      const now = workflowNow();
      state.budgets[b.name] = {
        name: b.name,
        limitMicroUsd: usdToMicros(b.limitUsd),
        window: b.window,
        action: b.action,
        ...(b.tagFilter ? { tagFilter: b.tagFilter } : {}),
        setAt: now,
      };
      state.counters.updates++;
      received();
      log.info('budget set', { name: b.name, limitUsd: b.limitUsd, window: b.window, action: b.action });
      return budgetView(state, state.budgets[b.name]!, now);
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
      const s = SetRateSchema.parse(raw);
      const now = workflowNow();
      const microUsdPerHour = usdToMicros(s.usdPerHour);
      state.rates[s.type] = { microUsdPerHour, unit: s.unit, setAt: now };
      let affected = 0;
      for (const r of Object.values(state.resources)) {
        if (r.type !== s.type || r.rateSource === 'override') continue;
        const rate = s.unit === 'GiB' ? Math.round(microUsdPerHour * (r.sizeGiB ?? 0)) : microUsdPerHour;
        if (isUnpriced(r)) {
          // Its cost was unknown, not zero: the rate applies to its whole life.
          for (const seg of r.segments) if (seg.rate === null) seg.rate = rate;
          delete r.unpricedReason;
        } else if (r.stoppedAt === undefined) {
          const last = r.segments[r.segments.length - 1];
          if (last) last.to = Math.max(now, last.from);
          r.segments.push({ from: Math.max(now, last?.from ?? now), rate });
        } else continue;
        r.rateSource = 'set-rate';
        affected++;
      }
      state.counters.updates++;
      received();
      return { type: s.type, microUsdPerHour, unit: s.unit, affected };
    },
    {
      validator: (raw) => {
        const p = SetRateSchema.safeParse(raw);
        if (!p.success) throw failureFromZod(p.error);
      },
    },
  );

  if (opts.searchAttributes) upsertSearchAttributes([{ key: SA.project, value: opts.project }]);

  const fire = async (b: BudgetState, spent: number, now: number) => {
    b.firedAt = now;
    b.firedWindow = windowKey(b, now);
    let outcome: string;
    if (b.action === 'stop-instances') {
      const targets = Object.values(state.resources).filter((r) => r.kind === 'instance' && r.stoppedAt === undefined && matches(b, r));
      const byRegion = new Map<string, string[]>();
      for (const r of targets) byRegion.set(r.region, [...(byRegion.get(r.region) ?? []), r.id]);
      const stopped: string[] = [];
      const failed: string[] = [];
      for (const [region, instanceIds] of byRegion) {
        try {
          const res = await aws.stopInstances.executeWithOptions({ summary: `budget ${b.name}: stop ${instanceIds.length} instance(s) in ${region}` }, [
            { region, instanceIds },
          ]);
          const at = workflowNow();
          for (const id of res.stopped) {
            const r = state.resources[id];
            if (r && r.stoppedAt === undefined) stop(r, at);
            stopped.push(id);
          }
        } catch (err) {
          failed.push(...instanceIds);
          log.error('budget action failed', { budget: b.name, region, error: describeFailure(err) });
        }
      }
      outcome = `stopped ${stopped.length ? stopped.join(', ') : 'no instances'}${failed.length ? `; could NOT stop ${failed.join(', ')}` : ''}`;
    } else if (b.action === 'cleanup') {
      // A budget never deletes by itself: it starts a cleanup of what it matches that waits for a
      // person to approve the plan (visible in the UI), and outlives this run if it continues-as-new.
      const targets = Object.values(state.resources).filter(
        (r) => (r.kind === 'instance' || r.kind === 'volume') && r.stoppedAt === undefined && matches(b, r),
      );
      const byRegion = new Map<string, string[]>();
      for (const r of targets) byRegion.set(r.region, [...(byRegion.get(r.region) ?? []), r.id]);
      const started: string[] = [];
      for (const [region, ids] of byRegion) {
        const workflowId = `cleanup/${region}/budget-${opts.project}-${b.name}-${b.firedWindow}`;
        try {
          await startChild<typeof cleanup>('cleanup', {
            workflowId,
            args: [{ region, selector: { ids }, dryRun: false, approvalThreshold: 0, approvalTimeout: '24h', costProject: opts.project }],
            parentClosePolicy: ParentClosePolicy.ABANDON,
            staticSummary: `Budget ${b.name} of ${opts.project} crossed: clean up ${ids.length} resource(s) once approved`,
          });
          started.push(workflowId);
        } catch (err) {
          log.error('budget cleanup could not start', { budget: b.name, region, error: describeFailure(err) });
        }
      }
      outcome = started.length
        ? `started ${started.join(', ')}: waiting for approval, nothing is deleted until someone approves the plan`
        : 'alerted: no running instance or volume matches the budget';
    } else {
      outcome = 'alerted';
    }
    const alert: AlertRecord = { at: iso(now), budget: b.name, action: b.action, spentUsd: microsToUsd(spent), limitUsd: b.limitMicroUsd / 1_000_000, outcome };
    state.alerts.push(alert);
    if (state.alerts.length > KEEP_ALERTS) state.alerts.splice(0, state.alerts.length - KEEP_ALERTS);
    if (opts.searchAttributes) upsertSearchAttributes([{ key: SA.budgetExceeded, value: true }]);
    upsertMemo({ budgetAlert: alert });
    log.warn('budget crossed', { ...alert });
  };

  for (;;) {
    const now = workflowNow();
    let wakeAt: number | undefined;
    let wakeWhy = '';
    for (const b of Object.values(state.budgets)) {
      if (b.firedWindow === windowKey(b, now)) {
        if (b.window === 'monthly' && monthBounds(now).next < (wakeAt ?? Infinity)) {
          wakeAt = monthBounds(now).next;
          wakeWhy = `monthly budget ${b.name} re-arms`;
        }
        continue;
      }
      const { spent, burn } = budgetSpend(state, b, now);
      if (spent >= b.limitMicroUsd) {
        await fire(b, spent, now);
        continue;
      }
      let at = crossingTime(spent, burn, b.limitMicroUsd, now);
      if (b.window === 'monthly') at = Math.min(at ?? Infinity, monthBounds(now).next);
      if (at !== undefined && at < (wakeAt ?? Infinity)) {
        wakeAt = at;
        wakeWhy = `budget ${b.name} reaches $${b.limitMicroUsd / 1_000_000}`;
      }
    }

    const t = workflowNow();
    const total = totals(state, t);
    const due = !state.costAttribute || t - state.costAttribute.at >= opts.costAttributeIntervalMs;
    if (due && state.costAttribute?.usd !== total.totalUsd) {
      if (opts.searchAttributes) upsertSearchAttributes([{ key: SA.costUsd, value: total.totalUsd }]);
      state.costAttribute = { at: t, usd: total.totalUsd };
    }
    if (total.burnMicroUsdPerHour > 0 || (state.costAttribute && state.costAttribute.usd !== total.totalUsd)) {
      const refresh = (state.costAttribute?.at ?? t) + opts.costAttributeIntervalMs;
      if (refresh < (wakeAt ?? Infinity)) {
        wakeAt = refresh;
        wakeWhy = 'refresh the cost search attribute';
      }
    }
    setCurrentDetails(
      `**${state.project}**: $${total.totalUsd.toFixed(2)} so far, burning $${total.burnUsdPerHour.toFixed(2)}/h; ` +
        `${total.running} running${total.unpriced.length ? `, ${total.unpriced.length} **unpriced**` : ''}` +
        `${state.counters.rejected ? `, ${state.counters.rejected} rejected messages` : ''} (as of ${iso(t)})`,
    );

    const shouldContinueAsNew = () => workflowInfo().continueAsNewSuggested || eventsThisRun >= opts.continueAsNewAfterEvents;
    if (shouldContinueAsNew()) break;
    dirty = false;
    const wake = () => dirty || shouldContinueAsNew();
    if (wakeAt === undefined) await condition(wake);
    else await condition(wake, Math.max(1, wakeAt - workflowNow()), { summary: wakeWhy });
  }

  await condition(allHandlersFinished);
  state.previousRuns.push({ runId: workflowInfo().runId, events: eventsThisRun });
  if (state.previousRuns.length > 20) state.previousRuns.splice(0, state.previousRuns.length - 20);
  log.info('cost tracker continuing as new', { runs: state.runs, events: eventsThisRun, resources: Object.keys(state.resources).length });
  await continueAsNew<typeof costTracker>({ ...opts, state });
}

/**
 * One reconciliation of a project's cost tracker with EC2 (what the hourly Schedule runs): lists the
 * managed resources, and reports orphans and vanished resources to the tracker, which records them
 * and keeps the report for `reconciliationQuery` / `summaryQuery`. Read-only in EC2, so a retried or
 * overlapping run is harmless; on cancel it stops after the current step.
 */
export async function reconcileCost(request: ReconcileRequest): Promise<ReconcileOutcome> {
  const parsed = ReconcileInputSchema.safeParse(request);
  if (!parsed.success) throw failureFromZod(parsed.error);
  const { project, regions } = parsed.data;
  setCurrentDetails(`Comparing EC2 in ${regions.join(', ')} with the cost tracker of **${project}**`);
  const outcome = await reconcileActivities.reconcileProject.executeWithOptions({ summary: `reconcile ${project} in ${regions.join(', ')}` }, [
    { project, regions },
  ]);
  setCurrentDetails(`${outcome.checked} managed resources checked: ${outcome.orphans.length} orphans, ${outcome.vanished.length} vanished`);
  return outcome;
}
