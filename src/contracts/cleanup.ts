/**
 * Contract of the cleanup family: the `cleanup` workflow (plan, approve, delete in dependency
 * order). Workflow type name and id, the request schemas, the plan, status, report and result
 * types, and the `plan` / `status` queries and `approve` / `reject` updates.
 *
 * @module
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { RegionSchema, ResourceNameSchema, S3_PROFILE_NAME } from './common.js';
import { sha256Hex } from './sha256.js';

/** Workflow type of a cleanup run. */
export const CleanupWorkflowType = 'cleanup';

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

const BucketNameSchema = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)');

/**
 * A resource named by id: `i-…`, `vol-…`, `snap-…`, `s3://BUCKET/PREFIX` (every object under a
 * prefix) or `s3://BUCKET/KEY#UPLOAD_ID` (one multipart upload); an S3 id may name the AWS
 * profile of another store, `s3://PROFILE@BUCKET/…`.
 */
export const CleanupIdSchema = z
  .string()
  .regex(
    /^(i-[0-9a-f]{8,17}|vol-[0-9a-f]{8,17}|snap-[0-9a-f]{8,17}|s3:\/\/([A-Za-z0-9_.+=,-]{1,64}@)?[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[^#]+(#[A-Za-z0-9._~-]+)?)$/,
    'must be an instance (i-…), volume (vol-…) or snapshot (snap-…) id, s3://[PROFILE@]BUCKET/PREFIX or s3://[PROFILE@]BUCKET/KEY#UPLOAD_ID',
  );

export const CleanupSelectorSchema = z
  .object({
    /** key=value pairs, all of which must match (exact, as EC2 compares them). */
    tags: z
      .record(
        z.string().min(1, 'tag keys must not be empty').max(128, 'tag keys must be at most 128 characters'),
        z.string().max(256, 'tag values must be at most 256 characters'),
      )
      .default({}),
    /** Listed ids are candidates even without the trainctl:managed tag, whatever the other filters say. */
    ids: z.array(CleanupIdSchema).max(1_000, 'at most 1000 ids').default([]),
    kinds: z
      .array(z.enum(CleanupKind, { message: `must be one of ${Object.values(CleanupKind).join(', ')}` }))
      .min(1, 'must name at least one kind')
      .default(['instance', 'volume']),
    olderThan: CleanupDurationSchema.optional(),
    /** Where to look for multipart uploads and which prefix `s3-prefix` deletes. */
    s3: z
      .object({
        bucket: BucketNameSchema,
        prefix: z.string().max(1_024, 'must be at most 1024 characters').default(''),
        /** The AWS profile (of the worker) whose store holds the bucket; absent: the worker's default. */
        profile: z.string().regex(S3_PROFILE_NAME, 'must be an AWS profile name (letters, digits and _.+=,-)').optional(),
      })
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (Object.keys(s.tags).length === 0 && s.ids.length === 0 && s.olderThan === undefined && s.s3 === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['tags'],
        message: 'an empty selector would match every resource in the region: give tags, ids, olderThan or an S3 location',
      });
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
  /** Resources one workflow run deletes before it continues as new with the rest of the approved plan (history stays bounded). */
  chunkSize: z.number().int('must be a whole number').min(1, 'must be at least 1').max(500, 'must be at most 500').default(100),
});
/** What callers pass (defaults may be omitted). */
export type CleanupRequest = z.input<typeof CleanupInputSchema>;
/** The validated, defaulted input the workflow works on. */
export type CleanupInput = z.output<typeof CleanupInputSchema>;

/** One step of a resource's line, run as one activity. */
export const CleanupStep = {
  stopInstance: 'stop-instance',
  waitInstanceStopped: 'wait-instance-stopped',
  terminateInstance: 'terminate-instance',
  waitInstanceTerminated: 'wait-instance-terminated',
  detachVolume: 'detach-volume',
  waitVolumeAvailable: 'wait-volume-available',
  snapshotVolume: 'snapshot-volume',
  waitSnapshotCompleted: 'wait-snapshot-completed',
  deleteVolume: 'delete-volume',
  deleteSnapshot: 'delete-snapshot',
  abortMultipartUpload: 'abort-multipart-upload',
  deleteS3Prefix: 'delete-s3-prefix',
} as const;
export type CleanupStep = (typeof CleanupStep)[keyof typeof CleanupStep];

/** A step that must be reached by another resource's line before this line runs `beforeStep`. */
export interface CleanupDependency {
  beforeStep: CleanupStep;
  resourceId: string;
  /** The other line's step, or `settled`: that line has ended, however. */
  after: CleanupStep | 'settled';
}

/**
 * What the plan saw of a resource, checked again before each destructive step: a difference (or a
 * protection tag added) skips the resource as "changed since the plan" (issue 10, guard 4).
 */
export interface CleanupExpectation {
  /** The state discovery saw (instances: a stopped one that now runs has changed). */
  state?: string;
  sizeGiB?: number;
  /** Volume type or instance type. */
  type?: string;
  /** Volumes: the instance it was attached to, or null when it was not attached. */
  attachedTo?: string | null;
  /** The protection level the plan accepted: a higher one found later has changed. */
  protection: 'none' | 'important' | 'protected';
  /** Instances: the DeleteOnTermination volumes the plan says go with it. */
  deleteOnTermination?: string[];
  /** S3 prefixes: what the plan counted under it. */
  objects?: { count: number; bytes: number };
}

/** What the plan counted under an S3 prefix: part of what is approved. */
export interface PrefixObjects {
  count: number;
  bytes: number;
  /** The first keys (at most 10), for the reader of the plan. */
  sample: string[];
}

export interface PlannedResource {
  id: string;
  kind: CleanupKind;
  name?: string;
  steps: CleanupStep[];
  dependsOn: CleanupDependency[];
  /** Set when the resource is deleted although protected or important (force was given). */
  protection?: 'important' | 'protected';
  /** What else the deletion takes with it, for the reader of the plan. */
  notes?: string[];
  /** The cost-tracker project the resource is billed to (its trainctl:project tag). */
  project?: string;
  /** Listed by id although not managed by trainctl (such a plan always needs approval). */
  unmanaged?: true;
  /** S3 prefixes: the objects under it at planning time. */
  objects?: PrefixObjects;
  /** What the steps check again before they act (absent in plans made before the re-check existed). */
  expect?: CleanupExpectation;
  /** Everything the steps need besides the id. */
  target: { instanceId?: string; device?: string; profile?: string; bucket?: string; key?: string; uploadId?: string; prefix?: string };
}

export interface SkippedResource {
  id: string;
  kind: CleanupKind | 'unknown';
  reason: string;
}

export interface CleanupPlan {
  region: string;
  /** What the approver names: SHA-256 of the complete plan (everything but this hash, the time and the approval verdict). */
  hash: string;
  dryRun: boolean;
  force: boolean;
  snapshotBeforeDelete: boolean;
  discoveredAt: string;
  resources: PlannedResource[];
  skipped: SkippedResource[];
  needsApproval: boolean;
  approvalReasons: string[];
}

/** 64-bit FNV-1a of a string's UTF-16 code units, as 16 hex digits: deterministic, no crypto needed. */
export function fnv1a64(text: string): string {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * prime) & mask;
  }
  return h.toString(16).padStart(16, '0');
}

/** JSON with object keys sorted, so equal values always hash equal. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The hash of the whole validated request (SHA-256 of its canonical JSON, 64 hex digits): every
 * field counts, so two requests that differ in anything (protected ids, thresholds, timeouts…)
 * never share a workflow id.
 */
export function requestHash(input: CleanupInput): string {
  return sha256Hex(canonical(input));
}

/**
 * `cleanup/REGION/plan-HASH` or `cleanup/REGION/apply-HASH`, HASH = {@link requestHash} of the
 * validated input: `cleanup apply` joins a pending run only when its input is identical.
 */
export function cleanupWorkflowId(input: CleanupInput): string {
  return `cleanup/${input.region}/${input.dryRun ? 'plan' : 'apply'}-${requestHash(input)}`;
}

/** What a cleanup did: every resource by id, never only counts. */
export interface CleanupReport {
  deleted: string[];
  /** Gone before this run deleted it (NotFound on delete): nothing left to do. */
  alreadyGone: string[];
  skipped: { id: string; reason: string }[];
  failed: { id: string; kind: string; message: string; step?: string }[];
  /** Snapshots taken before deletion (snapshotBeforeDelete). */
  snapshots: { snapshotId: string; volumeId: string }[];
}

export const CleanupOutcome = {
  planned: 'planned',
  completed: 'completed',
  rejected: 'rejected',
  approvalTimedOut: 'approval-timed-out',
} as const;
export type CleanupOutcome = (typeof CleanupOutcome)[keyof typeof CleanupOutcome];

export interface CleanupResult {
  outcome: CleanupOutcome;
  plan: CleanupPlan;
  report: CleanupReport;
  /** Why nothing was deleted (rejected, timed out). */
  message?: string;
}

export type CleanupPhase = 'planning' | 'awaiting-approval' | 'running' | 'done';

export interface CleanupStatus {
  phase: CleanupPhase;
  plan: CleanupPlan | null;
  report: CleanupReport;
  inFlight: { id: string; step: string }[];
  /** Which chunk of the plan this run executes (1-based), and how many there are; absent before running. */
  chunk?: { index: number; count: number };
}

/**
 * What a cleanup carries into the run it continues as new with: the approved plan whole (its hash is
 * checked again), the chunk to run next, and the report so far without the plan's own skips (which
 * the next run takes from the plan). Accepted only by a run continued as new, never at a start.
 */
export interface CleanupCarried {
  planHash: string;
  plan: CleanupPlan;
  nextChunk: number;
  report: CleanupReport;
  /** The run that continued as new with this: a start (or a cron or retry run) cannot name it. */
  fromRunId: string;
}

/** The plan (null until discovery finished). */
export const cleanupPlanQuery = defineQuery<CleanupPlan | null>('plan');
/** Phase, plan, the report so far and the steps in flight; answers after the run ended too. */
export const cleanupStatusQuery = defineQuery<CleanupStatus>('status');
/** Approves the plan whose hash is named; the validator refuses any other hash. */
export const cleanupApproveUpdate = defineUpdate<{ approved: true; planHash: string }, [{ planHash: string }]>('approve');
/** Ends a cleanup waiting for approval with nothing deleted. */
export const cleanupRejectUpdate = defineUpdate<{ rejected: true }, [{ reason?: string }]>('reject');

/** The `approve` update's argument: the hash of the plan being approved (SHA-256, 64 hex digits). */
export const CleanupApproveSchema = z.object({
  planHash: z.string().regex(/^[0-9a-f]{64}$/, 'must be a plan hash: 64 hex digits (SHA-256), as printed with the plan'),
});
export type CleanupApproval = z.infer<typeof CleanupApproveSchema>;

/** The `reject` update's argument. */
export const CleanupRejectSchema = z.object({ reason: z.string().max(500, 'must be at most 500 characters').optional() });
export type CleanupRejection = z.infer<typeof CleanupRejectSchema>;
