import { parseArgs } from 'node:util';
import { z, ZodError } from 'zod';
import type { Client } from '@temporalio/client';
import * as cost from '../api/cost.js';
import type { Env } from '../config.js';
import {
  ProjectSchema,
  ReconcileInputSchema,
  ReconcileScheduleSchema,
  SetBudgetSchema,
  SetRateSchema,
  costTrackerWorkflowId,
  type CostGroup,
  type ResourceView,
  type SetBudgetRequest,
} from '../contracts/cost.js';
import { workflowUiUrl } from '../temporal.js';
import { ExitCode, UsageError, reportError, type FlagNames } from './output.js';
import { asUsageError, parseKeyValue, parseNumber } from './args.js';

const HELP = `usage: trainctl cost show [--project P] [--by-tag KEY] [--json]
       trainctl cost budget set --limit-usd N [--window total|monthly] [--action alert|stop-instances|cleanup]
                                [--tag-filter KEY=VALUE] [--name NAME] [--project P] [--json]
       trainctl cost rate set --type TYPE --usd-per-hour N [--per-gib] [--project P] [--json]
       trainctl cost reconcile schedule [--project P] [--regions R1,R2] [--every 1h] [--json]
       trainctl cost reconcile now [--project P] [--regions R1,R2] [--json]

The cost tracker of a project is the workflow cost-tracker/PROJECT (project default: "default").
Reconciliation compares the trainctl-managed volumes and instances in EC2 with the tracker; the
Schedule cost-reconcile/PROJECT runs it (hourly by default).`;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The flag a user typed for each field of the requests these commands build. */
const COST_FLAGS: FlagNames = {
  project: '--project',
  limitUsd: '--limit-usd',
  window: '--window',
  action: '--action',
  tagFilter: '--tag-filter',
  'tagFilter.key': '--tag-filter',
  'tagFilter.value': '--tag-filter',
  name: '--name',
  type: '--type',
  usdPerHour: '--usd-per-hour',
  regions: '--regions',
  every: '--every',
};

const usd = (v: number) => `$${v.toFixed(2)}`;

function groupRows(groups: Record<string, CostGroup>): string[][] {
  return Object.entries(groups)
    .sort(([, a], [, b]) => b.totalMicroUsd - a.totalMicroUsd)
    .map(([k, g]) => [
      k,
      String(g.resources),
      String(g.running),
      usd(g.totalUsd),
      `${usd(g.burnMicroUsdPerHour / 1e6)}/h`,
      g.unpriced ? `${g.unpriced} unpriced` : '',
    ]);
}

function parseFlags(flags: string[]) {
  try {
    return parseArgs({
      args: flags,
      strict: true,
      options: {
        project: { type: 'string', default: 'default' },
        'by-tag': { type: 'string' },
        'limit-usd': { type: 'string' },
        window: { type: 'string' },
        action: { type: 'string' },
        'tag-filter': { type: 'string' },
        name: { type: 'string' },
        type: { type: 'string' },
        'usd-per-hour': { type: 'string' },
        'per-gib': { type: 'boolean' },
        regions: { type: 'string' },
        every: { type: 'string', default: '1h' },
        json: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    throw asUsageError(err);
  }
}

type Flags = ReturnType<typeof parseFlags>;

/** What every subcommand needs: the parsed flags, the project, the environment and a way to connect. */
interface Ctx {
  values: Flags;
  json: boolean;
  project: string;
  env: Env;
  connect: () => Promise<Client>;
}

async function show({ values, json, project, env, connect }: Ctx): Promise<number> {
  const client = await connect();
  const asOf = Date.now();
  const summary = await cost.summary(client, project, { asOf, ...(values['by-tag'] ? { tagKey: values['by-tag'] } : {}) });
  const running: ResourceView[] = await cost.running(client, project, asOf);
  if (json) {
    console.log(JSON.stringify({ ok: true, ...summary, running }));
    return ExitCode.Ok;
  }
  console.log(`project ${project}: ${usd(summary.totalUsd)} so far, burning ${usd(summary.burnUsdPerHour)}/h (as of ${summary.asOf})`);
  if (summary.unpriced.length) console.log(`UNPRICED (cost unknown, not $0): ${summary.unpriced.map((u) => `${u.id} (${u.type})`).join(', ')}`);
  console.log('');
  console.log(
    table(
      ['running', 'kind', 'type', 'region', 'since', 'rate', 'cost'],
      running.map((r) => [
        r.id,
        r.kind,
        r.type,
        r.region,
        r.startedAt.slice(0, 16).replace('T', ' '),
        r.hourlyUsd === null ? 'unpriced' : `$${r.hourlyUsd.toFixed(4)}/h`,
        usd(r.costUsd),
      ]),
    ),
  );
  console.log('');
  console.log(table(['kind', 'resources', 'running', 'cost', 'burn', ''], groupRows(summary.byKind as Record<string, CostGroup>)));
  if (summary.byTag) {
    console.log('');
    console.log(table([summary.byTag.key, 'resources', 'running', 'cost', 'burn', ''], groupRows(summary.byTag.groups)));
  }
  for (const b of summary.budgets) {
    console.log(
      `budget ${b.name}: ${usd(b.spentUsd)} of ${usd(b.limitUsd)} (${b.window}, ${b.action})` +
        (b.firedAt ? `, CROSSED at ${b.firedAt}` : b.projectedAt ? `, crosses at ${b.projectedAt} at this rate` : ''),
    );
  }
  if (summary.rejected.count) console.log(`${summary.rejected.count} rejected messages (see --json)`);
  console.log(`  run: ${workflowUiUrl(env, costTrackerWorkflowId(project))}`);
  return ExitCode.Ok;
}

async function setBudget({ values, json, project, env, connect }: Ctx): Promise<number> {
  const request: SetBudgetRequest = SetBudgetSchema.parse({
    ...(values.name !== undefined ? { name: values.name } : {}),
    limitUsd: parseNumber('--limit-usd', values['limit-usd']),
    window: values.window,
    action: values.action,
    tagFilter: values['tag-filter'] !== undefined ? parseKeyValue('--tag-filter', values['tag-filter']) : undefined,
  });
  const client = await connect();
  const view = await cost.setBudget(client, { project, taskQueue: env.TRAINCTL_TASK_QUEUE }, request);
  if (json) console.log(JSON.stringify({ ok: true, ...view }));
  else {
    console.log(`budget ${view.name} of project ${project}: ${usd(view.limitUsd)} (${view.window}), action ${view.action}; ${usd(view.spentUsd)} spent`);
    if (view.projectedAt) console.log(`  at the current ${usd(view.burnUsdPerHour)}/h it is crossed at ${view.projectedAt}`);
  }
  return ExitCode.Ok;
}

async function setRate({ values, json, project, env, connect }: Ctx): Promise<number> {
  const request = SetRateSchema.parse({
    type: values.type,
    usdPerHour: parseNumber('--usd-per-hour', values['usd-per-hour']),
    unit: values['per-gib'] ? 'GiB' : 'resource',
  });
  const client = await connect();
  const res = await cost.setRate(client, { project, taskQueue: env.TRAINCTL_TASK_QUEUE }, request);
  if (json) console.log(JSON.stringify({ ok: true, ...res }));
  else console.log(`${res.type}: $${res.microUsdPerHour / 1e6}/h per ${res.unit}; ${res.affected} tracked resources repriced`);
  return ExitCode.Ok;
}

async function reconcile({ values, json, project, env, connect }: Ctx, verb: 'schedule' | 'now'): Promise<number> {
  const input = ReconcileInputSchema.parse({ project, regions: (values.regions ?? env.AWS_REGION).split(',').filter(Boolean) });
  if (verb === 'schedule') ReconcileScheduleSchema.parse({ every: values.every });
  const client = await connect();
  if (verb === 'schedule') {
    const handle = await cost.ensureReconcileSchedule(client, { ...input, every: values.every ?? '1h', taskQueue: env.TRAINCTL_TASK_QUEUE });
    if (json) console.log(JSON.stringify({ ok: true, scheduleId: handle.scheduleId, every: values.every, regions: input.regions }));
    else console.log(`schedule ${handle.scheduleId}: reconcile ${project} in ${input.regions.join(', ')} every ${values.every}`);
    return ExitCode.Ok;
  }
  const outcome = await cost.reconcileNow(client, input, { taskQueue: env.TRAINCTL_TASK_QUEUE });
  if (json) console.log(JSON.stringify({ ok: true, ...outcome }));
  else {
    console.log(`${outcome.checked} managed resources checked in ${outcome.regions.join(', ')}`);
    for (const o of outcome.orphans) console.log(`  orphan   ${o.id}  ${o.kind} ${o.type} ${o.region} (now tracked)`);
    for (const v of outcome.vanished) console.log(`  vanished ${v.id}  (${v.state}; stopped in the tracker)`);
  }
  return ExitCode.Ok;
}

export async function costCommand(argv: string[], env: Env, connect: () => Promise<Client>): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(HELP);
    return sub === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  let json = rest.includes('--json');
  try {
    // An unknown word is named as such, before its flags are read as something else.
    if (!['show', 'budget', 'rate', 'reconcile'].includes(sub)) throw new UsageError(`unknown cost command ${JSON.stringify(sub)}\n${HELP}`);
    const [verb, ...flags] = sub === 'show' ? ['show', ...rest] : rest;
    const values = parseFlags(flags);
    json = values.json ?? false;
    const ctx: Ctx = { values, json, project: z.object({ project: ProjectSchema }).parse({ project: values.project }).project, env, connect };
    if (sub === 'show') return await show(ctx);
    if (sub === 'budget' && verb === 'set') return await setBudget(ctx);
    if (sub === 'rate' && verb === 'set') return await setRate(ctx);
    if (sub === 'reconcile' && (verb === 'schedule' || verb === 'now')) return await reconcile(ctx, verb);
    throw new UsageError(`unknown cost command ${JSON.stringify([sub, verb].filter(Boolean).join(' '))}\n${HELP}`);
  } catch (err) {
    // `regions.0` is the user's --regions: drop list indexes so the flag names apply.
    if (err instanceof ZodError) err = new ZodError(err.issues.map((i) => ({ ...i, path: i.path.filter((p) => typeof p !== 'number') })));
    return reportError(err, { json, what: `cost ${sub}`, flags: COST_FLAGS });
  }
}
