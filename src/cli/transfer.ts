import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { TransferInputSchema, type DataLocation, type Env, type TransferRequest } from '../config.js';
import type { TransferProgress, TransferReport, transfer } from '../workflows/transfer.js';
import { SA } from '../search-attributes.js';
import { workflowUiUrl } from '../temporal.js';
import { ExitCode, UsageError, reportError, type FlagNames } from './output.js';
import { encodingAvailable } from '../transfer/compress.js';

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
};

const HELP = `usage: trainctl transfer SRC DST [options]

SRC and DST are one of:
  ./data, /abs/path          this machine (the worker's filesystem)
  s3://BUCKET/PREFIX         S3 (a key or a prefix; a trailing / means "into")
  host:ID:/path              a training instance, through its host worker (trainctl worker --host ID)

One end must be S3, or local ↔ host (through an S3 staging prefix, emptied afterwards).

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
                         with --dry-run, only lists them. Never touches anything outside DST
  --compress gzip|zstd   compress text-like files (by extension) in S3; undone on download
                         (zstd needs a Node whose node:zlib has it)
  --compress-all         compress every file, not only text-like ones
  --engine builtin|s5cmd|auto
                         who copies local <-> S3 files: trainctl (default), s5cmd (must be on the
                         worker's PATH), or auto (s5cmd when the worker has it); verified either way`;

/** `s3://…`, `host:ID:/path` or a local path (made absolute, keeping a trailing /). */
export function parseLocation(arg: string, cwd = process.cwd()): DataLocation {
  if (arg.startsWith('s3://')) return { kind: 's3', uri: arg };
  const host = /^host:([^:]+):(.+)$/.exec(arg);
  if (host) return { kind: 'host', hostId: host[1] ?? '', path: host[2] ?? '' };
  const abs = resolve(cwd, arg);
  return { kind: 'local', path: arg.endsWith('/') && !abs.endsWith('/') ? `${abs}/` : abs };
}

function parsePositiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a whole number`);
  return n;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function progressLine(p: TransferProgress): string {
  const width = 30;
  const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : p.filesTotal > 0 ? p.filesDone / p.filesTotal : 0;
  const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
  const eta = p.etaSeconds === null ? '' : ` ETA ${p.etaSeconds}s`;
  return `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.phase}: ${p.filesDone}/${p.filesTotal} files ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)} ${formatBytes(p.bytesPerSecond)}/s${eta}${p.currentFile ? ` ${p.currentFile}` : ''}`;
}

/** One line (or a few) a person reads after a transfer. */
export function summarize(r: TransferReport): string {
  if (r.dryRun) {
    const lines = [`dry run: ${r.files} files would be transferred (${formatBytes((r.planned ?? []).reduce((a, p) => a + p.size, 0))}); nothing was written`];
    for (const p of (r.planned ?? []).slice(0, 20)) lines.push(`  ${p.from} -> ${p.to} (${formatBytes(p.size)})`);
    if (r.deleted) {
      lines.push(`dry run: ${r.deleted.count} extraneous destination files would be deleted`);
      for (const d of r.deleted.items.slice(0, 20)) lines.push(`  delete ${d}`);
    }
    return lines.join('\n');
  }
  const lines = [
    `${r.files} files, ${formatBytes(r.bytes)} transferred in ${r.seconds.toFixed(1)} s (${r.MiBps} MiB/s); ${r.skipped} skipped (already identical); ${r.verified} verified by checksum`,
  ];
  if (r.files > 0 && r.skipped === r.files) lines.push('nothing to transfer: every file is already identical at the destination');
  if (r.skippedSymlinks.length > 0) lines.push(`${r.skippedSymlinks.length} symlinks leaving the source were not followed (--follow-symlinks follows them)`);
  if (r.deleted) {
    lines.push(`${r.deleted.count} extraneous destination files deleted`);
    for (const d of r.deleted.items.slice(0, 20)) lines.push(`  deleted ${d}`);
  }
  if (r.stagingObjectsDeleted !== undefined) lines.push(`staging: ${r.stagingObjectsDeleted} objects removed`);
  if (r.engine === 's5cmd') lines.push('copied by s5cmd, verified by trainctl');
  return lines.join('\n');
}

export async function transferCommand(argv: string[], env: Env, connect: () => Promise<Client>, environment: Record<string, string | undefined> = process.env): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(HELP);
    return argv.length === 0 ? ExitCode.Usage : ExitCode.Ok;
  }
  const json = argv.includes('--json');
  let uiUrl: string | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        include: { type: 'string', multiple: true },
        exclude: { type: 'string', multiple: true },
        sync: { type: 'boolean' },
        delete: { type: 'boolean' },
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
    if (positionals.length !== 2) throw new UsageError(`transfer needs SRC and DST\n${HELP}`);
    const compress = values.compress ?? 'none';
    if (compress !== 'none' && compress !== 'gzip' && compress !== 'zstd') throw new UsageError(`--compress: ${JSON.stringify(compress)} is not gzip, zstd or none`);
    if (!encodingAvailable(compress)) throw new UsageError(`--compress zstd: node:zlib of Node ${process.version} has no zstd (it needs Node ≥ 22.15); use --compress gzip`);
    const engine = values.engine ?? 'builtin';
    if (engine !== 'builtin' && engine !== 's5cmd' && engine !== 'auto') throw new UsageError(`--engine: ${JSON.stringify(engine)} is not builtin, s5cmd or auto`);
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
      ...(values.concurrency !== undefined ? { concurrency: parsePositiveInt('--concurrency', values.concurrency) } : {}),
      ...(values['file-concurrency'] !== undefined ? { fileConcurrency: parsePositiveInt('--file-concurrency', values['file-concurrency']) } : {}),
      ...(values['part-size-mib'] !== undefined ? { partSizeMiB: parsePositiveInt('--part-size-mib', values['part-size-mib']) } : {}),
      ...((values.staging ?? environment.TRAINCTL_STAGING_URI) ? { stagingUri: values.staging ?? environment.TRAINCTL_STAGING_URI } : {}),
      ...(values.watch ? { progressIntervalMs: 1_000 } : {}),
    };
    // Validate before connecting: a bad request never reaches Temporal or AWS.
    const input = TransferInputSchema.parse(request);
    const client = await connect();
    const workflowId = `transfer/${randomUUID().slice(0, 8)}`;
    const where = (l: DataLocation) => (l.kind === 's3' ? l.uri : l.kind === 'host' ? `host:${l.hostId}:${l.path}` : l.path);
    const handle = await client.workflow.start<typeof transfer>('transfer', {
      taskQueue: env.TRAINCTL_TASK_QUEUE,
      workflowId,
      args: [input],
      typedSearchAttributes: [
        { key: SA.kind, value: 'transfer' },
        { key: SA.resource, value: where(input.destination).slice(0, 200) },
      ],
      staticSummary: `Transfer ${where(input.source)} → ${where(input.destination)}${input.sync ? ' (sync)' : ''}${input.deleteExtraneous ? ' (delete extraneous)' : ''}${input.dryRun ? ' (dry run)' : ''}`,
    });
    uiUrl = workflowUiUrl(env, handle.workflowId, handle.firstExecutionRunId);
    if (!json) console.error(`transfer ${where(input.source)} -> ${where(input.destination)}: ${uiUrl}`);

    let done = false;
    const result = handle.result().finally(() => {
      done = true;
    });
    if (values.watch && !json) {
      const tty = process.stderr.isTTY;
      while (!done) {
        await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
        if (done) break;
        const p = await handle.query<TransferProgress>('progress').catch(() => undefined);
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
    return reportError(err, { json, what: 'transfer', flags: FLAGS, ...(uiUrl ? { uiUrl } : {}) });
  }
}
