import { ApplicationFailure, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { ReconcileInputSchema, type ReconcileOutcome, type ReconcileRequest } from '../contracts/cost.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { awsSweep } from './options.js';

const sweeps = proxyActivities<Activities>(awsSweep);

/**
 * One reconciliation of a project's cost tracker with EC2 (what the hourly Schedule runs): lists the
 * managed resources, and reports orphans and vanished resources to the tracker, which records them
 * and keeps the report for `reconciliationQuery` / `summaryQuery`. Read-only in EC2, so a retried or
 * overlapping run is harmless; on cancel it stops after the current step.
 */
export async function reconcileCost(request: ReconcileRequest): Promise<ReconcileOutcome> {
  const parsed = ReconcileInputSchema.safeParse(request);
  if (!parsed.success) throw ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: describeFailure(parsed.error) });
  const { project, regions } = parsed.data;
  setCurrentDetails(`Comparing EC2 in ${regions.join(', ')} with the cost tracker of **${project}**`);
  const outcome = await sweeps.reconcileProject.executeWithOptions({ summary: `reconcile ${project} in ${regions.join(', ')}` }, [{ project, regions }]);
  setCurrentDetails(`${outcome.checked} managed resources checked: ${outcome.orphans.length} orphans, ${outcome.vanished.length} vanished`);
  return outcome;
}
