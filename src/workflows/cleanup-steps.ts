/**
 * The cleanup's execution (src/workflows/cleanup.ts tells the story): each planned resource its own
 * line of steps, one activity a step, lines waiting on each other by their dependencies.
 *
 * @module
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { CleanupStep, type CleanupDependency, type CleanupInput, type CleanupReport, type PlannedResource } from '../contracts/cleanup.js';
import { costTrackerWorkflowId, resourceStoppedSignal } from '../contracts/cost.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { awsCall, awsWait } from './options.js';

const aws = proxyActivities<Activities>(awsCall);
const waits = proxyActivities<Activities>(awsWait);

/** A counting semaphore of plain promises: waiters are served in order, deterministically. */
class Slots {
  private readonly waiters: (() => void)[] = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  give(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free += 1;
  }
}

type LineOutcome = 'deleted' | 'gone' | 'failed' | 'skipped';
interface Line {
  reached: Set<CleanupStep>;
  outcome?: LineOutcome;
}

/**
 * Runs the line of every resource given (the whole plan, or one chunk of it), up to `concurrency`
 * steps at a time, and returns whether a cancel stopped it. A dependency on a line not given counts
 * as met: chunks are cut so that such a line ended in an earlier chunk (see `chunkPlan`).
 */
export async function execute(
  resources: PlannedResource[],
  region: string,
  input: CleanupInput,
  report: CleanupReport,
  inFlight: Map<string, string>,
): Promise<boolean> {
  let cancelRequested = false;
  CancellationScope.current().cancelRequested.catch(() => {
    cancelRequested = true;
  });
  const lines = new Map<string, Line>(resources.map((r) => [r.id, { reached: new Set<CleanupStep>() }]));
  const slots = new Slots(input.concurrency);
  const { workflowId } = workflowInfo();

  const depMet = (dep: CleanupDependency): boolean => {
    const other = lines.get(dep.resourceId);
    if (!other) return true;
    return dep.after === 'settled' ? other.outcome !== undefined : other.reached.has(dep.after) || other.outcome !== undefined;
  };

  async function runLine(r: PlannedResource): Promise<void> {
    const line = lines.get(r.id)!;
    const done: CleanupStep[] = [];
    const stopHere = (reason: string) => {
      line.outcome = 'skipped';
      report.skipped.push({ id: r.id, reason });
    };
    let snapshotId: string | undefined;
    let current: CleanupStep | undefined;
    try {
      for (const s of r.steps) {
        for (const dep of r.dependsOn.filter((d) => d.beforeStep === s)) {
          await condition(() => depMet(dep) || cancelRequested);
          const other = lines.get(dep.resourceId);
          if (dep.after !== 'settled' && other && !other.reached.has(dep.after) && other.outcome !== 'gone' && other.outcome !== undefined) {
            return stopHere(`${dep.resourceId} did not reach ${dep.after} (${other.outcome}), so ${r.id} was left as it was before ${s}`);
          }
        }
        if (cancelRequested) return stopHere(notDoneReason(done));
        await slots.take();
        try {
          if (cancelRequested) return stopHere(notDoneReason(done));
          inFlight.set(r.id, s);
          current = s;
          const out = await runStep(r, s, region, workflowId, snapshotId);
          // The step found the resource not as planned and did nothing: skip it, the rest goes on.
          if (out.changed) return stopHere(`changed since the plan: ${out.changed}${done.length ? ` (after ${done.join(', ')})` : ''}`);
          if ('snapshotId' in out && out.snapshotId) snapshotId = out.snapshotId;
          if (s === CleanupStep.waitSnapshotCompleted && snapshotId) report.snapshots.push({ snapshotId, volumeId: r.id });
          if (out.gone) {
            line.outcome = 'gone';
            report.alreadyGone.push(r.id);
            return;
          }
        } finally {
          inFlight.delete(r.id);
          slots.give();
        }
        done.push(s);
        line.reached.add(s);
      }
      line.outcome = 'deleted';
      report.deleted.push(r.id);
      await notifyCostTracker(input.costProject, r);
    } catch (err) {
      line.outcome = 'failed';
      const cause = err instanceof ActivityFailure ? err.cause : err;
      const kind = cause instanceof ApplicationFailure && cause.type ? cause.type : ErrorKind.Unknown;
      // Cut, so that 2,000 failures (each a long IAM message, say) still fit the report carried into the next chunk.
      const message = cause instanceof Error ? cause.message : String(cause);
      report.failed.push({ id: r.id, kind, message: message.length > 300 ? `${message.slice(0, 299)}…` : message, ...(current ? { step: current } : {}) });
      log.warn('cleanup of a resource failed', { id: r.id, kind });
    }
  }

  // The lines run to the end of their step in flight even when the run is cancelled.
  await CancellationScope.nonCancellable(() => Promise.all(resources.map((r) => runLine(r))));
  return cancelRequested;
}

/**
 * Tells the cost tracker of the resource's project (its trainctl:project tag, else `costProject`)
 * that the resource stopped costing money. Best effort: a tracker
 * that does not run (or refuses the signal) is logged, never a failure of the cleanup.
 */
async function notifyCostTracker(costProject: string | undefined, r: PlannedResource): Promise<void> {
  // The resource's own project tag wins: that is the tracker that counted it.
  const project = r.project ?? costProject;
  if (project === undefined || (r.kind !== 'instance' && r.kind !== 'volume' && r.kind !== 'snapshot')) return;
  try {
    await getExternalWorkflowHandle(costTrackerWorkflowId(project)).signal(resourceStoppedSignal, { id: r.id });
  } catch (err) {
    log.warn('could not tell the cost tracker about a deletion', { project, id: r.id, error: describeFailure(err) });
  }
}

export function notDoneReason(done: CleanupStep[]): string {
  return done.length ? `not done: cleanup cancelled after ${done.join(', ')}` : 'not done: cleanup cancelled before it started';
}

async function runStep(
  r: PlannedResource,
  s: CleanupStep,
  region: string,
  workflowId: string,
  snapshotId: string | undefined,
): Promise<{ gone: boolean; changed?: string; snapshotId?: string }> {
  const summary = { summary: `${s} ${r.id}` };
  const expect = r.expect ? { expect: r.expect } : {};
  switch (s) {
    case CleanupStep.stopInstance:
      return aws.cleanupStopInstance.executeWithOptions(summary, [{ region, instanceId: r.id, ...expect }]);
    case CleanupStep.waitInstanceStopped:
      return waits.cleanupWaitInstance.executeWithOptions(summary, [{ region, instanceId: r.id, state: 'stopped' }]);
    case CleanupStep.terminateInstance:
      return aws.cleanupTerminateInstance.executeWithOptions(summary, [{ region, instanceId: r.id, ...expect }]);
    case CleanupStep.waitInstanceTerminated:
      return waits.cleanupWaitInstance.executeWithOptions(summary, [{ region, instanceId: r.id, state: 'terminated' }]);
    case CleanupStep.detachVolume:
      return aws.cleanupDetachVolume.executeWithOptions(summary, [{ region, volumeId: r.id, ...r.target, ...expect }]);
    case CleanupStep.waitVolumeAvailable:
      return waits.cleanupWaitVolumeAvailable.executeWithOptions(summary, [{ region, volumeId: r.id }]);
    case CleanupStep.snapshotVolume:
      return aws.cleanupSnapshotVolume.executeWithOptions(summary, [{ region, volumeId: r.id, workflowId, ...expect }]);
    case CleanupStep.waitSnapshotCompleted:
      if (!snapshotId) throw ApplicationFailure.create({ type: ErrorKind.Unknown, nonRetryable: true, message: `no snapshot of ${r.id} to wait for` });
      await waits.cleanupWaitSnapshotCompleted.executeWithOptions({ summary: `wait for ${snapshotId} of ${r.id} to complete` }, [{ region, snapshotId }]);
      return { gone: false };
    case CleanupStep.deleteVolume:
      return aws.cleanupDeleteVolume.executeWithOptions(summary, [{ region, volumeId: r.id, ...expect }]);
    case CleanupStep.deleteSnapshot:
      return aws.cleanupDeleteSnapshot.executeWithOptions(summary, [{ region, snapshotId: r.id, ...expect }]);
    case CleanupStep.abortMultipartUpload:
      return aws.cleanupAbortMultipartUpload.executeWithOptions(summary, [
        { region, ...profileOf(r), bucket: r.target.bucket ?? '', key: r.target.key ?? '', uploadId: r.target.uploadId ?? '', ...expect },
      ]);
    case CleanupStep.deleteS3Prefix:
      return waits.cleanupDeleteS3Prefix.executeWithOptions(summary, [
        { region, ...profileOf(r), bucket: r.target.bucket ?? '', prefix: r.target.prefix ?? '', ...expect },
      ]);
  }
}

/** `{ profile }` for an S3 target on another store (so other steps' inputs stay as they were). */
function profileOf(r: { target: { profile?: string } }): { profile?: string } {
  return r.target.profile ? { profile: r.target.profile } : {};
}
