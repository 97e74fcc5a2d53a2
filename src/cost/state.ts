/**
 * The cost tracker's state: one plain object, carried whole across continue-as-new.
 *
 * @module
 */
import type { AlertRecord, BudgetAction, BudgetWindow, ReconciliationView, RejectedRecord, TrackerCounters } from '../contracts/cost.js';
import type { TrackedResource } from '../cost-model.js';
import type { PackedResources } from './packing.js';

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

export interface ArchiveGroup {
  resources: number;
  microUsd: number;
}

/** What folded resources cost, by the views that still need it. */
export interface Archive {
  resources: number;
  microUsd: number;
  /** `YYYY-MM` (UTC) → µ$ spent in that month. */
  byMonth: Record<string, number>;
  byKind: Record<string, ArchiveGroup>;
  /** `key=value` → the resources carrying that tag. */
  byTag: Record<string, ArchiveGroup>;
  /** `YYYY-MM|key=value` → µ$, for the tags a budget filters on (monthly tag budgets). */
  byMonthTag: Record<string, number>;
  /** Tag groups not kept because {@link MAX_TAG_GROUPS} was reached. */
  tagGroupsDropped: number;
}

/** Everything the tracker knows; carried across continue-as-new (stopped resources folded into `archive` after a while). */
export interface TrackerState {
  /** The state's shape: absent in runs before 2026-11-30 (version 1), migrated on load. */
  stateVersion?: number;
  /** What resources folded out of `resources` cost (see `src/cost/compaction.ts`). */
  archive?: Archive;
  project: string;
  resources: Record<string, TrackedResource>;
  /** The resources as carried into a new run (`resources` is empty then): unpacked when the run starts. */
  packedResources?: PackedResources;
  rates: Record<string, { microUsdPerHour: number; unit: 'resource' | 'GiB'; setAt: number }>;
  budgets: Record<string, BudgetState>;
  alerts: AlertRecord[];
  rejected: RejectedRecord[];
  /** Every signal lands in exactly one of accepted / duplicates / rejected. */
  counters: TrackerCounters;
  /** Runs of this entity so far (1 + continue-as-new count). */
  runs: number;
  /** The last runs that continued as new, with the messages each handled. */
  previousRuns: { runId: string; events: number }[];
  costAttribute?: { at: number; usd: number };
  reconciliation?: ReconciliationView;
}

export function newTrackerState(project: string): TrackerState {
  return {
    stateVersion: 2,
    archive: { resources: 0, microUsd: 0, byMonth: {}, byKind: {}, byTag: {}, byMonthTag: {}, tagGroupsDropped: 0 },
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
