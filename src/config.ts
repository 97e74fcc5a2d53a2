import { z } from 'zod';

/** Where trainctl talks to Temporal and AWS, read from the environment once at each edge. */
const EnvFieldsSchema = z.object({
    TEMPORAL_ADDRESS: z
      .string()
      .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port, e.g. localhost:7233')
      .default('localhost:7233'),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TRAINCTL_TASK_QUEUE: z.string().min(1).default('trainctl'),
    /** Temporal Cloud API key. A secret: read here, handed to the connection, never logged or recorded. */
    TEMPORAL_API_KEY: z.string().min(1).optional(),
    TEMPORAL_TLS: z.enum(['true', 'false']).optional(),
    TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
    TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
    TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
    /** Base URL of the Web UI for printed links; defaults to the dev server's. */
    TEMPORAL_UI_URL: z.url().optional(),
    AWS_REGION: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d+$/, 'must be an AWS region such as us-east-1').default('us-east-1'),
    AWS_ENDPOINT_URL: z.url().optional(),
    AWS_PROFILE: z.string().min(1).optional(),
    /** `real` is the only way to reach a real AWS account; anything else needs an emulator endpoint. */
    TRAINCTL_AWS: z.enum(['emulator', 'real']).default('emulator'),
});

function checkTls(env: z.infer<typeof EnvFieldsSchema>, ctx: z.RefinementCtx): void {
  if ((env.TEMPORAL_TLS_CERT_PATH === undefined) !== (env.TEMPORAL_TLS_KEY_PATH === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS_KEY_PATH'], message: 'TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH go together' });
  }
}

/** What a worker needs: Temporal, and an AWS it is allowed to reach. */
export const EnvSchema = EnvFieldsSchema.superRefine((env, ctx) => {
  if (env.TRAINCTL_AWS !== 'real' && !env.AWS_ENDPOINT_URL) {
    ctx.addIssue({
      code: 'custom',
      path: ['AWS_ENDPOINT_URL'],
      message: 'is not set: point it at an AWS emulator (npm run demo starts one), or set TRAINCTL_AWS=real to use your real AWS account',
    });
  }
  checkTls(env, ctx);
});
export type Env = z.infer<typeof EnvSchema>;

/**
 * What the CLI and the client API need: only the Temporal settings (and the region and task queue
 * that name workflows). They never call AWS themselves — workers do — so the AWS settings are not
 * checked here.
 */
export const ClientEnvSchema = EnvFieldsSchema.superRefine(checkTls);

function pick(source: Record<string, string | undefined>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(EnvFieldsSchema.shape)) {
    const v = source[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  return picked;
}

/** Parses a worker's environment; throws a ZodError naming each bad variable. */
export function loadEnv(source: Record<string, string | undefined>): Env {
  return EnvSchema.parse(pick(source));
}

/** Parses the CLI's / a client script's environment (no AWS settings required). */
export function loadClientEnv(source: Record<string, string | undefined>): Env {
  return ClientEnvSchema.parse(pick(source));
}

// Moved to src/contracts/; re-exported here until every importer points there.
export { TagKey, VolumeType, VOLUME_LIMITS, RegionSchema, AvailabilityZoneSchema, TagsSchema, ResourceNameSchema } from './contracts/common.js';
export { HostIdSchema, hostTaskQueue } from './contracts/host.js';
import { RegionSchema, ResourceNameSchema } from './contracts/common.js';
import { HostIdSchema } from './contracts/host.js';

/** What a cleanup can delete. */
export const CleanupKind = {
  instance: 'instance',
  volume: 'volume',
  snapshot: 'snapshot',
  multipartUpload: 'multipart-upload',
  s3Prefix: 's3-prefix',
} as const;
export type CleanupKind = (typeof CleanupKind)[keyof typeof CleanupKind];

/** A whole number and a unit: `30s`, `15m`, `12h`, `7d`, `2w`. */
export const CleanupDurationSchema = z.string().regex(/^\d{1,6}(s|m|h|d|w)$/, 'must be a duration such as 30m, 12h, 7d or 2w');

const BucketNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)');

/**
 * A resource named by id: `i-…`, `vol-…`, `snap-…`, `s3://BUCKET/PREFIX` (every object under a
 * prefix) or `s3://BUCKET/KEY#UPLOAD_ID` (one multipart upload).
 */
export const CleanupIdSchema = z
  .string()
  .regex(
    /^(i-[0-9a-f]{8,17}|vol-[0-9a-f]{8,17}|snap-[0-9a-f]{8,17}|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[^#]+(#[A-Za-z0-9._~-]+)?)$/,
    'must be an instance (i-…), volume (vol-…) or snapshot (snap-…) id, s3://BUCKET/PREFIX or s3://BUCKET/KEY#UPLOAD_ID',
  );

export const CleanupSelectorSchema = z
  .object({
    /** key=value pairs, all of which must match (exact, as EC2 compares them). */
    tags: z
      .record(z.string().min(1, 'tag keys must not be empty').max(128, 'tag keys must be at most 128 characters'), z.string().max(256, 'tag values must be at most 256 characters'))
      .default({}),
    /** Listed ids are candidates even without the trainctl:managed tag, whatever the other filters say. */
    ids: z.array(CleanupIdSchema).max(1_000, 'at most 1000 ids').default([]),
    kinds: z.array(z.enum(CleanupKind, { message: `must be one of ${Object.values(CleanupKind).join(', ')}` })).min(1, 'must name at least one kind').default(['instance', 'volume']),
    olderThan: CleanupDurationSchema.optional(),
    /** Where to look for multipart uploads and which prefix `s3-prefix` deletes. */
    s3: z.object({ bucket: BucketNameSchema, prefix: z.string().max(1_024, 'must be at most 1024 characters').default('') }).optional(),
  })
  .superRefine((s, ctx) => {
    if (Object.keys(s.tags).length === 0 && s.ids.length === 0 && s.olderThan === undefined && s.s3 === undefined) {
      ctx.addIssue({ code: 'custom', path: ['tags'], message: 'an empty selector would match every resource in the region: give tags, ids, olderThan or an S3 location' });
    }
    if (s.kinds.includes('s3-prefix') && s.s3 !== undefined && s.s3.prefix === '') {
      ctx.addIssue({ code: 'custom', path: ['s3', 'prefix'], message: 'must not be empty when s3-prefix is selected (it would delete the whole bucket)' });
    }
  });
export type CleanupSelector = z.output<typeof CleanupSelectorSchema>;

export const CleanupInputSchema = z.object({
  region: RegionSchema,
  selector: CleanupSelectorSchema,
  /** The default: compute and return the plan, delete nothing. */
  dryRun: z.boolean().default(true),
  /** Deletes `important` resources, and `protected` ones whose id is listed explicitly. */
  force: z.boolean().default(false),
  snapshotBeforeDelete: z.boolean().default(false),
  /** Ids never deleted without force and the id listed explicitly (the config's protected list). */
  protectedIds: z.array(CleanupIdSchema).max(10_000, 'at most 10000 protected ids').default([]),
  /** A plan deleting more resources than this waits for approval. */
  approvalThreshold: z.number().int('must be a whole number').min(0, 'must be 0 or more').default(10),
  approvalTimeout: CleanupDurationSchema.default('1h'),
  /** Resources worked on at once. */
  concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').max(32, 'must be at most 32').default(4),
  /** The cost tracker's project, told about every deletion when given. */
  costProject: ResourceNameSchema.optional(),
});
/** What callers pass (defaults may be omitted). */
export type CleanupRequest = z.input<typeof CleanupInputSchema>;
/** The validated, defaulted input the workflow works on. */
export type CleanupInput = z.output<typeof CleanupInputSchema>;

/** Where a transfer reads or writes: this machine, S3, or a training instance through its host worker. */
export const DataLocationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local'), path: z.string().min(1, 'must not be empty').refine((p) => p.startsWith('/'), 'must be an absolute path') }),
  z.object({ kind: z.literal('s3'), uri: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'must be s3://BUCKET[/PREFIX]') }),
  z.object({ kind: z.literal('host'), hostId: HostIdSchema, path: z.string().min(1, 'must not be empty') }),
]);
export type DataLocation = z.infer<typeof DataLocationSchema>;

export const TransferInputSchema = z
  .object({
    source: DataLocationSchema,
    destination: DataLocationSchema,
    region: RegionSchema.default('us-east-1'),
    include: z.array(z.string().min(1)).max(100).default([]),
    exclude: z.array(z.string().min(1)).max(100).default([]),
    /** Skip files already identical at the destination (same size and checksum). */
    sync: z.boolean().default(false),
    /** Plan and report what would be transferred; write nothing. */
    dryRun: z.boolean().default(false),
    /** Parts (or ranges) of one file in flight at once. */
    concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64').default(4),
    /** Files in flight at once. */
    fileConcurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64').default(4),
    /** Part size in MiB; planned from each file's size (≥ 8 MiB, ≤ 10,000 parts) when absent. */
    partSizeMiB: z.number().int('must be a whole number').min(5, 'must be at least 5 (S3 minimum)').max(5120, 'must be at most 5120').optional(),
    /** An S3 prefix for local ↔ host transfers, which go through S3; emptied afterwards. */
    stagingUri: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'must be s3://BUCKET[/PREFIX]').optional(),
    followSymlinks: z.boolean().default(false),
    /** How soon a dead worker is noticed (its file activity then resumes elsewhere from its checkpoint). */
    heartbeatTimeoutSeconds: z.number().int().min(2).max(600).default(15),
    progressIntervalMs: z.number().int().min(100).max(60_000).default(2_000),
    /** Delete destination files/objects that the (filtered) source does not have; implies sync; honours dryRun. */
    deleteExtraneous: z.boolean().default(false),
    /** Compress text-like files on their way to S3 (zstd only where node:zlib has it); undone on download. */
    compress: z.enum(['none', 'gzip', 'zstd']).default('none'),
    /** Compress every file, not only text-like ones (by extension). */
    compressAll: z.boolean().default(false),
    /**
     * Who copies local ↔ S3 files: trainctl's engine, `s5cmd` (required on the worker's PATH), or
     * `auto` (s5cmd when the worker has it). trainctl verifies the result either way.
     */
    engine: z.enum(['builtin', 's5cmd', 'auto']).default('builtin'),
  })
  .superRefine((t, ctx) => {
    const pair = `${t.source.kind}->${t.destination.kind}`;
    if (!['local->s3', 's3->local', 'host->s3', 's3->host', 'local->host', 'host->local'].includes(pair)) {
      ctx.addIssue({ code: 'custom', path: ['destination'], message: `${t.source.kind} → ${t.destination.kind} is not a supported direction (one end must be S3, or local ↔ host)` });
    }
    if ((pair === 'local->host' || pair === 'host->local') && t.stagingUri === undefined) {
      ctx.addIssue({ code: 'custom', path: ['stagingUri'], message: 'local ↔ host transfers go through S3: give a staging s3:// prefix' });
    }
  });
export type TransferRequest = z.input<typeof TransferInputSchema>;
export type TransferInput = z.output<typeof TransferInputSchema>;
