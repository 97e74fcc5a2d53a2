import { Context } from '@temporalio/activity';
import { progressCounter, withProgress } from '../transfer/progress.js';
import type { RunScope } from '../transfer/types.js';
import { abortSignal } from './aws-call.js';

/**
 * The running activity as the transfer engine sees it: its id, last checkpoint, heartbeat, abort
 * signal and progress under `label`. The bytes moved ride on every heartbeat (the engine beats
 * every second; the SDK passes the latest to the server at most every ~80 % of the heartbeat
 * timeout), where `api.transfer.progress` reads them: no signal, no history event.
 */
export function activityScope(label: string): RunScope {
  const ctx = Context.current();
  const info = ctx.info;
  const progress = progressCounter(label);
  return {
    id: `${info.workflowExecution?.workflowId}/${info.activityId}`,
    resume: info.heartbeatDetails,
    heartbeat: (details) => ctx.heartbeat(withProgress(details, progress.snapshot())),
    progress,
    signal: abortSignal(),
  };
}

/** Whether the running activity is being cancelled (or `err` is the SDK's cancellation). */
export function isActivityCancelled(err: unknown): boolean {
  return abortSignal()?.aborted === true || (err instanceof Error && err.name === 'CancelledFailure');
}
