import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes, so the UI can list runs by kind, resource, project and cost. The dev
 * server registers them at start (src/dev/services.ts), the worker at its start where the server
 * allows it (src/temporal.ts `registerSearchAttributes`); otherwise they need creating once.
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

/** One of trainctl's search attribute keys (its name and type). */
export type TrainctlSearchAttribute = (typeof SA)[keyof typeof SA];

/** Every trainctl search attribute, in a stable order. */
export const ALL_SEARCH_ATTRIBUTES: readonly TrainctlSearchAttribute[] = Object.values(SA);

/** The type names the Temporal CLI takes (`--type Keyword`, `--search-attribute Name=Keyword`). */
export const CLI_TYPE_NAMES: Record<SearchAttributeType, string> = {
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};
