/**
 * The cost tracker's ledger: its whole state and the state transition each message makes. Pure
 * and Temporal-free: time comes in as `now` (the workflow passes workflow time), and warnings go to
 * the {@link LedgerLog} the caller hands in. The workflow (`workflows/cost-tracker.ts`) only
 * registers handlers that call these functions; the views over the state are in `./views.ts`.
 *
 * Idempotent per message: a repeated start or stop of the same resource is a `duplicate` and
 * changes nothing; a malformed or impossible message is `rejected` with a reason, never thrown.
 *
 * @module
 */
import {
  ReconcileReportSchema,
  ResourceStartedSchema,
  ResourceStoppedSchema,
  ResourceUsageSchema,
  SetBudgetSchema,
  SetRateSchema,
  type AlertRecord,
  type BudgetView,
  type SetRateResult,
} from '../contracts/cost.js';
import { isUnpriced, usdToMicros, type TrackedResource } from '../cost-model.js';
import { describeFailure } from '../errors/kinds.js';
import { quote } from '../pricing.js';
import type { CarriedSize } from './packing.js';
import { MAX_REJECTED_BYTES, SEGMENT_BYTES, USAGE_BYTES } from './packing.js';
import { utf8Bytes } from '../utf8.js';
import type { TrackerState } from './state.js';
import { budgetView, iso } from './views.js';

export { newTrackerState, type BudgetState, type TrackerState } from './state.js';

/** A signal's `at` may run ahead of workflow time by this much (clock skew between senders). */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;
/** No AWS resource started before EC2 itself (2006-08-25): an earlier start is a forged or broken signal. */
export const EC2_LAUNCH_MS = Date.UTC(2006, 7, 25);
/**
 * A start may lie this far back at most (three years). Without a floor one `resourceStarted` with
 * `at: 0` bills 56 years at once, crosses every budget and fires its stop or cleanup action.
 */
export const MAX_START_AGE_MS = 3 * 366 * 86_400_000;

/** The earliest start the ledger accepts at `now` (reconciliation clamps orphans' creation times to it). */
export function earliestStart(now: number): number {
  return Math.max(EC2_LAUNCH_MS, now - MAX_START_AGE_MS);
}

/** Alerts kept in the state (the oldest are dropped). */
export const KEEP_ALERTS = 50;
/** Continued-as-new runs remembered in the state. */
export const KEEP_PREVIOUS_RUNS = 20;

/** What a run can still carry into the next ({@link CarriedSize}); absent, nothing is counted or refused. */
export type Capacity = Pick<CarriedSize, 'admit' | 'take' | 'add'>;

/** What a message did to the ledger. */
export type Outcome = 'accepted' | 'duplicate' | { rejected: string };

/** Where the ledger's warnings go (the workflow passes its replay-aware `log`). */
export interface LedgerLog {
  warn(message: string, attrs: Record<string, unknown>): void;
}

/** Counts a message's outcome; a rejection is also listed (the last `keepRejected`) and logged. */
export function countOutcome(state: TrackerState, message: string, outcome: Outcome, raw: unknown, now: number, keepRejected: number, logger: LedgerLog): void {
  if (outcome === 'accepted') state.counters.accepted++;
  else if (outcome === 'duplicate') state.counters.duplicates++;
  else {
    const rawId = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
    const id = typeof rawId === 'string' ? rawId.slice(0, 256) : undefined;
    state.counters.rejected++;
    state.rejected.push({ at: iso(now), message, reason: outcome.rejected.slice(0, 500), ...(id !== undefined ? { id } : {}) });
    if (state.rejected.length > keepRejected) state.rejected.splice(0, state.rejected.length - keepRejected);
    // However many are kept, the list stays small enough to carry into the next run.
    let bytes = utf8Bytes(JSON.stringify(state.rejected));
    while (bytes > MAX_REJECTED_BYTES && state.rejected.length > 1) bytes -= utf8Bytes(JSON.stringify(state.rejected.shift())) + 1;
    logger.warn('cost tracker rejected a message', { message, reason: outcome.rejected, id });
  }
}

type PriceInput = Pick<TrackedResource, 'kind' | 'type' | 'region' | 'sizeGiB' | 'iops' | 'throughputMiBps'>;
type Price = { rate: number; source: 'override' | 'set-rate' | 'table'; basis: string } | { rate: null; source: 'unpriced'; reason: string };

/** A resource's rate: its own override, else the type's `setRate`, else the price table (else unpriced). */
export function rateFor(state: TrackerState, r: PriceInput, hourlyRate?: number): Price {
  if (hourlyRate !== undefined) return { rate: usdToMicros(hourlyRate), source: 'override', basis: `override $${hourlyRate}/h` };
  const set = state.rates[r.type];
  if (set) {
    const rate = set.unit === 'GiB' ? Math.round(set.microUsdPerHour * (r.sizeGiB ?? 0)) : set.microUsdPerHour;
    return { rate, source: 'set-rate', basis: `setRate ${set.microUsdPerHour} µ$/h per ${set.unit}` };
  }
  const q = quote(r);
  return q.priced ? { rate: q.microUsdPerHour, source: 'table', basis: q.basis } : { rate: null, source: 'unpriced', reason: q.reason };
}

/** Ends the resource's life (and its open segment) at `at`. */
export function stopAt(r: TrackedResource, at: number): void {
  r.stoppedAt = at;
  const last = r.segments[r.segments.length - 1];
  if (last && last.to === undefined) last.to = at;
}

/** The start of the resource's current segment (its start when it has none). */
function segmentStart(r: TrackedResource): number {
  return r.segments[r.segments.length - 1]?.from ?? r.startedAt;
}

/**
 * `resourceStarted` (or an orphan reconciliation found): a new resource, a stopped one started
 * again (a new segment), the creator's own report of an orphan (adopted), or a duplicate.
 */
export function startResource(state: TrackerState, raw: unknown, orphan: boolean, now: number, logger: LedgerLog, capacity?: Capacity): Outcome {
  const p = ResourceStartedSchema.safeParse(raw);
  if (!p.success) return { rejected: describeFailure(p.error) };
  const s = p.data;
  const at = s.at ?? now;
  if (at > now + FUTURE_TOLERANCE_MS) return { rejected: `at ${iso(at)} is in the future` };
  if (at < earliestStart(now)) return { rejected: `at ${iso(at)} is before the earliest start accepted (${iso(earliestStart(now))})` };
  const existing = state.resources[s.id];
  if (existing) {
    if (existing.orphan && !orphan) {
      // The creator's own report arrived after reconciliation registered the resource: adopt it.
      existing.orphan = false;
      existing.tags = { ...existing.tags, ...s.tags };
      capacity?.add(utf8Bytes(JSON.stringify(s.tags)));
      return 'accepted';
    }
    if (existing.stoppedAt !== undefined && at > existing.stoppedAt) {
      // A stopped instance started again keeps its id: a new segment of its life.
      const price = rateFor(state, existing, s.hourlyRate);
      existing.segments.push({ from: at, rate: price.rate });
      delete existing.stoppedAt;
      capacity?.add(SEGMENT_BYTES);
      return 'accepted';
    }
    return 'duplicate';
  }
  const full = capacity?.admit(s);
  if (full !== undefined) return { rejected: full };
  const price = rateFor(state, s, s.hourlyRate);
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
  if (price.rate === null) logger.warn('resource is unpriced', { id: s.id, type: s.type, reason: price.reason });
  return 'accepted';
}

/** `resourceStopped`: ends a known running resource's life at `at` (default now). */
export function stopResource(state: TrackerState, raw: unknown, now: number): Outcome {
  const p = ResourceStoppedSchema.safeParse(raw);
  if (!p.success) return { rejected: describeFailure(p.error) };
  const r = state.resources[p.data.id];
  if (!r) return { rejected: 'stop of an unknown resource id' };
  if (r.stoppedAt !== undefined) return 'duplicate';
  const at = p.data.at ?? now;
  const from = segmentStart(r);
  if (at < from) return { rejected: `stop at ${iso(at)} is before the resource started (${iso(from)})` };
  if (at > now + FUTURE_TOLERANCE_MS) return { rejected: `at ${iso(at)} is in the future` };
  stopAt(r, at);
  return 'accepted';
}

/** `resourceUsage`: the latest sample of a resource's metrics and their moving averages. */
export function recordUsage(state: TrackerState, raw: unknown, now: number, capacity?: Capacity): Outcome {
  const p = ResourceUsageSchema.safeParse(raw);
  if (!p.success) return { rejected: describeFailure(p.error) };
  const r = state.resources[p.data.id];
  if (!r) return { rejected: 'usage for an unknown resource id' };
  const full = r.usage ? undefined : capacity?.take(USAGE_BYTES);
  if (full !== undefined) return { rejected: full };
  const { id: _id, at, ...metrics } = p.data;
  const u = (r.usage ??= { samples: 0, at: 0, latest: {}, average: {} });
  u.samples++;
  u.at = at ?? now;
  u.latest = metrics;
  for (const k of ['cpuPercent', 'memoryPercent', 'gpuPercent', 'networkBytes'] as const) {
    const v = metrics[k];
    if (v === undefined) continue;
    const prev = u.average[k];
    u.average[k] = prev === undefined ? v : prev * 0.8 + v * 0.2;
  }
  return 'accepted';
}

/**
 * `reconcileReport`: registers the orphans the tracker still does not know (from their creation
 * time) and stops the vanished resources it still thinks run, each re-checked against the state,
 * so a start or stop racing with the report is neither lost nor counted twice.
 */
export function applyReconcileReport(state: TrackerState, raw: unknown, now: number, logger: LedgerLog, capacity?: Capacity): Outcome {
  const p = ReconcileReportSchema.safeParse(raw);
  if (!p.success) return { rejected: describeFailure(p.error) };
  const report = p.data;
  const orphans: string[] = [];
  const vanished: string[] = [];
  for (const o of report.orphans) {
    if (state.resources[o.id]) continue;
    const outcome = startResource(state, o, true, now, logger, capacity);
    if (outcome === 'accepted') orphans.push(o.id);
    else if (outcome !== 'duplicate') logger.warn('reconciliation found an orphan the tracker cannot record', { id: o.id, reason: outcome.rejected });
  }
  for (const v of report.vanished) {
    const r = state.resources[v.id];
    if (!r || r.stoppedAt !== undefined) continue;
    stopAt(r, Math.max(Math.min(report.at, now), segmentStart(r)));
    vanished.push(v.id);
  }
  state.reconciliation = { at: iso(report.at), regions: report.regions, checked: report.checked, orphans, vanished };
  if (orphans.length || vanished.length) logger.warn('reconciliation changed the tracker', { orphans, vanished });
  return 'accepted';
}

/** `setBudget` (already validated): sets or replaces a budget by name; returns its view now. */
export function setBudget(state: TrackerState, raw: unknown, now: number): BudgetView {
  const b = SetBudgetSchema.parse(raw);
  state.budgets[b.name] = {
    name: b.name,
    limitMicroUsd: usdToMicros(b.limitUsd),
    window: b.window,
    action: b.action,
    ...(b.tagFilter ? { tagFilter: b.tagFilter } : {}),
    setAt: now,
  };
  state.counters.updates++;
  return budgetView(state, state.budgets[b.name]!, now);
}

/**
 * `setRate` (already validated): the type's rate from now on. An unpriced resource of the type
 * gets it for its whole life (its cost was unknown, not zero); a running priced one gets a new
 * segment from now; a stopped priced one, or one with its own override, keeps its rate.
 */
export function setRate(state: TrackerState, raw: unknown, now: number, capacity?: Capacity): SetRateResult {
  const s = SetRateSchema.parse(raw);
  const microUsdPerHour = usdToMicros(s.usdPerHour);
  state.rates[s.type] = { microUsdPerHour, unit: s.unit, setAt: now };
  let affected = 0;
  for (const r of Object.values(state.resources)) {
    if (r.type !== s.type || r.rateSource === 'override') continue;
    const rate = s.unit === 'GiB' ? Math.round(microUsdPerHour * (r.sizeGiB ?? 0)) : microUsdPerHour;
    if (isUnpriced(r)) {
      for (const seg of r.segments) if (seg.rate === null) seg.rate = rate;
      delete r.unpricedReason;
    } else if (r.stoppedAt === undefined) {
      const last = r.segments[r.segments.length - 1];
      if (last) last.to = Math.max(now, last.from);
      r.segments.push({ from: Math.max(now, last?.from ?? now), rate });
      capacity?.add(SEGMENT_BYTES);
    } else continue;
    r.rateSource = 'set-rate';
    affected++;
  }
  state.counters.updates++;
  return { type: s.type, microUsdPerHour, unit: s.unit, affected };
}

/** Keeps an alert (the last {@link KEEP_ALERTS}). */
export function recordAlert(state: TrackerState, alert: AlertRecord): void {
  state.alerts.push(alert);
  if (state.alerts.length > KEEP_ALERTS) state.alerts.splice(0, state.alerts.length - KEEP_ALERTS);
}

/** Remembers a run that continues as new (the last {@link KEEP_PREVIOUS_RUNS}). */
export function recordContinuedRun(state: TrackerState, runId: string, events: number): void {
  state.previousRuns.push({ runId, events });
  if (state.previousRuns.length > KEEP_PREVIOUS_RUNS) state.previousRuns.splice(0, state.previousRuns.length - KEEP_PREVIOUS_RUNS);
}
