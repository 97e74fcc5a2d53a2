import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import type { Client } from '@temporalio/client';
import type { Env } from '../config.js';
import type { TransferReport, TransferRequest } from '../contracts/transfer.js';
import * as api from '../api/transfer.js';
import { workflowUiUrl } from '../temporal.js';
import { ExitCode, UsageError, reportError, type FlagNames } from './output.js';
import { asUsageError } from './args.js';
import { encodingAvailable } from '../transfer/compress.js';
import { formatLocation, parseLocation } from '../transfer/location.js';
import { progressLine, summarize } from '../transfer/report.js';

const FLAGS: FlagNames = {
  source: 'SRC',
  'source.path': 'SRC',
  'source.uri': 'SRC',
  'source.hostId': 'SRC',
  destination: 'DST',
  'destination.path': 'DST',
  'destination.uri': 'DST',
  'destination.hostId': 'DST',
  concurrency: '--concurrency',
  fileConcurrency: '--file-concurrency',
  partSizeMiB: '--part-size-mib',
  stagingUri: '--staging (or TRAINCTL_STAGING_URI)',
  region: '--region',
  engine: '--engine',
  include: '--include',
  exclude: '--exclude',
  maxDelete: '--max-delete',
};

const HELP = `usage: trainctl transfer SRC DST [options]

SRC and DST are one of:
  ./data, /abs/path          this machine (the worker's filesystem)
  s3://BUCKET/PREFIX         S3 (a key or a prefix; a trailing / means "into")
  s3://PROFILE@BUCKET/PREFIX the same through AWS profile PROFILE of the worker: its region,
                             endpoint_url (MinIO, Ceph, R2, versitygw …) and credentials
  host:ID:/path              a training instance, through its host worker (trainctl worker --host ID)

One end must be S3, or local ↔ host (through an S3 staging prefix, emptied afterwards), or both
S3 (S3 → S3 across endpoints or profiles, streamed through the worker, resumable and verified).

options:
  --include GLOB / --exclude GLOB   filter files (repeatable; * ? ** ; a glob without / matches names)
  --sync                 skip files already identical at the destination (size + checksum)
  --dry-run              plan only: list what would move, write nothing
  --concurrency N        parts of one file in flight (default 4)
  --file-concurrency N   files in flight (default 4)
  --part-size-mib N      part size (default: from the file size, ≥ 8 MiB, ≤ 10,000 parts)
  --staging s3://B/P     staging prefix for local ↔ host (default TRAINCTL_STAGING_URI)
  --follow-symlinks      follow symlinks that leave the source folder
  --region REGION        default AWS_REGION
  --watch                show a progress bar (from the workflow's progress query)
  --json                 machine-readable result on stdout
  --delete               delete destination files the (filtered) source lacks; implies --sync;
                         with --dry-run, only lists them. Never touches anything outside DST.
                         Refuses an empty (filtered) source, and more than 1,000 deletions or
                         more than half of DST's entries unless --max-delete allows them
  --max-delete N         with --delete: allow up to N deletions
  --page-files N         files per page (default and most 20,000): a bigger tree moves page by
                         page, one workflow run each (continue-as-new); --delete needs one page
  --compress gzip|zstd   compress text-like files (by extension) in S3; undone on download
                         (zstd needs a Node whose node:zlib has it)
  --compress-all         compress every file, not only text-like ones
  --engine builtin|s5cmd|auto
                         who copies local <-> S3 files: trainctl (default), s5cmd (must be on the
                         worker's PATH), or auto (s5cmd when the worker has it); verified either way`;

function parsePositiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a whole number`);
  return n;
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      sync: { type: 'boolean' },
      delete: { type: 'boolean' },
      'max-delete': { type: 'string' },
      'page-files': { type: 'string' },
      'dry-run': { type: 'boolean' },
      concurrency: { type: 'string' },
      'file-concurrency': { type: 'string' },
      'part-size-mib': { type: 'string' },
      staging: { type: 'string' },
      'follow-symlinks': { type: 'boolean' },
      region: { type: 'string' },
      watch: { type: 'boolean' },
      json: { type: 'boolean' },
      compress: { type: 'string' },
      'compress-all': { type: 'boolean' },
      engine: { type: 'string' },
    },
  });
}

/** The transfer request the command line asks for; a UsageError when a flag is malformed. */
function parseRequest(argv: string[], env: Env, environment: Record<string, string | undefined>): { request: TransferRequest; watch: boolean } {
  let parsed;
  try {
    parsed = parseFlags(argv);
  } catch (err) {
    throw asUsageError(err);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 2) {
    const got = positionals.length ? `, got ${positionals.length}: ${positionals.map((p) => JSON.stringify(p)).join(' ')}` : '';
    throw new UsageError(`transfer needs SRC and DST${got} (a flag's value belongs after its flag, as --include GLOB)\n${HELP}`);
  }
  const compress = values.compress ?? 'none';
  if (compress !== 'none' && compress !== 'gzip' && compress !== 'zstd')
    throw new UsageError(`--compress: ${JSON.stringify(compress)} is not gzip, zstd or none`);
  if (!encodingAvailable(compress))
    throw new UsageError(`--compress zstd: node:zlib of Node ${process.version} has no zstd (it needs Node ≥ 22.15); use --compress gzip`);
  const engine = values.engine ?? 'builtin';
  if (engine !== 'builtin' && engine !== 's5cmd' && engine !== 'auto')
    throw new UsageError(`--engine: ${JSON.stringify(engine)} is not builtin, s5cmd or auto`);
  const request: TransferRequest = {
    source: parseLocation(positionals[0] ?? ''),
    destination: parseLocation(positionals[1] ?? ''),
    region: values.region ?? env.AWS_REGION,
    include: values.include ?? [],
    exclude: values.exclude ?? [],
    sync: values.sync ?? false,
    dryRun: values['dry-run'] ?? false,
    followSymlinks: values['follow-symlinks'] ?? false,
    deleteExtraneous: values.delete ?? false,
    compress,
    compressAll: values['compress-all'] ?? false,
    engine,
    ...(values['max-delete'] !== undefined ? { maxDelete: parsePositiveInt('--max-delete', values['max-delete']) } : {}),
    ...(values['page-files'] !== undefined ? { pageFiles: parsePositiveInt('--page-files', values['page-files']) } : {}),
    ...(values.concurrency !== undefined ? { concurrency: parsePositiveInt('--concurrency', values.concurrency) } : {}),
    ...(values['file-concurrency'] !== undefined ? { fileConcurrency: parsePositiveInt('--file-concurrency', values['file-concurrency']) } : {}),
    ...(values['part-size-mib'] !== undefined ? { partSizeMiB: parsePositiveInt('--part-size-mib', values['part-size-mib']) } : {}),
    ...((values.staging ?? environment.TRAINCTL_STAGING_URI) ? { stagingUri: values.staging ?? environment.TRAINCTL_STAGING_URI } : {}),
    ...(values.watch ? { progressIntervalMs: 1_000 } : {}),
  };
  return { request, watch: values.watch ?? false };
}

export async function transferCommand(
  argv: string[],
  env: Env,
  connect: () => Promise<Client>,
  environment: Record<string, string | undefined> = process.env,
): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(HELP);
    return argv.length === 0 ? ExitCode.Usage : ExitCode.Ok;
  }
  const json = argv.includes('--json');
  let uiUrl: string | undefined;
  try {
    const { request, watch } = parseRequest(argv, env, environment);
    // Validate before connecting: a bad request never reaches Temporal or AWS.
    const input = api.validate(request);
    const client = await connect();
    const handle = await api.start(client, input, { taskQueue: env.TRAINCTL_TASK_QUEUE });
    const workflowId = handle.workflowId;
    uiUrl = workflowUiUrl(env, handle.workflowId, handle.firstExecutionRunId);
    if (!json) console.error(`transfer ${formatLocation(input.source)} -> ${formatLocation(input.destination)}: ${uiUrl}`);

    let done = false;
    const result = handle.result().finally(() => {
      done = true;
    });
    if (watch && !json) {
      const tty = process.stderr.isTTY;
      while (!done) {
        await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
        if (done) break;
        const p = await api.progress(handle).catch(() => undefined);
        if (p) process.stderr.write(tty ? `\r${progressLine(p).padEnd(120).slice(0, 160)}` : `${progressLine(p)}\n`);
      }
      if (tty) process.stderr.write('\n');
    }
    const report: TransferReport = await result;
    if (json) console.log(JSON.stringify({ ok: true, ...report, workflowId, ui: uiUrl }));
    else {
      console.log(summarize(report));
      console.log(`  run: ${uiUrl}`);
    }
    return ExitCode.Ok;
  } catch (err) {
    // `exclude.0` is the user's --exclude: drop list indexes so the flag names apply.
    if (err instanceof ZodError) err = new ZodError(err.issues.map((i) => ({ ...i, path: i.path.filter((p) => typeof p !== 'number') })));
    return reportError(err, { json, what: 'transfer', flags: FLAGS, ...(uiUrl ? { uiUrl } : {}) });
  }
}
