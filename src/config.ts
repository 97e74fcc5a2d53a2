import { z } from 'zod';

/** Where trainctl talks to Temporal and AWS, read from the environment once at each edge. */
export const EnvSchema = z
  .object({
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
  })
  .superRefine((env, ctx) => {
    if (env.TRAINCTL_AWS !== 'real' && !env.AWS_ENDPOINT_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['AWS_ENDPOINT_URL'],
        message: 'is not set: point it at an AWS emulator (npm run demo starts one), or set TRAINCTL_AWS=real to use your real AWS account',
      });
    }
    if ((env.TEMPORAL_TLS_CERT_PATH === undefined) !== (env.TEMPORAL_TLS_KEY_PATH === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS_KEY_PATH'], message: 'TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH go together' });
    }
  });
export type Env = z.infer<typeof EnvSchema>;

/** Parses the environment; throws a ZodError naming each bad variable. */
export function loadEnv(source: Record<string, string | undefined>): Env {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.shape ?? {})) {
    const v = source[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  return EnvSchema.parse(picked);
}

// Moved to src/contracts/; re-exported here until every importer points there.
export { TagKey, VolumeType, VOLUME_LIMITS, RegionSchema, AvailabilityZoneSchema, TagsSchema, ResourceNameSchema } from './contracts/common.js';
export { HostIdSchema, hostTaskQueue } from './contracts/host.js';
import { VolumeType, VOLUME_LIMITS, RegionSchema, AvailabilityZoneSchema, TagsSchema, ResourceNameSchema } from './contracts/common.js';

export const ProvisionVolumeInputSchema = z
  .object({
    name: ResourceNameSchema,
    region: RegionSchema,
    sizeGiB: z.number().int('must be a whole number of GiB').positive('must be at least 1 GiB'),
    volumeType: z.enum(VolumeType).default('gp3'),
    iops: z.number().int('must be a whole number').positive('must be positive').optional(),
    throughputMiBps: z.number().int('must be a whole number').positive('must be positive').optional(),
    availabilityZone: AvailabilityZoneSchema,
    snapshotId: z.string().regex(/^snap-[0-9a-f]{8,17}$/, 'must be a snapshot id such as snap-0123456789abcdef0').optional(),
    encrypted: z.boolean().default(false),
    tags: TagsSchema,
    attachTo: z
      .object({
        instanceId: z.string().regex(/^i-[0-9a-f]{8,17}$/, 'must be an instance id such as i-0123456789abcdef0'),
        device: z.string().regex(/^\/dev\/(sd[f-p]|xvd[f-p])$/, 'must be a device name from /dev/sdf to /dev/sdp (or /dev/xvdf to /dev/xvdp)'),
      })
      .optional(),
    ifExists: z.enum(['reuse', 'fail']).default('reuse'),
    /** The project whose cost tracker (`cost-tracker/PROJECT`) is told about the volume. */
    project: z
      .string()
      .max(64, 'must be at most 64 characters')
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may contain letters, digits and . _ - and must start with a letter or digit')
      .default('default'),
  })
  .superRefine((v, ctx) => {
    const limits = VOLUME_LIMITS[v.volumeType];
    if (v.sizeGiB < limits.minGiB || v.sizeGiB > limits.maxGiB) {
      ctx.addIssue({ code: 'custom', path: ['sizeGiB'], message: `must be between ${limits.minGiB} and ${limits.maxGiB} GiB for ${v.volumeType}` });
    }
    if (!v.availabilityZone.startsWith(v.region)) {
      ctx.addIssue({ code: 'custom', path: ['availabilityZone'], message: `${v.availabilityZone} is not in region ${v.region}` });
    }
    const iopsLimits = 'iops' in limits ? limits.iops : undefined;
    if (!iopsLimits && v.iops !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['iops'], message: `${v.volumeType} does not take provisioned IOPS (only gp3, io1, io2 do)` });
    }
    if (iopsLimits) {
      if (v.iops === undefined && v.volumeType !== 'gp3') {
        ctx.addIssue({ code: 'custom', path: ['iops'], message: `is required for ${v.volumeType} (${iopsLimits.min}-${iopsLimits.max})` });
      } else if (v.iops !== undefined) {
        if (v.iops < iopsLimits.min || v.iops > iopsLimits.max) {
          ctx.addIssue({ code: 'custom', path: ['iops'], message: `must be between ${iopsLimits.min} and ${iopsLimits.max} for ${v.volumeType}` });
        } else if (v.iops > iopsLimits.perGiB * v.sizeGiB && v.iops > iopsLimits.min) {
          ctx.addIssue({
            code: 'custom',
            path: ['iops'],
            message: `${v.iops} IOPS exceeds ${iopsLimits.perGiB} IOPS per GiB for a ${v.sizeGiB} GiB ${v.volumeType} volume`,
          });
        }
      }
    }
    const tpLimits = 'throughput' in limits ? limits.throughput : undefined;
    if (!tpLimits && v.throughputMiBps !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['throughputMiBps'], message: `${v.volumeType} does not take provisioned throughput (only gp3 does)` });
    }
    if (tpLimits && v.throughputMiBps !== undefined) {
      const iops = v.iops ?? 3_000;
      if (v.throughputMiBps < tpLimits.min || v.throughputMiBps > tpLimits.max) {
        ctx.addIssue({ code: 'custom', path: ['throughputMiBps'], message: `must be between ${tpLimits.min} and ${tpLimits.max} MiB/s for gp3` });
      } else if (v.throughputMiBps > iops * tpLimits.perIops) {
        ctx.addIssue({
          code: 'custom',
          path: ['throughputMiBps'],
          message: `${v.throughputMiBps} MiB/s needs at least ${Math.ceil(v.throughputMiBps / tpLimits.perIops)} IOPS (0.25 MiB/s per IOPS); got ${iops}`,
        });
      }
    }
  });
/** What callers pass (defaults may be omitted). */
export type ProvisionVolumeRequest = z.input<typeof ProvisionVolumeInputSchema>;
/** The validated, defaulted input the workflow works on. */
export type ProvisionVolumeInput = z.output<typeof ProvisionVolumeInputSchema>;

/** `volume/REGION/NAME`: one workflow id per volume identity, so concurrent starts are one run. */
export function volumeWorkflowId(region: string, name: string): string {
  return `volume/${region}/${name}`;
}

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

// Moved to src/contracts/transfer.ts; re-exported for the families that still import them from here.
export { DataLocationSchema, type DataLocation } from './contracts/transfer.js';
