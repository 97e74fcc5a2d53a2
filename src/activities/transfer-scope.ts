import { Context, log } from '@temporalio/activity';
import { transferProgressSignal, type TransferProgressUpdate } from '../contracts/transfer.js';
import { progressReporter } from '../transfer/progress.js';
import type { RunScope } from '../transfer/types.js';
import { abortSignal } from './aws-call.js';

/** Sends the workflow that scheduled the running activity a progress update; a lost one is logged, never thrown. */
export function progressSender(): (update: TransferProgressUpdate) => void {
  const ctx = Context.current();
  const workflowId = ctx.info.workflowExecution?.workflowId;
  return (update) => {
    if (!workflowId) return;
    ctx.client.workflow
      .getHandle(workflowId)
      .signal(transferProgressSignal, update)
      .catch((err: unknown) => log.warn('progress signal not delivered', { label: update.label, error: String(err) }));
  };
}

/** The running activity as the transfer engine sees it: its id, last checkpoint, heartbeat, abort signal and progress under `label`. */
export function activityScope(label: string, progressIntervalMs: number): RunScope {
  const ctx = Context.current();
  const info = ctx.info;
  return {
    id: `${info.workflowExecution?.workflowId}/${info.activityId}`,
    resume: info.heartbeatDetails,
    heartbeat: (details) => ctx.heartbeat(details),
    progress: progressReporter(label, progressIntervalMs, progressSender()),
    signal: abortSignal(),
  };
}

/** Whether the running activity is being cancelled (or `err` is the SDK's cancellation). */
export function isActivityCancelled(err: unknown): boolean {
  return abortSignal()?.aborted === true || (err instanceof Error && err.name === 'CancelledFailure');
}
