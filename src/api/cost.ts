/**
 * The cost family's client API: a project's cost tracker (`cost-tracker/PROJECT`) — its queries,
 * the `setBudget` / `setRate` updates (which start the tracker when it does not run yet), reporting
 * resources to it — and reconciliation with EC2, now or on a Schedule.
 *
 * Every function validates its input with the contract's schemas before it contacts the server
 * and throws the `ZodError` as is.
 *
 * @module
 */
import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  WithStartWorkflowOperation,
  type Client,
  type ScheduleHandle,
  type WorkflowHandle,
} from '@temporalio/client';
import {
  CostTrackerWorkflowType,
  ProjectSchema,
  ReconcileCostWorkflowType,
  ReconcileInputSchema,
  ReconcileScheduleSchema,
  SetBudgetSchema,
  SetRateSchema,
  byTagQuery,
  costTrackerWorkflowId,
  reconcileScheduleId,
  reconciliationQuery,
  resourceQuery,
  runningQuery,
  setBudgetUpdate,
  setRateUpdate,
  summaryQuery,
  totalCostQuery,
  type BudgetView,
  type ByTagView,
  type CostSummary,
  type CostTrackerRequest,
  type ReconcileOutcome,
  type ReconcileRequest,
  type ReconciliationView,
  type ResourceView,
  type SetBudgetRequest,
  type SetRateRequest,
  type SetRateResult,
  type SummaryOptions,
  type TotalCost,
} from '../contracts/cost.js';
import { SA } from '../search-attributes.js';
import type { costTracker } from '../workflows/cost-tracker.js';
import type { reconcileCost } from '../workflows/reconcile-cost.js';
import { trackerStartOptions, type TrackerTarget } from './cost-signals.js';
import { explained } from './start.js';

export { recordResourceStarted, recordResourceStopped, reportReconciliation, trackedRunning, trackerStartOptions, type TrackerTarget } from './cost-signals.js';

/**
 * A handle on the project's tracker (it need not be running: queries then fail with
 * `WorkflowNotFoundError`).
 *
 * @throws ZodError when the project name is invalid.
 */
export function trackerHandle(client: Client, project: string): WorkflowHandle<typeof costTracker> {
  return client.workflow.getHandle<typeof costTracker>(costTrackerWorkflowId(ProjectSchema.parse(project)));
}

/**
 * Starts the project's tracker with its usual id, search attributes and summary. Fails with
 * `WorkflowExecutionAlreadyStartedError` when it already runs; most callers let a signal or an
 * update start it instead ({@link recordResourceStarted}, {@link setBudget}).
 *
 * @param options - `taskQueue` a worker polls; the rest of the tracker's input (e.g. `continueAsNewAfterEvents`).
 * @throws ZodError, before contacting the server, when the project name is invalid.
 */
export async function startTracker(
  client: Client,
  project: string,
  options: { taskQueue: string } & Omit<CostTrackerRequest, 'project' | 'state'>,
): Promise<WorkflowHandle<typeof costTracker>> {
  const { taskQueue, ...extra } = options;
  return explained(client, () => client.workflow.start<typeof costTracker>(CostTrackerWorkflowType, trackerStartOptions(project, taskQueue, extra)));
}

/**
 * Everything the tracker knows, priced at `asOf` (default now, on the tracker's clock): totals,
 * by kind (and by the tag `tagKey` when given), budgets, alerts, rejections, reconciliation.
 *
 * @throws ZodError when the project name is invalid; `WorkflowNotFoundError` when the project has no tracker.
 */
export async function summary(client: Client, project: string, options: SummaryOptions = {}): Promise<CostSummary> {
  return trackerHandle(client, project).query(summaryQuery, options);
}

/** The project's total so far and its burn rate. Throws like {@link summary}. */
export async function total(client: Client, project: string, asOf?: number): Promise<TotalCost> {
  return trackerHandle(client, project).query(totalCostQuery, asOf !== undefined ? { asOf } : {});
}

/** The resources the project's tracker believes are running. Throws like {@link summary}. */
export async function running(client: Client, project: string, asOf?: number): Promise<ResourceView[]> {
  return trackerHandle(client, project).query(runningQuery, asOf !== undefined ? { asOf } : {});
}

/** The project's resources tagged `key=value`, with their total and burn. Throws like {@link summary}. */
export async function byTag(client: Client, project: string, key: string, value: string, asOf?: number): Promise<ByTagView> {
  return trackerHandle(client, project).query(byTagQuery, key, value, asOf !== undefined ? { asOf } : {});
}

/** One resource by id (null when the tracker does not know it). Throws like {@link summary}. */
export async function resource(client: Client, project: string, id: string, asOf?: number): Promise<ResourceView | null> {
  return trackerHandle(client, project).query(resourceQuery, id, asOf !== undefined ? { asOf } : {});
}

/** The last reconciliation's report (null before the first). Throws like {@link summary}. */
export async function reconciliation(client: Client, project: string): Promise<ReconciliationView | null> {
  return trackerHandle(client, project).query(reconciliationQuery);
}

function startOperation(target: TrackerTarget): WithStartWorkflowOperation<typeof costTracker> {
  return new WithStartWorkflowOperation<typeof costTracker>(CostTrackerWorkflowType, {
    ...trackerStartOptions(target.project, target.taskQueue),
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/**
 * Sets (or replaces, by name) a budget of the project, starting its tracker if it does not run yet
 * (update-with-start). Returns the budget as the tracker sees it now: spent so far, and when the
 * current burn rate crosses it.
 *
 * @throws ZodError, before contacting the server, when the project or the budget is invalid.
 */
export async function setBudget(client: Client, target: TrackerTarget, request: SetBudgetRequest): Promise<BudgetView> {
  const budget = SetBudgetSchema.parse(request);
  const operation = startOperation(target);
  return client.workflow.executeUpdateWithStart(setBudgetUpdate, { args: [budget], startWorkflowOperation: operation });
}

/**
 * Sets the hourly rate of a resource type for the project (per resource, or per GiB), starting its
 * tracker if need be; tracked resources of that type are repriced from now (unpriced ones for their
 * whole life).
 *
 * @throws ZodError, before contacting the server, when the project or the rate is invalid.
 */
export async function setRate(client: Client, target: TrackerTarget, request: SetRateRequest): Promise<SetRateResult> {
  const rate = SetRateSchema.parse(request);
  const operation = startOperation(target);
  return client.workflow.executeUpdateWithStart(setRateUpdate, { args: [rate], startWorkflowOperation: operation });
}

/**
 * Starts one reconciliation of the project's tracker with EC2 in the given regions (workflow id
 * `cost-reconcile/PROJECT/manual-TIME` unless given). Its result lists orphans and vanished resources.
 *
 * @throws ZodError, before contacting the server, when the request is invalid.
 */
export async function startReconcile(
  client: Client,
  request: ReconcileRequest,
  options: { taskQueue: string; workflowId?: string },
): Promise<WorkflowHandle<typeof reconcileCost>> {
  const input = ReconcileInputSchema.parse(request);
  return explained(client, () =>
    client.workflow.start<typeof reconcileCost>(ReconcileCostWorkflowType, {
      taskQueue: options.taskQueue,
      workflowId: options.workflowId ?? `${reconcileScheduleId(input.project)}/manual-${Date.now()}`,
      args: [input],
    }),
  );
}

/** {@link startReconcile}, then waits for its outcome. */
export async function reconcileNow(client: Client, request: ReconcileRequest, options: { taskQueue: string; workflowId?: string }): Promise<ReconcileOutcome> {
  const handle = await startReconcile(client, request, options);
  return handle.result();
}

/**
 * Creates (or updates to this spec) the Schedule `cost-reconcile/PROJECT`, which runs the
 * `reconcileCost` workflow every `every` on `taskQueue`, skipping a run while one is still going.
 *
 * @param options - `every`: an interval such as `1h` or `30m`.
 * @throws ZodError, before contacting the server, when the project, the regions or the interval are invalid.
 */
export async function ensureReconcileSchedule(
  client: Client,
  options: { project?: string; regions: string[]; every: string; taskQueue: string },
): Promise<ScheduleHandle> {
  const input = ReconcileInputSchema.parse({ project: options.project, regions: options.regions });
  ReconcileScheduleSchema.parse({ every: options.every });
  const scheduleId = reconcileScheduleId(input.project);
  const action = {
    type: 'startWorkflow' as const,
    workflowType: ReconcileCostWorkflowType,
    args: [input] as Parameters<typeof reconcileCost>,
    taskQueue: options.taskQueue,
    workflowId: scheduleId,
    typedSearchAttributes: [
      { key: SA.kind, value: 'cost-reconcile' },
      { key: SA.project, value: input.project },
    ],
  };
  const spec = { intervals: [{ every: options.every as `${number}h` }] };
  try {
    return await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      memo: { what: `reconcile the cost tracker of ${input.project} with EC2 in ${input.regions.join(', ')}` },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    const handle = client.schedule.getHandle(scheduleId);
    await handle.update((prev) => ({ ...prev, spec, action }));
    return handle;
  }
}
