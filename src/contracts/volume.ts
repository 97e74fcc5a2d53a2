/**
 * Contract of the volume family: the `provisionVolume` workflow's type name, id, input schema,
 * result and the view of one EBS volume its activities report.
 *
 * @module
 */
import { z } from 'zod';
import { AvailabilityZoneSchema, RegionSchema, ResourceNameSchema, TagsSchema, VOLUME_LIMITS, VolumeType } from './common.js';

/** Workflow type of the run that provisions one named EBS volume. */
export const ProvisionVolumeWorkflowType = 'provisionVolume';

/** `volume/REGION/NAME`: one workflow id per volume identity, so concurrent starts are one run. */
export function volumeWorkflowId(region: string, name: string): string {
  return `volume/${region}/${name}`;
}

/**
 * A volume request: its name (the identity), region and zone, size, type and performance, tags,
 * where to attach it, and what to do when the name exists. Checked against AWS's limits per type.
 */
export const ProvisionVolumeInputSchema = z
  .object({
    name: ResourceNameSchema,
    region: RegionSchema,
    sizeGiB: z.number().int('must be a whole number of GiB').positive('must be at least 1 GiB'),
    volumeType: z.enum(VolumeType).default('gp3'),
    iops: z.number().int('must be a whole number').positive('must be positive').optional(),
    throughputMiBps: z.number().int('must be a whole number').positive('must be positive').optional(),
    availabilityZone: AvailabilityZoneSchema,
    snapshotId: z
      .string()
      .regex(/^snap-[0-9a-f]{8,17}$/, 'must be a snapshot id such as snap-0123456789abcdef0')
      .optional(),
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

/** What EC2 says about one volume, reduced to what trainctl compares and reports. */
export interface VolumeInfo {
  volumeId: string;
  state: string;
  sizeGiB: number;
  volumeType: string;
  iops?: number;
  throughputMiBps?: number;
  availabilityZone: string;
  snapshotId?: string;
  encrypted: boolean;
  tags: Record<string, string>;
  attachments: { instanceId: string; device: string; state: string }[];
  createTime?: string;
}

/** What a `provisionVolume` run returns. */
export interface ProvisionVolumeResult {
  volumeId: string;
  /** false when an existing volume with this name and spec was reused. */
  created: boolean;
  name: string;
  region: string;
  availabilityZone: string;
  sizeGiB: number;
  volumeType: string;
  state: string;
  attachedTo?: { instanceId: string; device: string };
}

/** The memo a cancelled run leaves: what its compensation deleted, or could not. */
export interface ProvisionVolumeMemo {
  compensation?: string;
}
