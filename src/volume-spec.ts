import type { ProvisionVolumeInput, VolumeInfo } from './contracts/volume.js';

/**
 * The differences between a requested spec and an existing volume, one readable line each
 * (`size: existing 20 GiB, requested 10 GiB`). Empty when the volume can be reused as it is.
 * IOPS/throughput and the snapshot are compared only when the request names them.
 */
export function specMismatches(want: ProvisionVolumeInput, have: VolumeInfo): string[] {
  const out: string[] = [];
  const diff = (field: string, existing: unknown, requested: unknown, unit = '') => {
    if (existing !== requested) out.push(`${field}: existing ${String(existing ?? 'none')}${unit}, requested ${String(requested)}${unit}`);
  };
  diff('size', have.sizeGiB, want.sizeGiB, ' GiB');
  diff('type', have.volumeType, want.volumeType);
  diff('availability zone', have.availabilityZone, want.availabilityZone);
  if (want.iops !== undefined) diff('iops', have.iops, want.iops);
  if (want.throughputMiBps !== undefined) diff('throughput', have.throughputMiBps, want.throughputMiBps, ' MiB/s');
  if (want.snapshotId !== undefined) diff('snapshot', have.snapshotId, want.snapshotId);
  if (want.encrypted) diff('encrypted', have.encrypted, want.encrypted);
  return out;
}
