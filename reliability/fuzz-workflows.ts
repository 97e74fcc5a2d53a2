/**
 * Fuzz (e), the workflow side: every workflow type started by name with inputs its contract refuses
 * (bypassing the API), and every API start function called with them. Each case is checked on its
 * own: the workflow fails fast with a non-retryable InvalidInput naming a refused field; its history
 * holds no failed workflow task and no scheduled activity or child workflow (so it touched no AWS
 * resource: it could neither create nor delete one); and the emulator gained no resource tagged
 * with its workflow id. The API throws, naming the field, and nothing starts on the case's queue.
 */
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import * as api from '../src/api/index.js';
import { emulatorPicture, outcome, pictureDiff, type EmulatorPicture } from './support.js';
import { TARGETS, invalidInputs, refusedFields, type FuzzTarget } from './fuzz-inputs.js';
import type { RunOutcome, ScenarioContext } from './types.js';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';

const EventType = proto.temporal.api.enums.v1.EventType;
/** How long a refused input may take to fail its run: a first workflow task, no retries. */
const FAIL_FAST_MS = 20_000;

interface Deps {
  ctx: ScenarioContext;
  client: Client;
  aws: { ec2: EC2Client; s3: S3Client };
  taskQueue: string;
  /** A prefix of every workflow id this fuzz starts, to tell its runs from anyone else's. */
  idPrefix: string;
  /** The case owning each task queue the API calls were given: the final sweep in fuzz.ts checks them again. */
  queues: Map<string, { family: string; run: number }>;
}

/** Raw starts (and API calls) in flight at once: each case is judged on its own, so they need not wait for each other. */
const CONCURRENCY = 4;

async function pool<T>(jobs: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = new Array<T>(jobs.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < jobs.length; i = next++) out[i] = await jobs[i]!();
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, lane));
  return out;
}

/**
 * Emulator resources added between two pictures whose trainctl:workflow-id tag is one of this
 * fuzz's runs, by that workflow id (the emulator is shared: other users' resources are not ours).
 */
function addedBy(before: EmulatorPicture, after: EmulatorPicture, tags: Map<string, string>, idPrefix: string): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const r of pictureDiff(before, after).added) {
    const id = tags.get(r);
    if (id?.startsWith(idPrefix)) by.set(id, [...(by.get(id) ?? []), r]);
  }
  return by;
}

async function historyProblems(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  const problems: string[] = [];
  const count = (t: number) => (history.events ?? []).filter((e) => e.eventType === t).length;
  const wftFailed = count(EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
  if (wftFailed) problems.push(`${wftFailed} workflow task failure(s): a plain Error, not an ApplicationFailure`);
  const acts = count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
  if (acts) problems.push(`${acts} activity task(s) scheduled before refusing`);
  const children = count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED);
  if (children) problems.push(`${children} child workflow(s) started before refusing`);
  return problems;
}

/** One raw start of `target` with `input`: how it ended, judged. */
async function rawCase(d: Deps, target: FuzzTarget, input: unknown, run: number): Promise<RunOutcome> {
  const t0 = Date.now();
  const family = target.workflowType;
  const fields = refusedFields(target.schema, input);
  const workflowId = `${d.idPrefix}${family}-${run}`;
  const handle = await d.client.workflow.start(family, { taskQueue: d.taskQueue, workflowId, args: target.args(input), workflowExecutionTimeout: '2m' });
  let ended: RunOutcome['ended'] = 'unexpected';
  let detail: string;
  const result = await Promise.race([
    handle.result().then(
      () => ({ kind: 'completed' as const }),
      (err: unknown) => ({ kind: 'failed' as const, err }),
    ),
    new Promise<{ kind: 'stuck' }>((r) => setTimeout(() => r({ kind: 'stuck' }), FAIL_FAST_MS)),
  ]);
  if (result.kind === 'stuck') {
    await handle.terminate('fuzz: the run did not end within its fail-fast limit').catch(() => undefined);
    detail = `still running after ${FAIL_FAST_MS / 1000} s on input the contract refuses`;
  } else if (result.kind === 'completed') {
    detail = 'completed on input the contract refuses';
  } else {
    const cause = result.err instanceof WorkflowFailedError ? result.err.cause : result.err;
    if (!(cause instanceof ApplicationFailure)) detail = `failed with ${(cause as Error)?.name}: ${(cause as Error)?.message}`;
    else if (cause.type !== 'InvalidInput' || !cause.nonRetryable) detail = `failed ${cause.type}${cause.nonRetryable ? '' : ' (retryable)'}: ${cause.message}`;
    else if (!fields.some((f) => f === '(input)' || cause.message.includes(f)))
      detail = `InvalidInput without naming a refused field (${fields.join(', ')}): ${cause.message}`;
    else {
      ended = 'documented';
      detail = `InvalidInput: ${cause.message}`;
    }
  }
  const problems = await historyProblems(handle);
  if (problems.length) {
    ended = 'unexpected';
    detail = `${detail}; ${problems.join('; ')}`;
  }
  return outcome('fuzz', family, run, t0, { ended, detail: detail.slice(0, 400) });
}

/** Every EC2 resource's trainctl:workflow-id tag, keyed as pictureDiff names them. */
async function workflowTags(ec2: EC2Client): Promise<Map<string, string>> {
  const { DescribeTagsCommand } = await import('@aws-sdk/client-ec2');
  const out = await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'key', Values: ['trainctl:workflow-id'] }], MaxResults: 1000 }));
  const kinds: Record<string, string> = { volume: 'volumes', instance: 'instances', snapshot: 'snapshots' };
  return new Map((out.Tags ?? []).map((t) => [`${kinds[t.ResourceType ?? ''] ?? t.ResourceType}:${t.ResourceId}`, t.Value ?? '']));
}

/** The request as the API reads it: the cost tracker's takes the project apart, so a bare value is its project. */
function asApiReadsIt(family: string, input: unknown): unknown {
  return family === 'costTracker' && !(input && typeof input === 'object') ? { project: input } : input;
}

/** The API's start function for a family, called with a request its contract refuses, on a task queue of its own. */
function apiStart(d: Deps, family: string, input: unknown, taskQueue: string): Promise<unknown> {
  // The API is typed; a caller with a bad value (from JSON, from a script) is what is simulated here.
  const x = input as never;
  switch (family) {
    case 'provisionVolume':
      return api.volume.provision(d.client, x, { taskQueue });
    case 'cleanup':
      return api.cleanup.startCleanup(d.client, x, { taskQueue });
    case 'costTracker': {
      const { project, ...extra } = asApiReadsIt(family, input) as { project: never };
      return api.cost.startTracker(d.client, project, { taskQueue, ...extra });
    }
    case 'reconcileCost':
      return api.cost.startReconcile(d.client, x, { taskQueue });
    case 'checkHost':
      return api.prewarm.checkHost(d.client, x, { taskQueue, waitSeconds: 1 });
    case 'transfer':
      return api.transfer.start(d.client, x, { taskQueue });
    case 'prewarm':
      return api.prewarm.start(d.client, x, { taskQueue });
    case 'trainingRun':
      return api.run.start(d.client, x, { taskQueue });
    default:
      throw new Error(`no API start for ${family}`);
  }
}

/** Workflow executions on `taskQueue` (visible ones: the final sweep in fuzz.ts catches late ones). */
export async function startedOn(client: Client, taskQueue: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) ids.push(w.workflowId);
  return ids;
}

/** One API call with a refused request: it must throw a clear error and start nothing. */
async function apiCase(d: Deps, target: FuzzTarget, input: unknown, run: number): Promise<RunOutcome> {
  const t0 = Date.now();
  const family = `api:${target.workflowType}`;
  const fields = refusedFields(target.schema, asApiReadsIt(target.workflowType, input));
  const taskQueue = `${d.idPrefix}api-${target.workflowType}-${run}`;
  d.queues.set(taskQueue, { family, run });
  let ended: RunOutcome['ended'] = 'unexpected';
  let detail: string;
  try {
    await apiStart(d, target.workflowType, input, taskQueue);
    detail = 'accepted a request its contract refuses';
    // Valid as the API reads it (a bare project name): accepted is right; the run it started is stopped below.
    if (!fields.length) [ended, detail] = ['completed', 'accepted: valid as the API reads it'];
  } catch (err) {
    const e = err as Error;
    const text = `${e.name}: ${e.message}`;
    if (/Failed to start Workflow|\n\s+at /.test(text)) detail = `opaque error: ${text}`;
    else if (!fields.some((f) => f === '(input)' || text.includes(f))) detail = `error without naming a refused field (${fields.join(', ')}): ${text}`;
    else {
      ended = 'documented';
      detail = text;
    }
  }
  // Whatever the API's own story, nothing may have started: no execution on the case's own task queue.
  const started = await startedOn(d.client, taskQueue);
  if (started.length) {
    if (ended !== 'completed') ended = 'unexpected';
    detail = `${detail}; started ${started.join(', ')}`;
    await Promise.all(
      started.map((id) =>
        d.client.workflow
          .getHandle(id)
          .terminate('fuzz: started by a refused request')
          .catch(() => undefined),
      ),
    );
  }
  return outcome('fuzz', family, run, t0, { ended, detail: detail.replace(/\s+/g, ' ').slice(0, 400), leaked: ended === 'completed' ? 0 : started.length });
}

/** Both fuzzes over every workflow family: `ctx.runs` refused inputs each, seeded from `ctx.seed`. */
export async function fuzzWorkflows(d: Deps): Promise<RunOutcome[]> {
  const out: RunOutcome[] = [];
  for (const [k, target] of TARGETS.entries()) {
    const inputs = invalidInputs(target, d.ctx.seed + k, d.ctx.runs);
    const before = await emulatorPicture(d.aws);
    const cases = await pool(
      inputs.map((input, i) => async () => [await rawCase(d, target, input, i + 1), await apiCase(d, target, input, i + 1)] as const),
      CONCURRENCY,
    );
    // A refused start may not create anything: what appeared, tagged with a case's workflow id, is that case's leak.
    const created = addedBy(before, await emulatorPicture(d.aws), await workflowTags(d.aws.ec2), d.idPrefix);
    for (const [raw, viaApi] of cases) {
      const made = created.get(`${d.idPrefix}${raw.family}-${raw.run}`) ?? [];
      if (made.length) Object.assign(raw, { ended: 'unexpected', leaked: made.length, detail: `${raw.detail}; created ${made.join(', ')}` });
      out.push(raw, viaApi);
    }
    d.ctx.log(`fuzz ${target.workflowType}: ${inputs.length} raw starts and API calls`);
  }
  return out;
}
