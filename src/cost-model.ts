/**
 * The cost tracker's message schemas and its arithmetic, shared by the workflow (which runs it in
 * the sandbox: zod and plain functions only), the activities that signal it, the CLI and the tests.
 *
 * Money is integer micro-dollars (µ$) and rates integer µ$ per hour. A segment of a resource's life
 * at one rate costs floor(rate × ms / 3,600,000) µ$, computed without leaving the safe-integer
 * range, so a total is an exact sum that anyone can recompute.
 */
import { z } from 'zod';
import { RegionSchema } from './config.js';
import { ResourceKind, usdToMicros } from './pricing.js';

export const MS_PER_HOUR = 3_600_000;
/** The tag naming a managed resource's project (absent: `default`). */
export const PROJECT_TAG = 'trainctl:project';
/** Above this an hourly rate is a typo; it also keeps rate × ms within Number.MAX_SAFE_INTEGER. */
export const MAX_USD_PER_HOUR = 2_000;

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

/** Epoch milliseconds, or an ISO-8601 time with a zone. */
export const TimestampSchema = z
  .union([z.number().int().nonnegative(), z.iso.datetime({ offset: true })])
  .transform((v) => (typeof v === 'number' ? v : Date.parse(v)));

const IdSchema = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters');
const ResourceTagsSchema = z
  .record(z.string().min(1).max(128), z.string().max(256))
  .refine((t) => Object.keys(t).length <= 50, 'at most 50 tags')
  .default({});
const UsdPerHourSchema = z
  .number()
  .finite()
  .nonnegative('must not be negative')
  .max(MAX_USD_PER_HOUR, `must be at most $${MAX_USD_PER_HOUR}/h`);

export const ResourceStartedSchema = z.object({
  id: IdSchema,
  kind: z.enum(ResourceKind),
  type: z.string().min(1).max(64),
  sizeGiB: z.number().finite().positive('must be positive').max(10_000_000).optional(),
  iops: z.number().int().positive().max(1_000_000).optional(),
  throughputMiBps: z.number().int().positive().max(100_000).optional(),
  region: RegionSchema,
  tags: ResourceTagsSchema,
  at: TimestampSchema.optional(),
  /** USD per hour, overriding the price table for this resource. */
  hourlyRate: UsdPerHourSchema.optional(),
});
export type ResourceStarted = z.input<typeof ResourceStartedSchema>;

export const ResourceStoppedSchema = z.object({ id: IdSchema, at: TimestampSchema.optional() });
export type ResourceStopped = z.input<typeof ResourceStoppedSchema>;

const PercentSchema = z.number().finite().min(0).max(100);
export const ResourceUsageSchema = z
  .object({
    id: IdSchema,
    cpuPercent: PercentSchema.optional(),
    memoryPercent: PercentSchema.optional(),
    gpuPercent: PercentSchema.optional(),
    networkBytes: z.number().finite().nonnegative().optional(),
    at: TimestampSchema.optional(),
  })
  .refine((u) => u.cpuPercent !== undefined || u.memoryPercent !== undefined || u.gpuPercent !== undefined || u.networkBytes !== undefined, {
    message: 'carries no metric',
  });
export type ResourceUsage = z.input<typeof ResourceUsageSchema>;

export const BudgetWindow = { total: 'total', monthly: 'monthly' } as const;
export type BudgetWindow = (typeof BudgetWindow)[keyof typeof BudgetWindow];
export const BudgetAction = { alert: 'alert', stopInstances: 'stop-instances', cleanup: 'cleanup' } as const;
export type BudgetAction = (typeof BudgetAction)[keyof typeof BudgetAction];

export const SetBudgetSchema = z.object({
  name: z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -').default('default'),
  limitUsd: z.number().finite().positive('must be more than $0').max(1_000_000_000),
  window: z.enum(BudgetWindow).default('total'),
  action: z.enum(BudgetAction).default('alert'),
  tagFilter: z.object({ key: z.string().min(1).max(128), value: z.string().max(256) }).optional(),
});
export type SetBudgetRequest = z.input<typeof SetBudgetSchema>;

export const SetRateSchema = z.object({
  type: z.string().min(1).max(64),
  usdPerHour: UsdPerHourSchema,
  /** `GiB`: the rate is per GiB of the resource's size (storage); `resource`: per resource. */
  unit: z.enum(['resource', 'GiB']).default('resource'),
});
export type SetRateRequest = z.input<typeof SetRateSchema>;

export const ReconcileReportSchema = z.object({
  at: TimestampSchema,
  regions: z.array(RegionSchema),
  /** Managed resources in EC2 the tracker did not know when the reconciler looked. */
  orphans: z.array(ResourceStartedSchema),
  /** Tracked resources EC2 no longer has (or has stopped). */
  vanished: z.array(z.object({ id: IdSchema, state: z.string() })),
  checked: z.number().int().nonnegative(),
});
export type ReconcileReport = z.input<typeof ReconcileReportSchema>;

/** One stretch of a resource's life at one rate (`null`: unpriced). */
export interface Segment {
  from: number;
  to?: number;
  rate: number | null;
}

export interface UsageStats {
  samples: number;
  at: number;
  latest: { cpuPercent?: number; memoryPercent?: number; gpuPercent?: number; networkBytes?: number };
  /** Exponentially weighted moving average (α = 0.2) of each metric. */
  average: { cpuPercent?: number; memoryPercent?: number; gpuPercent?: number; networkBytes?: number };
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
  rateSource: 'override' | 'table' | 'set-rate' | 'unpriced';
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

export const ProjectSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may contain letters, digits and . _ - and must start with a letter or digit');

export const CostTrackerInputSchema = z.object({
  project: ProjectSchema,
  /** Continue as new after this many messages in one run (the server's suggestion also counts). */
  continueAsNewAfterEvents: z.number().int().min(10).max(50_000).default(2_000),
  /** TrainctlCostUsd is upserted at most this often. */
  costAttributeIntervalMs: z.number().int().min(1_000).default(5 * 60_000),
  /** Rejected messages kept for the summary (all are counted). */
  keepRejected: z.number().int().min(1).max(1_000).default(50),
  /** Off only where the server does not know trainctl's search attributes. */
  searchAttributes: z.boolean().default(true),
  /** The previous run's state, when continuing as new. Trusted: only the tracker itself passes it. */
  state: z.custom<object>((v) => typeof v === 'object' && v !== null).optional(),
});
export type CostTrackerRequest = z.input<typeof CostTrackerInputSchema>;

/** `cost-tracker/PROJECT`: one tracker per project. */
export function costTrackerWorkflowId(project: string): string {
  return `cost-tracker/${project}`;
}

export const ReconcileInputSchema = z.object({
  project: ProjectSchema.default('default'),
  regions: z.array(RegionSchema).min(1, 'name at least one region').max(30),
});
export type ReconcileRequest = z.input<typeof ReconcileInputSchema>;
