/**
 * The cost tracker's state: one plain object, carried whole across continue-as-new.
 *
 * @module
 */
import type { AlertRecord, BudgetAction, BudgetWindow, ReconciliationView, RejectedRecord, TrackerCounters } from '../contracts/cost.js';
import type { TrackedResource } from '../cost-model.js';

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

/** Everything the tracker knows; carried whole across continue-as-new. */
export interface TrackerState {
  project: string;
  resources: Record<string, TrackedResource>;
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
