import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
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
  cleanupApproveUpdate,
  cleanupPlanQuery,
  cleanupRejectUpdate,
  cleanupStatusQuery,
  type CleanupCarried,
  type CleanupInput,
  type CleanupPhase,
  type CleanupPlan,
  type CleanupReport,
  type CleanupRequest,
  type CleanupResult,
} from '../contracts/cleanup.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { durationMs, planCleanup, planHash } from '../cleanup-plan.js';
import { chunkPlan, planTooLarge } from '../cleanup-chunks.js';
import { execute, notDoneReason } from './cleanup-steps.js';
import { awsCall } from './options.js';

const aws = proxyActivities<Activities>(awsCall);

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
  chunk?: { index: number; count: number };
  /** Whether this run bounds and chunks its plan: read once, at planning, so a run recorded before it keeps the old reading throughout. */
  chunked?: boolean;
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
 * Bounded (issue 12): a plan over 2,000 resources or 512 KiB is refused before anything is deleted,
 * naming how to narrow the selector. An approved plan runs `chunkSize` resources per workflow run,
 * then continues as new carrying the plan (its hash checked again), the next chunk and the report so
 * far, so each run's history stays under a fixed budget; the approval covers the whole plan once.
 *
 * Idempotent: every step is (a NotFound on delete counts as already gone), so a second run finds
 * nothing to do. On cancel it lets the step in flight on each resource finish, starts no new step,
 * records what was and was not done (the `status` query, the memo and the current details) and ends
 * as cancelled. While it waits for approval, a cancel ends it with nothing deleted.
 */
export async function cleanup(request: CleanupRequest, carried?: CleanupCarried): Promise<CleanupResult> {
  const run: Run = { phase: 'planning', plan: null, report: emptyReport(), inFlight: new Map() };
  registerHandlers(run);
  const input = parseRequest(request);
  if (carried) return resumeChunks(run, input, carried);
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
    ...(run.chunk ? { chunk: run.chunk } : {}),
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
  run.chunked = chunkedCleanup();
  const tooLarge = run.chunked ? planTooLarge(plan) : undefined;
  if (tooLarge) throw ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: tooLarge });
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

/**
 * Whether this run bounds its plan and executes it in chunks (issue 12): a plan over the limits is
 * refused, and each chunk of `chunkSize` resources runs in its own workflow run (continue-as-new).
 * A plan of one chunk schedules what it did before, but the refusal and the continue-as-new are
 * new commands. Can become `deprecatePatch('cleanup-chunked-plan')` once no cleanup started before
 * this change is open (its approvalTimeout plus its deletions), then be removed a retention period later.
 */
function chunkedCleanup(): boolean {
  return patched('cleanup-chunked-plan');
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

/** Runs the plan to the end (or to a cancel, then fails as cancelled), a chunk a run when chunked, and says what it did. */
async function deleteAll(run: Run, plan: CleanupPlan, input: CleanupInput): Promise<CleanupResult> {
  run.phase = 'running';
  run.report.skipped.push(...skipsOf(plan));
  if (run.chunked) return runChunk(run, plan, input, 0);
  const cancelled = await execute(plan.resources, plan.region, input, run.report, run.inFlight);
  return finish(run, plan, cancelled);
}

/**
 * Runs chunk `index` of the approved plan; then continues as new with the next one, or ends the
 * cleanup after the last (or a cancel: the chunks not started are reported as not done).
 */
async function runChunk(run: Run, plan: CleanupPlan, input: CleanupInput, index: number): Promise<CleanupResult> {
  const chunks = chunkPlan(plan.resources, input.chunkSize);
  const chunk = chunks[index] ?? [];
  run.chunk = { index: index + 1, count: chunks.length };
  if (chunks.length > 1) setCurrentDetails(`Running chunk ${index + 1} of ${chunks.length} (${chunk.length} resources) of plan ${plan.hash}`);
  let cancelRequested = false;
  CancellationScope.current().cancelRequested.catch(() => {
    cancelRequested = true;
  });
  let cancelled = await execute(
    chunk.map((i) => plan.resources[i]!),
    plan.region,
    input,
    run.report,
    run.inFlight,
  );
  if (!cancelled && index + 1 < chunks.length) {
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
    // A cancel that came with the chunk's last results must not be lost by continuing as new.
    cancelled = cancelRequested;
    if (!cancelled) {
      const { skipped, ...rest } = run.report;
      const report = { ...rest, skipped: skipped.slice(plan.skipped.length) };
      log.info('cleanup chunk done, continuing as new', { hash: plan.hash, chunk: index + 1, chunks: chunks.length });
      return continueAsNew<typeof cleanup>(input, { planHash: plan.hash, plan, nextChunk: index + 1, report, fromRunId: workflowInfo().runId });
    }
  }
  if (cancelled) {
    const notStarted = chunks.slice(index + 1).flat();
    run.report.skipped.push(...notStarted.map((i) => ({ id: plan.resources[i]!.id, reason: notDoneReason([]) })));
  }
  return finish(run, plan, cancelled);
}

/**
 * A run continued as new: checks that what it carries is the approved plan, unchanged, made for
 * this request, and goes on with its next chunk. Carried work given at a start is refused.
 */
async function resumeChunks(run: Run, input: CleanupInput, carried: CleanupCarried): Promise<CleanupResult> {
  const refuse = (why: string): never => {
    throw ApplicationFailure.create({
      type: ErrorKind.InvalidInput,
      nonRetryable: true,
      message: `refusing to continue this cleanup: ${why}; nothing was deleted`,
    });
  };
  // The run id is made by the server: only the run that continued as new can name it (a cron or retry run also has a predecessor, but not this one).
  const from = workflowInfo().continuedFromExecutionRunId;
  if (from === undefined || carried.fromRunId !== from) refuse('carried work is accepted only by a run the cleanup itself continued as new');
  const { plan } = carried;
  if (plan.hash !== carried.planHash || planHash(plan) !== carried.planHash) refuse(`the carried plan is not the approved plan ${carried.planHash}`);
  if (plan.dryRun || plan.region !== input.region || plan.force !== input.force || plan.snapshotBeforeDelete !== input.snapshotBeforeDelete)
    refuse('the carried plan was not made for this request');
  const count = chunkPlan(plan.resources, input.chunkSize).length;
  if (!Number.isInteger(carried.nextChunk) || carried.nextChunk < 1 || carried.nextChunk >= count)
    refuse(`chunk ${carried.nextChunk} is not one of 2..${count}`);
  run.plan = plan;
  run.phase = 'running';
  run.report = { ...carried.report, skipped: [...skipsOf(plan), ...carried.report.skipped] };
  return runChunk(run, plan, input, carried.nextChunk);
}

/** Ends the run: the summary in the details and the memo; a cancelled run fails as cancelled. */
function finish(run: Run, plan: CleanupPlan, cancelled: boolean): CleanupResult {
  const report = run.report;
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
