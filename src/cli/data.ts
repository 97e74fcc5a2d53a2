import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import type { Env } from '../config.js';
import { start as startPrewarm } from '../api/prewarm.js';
import { parseS3Location, type S3Location } from '../contracts/common.js';
import { loadProfile } from '../aws/profiles.js';
import { DATA_STRATEGIES, PrewarmInputSchema, RecommendInputSchema, type DataStrategy, type PrewarmRequest, type PrewarmResult } from '../contracts/prewarm.js';
import { loaderScript } from '../loader-script.js';
import { INSTANCE_SPECS, formatRecommendation, recommend } from '../recommender.js';
import { workflowUiUrl } from '../temporal.js';
import { ExitCode, UsageError, reportError, type FlagNames } from './output.js';

const HELP = `usage: trainctl data recommend --dataset-gib N (--files N | --mean-file-mib N) --instance-type TYPE [options]
       trainctl data loader --strategy STRATEGY --out train_data.py (--path DIR | --s3-uri s3://[PROFILE@]BUCKET/PREFIX) [options]
       trainctl data prewarm --host ID --strategy STRATEGY [options]

strategies: ${DATA_STRATEGIES.join(', ')}

recommend options:
  --runs N --epochs N              planned runs and epochs per run (default 1 and 1)
  --volume-type gp3|gp2|io1|io2|st1|sc1 --volume-throughput MIBPS --volume-gib N
  --snapshot                       the dataset exists as an EBS snapshot
  --on-volume                      an attached volume already holds the dataset
  --init-rate MIBPS                EBS Provisioned Rate for Volume Initialization (100-300)
  --cache-gib N --cache-mibps N    room and read speed of the local cache's disk
  --network-gbps N --ebs-gbps N --vcpus N   for an instance type not in the table
  --s3-prefixes N                  partitioned prefixes the dataset is spread over (default 1)

loader options:
  --instance-type TYPE | --vcpus N num_workers follows from the vCPUs (default: at run time)
  --batch-size N                   default 32
  --region REGION                  the bucket's region (DirectS3; default AWS_REGION)

prewarm options:
  PreWarmedEBS:  --device PATH [--block-kib 1024] [--concurrency 32] [--no-fio]
  LocalCache:    --s3-uri s3://[PROFILE@]BUCKET/PREFIX --cache-dir DIR [--capacity-gib N] [--concurrency 8]
  ExistingEBS:   --dataset-dir DIR [--manifest manifest.json] [--verify size|checksum]
  DirectS3:      --s3-uri s3://[PROFILE@]BUCKET/PREFIX
  --heartbeat-timeout SECONDS --timeout-minutes N --region REGION
  --cost-project P [--cost-rate USD_PER_HOUR]   record the time spent with P's cost tracker

every command: --json for machine-readable output on stdout`;

const RECOMMEND_FLAGS: FlagNames = {
  datasetGiB: '--dataset-gib',
  fileCount: '--files',
  meanFileMiB: '--mean-file-mib',
  runs: '--runs',
  epochsPerRun: '--epochs',
  instanceType: '--instance-type',
  volumeType: '--volume-type',
  volumeThroughputMiBps: '--volume-throughput',
  volumeGiB: '--volume-gib',
  initRateMiBps: '--init-rate',
  cacheGiB: '--cache-gib',
  cacheMiBps: '--cache-mibps',
  networkGbps: '--network-gbps',
  ebsGbps: '--ebs-gbps',
  vCpus: '--vcpus',
  s3Prefixes: '--s3-prefixes',
};

const PREWARM_FLAGS: FlagNames = {
  hostId: '--host',
  strategy: '--strategy',
  device: '--device',
  blockSizeKiB: '--block-kib',
  concurrency: '--concurrency',
  cacheDir: '--cache-dir',
  capacityBytes: '--capacity-gib',
  datasetDir: '--dataset-dir',
  manifest: '--manifest',
  verify: '--verify',
  s3: '--s3-uri',
  's3.bucket': '--s3-uri',
  's3.prefix': '--s3-uri',
  's3.region': '--region',
  heartbeatTimeoutSeconds: '--heartbeat-timeout',
  timeoutMinutes: '--timeout-minutes',
};

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a number`);
  return n;
}

function parseS3Uri(uri: string | undefined): S3Location | undefined {
  if (uri === undefined) return undefined;
  const loc = parseS3Location(uri);
  if (!loc) throw new UsageError(`--s3-uri ${JSON.stringify(uri)}: expected s3://BUCKET/PREFIX or s3://PROFILE@BUCKET/PREFIX`);
  return loc;
}

function strategyOf(v: string | undefined): DataStrategy {
  const s = DATA_STRATEGIES.find((x) => x === v);
  if (!s) throw new UsageError(`--strategy must be one of ${DATA_STRATEGIES.join(', ')}${v === undefined ? '' : ` (got ${JSON.stringify(v)})`}`);
  return s;
}

const OPTIONS = {
  'dataset-gib': { type: 'string' },
  files: { type: 'string' },
  'mean-file-mib': { type: 'string' },
  runs: { type: 'string' },
  epochs: { type: 'string' },
  'instance-type': { type: 'string' },
  'volume-type': { type: 'string' },
  'volume-throughput': { type: 'string' },
  'volume-gib': { type: 'string' },
  snapshot: { type: 'boolean' },
  'on-volume': { type: 'boolean' },
  'init-rate': { type: 'string' },
  'cache-gib': { type: 'string' },
  'cache-mibps': { type: 'string' },
  'network-gbps': { type: 'string' },
  'ebs-gbps': { type: 'string' },
  vcpus: { type: 'string' },
  's3-prefixes': { type: 'string' },
  strategy: { type: 'string' },
  out: { type: 'string' },
  path: { type: 'string' },
  's3-uri': { type: 'string' },
  'batch-size': { type: 'string' },
  region: { type: 'string' },
  host: { type: 'string' },
  device: { type: 'string' },
  'block-kib': { type: 'string' },
  concurrency: { type: 'string' },
  'no-fio': { type: 'boolean' },
  'cost-project': { type: 'string' },
  'cost-rate': { type: 'string' },
  'cache-dir': { type: 'string' },
  'capacity-gib': { type: 'string' },
  'dataset-dir': { type: 'string' },
  manifest: { type: 'string' },
  verify: { type: 'string' },
  'heartbeat-timeout': { type: 'string' },
  'timeout-minutes': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true }>>['values'];

function recommendCommand(values: Values, json: boolean): number {
  const input = RecommendInputSchema.parse({
    datasetGiB: num('--dataset-gib', values['dataset-gib']),
    fileCount: num('--files', values.files),
    meanFileMiB: num('--mean-file-mib', values['mean-file-mib']),
    runs: num('--runs', values.runs),
    epochsPerRun: num('--epochs', values.epochs),
    instanceType: values['instance-type'],
    volumeType: values['volume-type'],
    volumeThroughputMiBps: num('--volume-throughput', values['volume-throughput']),
    volumeGiB: num('--volume-gib', values['volume-gib']),
    snapshotExists: values.snapshot,
    onVolume: values['on-volume'],
    initRateMiBps: num('--init-rate', values['init-rate']),
    cacheGiB: num('--cache-gib', values['cache-gib']),
    cacheMiBps: num('--cache-mibps', values['cache-mibps']),
    networkGbps: num('--network-gbps', values['network-gbps']),
    ebsGbps: num('--ebs-gbps', values['ebs-gbps']),
    vCpus: num('--vcpus', values.vcpus),
    s3Prefixes: num('--s3-prefixes', values['s3-prefixes']),
  });
  let r;
  try {
    r = recommend(input);
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
  if (json) console.log(JSON.stringify({ ok: true, ...r }));
  else console.log(formatRecommendation(r));
  return ExitCode.Ok;
}

async function loaderCommand(values: Values, env: Env, json: boolean): Promise<number> {
  const strategy = strategyOf(values.strategy);
  if (!values.out) throw new UsageError('data loader needs --out FILE (e.g. --out train_data.py)');
  const type = values['instance-type'];
  if (type !== undefined && INSTANCE_SPECS[type] === undefined && values.vcpus === undefined) {
    throw new UsageError(`--instance-type ${type} is not in the table; give --vcpus instead`);
  }
  const vCpus = num('--vcpus', values.vcpus) ?? (type !== undefined ? INSTANCE_SPECS[type]?.vCpus : undefined);
  const s3 = parseS3Uri(values['s3-uri']);
  if (strategy === 'DirectS3' && !s3) throw new UsageError('DirectS3 needs --s3-uri s3://BUCKET/PREFIX');
  if (strategy !== 'DirectS3' && !values.path) throw new UsageError(`${strategy} needs --path DIR (the dataset's folder on the instance)`);
  // A location's profile gives the script its store's endpoint and addressing style (never its credentials).
  const profile = s3?.profile
    ? await loadProfile(s3.profile, { configFile: env.AWS_CONFIG_FILE, credentialsFile: env.AWS_SHARED_CREDENTIALS_FILE }).catch((err: unknown) => {
        throw new UsageError(err instanceof Error ? err.message : String(err));
      })
    : undefined;
  let text: string;
  try {
    text = loaderScript({
      strategy,
      ...(values.path !== undefined ? { path: values.path } : {}),
      ...(s3
        ? {
            s3: {
              bucket: s3.bucket,
              prefix: s3.prefix,
              region: profile?.region ?? values.region ?? env.AWS_REGION,
              endpoint: profile?.endpoint,
              addressingStyle: profile ? (profile.forcePathStyle ? 'path' : 'auto') : undefined,
            },
          }
        : {}),
      ...(vCpus !== undefined ? { vCpus } : {}),
      ...(values['batch-size'] !== undefined ? { batchSize: num('--batch-size', values['batch-size'])! } : {}),
      provenance: `trainctl data loader --strategy ${strategy}`,
    });
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
  writeFileSync(values.out, text);
  if (json) console.log(JSON.stringify({ ok: true, strategy, out: values.out, bytes: Buffer.byteLength(text) }));
  else console.log(`wrote ${values.out}: a PyTorch DataLoader for ${strategy} (from train_data import make_loader)`);
  return ExitCode.Ok;
}

function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

async function prewarmCommand(values: Values, env: Env, connect: () => Promise<Client>, json: boolean): Promise<number> {
  const strategy = strategyOf(values.strategy);
  const s3 = parseS3Uri(values['s3-uri']);
  if ((strategy === 'LocalCache' || strategy === 'DirectS3') && !s3) throw new UsageError(`${strategy} needs --s3-uri s3://BUCKET/PREFIX`);
  const capacityGiB = num('--capacity-gib', values['capacity-gib']);
  const request = {
    strategy,
    hostId: values.host,
    heartbeatTimeoutSeconds: num('--heartbeat-timeout', values['heartbeat-timeout']),
    timeoutMinutes: num('--timeout-minutes', values['timeout-minutes']),
    device: values.device,
    blockSizeKiB: num('--block-kib', values['block-kib']),
    concurrency: num('--concurrency', values.concurrency),
    fio: values['no-fio'] ? 'never' : undefined,
    s3: s3 ? { ...s3, region: values.region ?? env.AWS_REGION } : undefined,
    cacheDir: values['cache-dir'],
    capacityBytes: capacityGiB === undefined ? undefined : Math.floor(capacityGiB * 2 ** 30),
    datasetDir: values['dataset-dir'],
    manifest: values.manifest,
    verify: values.verify,
    cost:
      values['cost-project'] !== undefined
        ? { project: values['cost-project'], region: values.region ?? env.AWS_REGION, hourlyRate: num('--cost-rate', values['cost-rate']) }
        : undefined,
  } as PrewarmRequest;
  // Validate before connecting: a bad request never reaches Temporal.
  const input = PrewarmInputSchema.parse(request);
  const client = await connect();
  const handle = await startPrewarm(client, input, { taskQueue: env.TRAINCTL_TASK_QUEUE });
  const { workflowId } = handle;
  const uiUrl = workflowUiUrl(env, handle.workflowId, handle.firstExecutionRunId);
  if (!json) console.error(`preparing data on ${input.hostId}: ${uiUrl}`);
  try {
    const r: PrewarmResult = await handle.result();
    if (json) console.log(JSON.stringify({ ok: true, ...r, workflowId, ui: uiUrl }));
    else {
      console.log(
        `${r.strategy} on ${r.hostId}: ${fmtBytes(r.bytes)} in ${r.seconds.toFixed(1)} s${r.mibPerSecond ? `, ${r.mibPerSecond.toFixed(0)} MiB/s` : ''}`,
      );
      if (r.prewarm)
        console.log(
          `  ${r.prewarm.method} reader, ${r.prewarm.concurrency} × ${fmtBytes(r.prewarm.blockSize)} in flight${r.prewarm.resumedFrom ? `, resumed at ${fmtBytes(r.prewarm.resumedFrom)}` : ''}`,
        );
      if (r.cache)
        console.log(
          `  ${r.cache.objectsTransferred} of ${r.cache.objects} objects transferred (${fmtBytes(r.cache.bytesTransferred)}), ${r.cache.evicted.length} evicted; cache ${fmtBytes(r.cache.cacheBytes)} at ${r.cache.localPath}`,
        );
      if (r.verification) console.log(`  ${r.verification.files} files match the manifest`);
      if (r.listing) console.log(`  ${r.listing.objects} objects reachable; nothing to warm`);
      console.log(`  run: ${uiUrl}`);
    }
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err, { json, what: 'data prewarm', uiUrl });
  }
}

export async function dataCommand(argv: string[], env: Env, connect: () => Promise<Client>): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || rest.includes('--help') || rest.includes('-h')) {
    console.log(HELP);
    return sub === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  const json = rest.includes('--json');
  const flags = sub === 'recommend' ? RECOMMEND_FLAGS : sub === 'prewarm' ? PREWARM_FLAGS : {};
  try {
    const { values } = parseArgs({ args: rest, strict: true, options: OPTIONS });
    switch (sub) {
      case 'recommend':
        return recommendCommand(values, json);
      case 'loader':
        return await loaderCommand(values, env, json);
      case 'prewarm':
        return await prewarmCommand(values, env, connect, json);
      default:
        throw new UsageError(`unknown data command ${JSON.stringify(sub)}\n${HELP}`);
    }
  } catch (err) {
    if (err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS'))
      return reportError(new UsageError(err.message), { json, what: `data ${sub}` });
    return reportError(err, { json, what: `data ${sub}`, flags });
  }
}
