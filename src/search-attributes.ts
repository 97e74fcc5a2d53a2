import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes, so the UI can list runs by kind, resource, project and cost. The dev
 * server registers them at start (src/dev/services.ts); a cluster needs them created once.
 */
export const SA = {
  kind: defineSearchAttributeKey('TrainctlKind', SearchAttributeType.KEYWORD),
  resource: defineSearchAttributeKey('TrainctlResource', SearchAttributeType.KEYWORD),
  project: defineSearchAttributeKey('TrainctlProject', SearchAttributeType.KEYWORD),
  costUsd: defineSearchAttributeKey('TrainctlCostUsd', SearchAttributeType.DOUBLE),
  budgetExceeded: defineSearchAttributeKey('TrainctlBudgetExceeded', SearchAttributeType.BOOL),
  /** The training run a workflow belongs to (the run and every child): `TrainctlRun="NAME"` lists them all. */
  run: defineSearchAttributeKey('TrainctlRun', SearchAttributeType.KEYWORD),
} as const;
