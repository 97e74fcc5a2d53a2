/**
 * Contract of the cost family: the per-project `costTracker` entity workflow and the
 * `reconcileCost` workflow (what the hourly Schedule runs). Workflow type names, ids, the message
 * schemas, the view types the queries return, and every signal / query / update.
 *
 * Money is integer micro-dollars (µ$) and rates integer µ$ per hour.
 *
 * @module
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { RegionSchema } from './common.js';

/** Workflow type of the per-project cost tracker. */
export const CostTrackerWorkflowType = 'costTracker';
/** Workflow type of one reconciliation of a tracker with EC2. */
export const ReconcileCostWorkflowType = 'reconcileCost';

/** `cost-tracker/PROJECT`: one tracker per project. */
export function costTrackerWorkflowId(project: string): string {
  return `cost-tracker/${project}`;
}

/** `cost-reconcile/PROJECT`: the reconciliation Schedule's id, and the workflow id of its runs. */
export function reconcileScheduleId(project: string): string {
  return `cost-reconcile/${project}`;
}

/** The tag naming a managed resource's project (absent: `default`). */
export const PROJECT_TAG = 'trainctl:project';
/** Above this an hourly rate is a typo; it also keeps rate × ms within Number.MAX_SAFE_INTEGER. */
export const MAX_USD_PER_HOUR = 2_000;

/** What the tracker prices. */
export const ResourceKind = {
  instance: 'instance',
  volume: 'volume',
  snapshot: 'snapshot',
  s3Storage: 's3-storage',
  transfer: 'transfer',
} as const;
export type ResourceKind = (typeof ResourceKind)[keyof typeof ResourceKind];

export const ProjectSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may contain letters, digits and . _ - and must start with a letter or digit');

/** Epoch milliseconds, or an ISO-8601 time with a zone. */
export const TimestampSchema = z
  .union([z.number().int().nonnegative(), z.iso.datetime({ offset: true })])
  .transform((v) => (typeof v === 'number' ? v : Date.parse(v)));

const IdSchema = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters');
const ResourceTagsSchema = z
  .record(z.string().min(1).max(128), z.string().max(256))
  .refine((t) => Object.keys(t).length <= 50, 'at most 50 tags')
  .default({});
const UsdPerHourSchema = z.number().finite().nonnegative('must not be negative').max(MAX_USD_PER_HOUR, `must be at most $${MAX_USD_PER_HOUR}/h`);

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
  name: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -')
    .default('default'),
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

export const CostTrackerInputSchema = z.object({
  project: ProjectSchema,
  /** Continue as new after this many messages in one run (the server's suggestion also counts). */
  continueAsNewAfterEvents: z.number().int().min(10).max(50_000).default(2_000),
  /** TrainctlCostUsd is upserted at most this often. */
  costAttributeIntervalMs: z
    .number()
    .int()
    .min(1_000)
    .default(5 * 60_000),
  /** Rejected messages kept for the summary (all are counted). */
  keepRejected: z.number().int().min(1).max(1_000).default(50),
  /** Off only where the server does not know trainctl's search attributes. */
  searchAttributes: z.boolean().default(true),
  /** The previous run's state, when continuing as new. Trusted: only the tracker itself passes it. */
  state: z.custom<object>((v) => typeof v === 'object' && v !== null).optional(),
});
export type CostTrackerRequest = z.input<typeof CostTrackerInputSchema>;
export type CostTrackerInput = z.output<typeof CostTrackerInputSchema>;

export const ReconcileInputSchema = z.object({
  project: ProjectSchema.default('default'),
  regions: z.array(RegionSchema).min(1, 'name at least one region').max(30),
});
export type ReconcileRequest = z.input<typeof ReconcileInputSchema>;

/** How often the reconciliation Schedule runs: the `every` of its interval (`30m`, `1h`, `1d`). */
export const ReconcileScheduleSchema = z.object({
  every: z.string().regex(/^[1-9]\d{0,5}(s|m|h|d)$/, 'must be an interval such as 30m, 1h or 1d'),
});
export type ReconcileInput = z.output<typeof ReconcileInputSchema>;

/** What one reconciliation found (the `reconcileCost` workflow's result). */
export interface ReconcileOutcome {
  project: string;
  at: string;
  regions: string[];
  checked: number;
  orphans: { id: string; kind: string; type: string; region: string }[];
  vanished: { id: string; state: string }[];
}

/** Where a resource's current rate came from. */
export type RateSource = 'override' | 'table' | 'set-rate' | 'unpriced';

export interface UsageStats {
  samples: number;
  at: number;
  latest: { cpuPercent?: number; memoryPercent?: number; gpuPercent?: number; networkBytes?: number };
  /** Exponentially weighted moving average (α = 0.2) of each metric. */
  average: { cpuPercent?: number; memoryPercent?: number; gpuPercent?: number; networkBytes?: number };
}

/** Every signal lands in exactly one of accepted / duplicates / rejected. */
export interface TrackerCounters {
  accepted: number;
  duplicates: number;
  rejected: number;
  updates: number;
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
  rateSource: RateSource;
  hourlyMicroUsd: number | null;
  hourlyUsd: number | null;
  costMicroUsd: number;
  costUsd: number;
  orphan?: boolean;
  usage?: UsageStats;
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
  counters: TrackerCounters;
  /** Runs of this entity so far (1 + continue-as-new count). */
  runs: number;
  /** The last runs that continued as new, with the messages each handled. */
  previousRuns: { runId: string; events: number }[];
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
  /** The resources kept whole (running, or stopped within the retention window). */
  resources: ResourceView[];
  /** Resources stopped longer ago, folded into totals: counted in `totalMicroUsd`, not listed. */
  folded: number;
  unpriced: UnpricedView[];
}

/** What `setRate` did: the rate now in force and how many tracked resources it repriced. */
export interface SetRateResult {
  type: string;
  microUsdPerHour: number;
  unit: 'resource' | 'GiB';
  affected: number;
}

/** Options of the `summary` query. */
export type SummaryOptions = { tagKey?: string } & AsOf;

export const resourceStartedSignal = defineSignal<[ResourceStarted]>('resourceStarted');
export const resourceStoppedSignal = defineSignal<[ResourceStopped]>('resourceStopped');
export const resourceUsageSignal = defineSignal<[ResourceUsage]>('resourceUsage');
/** Sent by the reconciliation activity with what it found in EC2. */
export const reconcileReportSignal = defineSignal<[ReconcileReport]>('reconcileReport');

export const totalCostQuery = defineQuery<TotalCost, [AsOf?]>('totalCost');
export const runningQuery = defineQuery<ResourceView[], [AsOf?]>('running');
export const byTagQuery = defineQuery<ByTagView, [string, string, AsOf?]>('byTag');
export const resourceQuery = defineQuery<ResourceView | null, [string, AsOf?]>('resource');
export const summaryQuery = defineQuery<CostSummary, [SummaryOptions?]>('summary');
export const reconciliationQuery = defineQuery<ReconciliationView | null>('reconciliation');

export const setBudgetUpdate = defineUpdate<BudgetView, [SetBudgetRequest]>('setBudget');
export const setRateUpdate = defineUpdate<SetRateResult, [SetRateRequest]>('setRate');
