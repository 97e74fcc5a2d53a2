import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { ProvisionVolumeInputSchema, type ProvisionVolumeInput, type ProvisionVolumeRequest } from '../config.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { specMismatches, type VolumeInfo } from '../volume-spec.js';
import { awsCall, awsWait } from './options.js';

const aws = proxyActivities<Activities>(awsCall);
const waits = proxyActivities<Activities>(awsWait);
// The workflow must know whether CreateVolume went out before it compensates.
const creates = proxyActivities<Activities>({ ...awsCall, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
// Cost recording is best-effort: a few attempts, then the provisioning goes on without it.
const costs = proxyActivities<Activities>({ ...awsCall, retry: { ...awsCall.retry, maximumAttempts: 3 } });

export interface ProvisionVolumeResult {
  volumeId: string;
  /** false when an existing volume with this name and spec was reused. */
  created: boolean;
  name: string;
  region: string;
  availabilityZone: string;
  sizeGiB: number;
  volumeType: string;
  state: string;
  attachedTo?: { instanceId: string; device: string };
}

/**
 * Provisions the EBS volume named `name` in `region`: reuses a managed volume of that name whose
 * spec matches, fails with AlreadyExists when the spec differs (or `ifExists: 'fail'`), otherwise
 * creates it, waits until it is `available`, and attaches it when asked (waiting for `in-use`).
 *
 * Idempotent: start it with the id from `volumeWorkflowId(region, name)` and the USE_EXISTING
 * conflict policy so that concurrent callers share one run. On cancel it deletes the volume this
 * run created (never one it reused), in a non-cancellable scope, and records what it undid in the
 * memo and current details before ending as cancelled.
 */
export async function provisionVolume(request: ProvisionVolumeRequest): Promise<ProvisionVolumeResult> {
  const parsed = ProvisionVolumeInputSchema.safeParse(request);
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: ErrorKind.InvalidInput,
      nonRetryable: true,
      message: `invalid volume request: ${describeFailure(parsed.error)}`,
    });
  }
  const input = parsed.data;
  const run: RunState = { costRecorded: false };
  try {
    return await provision(input, run);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    const { undone, failed } = await CancellationScope.nonCancellable(() => compensate(input, run));
    let summary = undone.length ? `cancelled; deleted ${undone.join(', ')}, created by this run` : 'cancelled; this run had created no volume';
    if (failed.length) summary += `; could NOT delete ${failed.join(', ')}: delete by hand`;
    upsertMemo({ compensation: summary });
    setCurrentDetails(summary);
    log.info('provisioning cancelled', { undone, failed });
    throw err;
  }
}

/** What compensation needs to know of the run so far. */
interface RunState {
  /** The cost tracker was told the volume started, so it must be told it stopped too. */
  costRecorded: boolean;
}

async function provision(input: ProvisionVolumeInput, run: RunState): Promise<ProvisionVolumeResult> {
  const { workflowId, firstExecutionRunId: runId } = workflowInfo();
  const { region, name } = input;
  setCurrentDetails(`Looking up volume **${name}** in ${region}`);
  const existing = await aws.findVolumesByName.executeWithOptions({ summary: `find volume named ${name}` }, [{ region, name }]);

  let volume: VolumeInfo;
  let created = false;
  if (existing.length > 1) {
    throw ApplicationFailure.create({
      type: ErrorKind.AlreadyExists,
      nonRetryable: true,
      message: `${existing.length} managed volumes are named ${name} (${existing.map((v) => v.volumeId).join(', ')}); resolve the duplicate by hand`,
    });
  } else if (existing[0]) {
    volume = existing[0];
    if (input.ifExists === 'fail') {
      throw ApplicationFailure.create({
        type: ErrorKind.AlreadyExists,
        nonRetryable: true,
        message: `volume ${name} already exists as ${volume.volumeId} and ifExists is 'fail'`,
        details: [{ volumeId: volume.volumeId }],
      });
    }
    const mismatches = specMismatches(input, volume);
    if (mismatches.length) {
      throw ApplicationFailure.create({
        type: ErrorKind.AlreadyExists,
        nonRetryable: true,
        message: `volume ${name} already exists as ${volume.volumeId} with another spec: ${mismatches.join('; ')}`,
        details: [{ volumeId: volume.volumeId, mismatches }],
      });
    }
    log.info('reusing existing volume', { volumeId: volume.volumeId });
  } else {
    setCurrentDetails(`Creating ${input.sizeGiB} GiB ${input.volumeType} volume **${name}** in ${input.availabilityZone}`);
    volume = await creates.createVolume.executeWithOptions({ summary: `create ${input.sizeGiB} GiB ${input.volumeType} ${name}` }, [
      { input, workflowId, runId },
    ]);
    created = true;
    // The create ran to completion even if a cancel came meanwhile (it waits for the activity);
    // a run that was cancelled must not go on to report success with a volume nobody wants.
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled while the volume was being created');
  }

  if (volume.state !== 'available' && volume.state !== 'in-use') {
    setCurrentDetails(`Waiting for ${volume.volumeId} to become available (now ${volume.state})`);
    volume = await waits.waitForVolumeState.executeWithOptions({ summary: `wait for ${volume.volumeId} available` }, [
      { region, volumeId: volume.volumeId, state: 'available' },
    ]);
  }

  // Patched so that histories recorded before cost tracking still replay.
  if (patched('record-cost')) run.costRecorded = await recordCost(input, volume);

  let attachedTo: ProvisionVolumeResult['attachedTo'];
  if (input.attachTo) {
    const { instanceId, device } = input.attachTo;
    setCurrentDetails(`Attaching ${volume.volumeId} to ${instanceId} at ${device}`);
    await aws.attachVolume.executeWithOptions({ summary: `attach ${volume.volumeId} to ${instanceId}` }, [
      { region, volumeId: volume.volumeId, instanceId, device },
    ]);
    volume = await waits.waitForVolumeState.executeWithOptions({ summary: `wait for ${volume.volumeId} in-use` }, [
      { region, volumeId: volume.volumeId, state: 'in-use' },
    ]);
    attachedTo = { instanceId, device };
  }

  setCurrentDetails(`${created ? 'Created' : 'Reused'} ${volume.volumeId} (${volume.state})`);
  return {
    volumeId: volume.volumeId,
    created,
    name,
    region,
    availabilityZone: volume.availabilityZone,
    sizeGiB: volume.sizeGiB,
    volumeType: volume.volumeType,
    state: volume.state,
    ...(attachedTo ? { attachedTo } : {}),
  };
}

/**
 * Tells the project's cost tracker (`cost-tracker/PROJECT`, signal-with-start) that the volume
 * exists, from its creation time. Best-effort: a failure is logged and never fails or undoes the
 * provisioning (reconciliation registers a volume the tracker missed); a repeated report of the
 * same volume is a duplicate to the tracker.
 */
async function recordCost(input: ProvisionVolumeInput, volume: VolumeInfo): Promise<boolean> {
  try {
    await costs.recordResourceStarted.executeWithOptions({ summary: `record ${volume.volumeId} with cost-tracker/${input.project}` }, [
      {
        project: input.project,
        resource: {
          id: volume.volumeId,
          kind: 'volume',
          type: volume.volumeType,
          sizeGiB: volume.sizeGiB,
          ...(volume.iops !== undefined ? { iops: volume.iops } : {}),
          ...(volume.throughputMiBps !== undefined ? { throughputMiBps: volume.throughputMiBps } : {}),
          region: input.region,
          tags: { ...input.tags, Name: input.name },
          ...(volume.createTime ? { at: Date.parse(volume.createTime) } : {}),
        },
      },
    ]);
    return true;
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn('could not record the volume with the cost tracker', { volumeId: volume.volumeId, project: input.project, error: describeFailure(err) });
    return false;
  }
}

/**
 * Deletes whatever this run created, found by its run-id tag rather than by what the workflow
 * remembers, so a CreateVolume that was in flight when the cancel came is cleaned up too.
 */
async function compensate(input: ProvisionVolumeInput, run: RunState): Promise<{ undone: string[]; failed: string[] }> {
  const runId = workflowInfo().firstExecutionRunId;
  const mine = await aws.findVolumesByName.executeWithOptions({ summary: `find volumes created by this run` }, [
    { region: input.region, name: input.name, runId },
  ]);
  const undone: string[] = [];
  const failed: string[] = [];
  for (const v of mine) {
    try {
      if (v.attachments.length) {
        await aws.detachVolume.executeWithOptions({ summary: `compensate: detach ${v.volumeId}` }, [{ region: input.region, volumeId: v.volumeId }]);
        await waits.waitForVolumeState.executeWithOptions({ summary: `compensate: wait for ${v.volumeId} available` }, [
          { region: input.region, volumeId: v.volumeId, state: 'available' },
        ]);
      }
      await aws.deleteVolume.executeWithOptions({ summary: `compensate: delete ${v.volumeId}` }, [{ region: input.region, volumeId: v.volumeId }]);
      undone.push(v.volumeId);
      if (run.costRecorded) await recordCostStopped(input, v.volumeId);
    } catch (err) {
      // Record and go on: one failed undo must not stop the others.
      failed.push(v.volumeId);
      log.error('compensation step failed', { volumeId: v.volumeId, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return { undone, failed };
}

/** Tells the cost tracker that a volume this run created and recorded is gone again. Best-effort. */
async function recordCostStopped(input: ProvisionVolumeInput, volumeId: string): Promise<void> {
  try {
    await costs.recordResourceStopped.executeWithOptions({ summary: `record ${volumeId} stopped with cost-tracker/${input.project}` }, [
      { project: input.project, stop: { id: volumeId } },
    ]);
  } catch (err) {
    log.warn('could not record the deletion with the cost tracker', { volumeId, project: input.project, error: describeFailure(err) });
  }
}
