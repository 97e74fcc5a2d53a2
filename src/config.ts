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
