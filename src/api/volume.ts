/**
 * The volume family's client API: provision an EBS volume by name, wait for it, find the run of a
 * name, cancel it (which deletes what that run created).
 *
 * @module
 */
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { RegionSchema, ResourceNameSchema } from '../contracts/common.js';
import {
  ProvisionVolumeInputSchema,
  ProvisionVolumeWorkflowType,
  volumeWorkflowId,
  type ProvisionVolumeRequest,
  type ProvisionVolumeResult,
} from '../contracts/volume.js';
import { SA } from '../search-attributes.js';
import type { provisionVolume } from '../workflows/provision-volume.js';
import { DEFAULT_TASK_QUEUE } from './task-queue.js';
import { explained } from './start.js';

/** Where to start the run. */
export interface ProvisionOptions {
  /** The orchestration worker's task queue; `trainctl` (the worker's default) when absent. */
  taskQueue?: string;
}

/**
 * Validates the request and starts (or joins) the provisioning run for that volume name. The
 * workflow id is `volume/REGION/NAME` with the USE_EXISTING conflict policy: concurrent callers all
 * get the one running execution; after it has finished, a new run finds the volume and reuses it.
 * The run carries the search attributes `TrainctlKind=volume` and `TrainctlResource=NAME` and a
 * static summary for the Web UI.
 *
 * @throws ZodError, before contacting the server, when the request is invalid.
 */
export async function provision(
  client: Client,
  request: ProvisionVolumeRequest,
  options: ProvisionOptions = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof provisionVolume>> {
  const input = ProvisionVolumeInputSchema.parse(request);
  return explained(client, () =>
    client.workflow.start<typeof provisionVolume>(ProvisionVolumeWorkflowType, {
      taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
      workflowId: volumeWorkflowId(input.region, input.name),
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: SA.kind, value: 'volume' },
        { key: SA.resource, value: input.name },
      ],
      staticSummary: `Provision ${input.sizeGiB} GiB ${input.volumeType} volume **${input.name}** in ${input.availabilityZone}`,
      staticDetails: [
        `region: ${input.region}`,
        `if it exists: ${input.ifExists}`,
        ...(input.snapshotId ? [`from snapshot: ${input.snapshotId}`] : []),
        ...(input.attachTo ? [`attach to: ${input.attachTo.instanceId} at ${input.attachTo.device}`] : []),
      ].join('\n'),
    }),
  );
}

/**
 * {@link provision}, then waits for the run's result: the volume, created or reused, available
 * (and attached when asked).
 *
 * @throws ZodError when the request is invalid; WorkflowFailedError (its cause a failure whose
 *   `type` is an ErrorKind such as `AlreadyExists`) when the run fails.
 */
export async function execute(client: Client, request: ProvisionVolumeRequest, options: ProvisionOptions = {}): Promise<ProvisionVolumeResult> {
  const started = await provision(client, request, options);
  return started.result();
}

/**
 * The provisioning run of the volume `name` in `region` (the latest run of its workflow id).
 *
 * @throws ZodError when the region or name is malformed.
 */
export function handle(client: Client, region: string, name: string): WorkflowHandle<typeof provisionVolume> {
  return client.workflow.getHandle<typeof provisionVolume>(volumeWorkflowId(RegionSchema.parse(region), ResourceNameSchema.parse(name)));
}

/**
 * Requests cancellation of the provisioning run of `name` in `region`. The run deletes the volume
 * it created (never one it reused), records what it undid in its memo, then ends as cancelled;
 * this returns once the request is recorded, not when the run has finished.
 *
 * @returns the workflow id whose run was asked to cancel.
 * @throws ZodError when the region or name is malformed; WorkflowNotFoundError when there is no such run.
 */
export async function cancel(client: Client, region: string, name: string): Promise<string> {
  const h = handle(client, region, name);
  await h.cancel();
  return h.workflowId;
}
