/**
 * The prewarm family's client API: prepare a training instance's data for one strategy on its
 * host worker (read a restored device, sync a local cache, check a dataset, reach a prefix), find
 * or cancel that run, and ask a host worker who it is.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { CheckHostWorkflowType, HostIdSchema, type HostInfo } from '../contracts/host.js';
import { PrewarmInputSchema, PrewarmWorkflowType, prewarmWorkflowId, type PrewarmRequest, type PrewarmResult } from '../contracts/prewarm.js';
import { SA } from '../search-attributes.js';
import type { checkHost as checkHostWorkflow } from '../workflows/host.js';
import type { prewarm } from '../workflows/prewarm.js';
import { DEFAULT_TASK_QUEUE } from './task-queue.js';
import { explained } from './start.js';

/** Where to start a run, and under which id. */
export interface PrewarmOptions {
  /** The orchestration worker's task queue; `trainctl` (the worker's default) when absent. */
  taskQueue?: string;
  /**
   * The workflow id; `prewarm/HOST/STRATEGY/TARGET` (one run per host and target) when absent.
   * Give one only to run the same target twice at once on purpose, as tests do.
   */
  workflowId?: string;
}

/**
 * Validates the request and starts (or joins) the run that prepares the data on host
 * `request.hostId`. The workflow id is `prewarm/HOST/STRATEGY/TARGET` with the USE_EXISTING
 * conflict policy, so a second start while one runs joins it. The run carries the search
 * attributes `TrainctlKind=prewarm` and `TrainctlResource=HOST` and a static summary.
 *
 * @throws ZodError, before contacting the server, when the request is invalid.
 */
export async function start(
  client: Client,
  request: PrewarmRequest,
  options: PrewarmOptions = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof prewarm>> {
  const input = PrewarmInputSchema.parse(request);
  return explained(client, () =>
    client.workflow.start<typeof prewarm>(PrewarmWorkflowType, {
      taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
      workflowId: options.workflowId ?? prewarmWorkflowId(input),
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: SA.kind, value: 'prewarm' },
        { key: SA.resource, value: input.hostId },
      ],
      staticSummary: `Prepare data on host **${input.hostId}** (${input.strategy})`,
    }),
  );
}

/**
 * {@link start}, then waits for the run's result: the strategy's measured figures.
 *
 * @throws ZodError when the request is invalid; WorkflowFailedError when the run fails (for
 *   ExistingEBS, kind `Integrity` or `NotFound` when the dataset does not match its manifest).
 */
export async function execute(client: Client, request: PrewarmRequest, options: PrewarmOptions = {}): Promise<PrewarmResult> {
  const started = await start(client, request, options);
  return started.result();
}

/**
 * The run for `target`: a workflow id, or a request whose default id (`prewarm/HOST/STRATEGY/TARGET`) names it.
 *
 * @throws ZodError when a request is invalid.
 */
export function handle(client: Client, target: string | PrewarmRequest): WorkflowHandle<typeof prewarm> {
  const workflowId = typeof target === 'string' ? target : prewarmWorkflowId(PrewarmInputSchema.parse(target));
  return client.workflow.getHandle<typeof prewarm>(workflowId);
}

/**
 * Requests cancellation of the run for `target` (see {@link handle}). The running host step stops
 * at its next block or object; nothing needs undoing.
 *
 * @throws ZodError when a request is invalid; WorkflowNotFoundError when there is no such run.
 */
export async function cancel(client: Client, target: string | PrewarmRequest): Promise<void> {
  await handle(client, target).cancel();
}

/** How to ask a host. */
export interface CheckHostOptions {
  /** The orchestration worker's task queue; `trainctl` when absent. */
  taskQueue?: string;
  /** How long to wait for the host worker to answer; 30 s when absent. */
  waitSeconds?: number;
  /** The probe's workflow id; `host-check/HOST/UUID` when absent. */
  workflowId?: string;
}

/**
 * Asks the host worker of `hostId` (`worker --host ID`) who it is and how much room its roots
 * have: the way to check that a training instance's worker is up before routing work to it.
 *
 * @throws ZodError when the host id is malformed; WorkflowFailedError whose cause is a timeout
 *   when no host worker answers within `waitSeconds`.
 */
export async function checkHost(client: Client, hostId: string, options: CheckHostOptions = {}): Promise<HostInfo> {
  const id = HostIdSchema.parse(hostId);
  return client.workflow.execute<typeof checkHostWorkflow>(CheckHostWorkflowType, {
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    workflowId: options.workflowId ?? `host-check/${id}/${randomUUID()}`,
    args: options.waitSeconds === undefined ? [id] : [id, options.waitSeconds],
    staticSummary: `Check host **${id}**`,
  });
}
