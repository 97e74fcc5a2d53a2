import {
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
import {
  ProvisionVolumeInputSchema,
  type ProvisionVolumeInput,
  type ProvisionVolumeMemo,
  type ProvisionVolumeRequest,
  type ProvisionVolumeResult,
  type VolumeInfo,
} from '../contracts/volume.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { specMismatches } from '../volume-spec.js';
import { awsCall, awsCallAwaitingCancel, awsWait, bestEffort } from './options.js';

const aws = proxyActivities<Activities>(awsCall);
const waits = proxyActivities<Activities>(awsWait);
const creates = proxyActivities<Activities>(awsCallAwaitingCancel);
const costs = proxyActivities<Activities>(bestEffort);

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
  const input = validate(request);
  const run: RunState = { costRecorded: false };
  try {
    return await provision(input, run);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    const outcome = await CancellationScope.nonCancellable(() => compensate(input, run));
    reportCompensation(outcome);
    throw err;
  }
}

/** What compensation needs to know of the run so far. */
interface RunState {
  /** The cost tracker was told the volume started, so it must be told it stopped too. */
  costRecorded: boolean;
}

/** The request checked again inside the workflow: a start that skipped the API still fails as InvalidInput. */
function validate(request: ProvisionVolumeRequest): ProvisionVolumeInput {
  const parsed = ProvisionVolumeInputSchema.safeParse(request);
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: ErrorKind.InvalidInput,
      nonRetryable: true,
      message: `invalid volume request: ${describeFailure(parsed.error)}`,
    });
  }
  return parsed.data;
}

/** The phases: find or create, wait until available, record the cost, attach. */
async function provision(input: ProvisionVolumeInput, run: RunState): Promise<ProvisionVolumeResult> {
  const found = await findOrCreate(input);
  let volume = await waitUntilAvailable(input, found.volume);
  // Patched so that histories recorded before cost tracking still replay.
  if (patched('record-cost')) run.costRecorded = await recordCost(input, volume);
  if (input.attachTo) volume = await attach(input, volume, input.attachTo);

  setCurrentDetails(`${found.created ? 'Created' : 'Reused'} ${volume.volumeId} (${volume.state})`);
  return {
    volumeId: volume.volumeId,
    created: found.created,
    name: input.name,
    region: input.region,
    availabilityZone: volume.availabilityZone,
    sizeGiB: volume.sizeGiB,
    volumeType: volume.volumeType,
    state: volume.state,
    ...(input.attachTo ? { attachedTo: { instanceId: input.attachTo.instanceId, device: input.attachTo.device } } : {}),
  };
}

/**
 * The managed volume of this name if there is exactly one and it may be reused; otherwise a new
 * one. Several of that name, an existing one with `ifExists: 'fail'` or another spec: AlreadyExists.
 */
async function findOrCreate(input: ProvisionVolumeInput): Promise<{ volume: VolumeInfo; created: boolean }> {
  const { region, name } = input;
  setCurrentDetails(`Looking up volume **${name}** in ${region}`);
  const existing = await aws.findVolumesByName.executeWithOptions({ summary: `find volume named ${name}` }, [{ region, name }]);
  if (existing.length > 1) {
    throw ApplicationFailure.create({
      type: ErrorKind.AlreadyExists,
      nonRetryable: true,
      message: `${existing.length} managed volumes are named ${name} (${existing.map((v) => v.volumeId).join(', ')}); resolve the duplicate by hand`,
    });
  }
  if (existing[0]) {
    checkReusable(input, existing[0]);
    log.info('reusing existing volume', { volumeId: existing[0].volumeId });
    return { volume: existing[0], created: false };
  }
  return { volume: await create(input), created: true };
}

/** Throws AlreadyExists unless `volume` may stand for the requested one. */
function checkReusable(input: ProvisionVolumeInput, volume: VolumeInfo): void {
  if (input.ifExists === 'fail') {
    throw ApplicationFailure.create({
      type: ErrorKind.AlreadyExists,
      nonRetryable: true,
      message: `volume ${input.name} already exists as ${volume.volumeId} and ifExists is 'fail'`,
      details: [{ volumeId: volume.volumeId }],
    });
  }
  const mismatches = specMismatches(input, volume);
  if (mismatches.length) {
    throw ApplicationFailure.create({
      type: ErrorKind.AlreadyExists,
      nonRetryable: true,
      message: `volume ${input.name} already exists as ${volume.volumeId} with another spec: ${mismatches.join('; ')}`,
      details: [{ volumeId: volume.volumeId, mismatches }],
    });
  }
}

/** Creates the volume, tagged with this run's ids; a cancel that came meanwhile ends the run here. */
async function create(input: ProvisionVolumeInput): Promise<VolumeInfo> {
  const { workflowId, firstExecutionRunId: runId } = workflowInfo();
  setCurrentDetails(`Creating ${input.sizeGiB} GiB ${input.volumeType} volume **${input.name}** in ${input.availabilityZone}`);
  const volume = await creates.createVolume.executeWithOptions({ summary: `create ${input.sizeGiB} GiB ${input.volumeType} ${input.name}` }, [
    { input, workflowId, runId },
  ]);
  // The create ran to completion even if a cancel came meanwhile (it waits for the activity);
  // a run that was cancelled must not go on to report success with a volume nobody wants.
  if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled while the volume was being created');
  return volume;
}

/** Waits until the volume is available; nothing to wait for when it already is (or is in use). */
async function waitUntilAvailable(input: ProvisionVolumeInput, volume: VolumeInfo): Promise<VolumeInfo> {
  if (volume.state === 'available' || volume.state === 'in-use') return volume;
  setCurrentDetails(`Waiting for ${volume.volumeId} to become available (now ${volume.state})`);
  return waits.waitForVolumeState.executeWithOptions({ summary: `wait for ${volume.volumeId} available` }, [
    { region: input.region, volumeId: volume.volumeId, state: 'available' },
  ]);
}

/** Attaches the volume where asked and waits until it is in use. */
async function attach(input: ProvisionVolumeInput, volume: VolumeInfo, to: { instanceId: string; device: string }): Promise<VolumeInfo> {
  const { instanceId, device } = to;
  setCurrentDetails(`Attaching ${volume.volumeId} to ${instanceId} at ${device}`);
  // Awaited even when cancelled: an AttachVolume still in flight when the cancel came would
  // otherwise land after the compensation looked, and leave the volume attached and undeletable.
  await creates.attachVolume.executeWithOptions({ summary: `attach ${volume.volumeId} to ${instanceId}` }, [
    { region: input.region, volumeId: volume.volumeId, instanceId, device },
  ]);
  return waits.waitForVolumeState.executeWithOptions({ summary: `wait for ${volume.volumeId} in-use` }, [
    { region: input.region, volumeId: volume.volumeId, state: 'in-use' },
  ]);
}

/** Says in the memo and the current details what the compensation deleted, or could not. */
function reportCompensation({ undone, failed }: { undone: string[]; failed: string[] }): void {
  let summary = undone.length ? `cancelled; deleted ${undone.join(', ')}, created by this run` : 'cancelled; this run had created no volume';
  if (failed.length) summary += `; could NOT delete ${failed.join(', ')}: delete by hand`;
  const memo: ProvisionVolumeMemo = { compensation: summary };
  upsertMemo({ ...memo });
  setCurrentDetails(summary);
  log.info('provisioning cancelled', { undone, failed });
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
