import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import * as api from '../api/run.js';
import type { Env } from '../config.js';
import type { RunReport } from '../contracts/run.js';
import { ResourceNameSchema } from '../contracts/common.js';
import { RunFileError, readRunFile, validateRun } from '../run/run-file.js';
import { formatBytes, progressLine } from '../transfer/report.js';
import { workflowUiUrl } from '../temporal.js';
import { ExitCode, UsageError, reportError } from './output.js';
import { asUsageError } from './args.js';

const HELP = `usage: trainctl run start -f RUN.yaml [--set key.path=value …] [--wait] [--json]
       trainctl run status NAME [--json]
       trainctl run watch NAME            live: step, transfer progress, last log lines, until it ends
       trainctl run list [--project P] [--json]
       trainctl run stop NAME [--reason TEXT]   SIGTERM to training, last checkpoint, outputs, teardown → stopped
       trainctl run checkpoint NAME       sync the checkpoint folder to S3 now
       trainctl run cancel NAME           stop, then delete what the run created (never what it reused)
       trainctl run logs NAME [--follow]  the training program's last log lines

A run file (YAML or JSON) names: name, project, region, availabilityZone, instance (type, ami,
market; or existingInstanceId), volume (sizeGiB …; or existingName), dataset (source, path,
strategy), training (command as an argv list, workdir, codeFrom, env, checkpointDir,
checkpointEverySeconds, checkpointUri, outputsDir, outputsUri, epochs, stopGraceSeconds), budget,
teardown (instance: terminate|stop|keep, volume: delete|keep|snapshot-then-delete), tags.
See examples/run.yaml.

exit codes: 0 done (run start without --wait: started), 1 the run failed or was cancelled,
            2 bad input (nothing was started), 3 run stop/cancel: no such run`;

const OPTIONS = {
  file: { type: 'string', short: 'f' },
  set: { type: 'string', multiple: true },
  wait: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  project: { type: 'string' },
  reason: { type: 'string' },
  follow: { type: 'boolean', default: false },
} as const;

function printStatus(s: api.RunStatusView, env: Env): void {
  const line = [`${s.name}: ${s.execution.toLowerCase()}`, `step ${s.step}`, s.outcome ? `outcome ${s.outcome}` : '', s.strategy ? `data ${s.strategy}` : '']
    .filter(Boolean)
    .join(' · ');
  console.log(line);
  if (s.resources.instanceId) console.log(`  instance ${s.resources.instanceId}${s.resources.instanceCreated ? ' (launched by this run)' : ''}`);
  if (s.resources.volumeId) console.log(`  volume   ${s.resources.volumeId}${s.resources.volumeCreated ? ' (created by this run)' : ' (reused)'}`);
  console.log(
    `  moved ${formatBytes(s.bytesMoved)}, checkpoints synced ${s.checkpointsSynced}${s.exitCode !== undefined ? `, exit code ${s.exitCode}` : ''}${s.costUsd !== undefined ? `, cost so far $${s.costUsd.toFixed(4)}` : ''}`,
  );
  if (s.transfer) console.log(`  ${progressLine(s.transfer)}`);
  for (const l of s.lastLogLines.slice(-5)) console.log(`  | ${l}`);
  console.log(`  ui: ${workflowUiUrl(env, `run/${s.name}`)}`);
}

function printReport(r: RunReport, env: Env): void {
  console.log(`run ${r.name} ${r.outcome}`);
  for (const s of r.steps) {
    const secs = s.endedAt ? ((Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1) : '…';
    console.log(`  ${s.step.padEnd(10)} ${secs.padStart(7)} s${s.error ? `  ${s.error.kind}: ${s.error.message}` : ''}`);
  }
  console.log(
    `  moved ${formatBytes(r.bytesMoved)}, checkpoints synced ${r.checkpointsSynced}, exit code ${r.exitCode ?? '—'}${r.costUsd !== undefined ? `, cost $${r.costUsd.toFixed(4)}` : ''}`,
  );
  for (const u of r.undone) console.log(`  teardown: ${u}`);
  console.log(`  ui: ${workflowUiUrl(env, `run/${r.name}`)}`);
}

async function start(values: { file?: string; set?: string[]; wait: boolean; json: boolean }, env: Env, connect: () => Promise<Client>): Promise<number> {
  if (!values.file) throw new UsageError('run start needs -f RUN.yaml');
  let text: string;
  try {
    text = readFileSync(values.file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${values.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const request = readRunFile(text, values.set ?? []);
  const input = validateRun(request);
  const client = await connect();
  const asked = Date.now();
  const handle = await api.start(client, input, { taskQueue: env.TRAINCTL_TASK_QUEUE });
  const ui = workflowUiUrl(env, handle.workflowId, handle.firstExecutionRunId);
  // run/NAME is one run: a start while one of that name runs joins it (with its own input).
  const since = await handle
    .describe()
    .then((d) => d.startTime)
    .catch(() => undefined);
  if (since && since.getTime() < asked - 2_000) {
    console.error(`trainctl: run ${input.name} was already running (since ${since.toISOString()}): joined it; its own run file applies, not this one`);
  }
  if (!values.wait) {
    if (values.json) console.log(JSON.stringify({ ok: true, workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ui }));
    else console.log(`started ${handle.workflowId}\n  watch: trainctl run watch ${input.name}\n  ui: ${ui}`);
    return ExitCode.Ok;
  }
  let report: RunReport;
  try {
    report = await handle.result();
  } catch (err) {
    // A failed run carries its report (steps, what was undone) in the failure's details.
    const details = (err as { cause?: { details?: unknown[] } }).cause?.details?.[0] as RunReport | undefined;
    if (details?.steps && !values.json) printReport(details, env);
    return reportError(err, { json: values.json, what: `run ${input.name}`, uiUrl: ui });
  }
  if (values.json) console.log(JSON.stringify({ ok: true, report, ui }));
  else printReport(report, env);
  return ExitCode.Ok;
}

async function logs(h: api.RunHandle, follow: boolean): Promise<number> {
  let shown: string[] = [];
  for (;;) {
    const s = await api.status(h);
    // Print only lines not shown yet: the tail's overlap with what was printed is skipped.
    let overlap = 0;
    for (let k = Math.min(shown.length, s.lastLogLines.length); k > 0; k--) {
      if (shown.slice(-k).join('\n') === s.lastLogLines.slice(0, k).join('\n')) {
        overlap = k;
        break;
      }
    }
    for (const l of s.lastLogLines.slice(overlap)) console.log(l);
    shown = s.lastLogLines;
    if (!follow || s.execution !== 'RUNNING') return ExitCode.Ok;
    await new Promise((r) => setTimeout(r, 2_000));
  }
}

/** `trainctl run …`: start a training run from a run file, watch it, stop, cancel, list. */
export async function runCommand(argv: string[], env: Env, connect: () => Promise<Client>): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || rest.includes('--help') || rest.includes('-h')) {
    console.log(HELP);
    return sub === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  const json = rest.includes('--json');
  let parsed;
  try {
    parsed = parseArgs({ args: rest, strict: true, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    return reportError(asUsageError(err), { json, what: `run ${sub}` });
  }
  const { values, positionals } = parsed;
  const name = positionals[0];
  try {
    if (sub === 'start') return await start(values, env, connect);
    if (sub === 'list') {
      const runs = await api.list(await connect(), values.project ? { project: values.project } : {});
      if (values.json) console.log(JSON.stringify({ ok: true, runs }));
      else for (const r of runs) console.log(`${r.name.padEnd(32)} ${r.status.padEnd(12)} ${r.startTime.toISOString()}`);
      return ExitCode.Ok;
    }
    if (!['status', 'watch', 'stop', 'checkpoint', 'cancel', 'logs'].includes(sub))
      throw new UsageError(`unknown run command ${JSON.stringify(sub)}; see trainctl run --help`);
    if (name === undefined) throw new UsageError(`run ${sub} needs the run's NAME`);
    // Checked before connecting, with the name as the user typed it in the message.
    const named = ResourceNameSchema.safeParse(name);
    if (!named.success) throw new UsageError(`run ${sub}: NAME ${JSON.stringify(name)} ${named.error.issues[0]?.message ?? 'is not a run name'}`);
    const h = api.handle(await connect(), name);
    switch (sub) {
      case 'status': {
        const s = await api.status(h);
        if (values.json) console.log(JSON.stringify({ ok: true, status: s }));
        else printStatus(s, env);
        return ExitCode.Ok;
      }
      case 'watch': {
        let last: api.RunStatusView | undefined;
        for await (const s of api.watch(h)) {
          last = s;
          if (values.json) console.log(JSON.stringify(s));
          else printStatus(s, env);
        }
        // As documented: 0 when the run completed, 1 when it failed or was cancelled.
        return last?.execution === 'COMPLETED' ? ExitCode.Ok : ExitCode.Failed;
      }
      case 'stop': {
        const r = await api.stop(h, values.reason);
        if (values.json) console.log(JSON.stringify({ ok: true, ...r }));
        else console.log(`stop accepted during step ${r.step}: the program gets SIGTERM, then the last checkpoint, outputs and teardown`);
        return ExitCode.Ok;
      }
      case 'checkpoint':
        await api.checkpointNow(h);
        if (!values.json) console.log('checkpoint sync requested');
        else console.log(JSON.stringify({ ok: true }));
        return ExitCode.Ok;
      case 'cancel':
        await api.cancel(h);
        if (values.json) console.log(JSON.stringify({ ok: true, cancelRequested: true }));
        else console.log(`cancellation requested for run/${name}: it stops, syncs the last checkpoint and deletes what it created`);
        return ExitCode.Ok;
      case 'logs':
        return await logs(h, values.follow);
      default:
        throw new UsageError(`unknown run command ${JSON.stringify(sub)}; see trainctl run --help`);
    }
  } catch (err) {
    if (err instanceof RunFileError) return reportError(new UsageError(err.message), { json, what: `run ${sub}` });
    if ((err as Error).name === 'WorkflowNotFoundError' && name && /already completed/i.test((err as Error).message)) {
      const ended = await api
        .handle(await connect(), name)
        .describe()
        .then((d) => d.status.name)
        .catch(() => 'ENDED');
      if (json) console.log(JSON.stringify({ ok: false, kind: 'Conflict', message: `run ${name} already ended (${ended})` }));
      else console.error(`trainctl: run ${name} already ended (${ended}); nothing to ${sub}`);
      return ExitCode.Failed;
    }
    if ((err as Error).name === 'WorkflowNotFoundError') {
      if (json) console.log(JSON.stringify({ ok: false, kind: 'NotFound', message: `no run named ${name}` }));
      else console.error(`trainctl: no run named ${name}`);
      return 3;
    }
    return reportError(err, { json, what: `run ${sub}` });
  }
}
