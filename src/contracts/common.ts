/**
 * Schemas and constants shared by several workflow families' contracts: regions, zones, tags,
 * resource names and EBS volume limits.
 *
 * @module
 */
import { z } from 'zod';

/** Tag keys trainctl owns; users may not set them. */
export const TagKey = {
  Name: 'Name',
  Managed: 'trainctl:managed',
  WorkflowId: 'trainctl:workflow-id',
  RunId: 'trainctl:run-id',
  Protected: 'trainctl:protected',
  Important: 'trainctl:important',
} as const;

export const VolumeType = { gp3: 'gp3', gp2: 'gp2', io1: 'io1', io2: 'io2', st1: 'st1', sc1: 'sc1' } as const;
export type VolumeType = (typeof VolumeType)[keyof typeof VolumeType];

/**
 * AWS's published limits per EBS volume type (EBS User Guide, "Amazon EBS volume types", read
 * 2026-11): size in GiB, provisioned IOPS, IOPS per GiB, throughput in MiB/s. gp3 carries the
 * 2025 raise to 64 TiB / 80,000 IOPS / 2,000 MiB/s; io2 is Block Express.
 */
export const VOLUME_LIMITS = {
  gp3: { minGiB: 1, maxGiB: 65_536, iops: { min: 3_000, max: 80_000, perGiB: 500 }, throughput: { min: 125, max: 2_000, perIops: 0.25 } },
  gp2: { minGiB: 1, maxGiB: 16_384 },
  io1: { minGiB: 4, maxGiB: 16_384, iops: { min: 100, max: 64_000, perGiB: 50 } },
  io2: { minGiB: 4, maxGiB: 65_536, iops: { min: 100, max: 256_000, perGiB: 1_000 } },
  st1: { minGiB: 125, maxGiB: 16_384 },
  sc1: { minGiB: 125, maxGiB: 16_384 },
} as const satisfies Record<
  VolumeType,
  {
    minGiB: number;
    maxGiB: number;
    iops?: { min: number; max: number; perGiB: number };
    throughput?: { min: number; max: number; perIops: number };
  }
>;

export const RegionSchema = z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d+$/, 'must be an AWS region such as us-east-1');
/** Regular zones (us-east-1a) and Local Zones (us-west-2-lax-1a). */
export const AvailabilityZoneSchema = z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d+(-[a-z]+-\d+)?[a-z]$/, 'must be an availability zone such as us-east-1a');

const TagKeySchema = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .refine((k) => !k.toLowerCase().startsWith('aws:'), 'must not start with aws: (reserved by AWS)')
  .refine((k) => !k.trim().toLowerCase().startsWith('aws:'), 'must not start with aws: (reserved by AWS)')
  // Case-insensitive and trimmed: cleanup reads trainctl:* keys that way, so ' Trainctl:Protected'
  // must be as reserved as 'trainctl:protected' (a user could otherwise mark or unmark protection).
  .refine((k) => k !== TagKey.Name && !k.trim().toLowerCase().startsWith('trainctl:'), 'is set by trainctl (Name and trainctl:* in any case are reserved)');

export const TagsSchema = z
  .record(TagKeySchema, z.string().max(256, 'tag values must be at most 256 characters'))
  .refine((t) => Object.keys(t).length <= 40, 'at most 40 user tags (AWS allows 50 and trainctl sets a few)')
  .default({});

/** A name is the volume's identity: the Name tag, and part of the workflow id. */
export const ResourceNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+=@:-]*$/, 'may contain letters, digits and . _ + = @ : - and must start with a letter or digit');

/** An AWS shared-config profile name as `s3://PROFILE@BUCKET/…` carries it (what the AWS CLI takes in a section name, no spaces). */
export const S3_PROFILE_NAME = /^[A-Za-z0-9_.+=,-]{1,64}$/;

const S3_URI = /^s3:\/\/(?:([A-Za-z0-9_.+=,-]{1,64})@)?([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

/** An S3 location: a bucket, a key or prefix in it, and the AWS profile whose endpoint and credentials reach it (absent: the worker's default). */
export interface S3Location {
  profile?: string;
  bucket: string;
  prefix: string;
}

/** `s3://[PROFILE@]BUCKET[/PREFIX]` → its parts; undefined when it is not one. Pure (workflows use it). */
export function parseS3Location(uri: string): S3Location | undefined {
  const m = S3_URI.exec(uri);
  if (!m || !m[2]) return undefined;
  return { ...(m[1] ? { profile: m[1] } : {}), bucket: m[2], prefix: m[3] ?? '' };
}

/**
 * Whether two keys or prefixes of one bucket overlap as paths: equal, one the bucket's root, or
 * one a folder above the other (`data/` and `data/x`, not `a.bin` and `a.bin.copy`).
 */
export function s3PathsOverlap(a: string, b: string): boolean {
  const inside = (x: string, y: string) => y === '' || x === y || x.startsWith(y.endsWith('/') ? y : `${y}/`);
  return inside(a, b) || inside(b, a);
}

/** The uri of a location, `s3://[PROFILE@]BUCKET/PREFIX`. */
export function s3LocationUri(loc: { profile?: string | undefined; bucket: string; prefix: string }): string {
  return `s3://${loc.profile ? `${loc.profile}@` : ''}${loc.bucket}/${loc.prefix}`;
}

const S3_URI_HINT = 'must be s3://BUCKET[/PREFIX] or s3://PROFILE@BUCKET[/PREFIX] (PROFILE: an AWS profile of the worker)';

/** An `s3://[PROFILE@]BUCKET[/PREFIX]` uri; with `folder`, a non-empty prefix ending in `/`. */
export function s3UriSchema(opts: { folder?: boolean } = {}) {
  return z.string().refine(
    (uri) => {
      const loc = parseS3Location(uri);
      return loc !== undefined && (!opts.folder || (loc.prefix.length > 1 && loc.prefix.endsWith('/')));
    },
    opts.folder ? 'must be s3://BUCKET/PREFIX/ or s3://PROFILE@BUCKET/PREFIX/ (ending in /)' : S3_URI_HINT,
  );
}
