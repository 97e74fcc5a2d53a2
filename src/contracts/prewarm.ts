/**
 * Contract of the prewarm family: the `prewarm` workflow (prepare a training instance's data for
 * one of four strategies), its id, input schema and result, the figures each host step reports,
 * and the recommender's input schema.
 *
 * @module
 */
import { z } from 'zod';
import { RegionSchema, S3_PROFILE_NAME, VolumeType, s3LocationUri } from './common.js';
import { HostIdSchema } from './host.js';
import { ProjectSchema } from './cost.js';

/** Workflow type of the run that prepares a host's data. */
export const PrewarmWorkflowType = 'prewarm';

/**
 * The four ways a training instance can get at its dataset (the original tool's strategies).
 */
export const DataStrategy = {
  PreWarmedEBS: 'PreWarmedEBS',
  LocalCache: 'LocalCache',
  ExistingEBS: 'ExistingEBS',
  DirectS3: 'DirectS3',
} as const;
export type DataStrategy = (typeof DataStrategy)[keyof typeof DataStrategy];
/** Every strategy, in the order the recommender and the CLI list them. */
export const DATA_STRATEGIES = Object.values(DataStrategy);

const BucketSchema = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)');

/** A dataset's S3 prefix and the bucket's region. */
export const S3LocationSchema = z.object({
  bucket: BucketSchema,
  prefix: z.string().max(1_024, 'must be at most 1024 characters').default(''),
  region: RegionSchema.default('us-east-1'),
  /** The AWS profile (of the host worker) whose endpoint and credentials reach the bucket: another S3-compatible store. */
  profile: z.string().regex(S3_PROFILE_NAME, 'must be an AWS profile name (letters, digits and _.+=,-)').optional(),
});
export type S3Location = z.output<typeof S3LocationSchema>;

/** A path on the host, resolved there against its roots; never a NUL, never empty. */
const HostPathSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(4_096, 'must be at most 4096 characters')
  .refine((p) => !p.includes('\0'), 'must not contain a NUL byte');

const common = {
  hostId: HostIdSchema,
  /**
   * Record the time spent with this project's cost tracker, as a `transfer` resource of the run's
   * duration. Its rate is the instance's when given (the hours it spent warming instead of
   * training), else $0/h: warming adds no charge of its own.
   */
  cost: z
    .object({
      project: ProjectSchema,
      region: RegionSchema,
      hourlyRate: z.number().finite().nonnegative('must not be negative').max(2_000, 'must be at most $2000/h').default(0),
    })
    .optional(),
  /** How soon a dead host is noticed: the host activity's heartbeat timeout. */
  heartbeatTimeoutSeconds: z.number().int('must be a whole number').min(1, 'must be at least 1').max(600, 'must be at most 600').default(30),
  /** The whole host-bound step, retries included (it progresses only while that host is alive). */
  timeoutMinutes: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(7 * 24 * 60, 'must be at most a week')
    .default(120),
};

/** A prewarm request: the host, the strategy and that strategy's target, and the host step's timeouts. */
export const PrewarmInputSchema = z.discriminatedUnion('strategy', [
  z.object({
    strategy: z.literal(DataStrategy.PreWarmedEBS),
    ...common,
    /** The device (`/dev/nvme1n1`) or, in tests, a large file; must lie inside the host's roots. */
    device: HostPathSchema,
    blockSizeKiB: z.number().int('must be a whole number').min(4, 'must be at least 4 KiB').max(65_536, 'must be at most 64 MiB').default(1_024),
    concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').max(256, 'must be at most 256').default(32),
    /** `auto`: fio when it is on the host's PATH, else the built-in reader; `never`: always the built-in reader. */
    fio: z.enum(['auto', 'never']).default('auto'),
  }),
  z.object({
    strategy: z.literal(DataStrategy.LocalCache),
    ...common,
    s3: S3LocationSchema,
    cacheDir: HostPathSchema,
    /** The cache's size limit; least-recently-used objects of other prefixes are evicted to stay under it. */
    capacityBytes: z.number().int('must be a whole number').positive('must be positive').optional(),
    concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64').default(8),
  }),
  z.object({
    strategy: z.literal(DataStrategy.ExistingEBS),
    ...common,
    /** The dataset's folder on the attached volume. */
    datasetDir: HostPathSchema,
    /** The manifest (`{ files: [{ path, size, sha256? }] }`), relative to datasetDir unless absolute. */
    manifest: HostPathSchema.default('manifest.json'),
    verify: z.enum(['size', 'checksum']).default('size'),
  }),
  z.object({
    strategy: z.literal(DataStrategy.DirectS3),
    ...common,
    s3: S3LocationSchema,
  }),
]);
/** What callers pass (defaults may be omitted). */
export type PrewarmRequest = z.input<typeof PrewarmInputSchema>;
/** The validated, defaulted input the workflow works on. */
export type PrewarmInput = z.output<typeof PrewarmInputSchema>;

/** `prewarm/HOST/STRATEGY/TARGET`: one run per host and target at a time. */
export function prewarmWorkflowId(input: PrewarmInput): string {
  const target =
    input.strategy === 'PreWarmedEBS'
      ? input.device
      : input.strategy === 'LocalCache'
        ? `${input.cacheDir}<-${s3LocationUri(input.s3)}`
        : input.strategy === 'ExistingEBS'
          ? input.datasetDir
          : s3LocationUri(input.s3);
  return `prewarm/${input.hostId}/${input.strategy}/${target}`;
}

/** What the recommender weighs: the dataset's shape, how often it is read, the instance, the volume and the cache. */
export const RecommendInputSchema = z
  .object({
    datasetGiB: z.number().positive('must be positive').max(1_048_576, 'must be at most 1 PiB'),
    fileCount: z.number().int('must be a whole number').positive('must be at least 1').optional(),
    meanFileMiB: z.number().positive('must be positive').optional(),
    runs: z.number().int('must be a whole number').min(1, 'must be at least 1').max(100_000).default(1),
    epochsPerRun: z.number().int('must be a whole number').min(1, 'must be at least 1').max(100_000).default(1),
    instanceType: z.string().min(1).max(64),
    /** Overrides for an instance type the table does not know. */
    networkGbps: z.number().positive().max(10_000).optional(),
    ebsGbps: z.number().positive().max(1_000).optional(),
    vCpus: z.number().int().positive().max(1_024).optional(),
    volumeType: z.enum(VolumeType).default('gp3'),
    volumeThroughputMiBps: z.number().positive().max(10_000).optional(),
    /** The volume's size; defaults to the dataset's (it sets gp2/st1/sc1 throughput and how much a warm-up reads). */
    volumeGiB: z.number().positive().max(65_536).optional(),
    /** The dataset already exists as an EBS snapshot. */
    snapshotExists: z.boolean().default(false),
    /** An attached volume already holds the dataset. */
    onVolume: z.boolean().default(false),
    /** An EBS Provisioned Rate for Volume Initialization (100-300 MiB/s) for the restore. */
    initRateMiBps: z.number().min(100, 'must be at least 100 MiB/s').max(300, 'must be at most 300 MiB/s').optional(),
    /** Room for a local cache; LocalCache is not an option when the dataset does not fit. */
    cacheGiB: z.number().positive().optional(),
    /** Read throughput of the cache's disk (an instance-store NVMe, say); default: the EBS volume's. */
    cacheMiBps: z.number().positive().max(100_000).optional(),
    /** Partitioned prefixes the dataset is spread over (S3 request rates scale per partition). */
    s3Prefixes: z.number().int().min(1).max(10_000).default(1),
    region: RegionSchema.default('us-east-1'),
  })
  .superRefine((v, ctx) => {
    if (v.fileCount === undefined && v.meanFileMiB === undefined) {
      ctx.addIssue({ code: 'custom', path: ['fileCount'], message: 'give the file count or the mean file size' });
    }
    if (v.initRateMiBps !== undefined && !v.snapshotExists) {
      ctx.addIssue({ code: 'custom', path: ['initRateMiBps'], message: 'applies only to a volume restored from a snapshot (snapshotExists)' });
    }
  });
/** What callers pass (defaults may be omitted). */
export type RecommendRequest = z.input<typeof RecommendInputSchema>;
/** The validated, defaulted input the recommender works on. */
export type RecommendInput = z.output<typeof RecommendInputSchema>;

/** What one `prewarmDevice` attempt reports (PreWarmedEBS). */
export interface PrewarmDeviceResult {
  path: string;
  method: 'builtin' | 'fio';
  /** The device's (or file's) size: every byte of it has now been read once. */
  bytes: number;
  /** Where this attempt started: the watermark a crashed attempt heartbeated, or 0. */
  resumedFrom: number;
  bytesReadThisAttempt: number;
  attempt: number;
  /** This attempt's reading time and rate. */
  seconds: number;
  mibPerSecond: number;
  blockSize: number;
  concurrency: number;
  /** CRC-32 (hex) of every byte in order, across attempts; built-in reader only. */
  checksum?: { algorithm: 'crc32'; value: string };
}

/** What a dataset check against its manifest found (ExistingEBS). */
export interface VerifyManifestResult {
  files: number;
  bytes: number;
  ok: boolean;
  /** At most the first 100 of each. */
  missing: string[];
  mismatched: { path: string; reason: string }[];
  seconds: number;
}

/** What a cache sync did (LocalCache). */
export interface SyncCacheResult {
  objects: number;
  hits: number;
  objectsTransferred: number;
  bytesTransferred: number;
  /** Size of the prefix. */
  bytes: number;
  evicted: { id: string; size: number }[];
  cacheBytes: number;
  capacityBytes?: number;
  seconds: number;
  mibPerSecond: number;
  /** The folder holding the prefix in the cache: what the loader script reads. */
  localPath: string;
}

/** What listing a prefix from the host found (DirectS3). */
export interface PrefixListing {
  objects: number;
  bytes: number;
  /** For a location naming an AWS profile: its store's endpoint and addressing style, as the host worker resolved them (never credentials). */
  endpoint?: string;
  addressingStyle?: 'path' | 'auto';
  region?: string;
}

/** What a `prewarm` run returns. */
export interface PrewarmResult {
  strategy: DataStrategy;
  hostId: string;
  /** Bytes read (PreWarmedEBS), checked (ExistingEBS), in the prefix (LocalCache, DirectS3). */
  bytes: number;
  /** Wall time of the whole run, retries included. */
  seconds: number;
  /** Rate of the work that moved data (the last attempt's reading, the sync's transfer); 0 when none moved. */
  mibPerSecond: number;
  prewarm?: PrewarmDeviceResult;
  cache?: SyncCacheResult;
  verification?: VerifyManifestResult;
  listing?: PrefixListing;
}

/** The memo a finished `prewarm` run leaves: its one-line summary. */
export interface PrewarmMemo {
  result?: string;
}
