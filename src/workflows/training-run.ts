import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { HostActivities } from '../activities/host.js';
import type { RunTrainingResult } from '../activities/training.js';
import {
  RunInputSchema,
  RunOutcome,
  RunStep,
  StopRunSchema,
  TRAINING_FAILED,
  checkpointNowSignal,
  runStatusQuery,
  stopRunUpdate,
  type RunInput,
  type RunReport,
  type RunRequest,
  type RunStatus,
} from '../contracts/run.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import {
  hostPaths,
  launchInstance,
  provisionRunVolume,
  runCost,
  runSearchAttributes,
  setRunBudget,
  stageData,
  syncCheckpoints,
  syncOutputs,
  type RunContext,
} from './run-steps.js';
import { compensate, findLaunched, teardown } from './run-teardown.js';
import { onHost, trainingOnHost } from './options.js';

/** What the handlers and the steps share besides the status. */
interface Control {
  stopRequested: boolean;
  checkpointRequested: boolean;
  trainingScope?: CancellationScope;
  trainingStarted: boolean;
  undone: string[];
}

/**
 * One training run from instance launch to teardown (`run/NAME`): launch or adopt the instance and
 * wait for its host worker, provision and attach the volume, stage the data and the code and write
 * the DataLoader module, run the training command on the host while its checkpoints are synced to
 * S3 every interval (and on `checkpointNow`), sync the last checkpoint and the outputs, and tear
 * down what the run created as the input's policy says. Every step is a child workflow or a named
 * activity; `status` answers at any time.
 *
 * `stop` (update) ends it gracefully: SIGTERM to the program, the final checkpoint, outputs and
 * teardown; the run completes as `stopped`. A cancel stops the step in flight, then — not
 * cancellable — stops the program, syncs its last checkpoint, deletes what this run created (never
 * what it reused) and ends cancelled, with what it undid in the memo. A failing step (a non-zero
 * exit included) gets the same final sync and teardown, and the failure names the step, its kind,
 * the exit code and the last log lines.
 */
export async function trainingRun(request: RunRequest): Promise<RunReport> {
  const input = validate(request);
  const status: RunStatus = { name: input.name, step: RunStep.Launch, steps: [], resources: {}, checkpointsSynced: 0, bytesMoved: 0, lastLogLines: [] };
  const ctx: RunContext = { input, status, searchAttributes: runSearchAttributes(input) };
  const control: Control = { stopRequested: false, checkpointRequested: false, trainingStarted: false, undone: [] };
  setHandler(runStatusQuery, () => status);
  setHandler(checkpointNowSignal, () => void (control.checkpointRequested = true));
  setHandler(
    stopRunUpdate,
    ({ reason }) => {
      control.stopRequested = true;
      status.stopRequested = { reason: reason ?? 'stop requested', at: new Date().toISOString() };
      control.trainingScope?.cancel();
      return { accepted: true as const, step: status.step };
    },
    {
      validator: (arg) => {
        StopRunSchema.parse(arg ?? {});
        // Past training there is nothing to stop, and a stop must not turn a failed program into "stopped".
        if (status.step === RunStep.Checkpoint || status.step === RunStep.Outputs || status.step === RunStep.Teardown || status.step === RunStep.Done) {
          throw new Error(`run ${input.name} is past training (step ${status.step}): nothing to stop`);
        }
      },
    },
  );
  try {
    return await run(ctx, control);
  } catch (err) {
    // A cancel is a cancel even after a stop: compensation deletes what the run created.
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => compensate(ctx, control.trainingStarted, control.undone));
      status.outcome = RunOutcome.Cancelled;
      const summary = control.undone.length ? `cancelled; undone: ${control.undone.join('; ')}` : 'cancelled; this run had created nothing';
      upsertMemo({ compensation: summary });
      setCurrentDetails(summary);
      throw err;
    }
    throw await CancellationScope.nonCancellable(() => failed(ctx, control, err));
  }
}

/** The request checked again inside the workflow: a start that skipped the API still fails as InvalidInput. */
function validate(request: RunRequest): RunInput {
  const parsed = RunInputSchema.safeParse(request);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: `invalid run: ${describeFailure(parsed.error)}` });
  }
  return parsed.data;
}

/** Records a step's start and end in the status, and says it in the UI's current details. */
async function step<T>(ctx: RunContext, name: RunStep, fn: () => Promise<T>): Promise<T> {
  const record: RunStatus['steps'][number] = { step: name, startedAt: new Date().toISOString() };
  ctx.status.step = name;
  ctx.status.steps.push(record);
  try {
    return await fn();
  } catch (err) {
    record.error = { kind: failureKind(err), message: describeFailure(err) };
    throw err;
  } finally {
    record.endedAt = new Date().toISOString();
  }
}

function failureKind(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
    e = (e as { cause?: unknown }).cause;
  }
  return isCancellation(err) ? 'Cancelled' : ErrorKind.Unknown;
}

/** The story: launch, volume, data, train (with checkpoints), last checkpoint, outputs, teardown, report. */
async function run(ctx: RunContext, control: Control): Promise<RunReport> {
  await step(ctx, RunStep.Launch, () => launchInstance(ctx));
  await setRunBudget(ctx);
  if (!control.stopRequested) await step(ctx, RunStep.Volume, () => provisionRunVolume(ctx));
  if (!control.stopRequested) await step(ctx, RunStep.Data, () => stageData(ctx));
  let result: RunTrainingResult | undefined;
  if (!control.stopRequested) result = await step(ctx, RunStep.Train, () => train(ctx, control));
  if (control.trainingStarted) {
    await step(ctx, RunStep.Checkpoint, () => syncCheckpoints(ctx, 'checkpoint-final'));
    await step(ctx, RunStep.Outputs, () => syncOutputs(ctx));
  }
  if (result && result.exitCode !== 0 && !control.stopRequested) {
    throw ApplicationFailure.create({
      type: TRAINING_FAILED,
      nonRetryable: true,
      message: `step train: the training command exited with ${result.exitCode ?? result.signal}; last lines:\n${result.lastLines.join('\n')}`,
      details: [{ step: RunStep.Train, exitCode: result.exitCode, signal: result.signal, lastLines: result.lastLines }],
    });
  }
  await step(ctx, RunStep.Teardown, () => teardown(ctx, control.undone));
  const costUsd = await runCost(ctx);
  return { ...report(ctx, control, control.stopRequested ? RunOutcome.Stopped : RunOutcome.Completed), ...(costUsd !== undefined ? { costUsd } : {}) };
}

/**
 * Runs the training command on the host; meanwhile syncs checkpoints every interval and when
 * asked. `stop` cancels only this scope, so the program gets SIGTERM and its grace period and the
 * run goes on to its final sync and teardown.
 */
async function train(ctx: RunContext, control: Control): Promise<RunTrainingResult | undefined> {
  const { input, status } = ctx;
  const paths = hostPaths(ctx);
  const host = proxyActivities<HostActivities>(onHost(trainingOnHost, ctx.hostId!, { heartbeatTimeout: `${input.training.heartbeatTimeoutSeconds} seconds` }));
  const scope = new CancellationScope();
  control.trainingScope = scope;
  control.trainingStarted = true;
  setCurrentDetails(`Training on ${ctx.hostId}: ${input.training.command.join(' ')}`);
  let finished = false;
  const outcome = scope
    .run(() =>
      host.runTraining.executeWithOptions({ summary: `train: ${input.training.command.join(' ').slice(0, 120)}` }, [
        {
          runName: input.name,
          argv: input.training.command,
          workdir: paths.workdir,
          dataDir: paths.data,
          checkpointDir: paths.checkpoints,
          outputsDir: paths.outputs,
          env: input.training.env,
          graceSeconds: input.training.stopGraceSeconds,
        },
      ]),
    )
    .then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    )
    .finally(() => void (finished = true));
  let n = 0;
  try {
    while (!finished) {
      if (historyFull()) {
        // Each periodic sync adds a timer and a child to the history; near the server's limit the
        // run stops adding them (the final sync still runs) rather than be terminated mid-teardown.
        log.warn('history near its limit: no more periodic checkpoint syncs until training ends', { events: workflowInfo().historyLength });
        await condition(() => finished);
        break;
      }
      const asked = await condition(() => finished || control.checkpointRequested, `${input.training.checkpointEverySeconds} seconds`);
      if (finished) break;
      control.checkpointRequested = false;
      try {
        await syncCheckpoints(ctx, `checkpoint-${++n}`);
      } catch (err) {
        if (isCancellation(err) && !control.stopRequested) throw err;
        // A failed periodic sync is retried at the next interval; the final one must succeed.
        log.warn('periodic checkpoint sync failed', { error: describeFailure(err), asked });
      }
    }
  } catch (err) {
    // The run was cancelled: the program is being stopped (SIGTERM, its grace period). Wait for
    // that, so the compensation syncs the checkpoint it wrote on SIGTERM before ending the instance.
    await outcome;
    throw err;
  }
  const r = await outcome;
  if ('value' in r) {
    status.exitCode = r.value.exitCode ?? undefined;
    status.lastLogLines = r.value.lastLines;
    return r.value;
  }
  if (control.stopRequested && isCancellation(r.error)) {
    log.info('training stopped on request', { reason: status.stopRequested?.reason });
    return undefined;
  }
  throw r.error;
}

/** Whether the history is so long that periodic work must stop (the server terminates runs past 51,200 events). */
function historyFull(): boolean {
  const info = workflowInfo();
  return info.historyLength > 40_000 || info.continueAsNewSuggested;
}

/** A failed step: the final checkpoint sync (if training ran) and teardown still run; the failure says what failed. */
async function failed(ctx: RunContext, control: Control, err: unknown): Promise<ApplicationFailure> {
  const { status } = ctx;
  const failedStep = status.step;
  if (control.trainingStarted && failedStep !== RunStep.Checkpoint) {
    await syncCheckpoints(ctx, 'checkpoint-after-failure').catch((e: unknown) =>
      log.warn('checkpoint sync after failure failed', { error: describeFailure(e) }),
    );
  }
  // A launch whose response was lost still made an instance: find it by the run's tag.
  if (!status.resources.instanceId) await findLaunched(ctx);
  await teardown(ctx, control.undone).catch((e: unknown) => {
    control.undone.push(`teardown failed: ${describeFailure(e)}`);
  });
  status.outcome = RunOutcome.Failed;
  const kind = failureKind(err);
  const details = report(ctx, control, RunOutcome.Failed);
  if (err instanceof ApplicationFailure && err.type === TRAINING_FAILED) {
    return ApplicationFailure.create({ type: TRAINING_FAILED, nonRetryable: true, message: err.message, details: [details] });
  }
  return ApplicationFailure.create({
    type: kind,
    nonRetryable: true,
    message: `step ${failedStep} failed (${kind}): ${describeFailure(err)}`,
    details: [details],
    cause: err instanceof Error ? err : undefined,
  });
}

function report(ctx: RunContext, control: Control, outcome: RunOutcome): RunReport {
  ctx.status.step = RunStep.Done;
  ctx.status.outcome = outcome;
  setCurrentDetails(`Run ${ctx.input.name} ${outcome}${control.undone.length ? `; ${control.undone.join('; ')}` : ''}`);
  log.info('run ended', { outcome, workflowId: workflowInfo().workflowId });
  return { ...ctx.status, outcome, undone: [...control.undone] };
}
