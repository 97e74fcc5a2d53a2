/**
 * What the cost tracker does when a budget is crossed: alert, stop the matching instances, or start
 * a cleanup of the matching resources that waits for a person to approve it. Workflow code, called
 * by `costTracker` only.
 *
 * @module
 */
import { ParentClosePolicy, log, proxyActivities, startChild, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { CleanupWorkflowType, type CleanupRequest } from '../contracts/cleanup.js';
import type { AlertRecord, CostTrackerInput } from '../contracts/cost.js';
import type { TrackedResource } from '../cost-model.js';
import { recordAlert, stopAt, type BudgetState, type TrackerState } from '../cost/ledger.js';
import { iso, matches, windowKey } from '../cost/views.js';
import { describeFailure } from '../errors/kinds.js';
import { microsToUsd } from '../pricing.js';
import { SA } from '../search-attributes.js';
import { awsCall } from './options.js';

const aws = proxyActivities<Activities>(awsCall);

/** Workflow time in epoch ms (the start of the current workflow task, the same on every replay). */
function workflowNow(): number {
  return new Date().getTime();
}

function byRegion(rs: TrackedResource[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rs) out.set(r.region, [...(out.get(r.region) ?? []), r.id]);
  return out;
}

/** Stops the budget's running instances, region by region; says which it stopped and which it could not. */
async function stopInstances(state: TrackerState, b: BudgetState, project: string): Promise<string> {
  const targets = Object.values(state.resources).filter((r) => r.kind === 'instance' && r.stoppedAt === undefined && matches(b, r));
  const stopped: string[] = [];
  const failed: string[] = [];
  const refused: string[] = [];
  for (const [region, instanceIds] of byRegion(targets)) {
    try {
      const res = await aws.stopInstances.executeWithOptions({ summary: `budget ${b.name}: stop ${instanceIds.length} instance(s) in ${region}` }, [
        { region, instanceIds, project },
      ]);
      // Instances EC2 does not show as this project's managed ones are left alone (older activities return no `refused`).
      for (const r of res.refused ?? []) refused.push(`${r.id} (${r.reason})`);
      const at = workflowNow();
      for (const id of res.stopped) {
        const r = state.resources[id];
        if (r && r.stoppedAt === undefined) stopAt(r, at);
        stopped.push(id);
      }
    } catch (err) {
      failed.push(...instanceIds);
      log.error('budget action failed', { budget: b.name, region, error: describeFailure(err) });
    }
  }
  return (
    `stopped ${stopped.length ? stopped.join(', ') : 'no instances'}${failed.length ? `; could NOT stop ${failed.join(', ')}` : ''}` +
    `${refused.length ? `; refused to stop ${refused.join(', ')}` : ''}`
  );
}

/**
 * A budget never deletes by itself: it starts a cleanup of what it matches that waits for a person
 * to approve the plan (visible in the UI), and outlives this run if it continues-as-new.
 */
async function startCleanups(state: TrackerState, b: BudgetState, project: string): Promise<string> {
  const targets = Object.values(state.resources).filter((r) => (r.kind === 'instance' || r.kind === 'volume') && r.stoppedAt === undefined && matches(b, r));
  const started: string[] = [];
  for (const [region, ids] of byRegion(targets)) {
    const workflowId = `cleanup/${region}/budget-${project}-${b.name}-${b.firedWindow}`;
    const request: CleanupRequest = { region, selector: { ids }, dryRun: false, approvalThreshold: 0, approvalTimeout: '24h', costProject: project };
    try {
      await startChild(CleanupWorkflowType, {
        workflowId,
        args: [request],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `Budget ${b.name} of ${project} crossed: clean up ${ids.length} resource(s) once approved`,
      });
      started.push(workflowId);
    } catch (err) {
      log.error('budget cleanup could not start', { budget: b.name, region, error: describeFailure(err) });
    }
  }
  return started.length
    ? `started ${started.join(', ')}: waiting for approval, nothing is deleted until someone approves the plan`
    : 'alerted: no running instance or volume matches the budget';
}

/**
 * Fires a crossed budget: marks it fired for its window, runs its action, and records the alert
 * (state, memo, search attribute, log).
 */
export async function fireBudget(state: TrackerState, opts: CostTrackerInput, b: BudgetState, spent: number, now: number): Promise<void> {
  b.firedAt = now;
  b.firedWindow = windowKey(b, now);
  let outcome: string;
  if (b.action === 'stop-instances') outcome = await stopInstances(state, b, opts.project);
  else if (b.action === 'cleanup') outcome = await startCleanups(state, b, opts.project);
  else outcome = 'alerted';
  const alert: AlertRecord = { at: iso(now), budget: b.name, action: b.action, spentUsd: microsToUsd(spent), limitUsd: b.limitMicroUsd / 1_000_000, outcome };
  recordAlert(state, alert);
  if (opts.searchAttributes) upsertSearchAttributes([{ key: SA.budgetExceeded, value: true }]);
  upsertMemo({ budgetAlert: alert });
  log.warn('budget crossed', { ...alert });
}
