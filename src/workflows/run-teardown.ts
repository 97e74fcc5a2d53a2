/**
 * The end of a training run: teardown by the run's policy, and compensation after a cancel.
 * Both touch only what this run created (the instance it launched, the volume it provisioned);
 * what it adopted or reused is never stopped, detached or deleted. Called by `training-run.ts`.
 */
import { log, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { describeFailure } from '../errors/kinds.js';
import { syncCheckpoints, type RunContext } from './run-steps.js';
import { awsCall, awsWait, bestEffort } from './options.js';

const aws = proxyActivities<Activities>(awsCall);
const waits = proxyActivities<Activities>(awsWait);
const costs = proxyActivities<Activities>(bestEffort);

/** Tells the cost tracker a resource is gone. Best-effort: reconciliation catches what this misses. */
async function costStopped(ctx: RunContext, id: string): Promise<void> {
  await costs.recordResourceStopped
    .executeWithOptions({ summary: `record ${id} stopped with cost-tracker/${ctx.input.project}` }, [{ project: ctx.input.project, stop: { id } }])
    .catch((err: unknown) => log.warn('could not tell the cost tracker', { id, error: describeFailure(err) }));
}

async function detachAndWait(ctx: RunContext, volumeId: string): Promise<void> {
  const region = ctx.input.region;
  const v = await aws.describeVolume.executeWithOptions({ summary: `describe ${volumeId}` }, [{ region, volumeId }]);
  if (v.attachments.length) {
    await aws.detachVolume.executeWithOptions({ summary: `detach ${volumeId}` }, [{ region, volumeId }]);
    await waits.waitForVolumeState.executeWithOptions({ summary: `wait for ${volumeId} available` }, [{ region, volumeId, state: 'available' }]);
  }
}

async function deleteVolume(ctx: RunContext, volumeId: string, snapshotFirst: boolean, undone: string[]): Promise<void> {
  const region = ctx.input.region;
  await detachAndWait(ctx, volumeId);
  if (snapshotFirst) {
    const snap = await aws.cleanupSnapshotVolume.executeWithOptions({ summary: `snapshot ${volumeId}` }, [
      { region, volumeId, workflowId: workflowInfo().workflowId },
    ]);
    if (snap.snapshotId) {
      await waits.cleanupWaitSnapshotCompleted.executeWithOptions({ summary: `wait for ${snap.snapshotId}` }, [{ region, snapshotId: snap.snapshotId }]);
      undone.push(`snapshotted volume ${volumeId} as ${snap.snapshotId}`);
    }
  }
  await aws.deleteVolume.executeWithOptions({ summary: `delete ${volumeId}` }, [{ region, volumeId }]);
  undone.push(`deleted volume ${volumeId}`);
  await costStopped(ctx, volumeId);
}

async function endInstance(ctx: RunContext, instanceId: string, how: 'terminate' | 'stop', undone: string[]): Promise<void> {
  const region = ctx.input.region;
  if (how === 'terminate') {
    await aws.cleanupTerminateInstance.executeWithOptions({ summary: `terminate ${instanceId}` }, [{ region, instanceId }]);
    await waits.cleanupWaitInstance.executeWithOptions({ summary: `wait for ${instanceId} terminated` }, [{ region, instanceId, state: 'terminated' }]);
    undone.push(`terminated instance ${instanceId}`);
  } else {
    await aws.cleanupStopInstance.executeWithOptions({ summary: `stop ${instanceId}` }, [{ region, instanceId }]);
    await waits.cleanupWaitInstance.executeWithOptions({ summary: `wait for ${instanceId} stopped` }, [{ region, instanceId, state: 'stopped' }]);
    undone.push(`stopped instance ${instanceId}`);
  }
  await costStopped(ctx, instanceId);
}

/**
 * Teardown by the run's policy: the instance first (terminate / stop / keep) — a volume in use by a
 * running instance may not detach until the instance is gone — then the volume (delete /
 * snapshot-then-delete / keep).
 */
export async function teardown(ctx: RunContext, undone: string[]): Promise<void> {
  const { input, status } = ctx;
  const { instanceId, instanceCreated, volumeId, volumeCreated } = status.resources;
  setCurrentDetails(`Tearing down (instance: ${input.teardown.instance}, volume: ${input.teardown.volume})`);
  if (instanceId && instanceCreated && input.teardown.instance !== 'keep') {
    await endInstance(ctx, instanceId, input.teardown.instance, undone);
  } else if (instanceId) {
    undone.push(`kept instance ${instanceId}${instanceCreated ? ' (policy keep)' : ' (adopted, not this run’s)'}`);
  }
  if (volumeId && volumeCreated && input.teardown.volume !== 'keep') {
    await deleteVolume(ctx, volumeId, input.teardown.volume === 'snapshot-then-delete', undone);
  } else if (volumeId) {
    undone.push(`kept volume ${volumeId}${volumeCreated ? ' (policy keep)' : ' (reused, not this run’s)'}`);
  }
}

/** Records the instance this run launched when its launch's response never arrived (found by the run's tag). */
export async function findLaunched(ctx: RunContext): Promise<void> {
  const { input, status } = ctx;
  if ('existingInstanceId' in input.instance) return;
  const mine = await aws.findRunInstances
    .executeWithOptions({ summary: 'find instances this run launched' }, [{ region: input.region, runId: workflowInfo().firstExecutionRunId }])
    .catch(() => []);
  const live = mine.find((i) => i.state !== 'terminated' && i.state !== 'shutting-down');
  if (live) {
    status.resources.instanceId = live.instanceId;
    status.resources.instanceCreated = true;
  }
}

/**
 * After a cancel (not cancellable itself): the last checkpoint if training had started, then
 * everything this run created is deleted whatever the policy — found by the run's tag as well as
 * remembered, so a launch that was in flight when the cancel came is not left running. Each undo
 * step's failure is recorded and the rest still run.
 */
export async function compensate(ctx: RunContext, trainingStarted: boolean, undone: string[]): Promise<void> {
  const { input, status } = ctx;
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      undone.push(`could NOT ${what}: ${describeFailure(err)} — do it by hand`);
    }
  };
  if (trainingStarted && ctx.hostId) await attempt('sync the last checkpoint', () => syncCheckpoints(ctx, 'checkpoint-on-cancel'));
  // Instances first: a volume in use by a running instance may not detach until the instance is gone.
  if ('existingInstanceId' in input.instance) {
    if (status.resources.instanceId) undone.push(`left instance ${status.resources.instanceId} alone (adopted, not this run’s)`);
  } else {
    const mine = await aws.findRunInstances
      .executeWithOptions({ summary: 'find instances this run launched' }, [{ region: input.region, runId: workflowInfo().firstExecutionRunId }])
      .catch(() => (status.resources.instanceId ? [{ instanceId: status.resources.instanceId, state: 'unknown' }] : []));
    for (const i of mine) {
      if (i.state === 'terminated') continue;
      await attempt(`terminate instance ${i.instanceId}`, () => endInstance(ctx, i.instanceId, 'terminate', undone));
    }
  }
  const { volumeId, volumeCreated } = status.resources;
  if (volumeId && volumeCreated) await attempt(`delete volume ${volumeId}`, () => deleteVolume(ctx, volumeId, false, undone));
  else if (volumeId) undone.push(`left volume ${volumeId} alone (reused, not this run’s)`);
  // The child has finished its own compensation by now (children are cancelled waiting for it).
  else if (ctx.volumeChildCancelled)
    undone.push(`volume step cancelled in flight: ${ctx.volumeChildCancelled} deleted what it had created (its memo lists it)`);
  log.info('run compensated', { undone });
}
