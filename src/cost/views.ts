/**
 * What the cost tracker's queries answer, computed from its state at a time `t`: resource views,
 * totals and groups, budget spend and when the burn rate crosses a budget. Pure and Temporal-free.
 *
 * @module
 */
import type {
  AsOf,
  BudgetView,
  ByTagView,
  CostGroup,
  CostSummary,
  ResourceKind,
  ResourceView,
  SummaryOptions,
  TotalCost,
  UnpricedView,
} from '../contracts/cost.js';
import { MS_PER_HOUR, currentRate, isUnpriced, monthBounds, resourceMicros, resourceMicrosBetween, type TrackedResource } from '../cost-model.js';
import { microsToUsd } from '../pricing.js';
import type { ArchiveGroup, BudgetState, TrackerState } from './state.js';
import { archivedSpend } from './compaction.js';

export const iso = (t: number): string => new Date(t).toISOString();

/** The time a query asked for (`asOf`, epoch ms), or `now` when it asked for none or nonsense. */
export function asOfTime(opts: AsOf | undefined | unknown, now: number): number {
  const v = typeof opts === 'object' && opts !== null ? (opts as { asOf?: unknown }).asOf : undefined;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : now;
}

export function resourceView(r: TrackedResource, t: number): ResourceView {
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

export function unpricedViews(rs: Iterable<TrackedResource>): UnpricedView[] {
  const out: UnpricedView[] = [];
  for (const r of rs) if (isUnpriced(r)) out.push({ id: r.id, kind: r.kind, type: r.type, reason: r.unpricedReason ?? 'no price known' });
  return out;
}

export function group(rs: Iterable<TrackedResource>, t: number): CostGroup {
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

/** A group with the folded resources of the same group added (they are stopped: no burn, priced). */
function withArchived(g: CostGroup, a: ArchiveGroup | undefined): CostGroup {
  if (!a) return g;
  const totalMicroUsd = g.totalMicroUsd + a.microUsd;
  return { ...g, resources: g.resources + a.resources, totalMicroUsd, totalUsd: microsToUsd(totalMicroUsd) };
}

/** Whether a budget counts the resource (its tag filter, if any, matches). */
export function matches(b: BudgetState, r: TrackedResource): boolean {
  return !b.tagFilter || r.tags[b.tagFilter.key] === b.tagFilter.value;
}

/** The budget window `t` falls in: `total`, or the UTC month `YYYY-MM` of a monthly budget. */
export function windowKey(b: BudgetState, t: number): string {
  return b.window === 'total' ? 'total' : iso(monthBounds(t).start).slice(0, 7);
}

/** What the budget's resources cost in its current window (µ$) and burn now (µ$/h). */
export function budgetSpend(state: TrackerState, b: BudgetState, t: number): { spent: number; burn: number } {
  let spent = 0;
  let burn = 0;
  const from = b.window === 'monthly' ? monthBounds(t).start : undefined;
  for (const r of Object.values(state.resources)) {
    if (!matches(b, r)) continue;
    spent += from === undefined ? resourceMicros(r, t) : resourceMicrosBetween(r, from, t);
    burn += currentRate(r);
  }
  // Resources folded into the archive still count in the window they were spent in.
  return { spent: spent + archivedSpend(state, b, t), burn };
}

/** When the burn rate takes the spend to the limit, or undefined when it never does at this rate. */
export function crossingTime(spent: number, burn: number, limit: number, t: number): number | undefined {
  if (spent >= limit) return t;
  if (burn <= 0) return undefined;
  // Floating point is fine here: the loop re-checks the exact spend when the timer fires.
  return t + Math.ceil(((limit - spent) * MS_PER_HOUR) / burn);
}

/** A moment the tracker must wake at, and why (the timer's summary). */
export interface Wake {
  at: number;
  why: string;
}

/** The earlier of two wake-ups; on a tie, the first. */
export function earlier(a: Wake | undefined, b: Wake | undefined): Wake | undefined {
  if (b === undefined) return a;
  return b.at < (a?.at ?? Infinity) ? b : a;
}

/**
 * Where a budget stands at `now`: `due` (its spend reached the limit in a window it has not fired
 * in: act now), or not yet, with when to look again (the crossing at this burn rate, a monthly
 * budget's next month), if ever.
 */
export function checkBudget(state: TrackerState, b: BudgetState, now: number): { due: true; spent: number } | { due: false; wake?: Wake } {
  if (b.firedWindow === windowKey(b, now)) {
    const next = monthBounds(now).next;
    return b.window === 'monthly' ? { due: false, wake: { at: next, why: `monthly budget ${b.name} re-arms` } } : { due: false };
  }
  const { spent, burn } = budgetSpend(state, b, now);
  if (spent >= b.limitMicroUsd) return { due: true, spent };
  let at = crossingTime(spent, burn, b.limitMicroUsd, now);
  if (b.window === 'monthly') at = Math.min(at ?? Infinity, monthBounds(now).next);
  return at === undefined ? { due: false } : { due: false, wake: { at, why: `budget ${b.name} reaches $${b.limitMicroUsd / 1_000_000}` } };
}

export function budgetView(state: TrackerState, b: BudgetState, t: number): BudgetView {
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

export function totals(state: TrackerState, t: number): TotalCost {
  const rs = Object.values(state.resources);
  const g = withArchived(group(rs, t), state.archive);
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

/** The resources still running. */
export function runningView(state: TrackerState, t: number): ResourceView[] {
  return Object.values(state.resources)
    .filter((r) => r.stoppedAt === undefined)
    .map((r) => resourceView(r, t));
}

/** The resources tagged `key=value`, with their total and burn rate. */
export function byTagView(state: TrackerState, key: string, value: string, t: number): ByTagView {
  const rs = Object.values(state.resources).filter((r) => r.tags[key] === value);
  const g = withArchived(group(rs, t), state.archive?.byTag[`${key}=${value}`]);
  return {
    key,
    value,
    totalMicroUsd: g.totalMicroUsd,
    totalUsd: g.totalUsd,
    burnUsdPerHour: g.burnMicroUsdPerHour / 1_000_000,
    resources: rs.map((r) => resourceView(r, t)),
    folded: state.archive?.byTag[`${key}=${value}`]?.resources ?? 0,
    unpriced: unpricedViews(rs),
  };
}

/** Everything at once: totals, by kind (and by one tag key), budgets, alerts, rejections, runs. */
export function summaryView(state: TrackerState, opts: SummaryOptions | undefined, t: number): CostSummary {
  const rs = Object.values(state.resources);
  const byKind: Partial<Record<ResourceKind, TrackedResource[]>> = {};
  for (const r of rs) (byKind[r.kind] ??= []).push(r);
  for (const k of Object.keys(state.archive?.byKind ?? {}) as ResourceKind[]) byKind[k] ??= [];
  const tagKey = typeof opts === 'object' && opts !== null && typeof opts.tagKey === 'string' ? opts.tagKey : undefined;
  let byTag: CostSummary['byTag'];
  if (tagKey !== undefined) {
    const groups: Record<string, TrackedResource[]> = {};
    for (const r of rs) (groups[r.tags[tagKey] ?? '(untagged)'] ??= []).push(r);
    for (const pair of Object.keys(state.archive?.byTag ?? {})) if (pair.startsWith(`${tagKey}=`)) groups[pair.slice(tagKey.length + 1)] ??= [];
    byTag = {
      key: tagKey,
      groups: Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, withArchived(group(v, t), state.archive?.byTag[`${tagKey}=${k}`])])),
    };
  }
  return {
    ...totals(state, t),
    byKind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, withArchived(group(v, t), state.archive?.byKind[k])])),
    ...(byTag ? { byTag } : {}),
    rejected: { count: state.counters.rejected, recent: state.rejected },
    counters: state.counters,
    runs: state.runs,
    previousRuns: state.previousRuns,
    budgets: Object.values(state.budgets).map((b) => budgetView(state, b, t)),
    alerts: state.alerts,
    ...(state.reconciliation ? { reconciliation: state.reconciliation } : {}),
  };
}

/** The run's current details line in the UI. */
export function detailsLine(state: TrackerState, total: TotalCost, t: number): string {
  return (
    `**${state.project}**: $${total.totalUsd.toFixed(2)} so far, burning $${total.burnUsdPerHour.toFixed(2)}/h; ` +
    `${total.running} running${total.unpriced.length ? `, ${total.unpriced.length} **unpriced**` : ''}` +
    `${state.counters.rejected ? `, ${state.counters.rejected} rejected messages` : ''} (as of ${iso(t)})`
  );
}
