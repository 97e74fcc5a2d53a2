/**
 * Which way should a training instance read its dataset? A pure function from the dataset's shape,
 * how often it is read and the hardware, to a strategy, a rationale and a table of estimates.
 *
 * Figures and where they come from. The AWS pages are named by title; the figures were transcribed
 * on 2026-11-28 from the stored copies of those pages this project's reference search holds and
 * from the pages as last published — this machine has no internet, so re-check them against the
 * live pages before relying on an estimate. "Assumption" marks a planning figure AWS does not
 * publish.
 *
 * - EBS volume throughput (MiB/s) and IOPS per type — "Amazon EBS volume types" (EBS User Guide):
 *   gp3 125 MiB/s and 3,000 IOPS baseline, provisionable to 2,000 MiB/s; gp2 128 MiB/s up to
 *   170 GiB and 250 MiB/s from 334 GiB, 3 IOPS per GiB (100-16,000); io1 up to 1,000 MiB/s;
 *   io2 Block Express up to 4,000 MiB/s; st1 burst 250 MiB/s per TiB up to 500 MiB/s (500 IOPS of
 *   1 MiB); sc1 burst 80 MiB/s per TiB up to 250 MiB/s (250 IOPS of 1 MiB). An SSD volume counts
 *   an I/O up to 256 KiB as one operation, so reading a small file costs at least one IOPS.
 * - Snapshot initialisation — "Initialize Amazon EBS volumes" (EBS User Guide): blocks of a volume
 *   restored from a snapshot are fetched from S3 on first read; the default rate "fluctuates" and
 *   is not published; an Amazon EBS Provisioned Rate for Volume Initialization can be set to
 *   100-300 MiB/s. Assumption: without a provisioned rate we plan with 100 MiB/s (the bottom of the
 *   provisioned range), further capped by the volume and instance EBS bandwidth.
 * - S3 request rates — "Best practices design patterns: optimizing Amazon S3 performance" (S3 User
 *   Guide): at least 5,500 GET/HEAD requests per second per partitioned prefix.
 * - S3 per-connection throughput — "Performance guidelines for Amazon S3", "Scale storage
 *   connections horizontally": about 85-90 MB/s per connection; we plan with 85 MB/s (81 MiB/s).
 * - S3 first-byte latency — assumption: 30 ms per GET in the same region, which is what makes
 *   millions of small objects slow to stream whatever the bandwidth.
 * - S3 GET price — "Amazon S3 pricing": $0.0004 per 1,000 GET requests (S3 Standard, us-east-1);
 *   transfer from S3 to EC2 in the same region is free.
 * - Instance network and EBS bandwidth, vCPUs — "Amazon EC2 instance types" specifications pages
 *   ("Network specifications", "Amazon EBS specifications" of the accelerated-computing family).
 *   "Up to N Gbps" types are planned at their published baseline, not the burst, because a dataset
 *   pass outlasts the burst credits.
 * - Instance price — src/pricing.ts (on-demand list prices).
 *
 * @module
 */
import { quote } from './pricing.js';
import { DATA_STRATEGIES, type DataStrategy, type RecommendInput } from './contracts/prewarm.js';

export interface InstanceSpec {
  vCpus: number;
  /** Sustained network bandwidth (baseline for "up to" types), Gbps. */
  networkGbps: number;
  /** Sustained EBS bandwidth (baseline for "up to" types), Gbps. */
  ebsGbps: number;
}

/** Common training instance types: see the module comment for the source. */
export const INSTANCE_SPECS: Readonly<Record<string, InstanceSpec>> = {
  'g4dn.xlarge': { vCpus: 4, networkGbps: 5, ebsGbps: 0.95 },
  'g4dn.2xlarge': { vCpus: 8, networkGbps: 10, ebsGbps: 1.15 },
  'g4dn.12xlarge': { vCpus: 48, networkGbps: 50, ebsGbps: 9.5 },
  'g5.xlarge': { vCpus: 4, networkGbps: 2.5, ebsGbps: 0.7 },
  'g5.2xlarge': { vCpus: 8, networkGbps: 5, ebsGbps: 0.85 },
  'g5.4xlarge': { vCpus: 16, networkGbps: 10, ebsGbps: 4.75 },
  'g5.8xlarge': { vCpus: 32, networkGbps: 25, ebsGbps: 16 },
  'g5.12xlarge': { vCpus: 48, networkGbps: 40, ebsGbps: 16 },
  'g5.48xlarge': { vCpus: 192, networkGbps: 100, ebsGbps: 19 },
  'g6.xlarge': { vCpus: 4, networkGbps: 2.5, ebsGbps: 1 },
  'g6.12xlarge': { vCpus: 48, networkGbps: 40, ebsGbps: 20 },
  'p3.2xlarge': { vCpus: 8, networkGbps: 2.5, ebsGbps: 1.75 },
  'p3.16xlarge': { vCpus: 64, networkGbps: 25, ebsGbps: 14 },
  'p4d.24xlarge': { vCpus: 96, networkGbps: 400, ebsGbps: 19 },
  'p5.48xlarge': { vCpus: 192, networkGbps: 3_200, ebsGbps: 80 },
  'trn1.2xlarge': { vCpus: 8, networkGbps: 3.125, ebsGbps: 5 },
  'trn1.32xlarge': { vCpus: 128, networkGbps: 800, ebsGbps: 80 },
};

export const FIGURES = {
  s3GetsPerSecondPerPrefix: 5_500,
  s3MiBpsPerConnection: (85 * 1e6) / 2 ** 20,
  s3FirstByteSeconds: 0.03,
  s3UsdPer1000Gets: 0.0004,
  defaultInitMiBps: 100,
  /** Downloads in flight during a cache sync (the LocalCache activity's default). */
  syncConcurrency: 8,
  /** S3 requests in flight per DataLoader worker in the generated DirectS3 script. */
  streamsPerWorker: 4,
  /** A per-file stat for a size-only manifest check, seconds (assumption). */
  manifestStatSeconds: 0.00005,
} as const;

const MIB_PER_GBPS = 1e9 / 8 / 2 ** 20;

/** One strategy's estimate. Times in seconds; cost in USD, null when the instance is unpriced. */
export interface StrategyEstimate {
  strategy: DataStrategy;
  feasible: boolean;
  /** Why not, when not feasible. */
  reason?: string;
  prepSeconds: number;
  epochSeconds: number;
  /** prep + every epoch of every run. */
  totalSeconds: number;
  costUsd: number | null;
}

export interface Recommendation {
  strategy: DataStrategy;
  rationale: string;
  table: StrategyEstimate[];
  /** The derived figures the estimates used (MiB/s unless named otherwise). */
  basis: {
    fileCount: number;
    meanFileMiB: number;
    epochs: number;
    vCpus: number;
    networkMiBps: number;
    instanceEbsMiBps: number;
    volumeMiBps: number;
    volumeIops: number;
    localReadMiBps: number;
    cacheMiBps: number;
    initMiBps: number;
    syncMiBps: number;
    streamMiBps: number;
    instanceUsdPerHour: number | null;
  };
}

/** Published throughput of a volume type (MiB/s) for a size, unless the caller gave its own. */
export function volumeThroughput(type: RecommendInput['volumeType'], sizeGiB: number, given?: number): number {
  if (given !== undefined) return given;
  const tib = sizeGiB / 1024;
  switch (type) {
    case 'gp3':
      return 125;
    case 'gp2':
      return sizeGiB >= 334 ? 250 : 128;
    case 'io1':
      return 1_000;
    case 'io2':
      return 4_000;
    case 'st1':
      return Math.min(500, 250 * tib);
    case 'sc1':
      return Math.min(250, 80 * tib);
  }
}

function volumeIops(type: RecommendInput['volumeType'], sizeGiB: number): number {
  switch (type) {
    case 'gp3':
      return 3_000;
    case 'gp2':
      return Math.min(16_000, Math.max(100, 3 * sizeGiB));
    case 'io1':
    case 'io2':
      // Provisioned; a typical training volume's figure when the caller did not say.
      return 16_000;
    case 'st1':
      return 500;
    case 'sc1':
      return 250;
  }
}

/**
 * Streaming throughput from S3 with `connections` GETs in flight: each GET costs a first-byte
 * latency plus its size at the per-connection rate, capped by the network and the request rate.
 */
export function s3Throughput(meanFileMiB: number, connections: number, networkMiBps: number, prefixes: number): number {
  const perConnection = meanFileMiB / (FIGURES.s3FirstByteSeconds + meanFileMiB / FIGURES.s3MiBpsPerConnection);
  const requestCap = FIGURES.s3GetsPerSecondPerPrefix * prefixes * meanFileMiB;
  return Math.min(networkMiBps, connections * perConnection, requestCap);
}

/** num_workers for a DataLoader: one per vCPU, keeping one for the training loop, at most 16. */
export function loaderWorkers(vCpus: number): number {
  return Math.max(1, Math.min(16, vCpus - 1));
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '∞';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function fmtRate(mibps: number): string {
  return mibps >= 1024 ? `${(mibps / 1024).toFixed(1)} GiB/s` : `${Math.round(mibps)} MiB/s`;
}

type Basis = Recommendation['basis'];

/** What the estimates also need beyond the reported basis. */
interface Derived extends Basis {
  datasetMiB: number;
  volumeGiB: number;
  localEpochSeconds: number;
  cacheEpochSeconds: number;
}

/**
 * The figures every estimate rests on: the instance's bandwidths (from the table or the input's
 * overrides), the dataset's shape, the volume's and cache's rates, S3's rates for a sync and for
 * streaming, and the instance's price. Throws when the instance type is unknown and no overrides are given.
 */
function deriveBasis(input: RecommendInput): Derived {
  const spec = INSTANCE_SPECS[input.instanceType];
  const networkGbps = input.networkGbps ?? spec?.networkGbps;
  const ebsGbps = input.ebsGbps ?? spec?.ebsGbps;
  const vCpus = input.vCpus ?? spec?.vCpus;
  if (networkGbps === undefined || ebsGbps === undefined || vCpus === undefined) {
    throw new RangeError(
      `instance type ${input.instanceType} is not in the table (${Object.keys(INSTANCE_SPECS).join(', ')}); give networkGbps, ebsGbps and vCpus`,
    );
  }
  const datasetMiB = input.datasetGiB * 1024;
  const fileCount = input.fileCount ?? Math.max(1, Math.round(datasetMiB / (input.meanFileMiB ?? 1)));
  const meanFileMiB = input.meanFileMiB ?? datasetMiB / fileCount;
  const volumeGiB = input.volumeGiB ?? Math.max(input.datasetGiB, 1);

  const networkMiBps = networkGbps * MIB_PER_GBPS;
  const instanceEbsMiBps = ebsGbps * MIB_PER_GBPS;
  const volumeMiBps = volumeThroughput(input.volumeType, volumeGiB, input.volumeThroughputMiBps);
  const iops = volumeIops(input.volumeType, volumeGiB);
  const localReadMiBps = Math.min(volumeMiBps, instanceEbsMiBps);
  // A small file costs at least one I/O; large ones are throughput-bound.
  const localEpochSeconds = Math.max(datasetMiB / localReadMiBps, fileCount / iops);
  const cacheMiBps = input.cacheMiBps ?? localReadMiBps;
  const price = quote({ kind: 'instance', type: input.instanceType, region: input.region });
  return {
    datasetMiB,
    volumeGiB,
    localEpochSeconds,
    // An instance-store cache has no IOPS budget worth modelling; an EBS one shares the volume's.
    cacheEpochSeconds: input.cacheMiBps !== undefined ? datasetMiB / cacheMiBps : localEpochSeconds,
    fileCount,
    meanFileMiB,
    epochs: input.runs * input.epochsPerRun,
    vCpus,
    networkMiBps,
    instanceEbsMiBps,
    volumeMiBps,
    volumeIops: iops,
    localReadMiBps,
    cacheMiBps,
    initMiBps: Math.min(input.initRateMiBps ?? FIGURES.defaultInitMiBps, localReadMiBps),
    syncMiBps: Math.min(s3Throughput(meanFileMiB, FIGURES.syncConcurrency, networkMiBps, input.s3Prefixes), cacheMiBps),
    streamMiBps: s3Throughput(meanFileMiB, loaderWorkers(vCpus) * FIGURES.streamsPerWorker, networkMiBps, input.s3Prefixes),
    instanceUsdPerHour: price.priced ? price.microUsdPerHour / 1e6 : null,
  };
}

/** Every strategy's estimate, with the reason it is not possible where it is not. */
function estimateAll(input: RecommendInput, d: Derived): StrategyEstimate[] {
  const getsUsd = (passes: number) => (d.fileCount * passes * FIGURES.s3UsdPer1000Gets) / 1000;
  const estimate = (strategy: DataStrategy, prep: number, epoch: number, gets: number, reason?: string): StrategyEstimate => {
    const total = prep + d.epochs * epoch;
    return {
      strategy,
      feasible: reason === undefined,
      ...(reason !== undefined ? { reason } : {}),
      prepSeconds: prep,
      epochSeconds: epoch,
      totalSeconds: total,
      costUsd: d.instanceUsdPerHour === null ? null : (total / 3600) * d.instanceUsdPerHour + getsUsd(gets),
    };
  };
  return DATA_STRATEGIES.map((s) => {
    switch (s) {
      case 'PreWarmedEBS':
        return estimate(
          s,
          (d.volumeGiB * 1024) / d.initMiBps,
          d.localEpochSeconds,
          0,
          input.snapshotExists ? undefined : 'no snapshot of the dataset to restore a volume from',
        );
      case 'LocalCache':
        return estimate(
          s,
          d.datasetMiB / d.syncMiBps,
          d.cacheEpochSeconds,
          1,
          input.cacheGiB !== undefined && input.cacheGiB < input.datasetGiB
            ? `the dataset (${input.datasetGiB} GiB) does not fit the ${input.cacheGiB} GiB cache`
            : undefined,
        );
      case 'ExistingEBS':
        return estimate(
          s,
          d.fileCount * FIGURES.manifestStatSeconds,
          d.localEpochSeconds,
          0,
          input.onVolume ? undefined : 'no attached volume holds the dataset',
        );
      case 'DirectS3':
        return estimate(s, 0, d.datasetMiB / d.streamMiBps, d.epochs);
    }
  });
}

/** Why `best` wins, against the runner-up, and what was not possible. */
function rationaleFor(input: RecommendInput, d: Derived, table: StrategyEstimate[], best: StrategyEstimate, runner: StrategyEstimate | undefined): string {
  const { fileCount, meanFileMiB, epochs } = d;
  const shape = `${input.datasetGiB} GiB in ${fileCount.toLocaleString('en-US')} files (mean ${meanFileMiB < 1 ? `${Math.round(meanFileMiB * 1024)} KiB` : `${meanFileMiB.toFixed(1)} MiB`}), read ${epochs} time${epochs === 1 ? '' : 's'} (${input.runs} run${input.runs === 1 ? '' : 's'} × ${input.epochsPerRun} epoch${input.epochsPerRun === 1 ? '' : 's'}) on ${input.instanceType}`;
  const why: Record<DataStrategy, string> = {
    PreWarmedEBS: `restoring the snapshot and reading every block once (${fmtDuration(best.prepSeconds)} at ${fmtRate(d.initMiBps)}) leaves the volume at full speed, so each epoch reads locally at ${fmtRate(d.localReadMiBps)} (${fmtDuration(best.epochSeconds)}) instead of paying S3's per-request latency on every small object`,
    LocalCache: `copying the prefix once into the local cache (${fmtDuration(best.prepSeconds)} at ${fmtRate(d.syncMiBps)}) is repaid over ${epochs} epochs that each read locally at ${fmtRate(d.cacheMiBps)} (${fmtDuration(best.epochSeconds)}), and a later run transfers only what changed`,
    ExistingEBS: `the attached volume already holds the dataset, so a manifest check (${fmtDuration(best.prepSeconds)}) replaces any copy and each epoch reads at ${fmtRate(d.localReadMiBps)} (${fmtDuration(best.epochSeconds)})`,
    DirectS3: `streaming from S3 at ${fmtRate(d.streamMiBps)} (${fmtDuration(best.epochSeconds)} an epoch) needs no preparation and no disk, and with ${epochs === 1 ? 'a single pass' : `only ${epochs} passes`} a copy would not pay for itself`,
  };
  const versus = runner
    ? ` The runner-up, ${runner.strategy}, would take ${fmtDuration(runner.totalSeconds)} in all against ${fmtDuration(best.totalSeconds)}${best.costUsd !== null && runner.costUsd !== null ? ` ($${runner.costUsd.toFixed(2)} against $${best.costUsd.toFixed(2)})` : ''}.`
    : '';
  const ruledOut = table.filter((e) => !e.feasible).map((e) => `${e.strategy} (${e.reason})`);
  return `${best.strategy}: for ${shape}, ${why[best.strategy]}.${versus}${ruledOut.length ? ` Not possible here: ${ruledOut.join('; ')}.` : ''}`;
}

/**
 * Recommends a strategy: every feasible strategy is estimated (preparation time, one epoch's read
 * time, their total over every planned epoch, and the instance-time plus request cost of that, as if
 * the epochs were input-bound), and the one with the least total time wins, cost breaking ties.
 * Throws when the instance type is unknown and no overrides are given.
 */
export function recommend(input: RecommendInput): Recommendation {
  const derived = deriveBasis(input);
  const table = estimateAll(input, derived);
  const feasible = table.filter((e) => e.feasible).sort((a, b) => a.totalSeconds - b.totalSeconds || (a.costUsd ?? 0) - (b.costUsd ?? 0));
  // DirectS3 is always feasible, so there is always a winner.
  const best = feasible[0]!;
  const { datasetMiB: _datasetMiB, volumeGiB: _volumeGiB, localEpochSeconds: _local, cacheEpochSeconds: _cache, ...basis } = derived;
  return { strategy: best.strategy, rationale: rationaleFor(input, derived, table, best, feasible[1]), table, basis };
}

/** The table as text for a terminal. */
export function formatRecommendation(r: Recommendation): string {
  const header = ['strategy', 'prep', 'per epoch', 'total', 'cost', ''];
  const rows = r.table.map((e) => [
    `${e.strategy === r.strategy ? '* ' : '  '}${e.strategy}`,
    e.feasible ? fmtDuration(e.prepSeconds) : '-',
    e.feasible ? fmtDuration(e.epochSeconds) : '-',
    e.feasible ? fmtDuration(e.totalSeconds) : '-',
    e.feasible ? (e.costUsd === null ? 'unpriced' : `$${e.costUsd.toFixed(2)}`) : '-',
    e.feasible ? '' : `not possible: ${e.reason}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), '', r.rationale].join('\n');
}
