/**
 * How anything that makes or ends a resource tells a project's cost tracker: signal-with-start on
 * `cost-tracker/PROJECT`, so the tracker is started on demand with the same id, search attributes
 * and summary whoever reports first. Kept apart from `./cost.ts` (re-exported there) because the
 * cost activities use it too, and it needs nothing of the workflow code.
 *
 * @module
 */
import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client, type WorkflowStartOptions } from '@temporalio/client';
import {
  CostTrackerWorkflowType,
  CostTrackerInputSchema,
  ProjectSchema,
  ReconcileReportSchema,
  ResourceStartedSchema,
  ResourceStoppedSchema,
  costTrackerWorkflowId,
  reconcileReportSignal,
  resourceStartedSignal,
  resourceStoppedSignal,
  runningQuery,
  resourceQuery,
  setBudgetUpdate,
  SetBudgetSchema,
  type BudgetView,
  type SetBudgetRequest,
  type CostTrackerRequest,
  type ReconcileReport,
  type ResourceStarted,
  type ResourceStopped,
  type ResourceView,
} from '../contracts/cost.js';
import { SA } from '../search-attributes.js';
import { explained } from './start.js';

/** Which tracker to tell, and the task queue its worker polls (used when it has to be started). */
export interface TrackerTarget {
  /** The project (`cost-tracker/PROJECT`). */
  project: string;
  /** Where a worker runs the tracker, should this call start it. */
  taskQueue: string;
}

/**
 * The start options of a project's tracker (id, input, search attributes, summary): the same for a
 * signal-with-start, an update-with-start and a plain start.
 *
 * @throws ZodError naming the field (`project`, `keepRejected`, …) when the project or the tracker's input is invalid.
 */
export function trackerStartOptions(project: string, taskQueue: string, extra: Omit<CostTrackerRequest, 'project'> = {}) {
  // The whole input, as the workflow will check it: a bad option is refused here, before anything starts.
  const p = CostTrackerInputSchema.parse({ ...extra, project }).project;
  const args: [CostTrackerRequest] = [{ project: p, ...extra }];
  return {
    workflowId: costTrackerWorkflowId(p),
    taskQueue,
    args,
    typedSearchAttributes: [
      { key: SA.kind, value: 'cost-tracker' },
      { key: SA.project, value: p },
    ],
    staticSummary: `Cost tracker of project **${p}**`,
  } satisfies WorkflowStartOptions;
}

async function signalTracker<A>(client: Client, target: TrackerTarget, signal: { name: string }, arg: A): Promise<{ workflowId: string }> {
  const options = trackerStartOptions(target.project, target.taskQueue);
  await explained(client, () => client.workflow.signalWithStart(CostTrackerWorkflowType, { ...options, signal: signal.name, signalArgs: [arg] }));
  return { workflowId: options.workflowId };
}

/**
 * Tells the project's tracker that a resource started (starting the tracker if it is not running).
 * Idempotent: the tracker counts a repeated start of the same id as a duplicate.
 *
 * @throws ZodError, before contacting the server, when the project or the resource is invalid.
 */
export async function recordResourceStarted(client: Client, target: TrackerTarget, resource: ResourceStarted): Promise<{ workflowId: string }> {
  ResourceStartedSchema.parse(resource);
  return signalTracker(client, target, resourceStartedSignal, resource);
}

/**
 * Tells the project's tracker that a resource stopped costing money. Idempotent like
 * {@link recordResourceStarted}; a stop of an id the tracker never saw is listed as rejected there.
 *
 * @throws ZodError, before contacting the server, when the project or the stop is invalid.
 */
export async function recordResourceStopped(client: Client, target: TrackerTarget, stop: ResourceStopped): Promise<{ workflowId: string }> {
  ResourceStoppedSchema.parse(stop);
  return signalTracker(client, target, resourceStoppedSignal, stop);
}

/**
 * Sends the tracker what a reconciliation found in EC2 (orphans and vanished resources); the
 * tracker re-checks each against its own state.
 *
 * @throws ZodError, before contacting the server, when the report is invalid.
 */
export async function reportReconciliation(client: Client, target: TrackerTarget, report: ReconcileReport): Promise<{ workflowId: string }> {
  ReconcileReportSchema.parse(report);
  return signalTracker(client, target, reconcileReportSignal, report);
}

/**
 * The resources the project's tracker believes are running, priced at `asOf` (default: now on the
 * tracker's clock); empty when the project has no tracker yet.
 *
 * @throws ZodError, before contacting the server, when the project name is invalid.
 */
export async function trackedRunning(client: Client, project: string, asOf?: number): Promise<ResourceView[]> {
  const handle = client.workflow.getHandle(costTrackerWorkflowId(ProjectSchema.parse(project)));
  try {
    return await handle.query(runningQuery, ...(asOf !== undefined ? [{ asOf }] : []));
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return [];
    throw err;
  }
}

/**
 * Sets (or replaces, by name) a budget of the project, starting its tracker if need be
 * (update-with-start). The form of `cost.setBudget` that activities use: it needs no workflow type.
 *
 * @throws ZodError, before contacting the server, when the project or the budget is invalid.
 */
export async function setTrackerBudget(client: Client, target: TrackerTarget, request: SetBudgetRequest): Promise<BudgetView> {
  const budget = SetBudgetSchema.parse(request);
  const operation = new WithStartWorkflowOperation(CostTrackerWorkflowType, {
    ...trackerStartOptions(target.project, target.taskQueue),
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  return explained(client, () => client.workflow.executeUpdateWithStart(setBudgetUpdate, { args: [budget], startWorkflowOperation: operation }));
}

/** What the given resources have cost so far, from the project's tracker (0 for ids it does not know). */
export async function resourcesCost(client: Pick<Client, 'workflow'>, project: string, ids: string[]): Promise<{ usd: number; unpriced: string[] }> {
  const handle = client.workflow.getHandle(costTrackerWorkflowId(ProjectSchema.parse(project)));
  let micro = 0;
  const unpriced: string[] = [];
  for (const id of ids) {
    const view = await handle.query(resourceQuery, id).catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    });
    if (!view) continue;
    micro += view.costMicroUsd;
    if (view.pricing === 'unpriced') unpriced.push(id);
  }
  return { usd: micro / 1e6, unpriced };
}
