/**
 * The cleanup family's client API: plan a cleanup (a dry run), apply one (it waits for approval of
 * its plan when it must), approve or reject that plan by its hash, read its status, cancel it.
 *
 * Every function validates its input with the contract's schemas before it contacts the server
 * and throws the `ZodError` as is.
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import {
  CleanupApproveSchema,
  CleanupInputSchema,
  CleanupRejectSchema,
  CleanupWorkflowType,
  cleanupApproveUpdate,
  cleanupRejectUpdate,
  cleanupStatusQuery,
  cleanupWorkflowId,
  type CleanupInput,
  type CleanupPlan,
  type CleanupRequest,
  type CleanupStatus,
} from '../contracts/cleanup.js';
import { SA } from '../search-attributes.js';
import type { cleanup } from '../workflows/cleanup.js';
import { explained } from './start.js';

/** Where a cleanup runs, and (optionally) its workflow id. */
export interface CleanupStartOptions {
  /** The task queue a worker polls. */
  taskQueue: string;
  /** Default: `cleanup/REGION/plan-HASH` or `cleanup/REGION/apply-HASH`, HASH the SHA-256 of the whole validated request. */
  workflowId?: string;
}

/** The run's one-line summary in the UI: what it selects, where. */
function summaryOf(input: CleanupInput): string {
  const sel = input.selector;
  const what = [
    ...Object.entries(sel.tags).map(([k, v]) => `${k}=${v}`),
    ...(sel.ids.length ? [`${sel.ids.length} ids`] : []),
    ...(sel.olderThan ? [`older than ${sel.olderThan}`] : []),
    ...(sel.s3 ? [`s3://${sel.s3.profile ? `${sel.s3.profile}@` : ''}${sel.s3.bucket}/${sel.s3.prefix}`] : []),
  ].join(', ');
  return `${input.dryRun ? 'Plan' : 'Apply'} cleanup of ${sel.kinds.join('/')} in ${input.region}: ${what}`;
}

/**
 * Starts (or joins) a cleanup run, a dry run unless the request says `dryRun: false`. The id is
 * `cleanup/REGION/plan-HASH` or `…/apply-HASH`, HASH the SHA-256 of the whole validated request, with
 * USE_EXISTING: starting an identical apply while the first waits for approval joins it; a request that
 * differs in anything (protected ids, thresholds, timeouts…) starts its own run.
 *
 * @throws ZodError, before contacting the server, when the request is invalid.
 */
export async function startCleanup(client: Client, request: CleanupRequest, options: CleanupStartOptions): Promise<WorkflowHandle<typeof cleanup>> {
  const input = CleanupInputSchema.parse(request);
  return explained(client, () =>
    client.workflow.start<typeof cleanup>(CleanupWorkflowType, {
      taskQueue: options.taskQueue,
      workflowId: options.workflowId ?? cleanupWorkflowId(input),
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [{ key: SA.kind, value: 'cleanup' }],
      staticSummary: summaryOf(input),
      staticDetails: [
        `force: ${input.force}`,
        `snapshot before delete: ${input.snapshotBeforeDelete}`,
        `approval: over ${input.approvalThreshold} resources or anything protected/important; timeout ${input.approvalTimeout}`,
        `protected ids: ${input.protectedIds.length}`,
        `chunk size: ${input.chunkSize} resources per run (then continue-as-new)`,
      ].join('\n'),
    }),
  );
}

/**
 * A dry run: discovers what the request selects and returns the plan — each resource with its
 * steps, or why it is skipped — deleting nothing.
 *
 * @throws ZodError, before contacting the server, when the request is invalid.
 */
export async function plan(client: Client, request: CleanupRequest, options: CleanupStartOptions): Promise<CleanupPlan> {
  const handle = await startCleanup(client, { ...request, dryRun: true }, options);
  return (await handle.result()).plan;
}

/**
 * Starts a real cleanup (`dryRun: false`). When its plan needs approval (more resources than the
 * threshold, or anything protected or important) the run waits for {@link approve} naming the
 * plan's hash; read the plan with {@link awaitPlan}. Its result reports every resource.
 *
 * @throws ZodError, before contacting the server, when the request is invalid.
 */
export async function apply(client: Client, request: CleanupRequest, options: CleanupStartOptions): Promise<WorkflowHandle<typeof cleanup>> {
  return startCleanup(client, { ...request, dryRun: false }, options);
}

/** A handle on an existing cleanup run. */
export function cleanupHandle(client: Client, workflowId: string): WorkflowHandle<typeof cleanup> {
  return client.workflow.getHandle<typeof cleanup>(workflowId);
}

/** The run's phase, plan, report so far and steps in flight (answers after the run ended too). */
export async function status(handle: WorkflowHandle<typeof cleanup>): Promise<CleanupStatus> {
  return handle.query(cleanupStatusQuery);
}

/**
 * Waits until the run has planned: its plan when it waits for approval, or null when it went on
 * without one (a dry run, a plan needing no approval) or ended. Reads by query, so nothing is
 * written to the run's history; `ended` stops the wait early (e.g. once its result is in).
 */
export async function awaitPlan(handle: WorkflowHandle<typeof cleanup>, options: { ended?: () => boolean; pollMs?: number } = {}): Promise<CleanupPlan | null> {
  for (;;) {
    if (options.ended?.()) return null;
    const s = await status(handle);
    if (s.phase !== 'planning') return s.phase === 'awaiting-approval' ? s.plan : null;
    await sleep(options.pollMs ?? 250);
  }
}

/**
 * Approves the plan whose hash is named. The run refuses any other hash (the plan changed: read it
 * again), and any approval when it is not waiting for one.
 *
 * @throws ZodError, before contacting the server, when the hash is not a plan hash.
 */
export async function approve(handle: WorkflowHandle<typeof cleanup>, planHash: string): Promise<{ approved: true; planHash: string }> {
  const approval = CleanupApproveSchema.parse({ planHash });
  return handle.executeUpdate(cleanupApproveUpdate, { args: [approval] });
}

/**
 * Ends a run that waits for approval with nothing deleted.
 *
 * @throws ZodError, before contacting the server, when the reason is too long.
 */
export async function reject(handle: WorkflowHandle<typeof cleanup>, reason?: string): Promise<{ rejected: true }> {
  const rejection = CleanupRejectSchema.parse(reason !== undefined ? { reason } : {});
  return handle.executeUpdate(cleanupRejectUpdate, { args: [rejection] });
}

/**
 * Cancels the run: a run waiting for approval ends with nothing deleted; a running one lets each
 * resource's step in flight finish, starts no new step, and reports what was and was not done.
 */
export async function cancel(handle: WorkflowHandle<typeof cleanup>): Promise<void> {
  await handle.cancel();
}
