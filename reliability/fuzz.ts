/**
 * Scenario (e) of the reliability campaign: fuzzed input to every CLI command and every workflow.
 * Every input is either accepted and behaves, or refused with a clear, specific error before any
 * side effect. Three parts, each case an outcome of its own:
 *  - raw starts of every workflow type with inputs its contract refuses (a worker of this scenario
 *    runs them): fail fast, InvalidInput, non-retryable, naming the field, nothing scheduled;
 *  - the client API (src/api) called with the same inputs: throws before starting anything;
 *  - the CLI, in process, with fuzzed command lines and run files (fuzz-cli.ts).
 * Seeded from ctx.seed; ctx.runs cases per workflow, API family and CLI command.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { awsFor, scenarioClient, startWorkerProcess } from './support.js';
import { fuzzWorkflows } from './fuzz-workflows.js';
import { fuzzCli } from './fuzz-cli.js';
import type { RunOutcome, ScenarioContext } from './types.js';

/** Runs that started on a case's queue but only became visible after the case was judged: the case is marked. */
async function sweep(client: Client, since: Date, queues: Map<string, { family: string; run: number }>, outcomes: RunOutcome[]): Promise<void> {
  const query = `StartTime >= "${since.toISOString()}"`;
  for await (const w of client.workflow.list({ query })) {
    const owner = queues.get(w.taskQueue);
    if (!owner) continue;
    const o = outcomes.find((x) => x.family === owner.family && x.run === owner.run);
    // An accepted case may start runs (stopped here if still running); a refused one may not.
    if (o && o.ended !== 'completed' && !o.detail.includes(w.workflowId)) {
      o.ended = 'unexpected';
      o.detail = `${o.detail}; also started ${w.workflowId} (seen late)`;
    }
    if (w.status.name === 'RUNNING')
      await client.workflow
        .getHandle(w.workflowId)
        .terminate('fuzz: sweep')
        .catch(() => undefined);
  }
}

export async function runFuzz(ctx: ScenarioContext): Promise<RunOutcome[]> {
  const tag = randomUUID().slice(0, 6);
  const idPrefix = `fuzz-${ctx.seed}-${tag}-`;
  const taskQueue = `${idPrefix}workflows`;
  const since = new Date(Date.now() - 1_000);
  const client = await scenarioClient(ctx);
  const aws = awsFor(ctx);
  const worker = await startWorkerProcess(ctx, { name: 'fuzz worker', env: { TRAINCTL_TASK_QUEUE: taskQueue } }).catch(async (err: unknown) => {
    await client.connection.close();
    throw err;
  });
  try {
    const queues = new Map<string, { family: string; run: number }>();
    const outcomes = await fuzzWorkflows({ ctx, client, aws, taskQueue, idPrefix, queues });
    outcomes.push(...(await fuzzCli({ ctx, client, idPrefix, tag, queues })));
    await sweep(client, since, queues, outcomes);
    return outcomes;
  } finally {
    await worker.stop();
    aws.ec2.destroy();
    aws.s3.destroy();
    await client.connection.close();
  }
}
