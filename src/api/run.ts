/**
 * Training runs from a script: start one (from a request or a run file), watch its status, stop it
 * gracefully, ask for a checkpoint, cancel it, list a project's runs.
 *
 * ```ts
 * import { connect, run } from 'trainctl';
 * const client = await connect();
 * const handle = await run.start(client, request);
 * for await (const s of run.watch(handle)) console.log(s.step, s.lastLogLines.at(-1));
 * console.log(await handle.result());
 * ```
 *
 * @module
 */
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ResourceNameSchema } from '../contracts/common.js';
import {
  RunInputSchema,
  StopRunSchema,
  TrainingRunWorkflowType,
  checkpointNowSignal,
  runStatusQuery,
  runWorkflowId,
  stopRunUpdate,
  type RunReport,
  type RunRequest,
  type RunStatus,
  type RunStep,
} from '../contracts/run.js';
import type { TransferProgress } from '../contracts/transfer.js';
import { progress as transferProgress } from './transfer.js';
import { SA } from '../search-attributes.js';
import { resourcesCost } from './cost-signals.js';
import type { trainingRun } from '../workflows/training-run.js';
import { DEFAULT_TASK_QUEUE } from './task-queue.js';
import { explained } from './start.js';

export type RunHandle = WorkflowHandle<typeof trainingRun>;

/** Where to start the run. */
export interface RunStartOptions {
  /** The orchestration workers' task queue; `trainctl` by default. */
  taskQueue?: string;
}

/**
 * Validates the request and starts the run `run/NAME` (joining it if one of that name is running).
 * The run and all its children carry `TrainctlRun=NAME`; the run also `TrainctlKind=run` and the
 * project, and a static summary for the Web UI.
 *
 * @throws ZodError naming each bad field, before the server is contacted.
 */
export async function start(
  client: Client,
  request: RunRequest,
  options: RunStartOptions = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof trainingRun>> {
  const input = RunInputSchema.parse(request);
  const where = 'existingInstanceId' in input.instance ? `on ${input.instance.existingInstanceId}` : `on a ${input.instance.market} ${input.instance.type}`;
  return explained(client, () =>
    client.workflow.start<typeof trainingRun>(TrainingRunWorkflowType, {
      taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
      workflowId: runWorkflowId(input.name),
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: SA.kind, value: 'run' },
        { key: SA.run, value: input.name },
        { key: SA.project, value: input.project },
      ],
      staticSummary: `Training run **${input.name}** ${where} in ${input.availabilityZone}`,
      staticDetails: [
        // A code span: the UI renders details as markdown, which would turn `--flag` into an en dash.
        `command: \`\` ${input.training.command.join(' ')} \`\``,
        `dataset: ${input.dataset.source.kind === 's3' ? input.dataset.source.uri : input.dataset.source.kind === 'local' ? input.dataset.source.path : `${input.dataset.source.hostId}:${input.dataset.source.path}`} (${input.dataset.strategy})`,
        `checkpoints: ${input.training.checkpointUri} every ${input.training.checkpointEverySeconds} s`,
        `teardown: instance ${input.teardown.instance}, volume ${input.teardown.volume}`,
      ].join('\n'),
    }),
  );
}

/** {@link start}, then waits for the report. @throws WorkflowFailedError when the run fails or is cancelled. */
export async function execute(client: Client, request: RunRequest, options: RunStartOptions = {}): Promise<RunReport> {
  return (await start(client, request, options)).result();
}

/** The run named `name` (its latest execution). @throws ZodError when the name is malformed. */
export function handle(client: Client, name: string): RunHandle {
  return client.workflow.getHandle<typeof trainingRun>(runWorkflowId(ResourceNameSchema.parse(name)));
}

/** A run's status with what its workflow cannot see itself: the training program's last log lines and the child transfer's progress. */
export interface RunStatusView extends RunStatus {
  /** Progress of the transfer child in flight, if any. */
  transfer?: TransferProgress;
  /** The workflow's own state: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED … */
  execution: string;
  /** What the resources this run created have cost so far (the project's cost tracker). */
  costUsd?: number;
}

/**
 * The run's status (the `status` query), with the last log lines from the training activity's
 * heartbeat and the progress of the transfer in flight. A finished run answers from its history.
 */
export async function status(h: RunHandle): Promise<RunStatusView> {
  const [s, d] = await Promise.all([h.query(runStatusQuery), h.describe()]);
  const view: RunStatusView = { ...s, execution: d.status.name };
  const raw = d.raw.pendingActivities ?? [];
  for (const a of raw) {
    if (a.activityType?.name !== 'runTraining' || !a.heartbeatDetails?.payloads?.length) continue;
    const details = (await h.client.options.loadedDataConverter.payloadConverter.fromPayload(a.heartbeatDetails.payloads[0]!)) as
      | { lastLines?: string[] }
      | undefined;
    if (details?.lastLines) view.lastLogLines = details.lastLines;
  }
  const { instanceId, instanceCreated, volumeId, volumeCreated } = s.resources;
  const ids = [...(instanceId && instanceCreated ? [instanceId] : []), ...(volumeId && volumeCreated ? [volumeId] : [])];
  const project = (d.typedSearchAttributes.get(SA.project) as string | undefined) ?? 'default';
  const cost = await resourcesCost({ workflow: h.client }, project, ids).catch(() => undefined);
  if (cost) view.costUsd = cost.usd;
  if (s.currentChild?.kind === 'transfer') {
    view.transfer = await transferProgress(h.client.getHandle(s.currentChild.workflowId)).catch(() => undefined);
    if (!view.transfer) delete view.transfer;
  }
  return view;
}

/**
 * Stops the run gracefully: SIGTERM to the training program, its final checkpoint synced, the
 * outputs synced, teardown; the run completes as `stopped`. Returns once the run accepted it.
 */
export async function stop(h: RunHandle, reason?: string): Promise<{ accepted: true; step: RunStep }> {
  const arg = StopRunSchema.parse(reason === undefined ? {} : { reason });
  return h.executeUpdate(stopRunUpdate, { args: [arg] });
}

/** Asks the run to sync its checkpoint folder to S3 now. */
export async function checkpointNow(h: RunHandle): Promise<void> {
  await h.signal(checkpointNowSignal);
}

/**
 * Cancels the run: the step in flight stops, the training program gets its grace period, the last
 * checkpoint is synced, and everything the run created is deleted (never what it reused). Returns
 * once the request is recorded; await `h.result()` for the end.
 */
export async function cancel(h: RunHandle): Promise<void> {
  await h.cancel();
}

/** One run in a listing. */
export interface RunListEntry {
  name: string;
  workflowId: string;
  status: string;
  startTime: Date;
  closeTime?: Date;
}

/** The project's runs (or every run), newest first, from the server's visibility store. */
export async function list(client: Client, options: { project?: string; limit?: number } = {}): Promise<RunListEntry[]> {
  const query = `TrainctlKind = "run"${options.project ? ` AND TrainctlProject = "${options.project.replace(/"/g, '')}"` : ''}`;
  const out: RunListEntry[] = [];
  for await (const w of client.workflow.list({ query })) {
    out.push({
      name: w.workflowId.replace(/^run\//, ''),
      workflowId: w.workflowId,
      status: w.status.name,
      startTime: w.startTime,
      ...(w.closeTime ? { closeTime: w.closeTime } : {}),
    });
    if (out.length >= (options.limit ?? 100)) break;
  }
  return out;
}

/** The run's status every `intervalMs` until it has ended (the last one yielded is its final status). */
export async function* watch(h: RunHandle, intervalMs = 2_000): AsyncGenerator<RunStatusView> {
  for (;;) {
    const s = await status(h);
    yield s;
    if (s.execution !== 'RUNNING') return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
