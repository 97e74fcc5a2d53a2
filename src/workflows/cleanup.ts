import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import {
  CleanupInputSchema,
  CleanupOutcome,
  CleanupStep,
  cleanupApproveUpdate,
  cleanupPlanQuery,
  cleanupRejectUpdate,
  cleanupStatusQuery,
  type CleanupDependency,
  type CleanupInput,
  type CleanupPhase,
  type CleanupPlan,
  type CleanupReport,
  type CleanupRequest,
  type CleanupResult,
  type PlannedResource,
} from '../contracts/cleanup.js';
import { costTrackerWorkflowId, resourceStoppedSignal } from '../contracts/cost.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { durationMs, planCleanup } from '../cleanup-plan.js';
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

function emptyReport(): CleanupReport {
  return { deleted: [], alreadyGone: [], skipped: [], failed: [], snapshots: [] };
}

/** The run's state the queries and updates read: phase, plan, report so far, steps in flight, decision. */
interface Run {
  phase: CleanupPhase;
  plan: CleanupPlan | null;
  report: CleanupReport;
  inFlight: Map<string, string>;
  decision?: { approved: boolean; reason?: string };
}

/**
 * Cleans up the resources a selector names in one region, safely.
 *
 * Discovers the candidates and plans (see `planCleanup`): each resource its steps, or the reason it
 * is skipped. A dry run (the default) returns the plan and deletes nothing. Otherwise a plan that
 * deletes more than `approvalThreshold` resources, or anything protected or important, waits for the
 * `approve` update naming the plan's hash; `reject` or `approvalTimeout` ends the run with nothing
 * deleted. Then every resource runs its own line of steps, up to `concurrency` steps at a time, in
 * dependency order (an instance is stopped before its volumes are detached, volumes are detached
 * before they are deleted and before the instance is terminated, snapshots are deleted after the
 * volumes); one resource failing does not stop the others.
 *
 * Idempotent: every step is (a NotFound on delete counts as already gone), so a second run finds
 * nothing to do. On cancel it lets the step in flight on each resource finish, starts no new step,
 * records what was and was not done (the `status` query, the memo and the current details) and ends
 * as cancelled. While it waits for approval, a cancel ends it with nothing deleted.
 */
export async function cleanup(request: CleanupRequest): Promise<CleanupResult> {
  const run: Run = { phase: 'planning', plan: null, report: emptyReport(), inFlight: new Map() };
  registerHandlers(run);
  const input = parseRequest(request);
  const plan = await discoverAndPlan(run, input);
  if (input.dryRun) return finishDryRun(run, plan);
  if (plan.needsApproval) {
    const refused = await awaitApproval(run, plan, input);
    if (refused) return refused;
  }
  return deleteAll(run, plan, input);
}

/** The `plan` and `status` queries, and the `approve` / `reject` updates (accepted only while waiting for approval). */
function registerHandlers(run: Run): void {
  setHandler(cleanupPlanQuery, () => run.plan);
  setHandler(cleanupStatusQuery, () => ({
    phase: run.phase,
    plan: run.plan,
    report: run.report,
    inFlight: [...run.inFlight].map(([id, step]) => ({ id, step })),
  }));
  const awaitingApproval = (): CleanupPlan => {
    if (run.phase !== 'awaiting-approval' || run.plan === null || run.decision !== undefined) {
      throw ApplicationFailure.create({
        type: ErrorKind.InvalidInput,
        nonRetryable: true,
        message: `this cleanup is not waiting for approval (it is ${run.phase})`,
      });
    }
    return run.plan;
  };
  setHandler(
    cleanupApproveUpdate,
    ({ planHash }) => {
      run.decision = { approved: true };
      return { approved: true, planHash };
    },
    {
      validator: (arg) => {
        const current = awaitingApproval();
        if (typeof arg?.planHash !== 'string' || arg.planHash !== current.hash) {
          throw ApplicationFailure.create({
            type: ErrorKind.InvalidInput,
            nonRetryable: true,
            message: `plan hash ${JSON.stringify(arg?.planHash)} is not this plan's (${current.hash}): read the plan again and approve what it says`,
          });
        }
      },
    },
  );
  setHandler(
    cleanupRejectUpdate,
    ({ reason }) => {
      run.decision = { approved: false, reason: reason ?? 'rejected' };
      return { rejected: true };
    },
    { validator: (_arg) => void awaitingApproval() },
  );
}

function parseRequest(request: CleanupRequest): CleanupInput {
  const parsed = CleanupInputSchema.safeParse(request);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: `invalid cleanup request: ${describeFailure(parsed.error)}` });
  }
  return parsed.data;
}

/** Discovers the candidates in the region (one activity) and plans their deletion (pure). */
async function discoverAndPlan(run: Run, input: CleanupInput): Promise<CleanupPlan> {
  setCurrentDetails(`Discovering resources in ${input.region}`);
  const discovery = await aws.cleanupDiscover.executeWithOptions({ summary: `discover cleanup candidates in ${input.region}` }, [
    { region: input.region, selector: input.selector },
  ]);
  const plan = planCleanup(discovery, input, { failClosed: failClosedPlanning() });
  run.plan = plan;
  log.info('cleanup planned', { hash: plan.hash, resources: plan.resources.length, skipped: plan.skipped.length, dryRun: input.dryRun });
  return plan;
}

/**
 * Whether this run plans fail-closed (issue 10): protection tags protect unless explicitly false,
 * only an explicit `trainctl:managed=true` makes a candidate, snapshot-before-delete backups are
 * never tag-selected, and S3 targets or unmanaged ids always wait for approval. Those change which
 * steps (and whether an approval timer) a plan schedules, so runs recorded before keep the old
 * reading on replay. Can become `deprecatePatch('cleanup-fail-closed-plan')` once no cleanup run
 * started before this change is open (the longest is its approvalTimeout plus its deletions), and
 * be removed with the legacy reading in `planCleanup` a retention period after that.
 */
function failClosedPlanning(): boolean {
  return patched('cleanup-fail-closed-plan');
}

function skipsOf(plan: CleanupPlan): { id: string; reason: string }[] {
  return plan.skipped.map(({ id, reason }) => ({ id, reason }));
}

function finishDryRun(run: Run, plan: CleanupPlan): CleanupResult {
  run.phase = 'done';
  run.report.skipped.push(...skipsOf(plan));
  setCurrentDetails(`Dry run: would delete ${plan.resources.length}, skip ${plan.skipped.length} (plan ${plan.hash})`);
  return { outcome: CleanupOutcome.planned, plan, report: run.report };
}

/** Waits for `approve` naming the plan's hash; returns the result when it was rejected or timed out instead. */
async function awaitApproval(run: Run, plan: CleanupPlan, input: CleanupInput): Promise<CleanupResult | undefined> {
  run.phase = 'awaiting-approval';
  setCurrentDetails(
    `**Waiting for approval** of plan ${plan.hash} (${plan.approvalReasons.join('; ')}). ` +
      `Approve with the \`approve\` update naming the plan hash, or reject with \`reject\`; times out after ${input.approvalTimeout}.`,
  );
  const decided = await condition(() => run.decision !== undefined, durationMs(input.approvalTimeout));
  if (decided && run.decision?.approved) {
    log.info('cleanup plan approved', { hash: plan.hash });
    return undefined;
  }
  run.phase = 'done';
  const message = decided
    ? `rejected: ${run.decision?.reason ?? 'rejected'}; nothing was deleted`
    : `not approved within ${input.approvalTimeout}; nothing was deleted`;
  run.report.skipped.push(...skipsOf(plan));
  run.report.skipped.push(...plan.resources.map((r) => ({ id: r.id, reason: decided ? 'plan rejected' : 'plan not approved in time' })));
  setCurrentDetails(message);
  return { outcome: decided ? CleanupOutcome.rejected : CleanupOutcome.approvalTimedOut, plan, report: run.report, message };
}

/** Runs the plan to the end (or to a cancel, then fails as cancelled) and says what it did. */
async function deleteAll(run: Run, plan: CleanupPlan, input: CleanupInput): Promise<CleanupResult> {
  const report = run.report;
  run.phase = 'running';
  report.skipped.push(...skipsOf(plan));
  const cancelled = await execute(plan, input, report, run.inFlight);
  run.phase = 'done';
  const summary =
    `${cancelled ? 'Cancelled: ' : ''}deleted ${report.deleted.length}, already gone ${report.alreadyGone.length}, ` +
    `skipped ${report.skipped.length}, failed ${report.failed.length}${report.snapshots.length ? `, snapshots ${report.snapshots.length}` : ''}`;
  setCurrentDetails(summary);
  upsertMemo({ cleanup: summary });
  if (cancelled) {
    log.info('cleanup cancelled', { deleted: report.deleted, notDone: report.skipped.length });
    throw new CancelledFailure(`cleanup cancelled: ${summary}; the status query has the full report`);
  }
  return { outcome: CleanupOutcome.completed, plan, report };
}

/** Runs every planned resource's line; returns whether a cancel stopped it. */
async function execute(plan: CleanupPlan, input: CleanupInput, report: CleanupReport, inFlight: Map<string, string>): Promise<boolean> {
  let cancelRequested = false;
  CancellationScope.current().cancelRequested.catch(() => {
    cancelRequested = true;
  });
  const lines = new Map<string, Line>(plan.resources.map((r) => [r.id, { reached: new Set<CleanupStep>() }]));
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
          const out = await runStep(r, s, plan.region, workflowId, snapshotId);
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
      report.failed.push({ id: r.id, kind, message: cause instanceof Error ? cause.message : String(cause), ...(current ? { step: current } : {}) });
      log.warn('cleanup of a resource failed', { id: r.id, kind });
    }
  }

  // The lines run to the end of their step in flight even when the run is cancelled.
  await CancellationScope.nonCancellable(() => Promise.all(plan.resources.map((r) => runLine(r))));
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

function notDoneReason(done: CleanupStep[]): string {
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
