/**
 * The cost tracker's arithmetic, shared by the ledger (which the workflow runs in its sandbox:
 * plain functions only), the CLI and the tests. The message schemas are in `contracts/cost.ts`.
 *
 * Money is integer micro-dollars (µ$) and rates integer µ$ per hour. A segment of a resource's life
 * at one rate costs floor(rate × ms / 3,600,000) µ$, computed without leaving the safe-integer
 * range, so a total is an exact sum that anyone can recompute.
 */
import type { RateSource, ResourceKind, UsageStats } from './contracts/cost.js';
import { usdToMicros } from './pricing.js';

// Moved to the contract; re-exported while other families' modules still import them from here.
export { PROJECT_TAG, ProjectSchema } from './contracts/cost.js';

export const MS_PER_HOUR = 3_600_000;

/** floor(a / b) for non-negative safe integers, exact even where a / b rounds up in floating point. */
export function idiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q -= 1;
  else if ((q + 1) * b <= a) q += 1;
  return q;
}

/** µ$ for `ms` milliseconds at `rate` µ$/h, floored to the µ$. */
export function segmentMicros(rate: number, ms: number): number {
  if (ms <= 0 || rate <= 0) return 0;
  const hours = Math.floor(ms / MS_PER_HOUR);
  const rest = ms - hours * MS_PER_HOUR;
  return rate * hours + idiv(rate * rest, MS_PER_HOUR);
}

/** One stretch of a resource's life at one rate (`null`: unpriced). */
export interface Segment {
  from: number;
  to?: number;
  rate: number | null;
}

export interface TrackedResource {
  id: string;
  kind: ResourceKind;
  type: string;
  region: string;
  sizeGiB?: number;
  iops?: number;
  throughputMiBps?: number;
  tags: Record<string, string>;
  startedAt: number;
  stoppedAt?: number;
  /** Where the current rate came from. */
  rateSource: RateSource;
  unpricedReason?: string;
  segments: Segment[];
  /** Registered by reconciliation rather than by whoever made it. */
  orphan?: boolean;
  usage?: UsageStats;
}

/** µ$ a resource has cost up to `t` (its stop time at the latest). */
export function resourceMicros(r: TrackedResource, t: number): number {
  let sum = 0;
  for (const s of r.segments) {
    if (s.rate === null) continue;
    const end = Math.min(s.to ?? r.stoppedAt ?? t, t);
    sum += segmentMicros(s.rate, end - s.from);
  }
  return sum;
}

/** µ$ a resource cost between `from` and `to` (for a budget window). */
export function resourceMicrosBetween(r: TrackedResource, from: number, to: number): number {
  let sum = 0;
  for (const s of r.segments) {
    if (s.rate === null) continue;
    const start = Math.max(s.from, from);
    const end = Math.min(s.to ?? r.stoppedAt ?? to, to);
    sum += segmentMicros(s.rate, end - start);
  }
  return sum;
}

/** The current µ$/h of a running resource; 0 when stopped or unpriced. */
export function currentRate(r: TrackedResource): number {
  if (r.stoppedAt !== undefined) return 0;
  return r.segments[r.segments.length - 1]?.rate ?? 0;
}

export function isUnpriced(r: TrackedResource): boolean {
  return r.segments.some((s) => s.rate === null);
}

/** Start of the UTC calendar month containing `t`, and of the next one. */
export function monthBounds(t: number): { start: number; next: number } {
  const d = new Date(t);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), next: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

export { usdToMicros };
