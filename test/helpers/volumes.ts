import { onCleanup } from './harness.js';
import {
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Volume,
} from '@aws-sdk/client-ec2';

/** Every volume (not deleted) whose Name tag is `name`, straight from the emulator. */
export async function volumesNamed(ec2: EC2Client, name: string): Promise<Volume[]> {
  const res = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:Name', Values: [name] }] }));
  return (res.Volumes ?? []).filter((v) => v.State !== 'deleted' && v.State !== 'deleting');
}

/**
 * Collects the names a test file provisions and deletes their volumes when the file ends, pass or
 * fail, so the shared emulator is left as it was found.
 */
export function volumeJanitor(ec2: EC2Client): (name: string) => string {
  const names = new Set<string>();
  onCleanup(async () => {
    for (const name of names) {
      for (const v of await volumesNamed(ec2, name)) {
        if (!v.VolumeId) continue;
        for (const a of v.Attachments ?? []) {
          await ec2.send(new DetachVolumeCommand({ VolumeId: v.VolumeId, InstanceId: a.InstanceId, Device: a.Device, Force: true }));
        }
        await ec2.send(new DeleteVolumeCommand({ VolumeId: v.VolumeId })).catch(() => undefined);
      }
    }
  });
  return (name) => {
    names.add(name);
    return name;
  };
}

/**
 * Deletes every instance, volume and snapshot tagged `tagKey=RUN` for each run id, whatever a test
 * left behind (a cleanup test's fixtures). Missing or already gone resources are fine.
 */
export async function deleteTaggedFixtures(ec2: EC2Client, tagKey: string, runIds: readonly string[]): Promise<void> {
  for (const run of runIds) {
    const filter = [{ Name: `tag:${tagKey}`, Values: [run] }];
    const inst = await ec2.send(new DescribeInstancesCommand({ Filters: filter }));
    const ids = (inst.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
    if (ids.length) await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    for (const v of (await ec2.send(new DescribeVolumesCommand({ Filters: filter }))).Volumes ?? []) {
      for (const a of v.Attachments ?? []) {
        await ec2.send(new DetachVolumeCommand({ VolumeId: v.VolumeId, InstanceId: a.InstanceId, Device: a.Device })).catch(() => undefined);
      }
      await ec2.send(new DeleteVolumeCommand({ VolumeId: v.VolumeId })).catch(() => undefined);
    }
    const snaps = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: filter }));
    for (const s of snaps.Snapshots ?? []) await ec2.send(new DeleteSnapshotCommand({ SnapshotId: s.SnapshotId })).catch(() => undefined);
  }
}
