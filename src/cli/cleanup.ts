import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import { createInterface } from 'node:readline/promises';
import type { Client } from '@temporalio/client';
import * as cleanupApi from '../api/cleanup.js';
import type { Env } from '../config.js';
import { CleanupInputSchema, type CleanupInput, type CleanupPlan, type CleanupReport, type CleanupRequest, type CleanupResult } from '../contracts/cleanup.js';
import { workflowUiUrl } from '../temporal.js';
import { ExitCode, UsageError, reportError, type FlagNames } from './output.js';
import { asUsageError, parseNumber, parseTags } from './args.js';

export const CLEANUP_FLAGS: FlagNames = {
  region: '--region (or AWS_REGION)',
  'selector.tags': '--tag',
  'selector.ids': '--id',
  'selector.kinds': '--kind',
  'selector.olderThan': '--older-than',
  'selector.s3.bucket': '--bucket',
  'selector.s3.prefix': '--prefix',
  'selector.s3.profile': '--s3-profile',
  protectedIds: '--protected-id (or TRAINCTL_PROTECTED_IDS)',
  approvalTimeout: '--approval-timeout',
  concurrency: '--concurrency',
  chunkSize: '--chunk-size',
  costProject: '--cost-project',
  planHash: '--plan-hash',
  reason: '--reason',
};

const HELP = `usage: trainctl cleanup plan  [selectors] [--json]
       trainctl cleanup apply [selectors] [--force] [--snapshot-before-delete] [--yes] [--json]
       trainctl cleanup approve --workflow-id ID --plan-hash HASH
       trainctl cleanup reject  --workflow-id ID [--reason TEXT]

plan is a dry run: it lists every resource with the steps it would take, or why it is skipped.
apply prints the plan, asks for confirmation (on a terminal, unless --yes), approves exactly that
plan by its hash, and prints what was deleted, skipped and failed.

selectors (only resources tagged trainctl:managed=true are candidates, unless listed with --id):
  --tag KEY=VALUE            must carry this tag (repeatable; all must match)
  --id ID                    i-…, vol-…, snap-…, s3://BUCKET/PREFIX or s3://BUCKET/KEY#UPLOAD_ID (repeatable)
  --kind KIND                instance, volume, snapshot, multipart-upload, s3-prefix (repeatable;
                             default instance and volume)
  --older-than DURATION      e.g. 12h, 7d, 2w
  --bucket NAME --prefix P   where to look for multipart uploads / the prefix s3-prefix deletes
  --s3-profile NAME          the AWS profile whose store holds --bucket (another S3-compatible store)
  --region REGION            default: AWS_REGION

apply options:
  --force                    also delete important resources, and protected ones listed with --id
  --snapshot-before-delete   snapshot every volume (tagged with its tags) before deleting it
  --yes                      approve without asking
  --protected-id ID          never delete without --force and --id (repeatable; also
                             TRAINCTL_PROTECTED_IDS, comma-separated)
  --approval-timeout D       how long the run waits for approval (default 1h)
  --concurrency N            resources worked on at once (default 4)
  --chunk-size N             resources deleted per workflow run before it continues as new with
                             the rest of the approved plan (default 100, at most 500)
  --cost-project P           tell project P's cost tracker about every deletion (resourceStopped)`;

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** The plan as a table: one row per resource, the steps it takes or why it is skipped. */
/** What an S3 prefix holds, as the plan shows it: count, bytes and the first keys. */
function objectsOf(o: NonNullable<CleanupPlan['resources'][number]['objects']>): string {
  const more = o.count > o.sample.length ? ', …' : '';
  return `${o.count} objects, ${o.bytes} bytes${o.sample.length ? `: ${o.sample.join(', ')}${more}` : ''}`;
}

export function formatPlan(plan: CleanupPlan): string {
  const rows = [['RESOURCE', 'KIND', 'NAME', 'ACTION']];
  for (const r of plan.resources) {
    rows.push([
      r.id,
      r.kind,
      r.name ?? '',
      `${r.protection ? `[${r.protection}, force] ` : ''}${r.unmanaged ? '[not managed] ' : ''}${r.steps.join(' → ')}` +
        `${r.notes?.length ? ` (${r.notes.join('; ')})` : ''}${r.objects ? ` (${objectsOf(r.objects)})` : ''}`,
    ]);
  }
  for (const s of plan.skipped) rows.push([s.id, s.kind, '', `skip: ${s.reason}`]);
  const head = `plan ${plan.hash} in ${plan.region}: delete ${plan.resources.length}, skip ${plan.skipped.length}`;
  const approval = plan.needsApproval ? `\nneeds approval: ${plan.approvalReasons.join('; ')}` : '';
  return `${head}${approval}\n${rows.length > 1 ? table(rows) : '(nothing matches the selector)'}`;
}

/** The report as a table: one row per resource and what happened to it. */
export function formatReport(report: CleanupReport): string {
  const rows = [['RESOURCE', 'RESULT', 'DETAIL']];
  for (const id of report.deleted) {
    const snap = report.snapshots.find((s) => s.volumeId === id);
    rows.push([id, 'deleted', snap ? `snapshot ${snap.snapshotId}` : '']);
  }
  for (const id of report.alreadyGone) rows.push([id, 'already gone', 'deleted by someone else before this run']);
  for (const f of report.failed) rows.push([f.id, 'FAILED', `${f.kind}${f.step ? ` at ${f.step}` : ''}: ${f.message}`]);
  for (const s of report.skipped) rows.push([s.id, 'skipped', s.reason]);
  const head = `deleted ${report.deleted.length}, already gone ${report.alreadyGone.length}, failed ${report.failed.length}, skipped ${report.skipped.length}`;
  return `${head}\n${rows.length > 1 ? table(rows) : '(nothing to do)'}`;
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function requestFrom(values: Record<string, string | boolean | string[] | undefined>, env: Env, protectedFromEnv: string[], dryRun: boolean): CleanupRequest {
  const str = (k: string) => values[k] as string | undefined;
  const list = (k: string) => (values[k] as string[] | undefined) ?? [];
  const kinds = list('kind')
    .flatMap((k) => k.split(','))
    .filter(Boolean);
  const bucket = str('bucket');
  if (bucket === undefined && str('prefix') !== undefined) throw new UsageError('--prefix needs --bucket');
  if (bucket === undefined && str('s3-profile') !== undefined) throw new UsageError('--s3-profile needs --bucket');
  return {
    region: str('region') ?? env.AWS_REGION,
    selector: {
      tags: parseTags(list('tag')),
      ids: list('id'),
      ...(kinds.length ? { kinds: kinds as CleanupInput['selector']['kinds'] } : {}),
      ...(str('older-than') !== undefined ? { olderThan: str('older-than') } : {}),
      ...(bucket !== undefined
        ? { s3: { bucket, prefix: str('prefix') ?? '', ...(str('s3-profile') !== undefined ? { profile: str('s3-profile') } : {}) } }
        : {}),
    },
    dryRun,
    force: values.force === true,
    snapshotBeforeDelete: values['snapshot-before-delete'] === true,
    protectedIds: [...protectedFromEnv, ...list('protected-id')],
    // The CLI always shows the plan and approves it itself, so every apply waits for its approval.
    approvalThreshold: 0,
    ...(str('approval-timeout') !== undefined ? { approvalTimeout: str('approval-timeout') } : {}),
    ...(str('concurrency') !== undefined ? { concurrency: parseNumber('--concurrency', str('concurrency'), { integer: true }) } : {}),
    ...(str('cost-project') !== undefined ? { costProject: str('cost-project') } : {}),
    ...(str('chunk-size') !== undefined ? { chunkSize: parseNumber('--chunk-size', str('chunk-size'), { integer: true }) } : {}),
  };
}

function parseFlags(args: string[]) {
  try {
    return parseFlagsStrict(args);
  } catch (err) {
    throw asUsageError(err);
  }
}

function parseFlagsStrict(args: string[]) {
  return parseArgs({
    args,
    strict: true,
    options: {
      tag: { type: 'string', multiple: true },
      id: { type: 'string', multiple: true },
      kind: { type: 'string', multiple: true },
      'older-than': { type: 'string' },
      bucket: { type: 'string' },
      's3-profile': { type: 'string' },
      prefix: { type: 'string' },
      region: { type: 'string' },
      force: { type: 'boolean' },
      'snapshot-before-delete': { type: 'boolean' },
      yes: { type: 'boolean' },
      'protected-id': { type: 'string', multiple: true },
      'approval-timeout': { type: 'string' },
      concurrency: { type: 'string' },
      'chunk-size': { type: 'string' },
      'cost-project': { type: 'string' },
      'workflow-id': { type: 'string' },
      'plan-hash': { type: 'string' },
      reason: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  }).values;
}

type Flags = ReturnType<typeof parseFlagsStrict>;

/** `cleanup approve` / `cleanup reject` of a run that waits for approval. */
async function decide(sub: 'approve' | 'reject', values: Flags, json: boolean, env: Env, connect: () => Promise<Client>): Promise<number> {
  const workflowId = values['workflow-id'];
  if (!workflowId) throw new UsageError(`cleanup ${sub} needs --workflow-id`);
  if (sub === 'approve' && !values['plan-hash']) throw new UsageError('cleanup approve needs --plan-hash (printed with the plan)');
  const client = await connect();
  const handle = cleanupApi.cleanupHandle(client, workflowId);
  if (sub === 'approve') await cleanupApi.approve(handle, values['plan-hash']!);
  else await cleanupApi.reject(handle, values.reason ?? 'rejected from the CLI');
  if (json) console.log(JSON.stringify({ ok: true, workflowId, [sub === 'approve' ? 'approved' : 'rejected']: true }));
  else console.log(`${sub === 'approve' ? 'approved' : 'rejected'}: ${workflowUiUrl(env, workflowId)}`);
  return ExitCode.Ok;
}

/** Shows the plan the run waits on and approves it (--yes, or yes at the prompt) or rejects it; undefined when it waited on none. */
async function confirmPlan(
  handle: Awaited<ReturnType<typeof cleanupApi.startCleanup>>,
  values: Flags,
  json: boolean,
  uiUrl: string,
  ended: () => boolean,
): Promise<boolean | undefined> {
  const plan = await cleanupApi.awaitPlan(handle, { ended });
  if (!plan) return undefined;
  if (!json) console.log(formatPlan(plan));
  let approved: boolean;
  if (values.yes) approved = true;
  else if (process.stdin.isTTY && !json) approved = await confirm(`delete ${plan.resources.length} resources as planned (plan ${plan.hash})? [y/N] `);
  else throw new UsageError(`cleanup apply needs --yes when not run on a terminal; the run waits for approval: ${uiUrl}`);
  if (approved) await cleanupApi.approve(handle, plan.hash);
  else await cleanupApi.reject(handle, 'declined at the confirmation prompt');
  return approved;
}

/** `cleanup plan` (a dry run) or `cleanup apply`: starts the run, confirms its plan, prints what it did. */
async function planOrApply(
  sub: 'plan' | 'apply',
  values: Flags,
  json: boolean,
  env: Env,
  connect: () => Promise<Client>,
  environment: Record<string, string | undefined>,
  shown: { uiUrl?: string },
): Promise<number> {
  const protectedFromEnv = (environment.TRAINCTL_PROTECTED_IDS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // Validate before connecting: a bad request never reaches Temporal or AWS.
  const input = CleanupInputSchema.parse(requestFrom(values, env, protectedFromEnv, sub === 'plan'));
  // Nobody could approve the plan: refuse before a run starts and waits for an approval that never comes.
  if (sub === 'apply' && !values.yes && !(process.stdin.isTTY && !json))
    throw new UsageError('cleanup apply needs --yes when not run on a terminal (or with --json); nothing was started');
  const client = await connect();
  const handle = await cleanupApi.startCleanup(client, input, {
    taskQueue: env.TRAINCTL_TASK_QUEUE,
    ...(values['workflow-id'] ? { workflowId: values['workflow-id'] } : {}),
  });
  const uiUrl = workflowUiUrl(env, handle.workflowId);
  shown.uiUrl = uiUrl;
  if (!json) console.error(`cleanup ${sub}: ${uiUrl}`);

  let ended = false;
  const resultP = handle.result().finally(() => {
    ended = true;
  });
  // Observed below; this only keeps an early failure from being reported as unhandled.
  resultP.catch(() => undefined);

  const approved = sub === 'apply' ? await confirmPlan(handle, values, json, uiUrl, () => ended) : undefined;
  const result: CleanupResult = await resultP;
  const ok = result.report.failed.length === 0 && (result.outcome === 'completed' || result.outcome === 'planned');
  if (json) console.log(JSON.stringify({ ok, workflowId: handle.workflowId, outcome: result.outcome, plan: result.plan, report: result.report, ui: uiUrl }));
  else if (result.outcome === 'planned') console.log(formatPlan(result.plan));
  else {
    if (sub === 'apply' && approved === undefined) console.log(formatPlan(result.plan));
    if (result.message) console.log(result.message);
    console.log(formatReport(result.report));
  }
  return ok ? ExitCode.Ok : ExitCode.Failed;
}

export async function cleanupCommand(
  argv: string[],
  env: Env,
  connect: () => Promise<Client>,
  environment: Record<string, string | undefined> = {},
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(HELP);
    return sub === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  const json = rest.includes('--json');
  const shown: { uiUrl?: string } = {};
  try {
    const values = parseFlags(rest);
    if (sub === 'approve' || sub === 'reject') return await decide(sub, values, json, env, connect);
    if (sub !== 'plan' && sub !== 'apply') throw new UsageError(`unknown cleanup command ${JSON.stringify(sub)}\n${HELP}`);
    return await planOrApply(sub, values, json, env, connect, environment, shown);
  } catch (err) {
    // `selector.kinds.0` is the user's --kind: drop list indexes so the flag names apply.
    if (err instanceof ZodError) err = new ZodError(err.issues.map((i) => ({ ...i, path: i.path.filter((p) => typeof p !== 'number') })));
    return reportError(err, { json, what: `cleanup ${sub}`, flags: CLEANUP_FLAGS, ...(shown.uiUrl ? { uiUrl: shown.uiUrl } : {}) });
  }
}
