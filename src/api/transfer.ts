/**
 * Transfers from a script: start one, watch its progress, wait for its report, cancel it.
 *
 * ```ts
 * import { connect, transfer } from 'trainctl';
 * const client = await connect();
 * const handle = await transfer.start(client, { source: { kind: 'local', path: '/data' }, destination: { kind: 's3', uri: 's3://bkt/data/' } });
 * console.log(await transfer.progress(handle));
 * const report = await handle.result();
 * ```
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { ZodError } from 'zod';
import {
  TransferInputSchema,
  TransferWorkflowType,
  transferProgressQuery,
  transferWorkflowId,
  type TransferInput,
  type TransferProgress,
  type TransferProgressUpdate,
  type TransferReport,
  type TransferRequest,
} from '../contracts/transfer.js';
import { SA } from '../search-attributes.js';
import { formatLocation } from '../transfer/location.js';
import type { transfer as transferWorkflow } from '../workflows/transfer.js';
import { explained } from './start.js';

/** A handle on a running (or finished) transfer. */
export type TransferHandle = WorkflowHandle<typeof transferWorkflow>;
/** The handle {@link start} returns: it also knows the run it started. */
export type StartedTransferHandle = WorkflowHandleWithFirstExecutionRunId<typeof transferWorkflow>;

/** Where and under which id a transfer starts. */
export interface TransferStartOptions {
  /** The orchestration workers' task queue (`TRAINCTL_TASK_QUEUE`); `trainctl` by default. */
  taskQueue?: string;
  /** The workflow id; `transfer/` and 8 random hex digits by default. */
  workflowId?: string;
}

/** The task queue trainctl's workers poll unless `TRAINCTL_TASK_QUEUE` says otherwise. */
const DEFAULT_TASK_QUEUE = 'trainctl';

/**
 * Validates a request with {@link TransferInputSchema} and returns the defaulted input a transfer
 * runs on. Contacts nothing.
 *
 * @throws ZodError naming each bad field.
 */
export function validate(request: TransferRequest): TransferInput {
  const input = TransferInputSchema.parse(request);
  if (input.continuation !== undefined) {
    const message = 'is set only by the transfer itself when it continues with its next page: leave it out';
    throw new ZodError([{ code: 'custom', path: ['continuation'], message, input: request.continuation }]);
  }
  return input;
}

/** The one-line summary the Web UI shows for a transfer. */
function staticSummary(input: TransferInput): string {
  const flags = `${input.sync ? ' (sync)' : ''}${input.deleteExtraneous ? ' (delete extraneous)' : ''}${input.dryRun ? ' (dry run)' : ''}`;
  return `Transfer ${formatLocation(input.source)} → ${formatLocation(input.destination)}${flags}`;
}

/**
 * Starts a transfer and returns its handle without waiting. The request is validated first: a
 * bad one throws a ZodError and the server is never contacted. The run carries the search
 * attributes `TrainctlKind=transfer` and `TrainctlResource=<destination>` and a static summary.
 *
 * @throws ZodError for an invalid request; a `WorkflowExecutionAlreadyStartedError` when
 *   `opts.workflowId` names a running workflow.
 */
export async function start(client: Client, request: TransferRequest, opts: TransferStartOptions = {}): Promise<StartedTransferHandle> {
  const input = validate(request);
  return explained(client, () =>
    client.workflow.start<typeof transferWorkflow>(TransferWorkflowType, {
      taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
      workflowId: opts.workflowId ?? transferWorkflowId(randomUUID().slice(0, 8)),
      args: [input],
      typedSearchAttributes: [
        { key: SA.kind, value: 'transfer' },
        { key: SA.resource, value: formatLocation(input.destination).slice(0, 200) },
      ],
      staticSummary: staticSummary(input),
    }),
  );
}

/**
 * Starts a transfer (as {@link start}) and waits for its report.
 *
 * @throws ZodError for an invalid request; `WorkflowFailedError` when the transfer fails or is
 *   cancelled (its `cause` is the ApplicationFailure, whose `type` is the error kind).
 */
export async function execute(client: Client, request: TransferRequest, opts: TransferStartOptions = {}): Promise<TransferReport> {
  const handle = await start(client, request, opts);
  return handle.result();
}

/** A handle on the transfer with this workflow id (its latest run). Contacts nothing. */
export function handle(client: Client, workflowId: string): TransferHandle {
  return client.workflow.getHandle<typeof transferWorkflow>(workflowId);
}

/**
 * Where a running transfer is: phase, files and bytes done, rate and ETA. The workflow's
 * `progress` query counts finished files; the bytes of files still moving are read from its
 * running activities' latest heartbeats (as the server holds them: up to ~80 % of the heartbeat
 * timeout old), so progress adds nothing to the workflow's history. Takes a handle, or a client and
 * a workflow id.
 */
export async function progress(target: TransferHandle): Promise<TransferProgress>;
export async function progress(client: Client, workflowId: string): Promise<TransferProgress>;
export async function progress(target: TransferHandle | Client, workflowId?: string): Promise<TransferProgress> {
  const h = workflowId === undefined ? (target as TransferHandle) : handle(target as Client, workflowId);
  const [p, desc] = await Promise.all([h.query(transferProgressQuery), h.describe()]);
  if (p.phase === 'done' || p.phase === 'planning') return p;
  // Only activities the workflow still counts as running (one that finished between the query and
  // the describe is already in bytesDone), each counted once, by the bytes it heartbeated.
  const running = new Set(p.running ?? []);
  const byLabel = new Map<string, number>();
  let rate = 0;
  let current: string | undefined;
  for (const a of desc.raw.pendingActivities ?? []) {
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    const details = defaultPayloadConverter.fromPayload<{ progress?: TransferProgressUpdate } | undefined>(payload);
    const moved = details?.progress;
    if (!moved || typeof moved.bytes !== 'number' || !running.has(moved.label)) continue;
    byLabel.set(moved.label, Math.max(byLabel.get(moved.label) ?? 0, moved.bytes));
    current = moved.current ?? current;
    // A retried attempt's count includes what earlier attempts moved: only first attempts give a rate.
    const since = a.lastStartedTime?.seconds ? Number(a.lastStartedTime.seconds) * 1000 : undefined;
    if (a.attempt === 1 && since !== undefined && Date.now() > since) rate += moved.bytes / ((Date.now() - since) / 1000);
  }
  const bytes = [...byLabel.values()].reduce((x, y) => x + y, 0);
  if (bytes === 0) return p;
  const bytesDone = Math.min(p.bytesTotal, p.bytesDone + bytes);
  const bytesPerSecond = p.bytesPerSecond > 0 ? p.bytesPerSecond : Math.round(rate);
  return {
    ...p,
    bytesDone,
    bytesPerSecond,
    etaSeconds: bytesPerSecond > 0 ? Math.round((p.bytesTotal - bytesDone) / bytesPerSecond) : p.etaSeconds,
    currentFile: current ?? p.currentFile,
  };
}

/**
 * Asks a transfer to stop. The run aborts the multipart uploads it started, removes partial
 * downloads and empties its staging prefix before it ends as cancelled; await `handle.result()`
 * to know it has. Takes a handle, or a client and a workflow id.
 */
export async function cancel(target: TransferHandle): Promise<void>;
export async function cancel(client: Client, workflowId: string): Promise<void>;
export async function cancel(target: TransferHandle | Client, workflowId?: string): Promise<void> {
  const h = workflowId === undefined ? (target as TransferHandle) : handle(target as Client, workflowId);
  await h.cancel();
}
