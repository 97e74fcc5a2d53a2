import { createHash } from 'node:crypto';
import { Context, log } from '@temporalio/activity';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  paginateDescribeVolumes,
  type EC2Client,
  type Volume,
  type Filter,
} from '@aws-sdk/client-ec2';
import { TagKey } from '../contracts/common.js';
import type { ProvisionVolumeInput, VolumeInfo } from '../contracts/volume.js';
import { PROJECT_TAG } from '../cost-model.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { pollUntil } from '../aws/poll.js';
import { abortSignal, step, type ThrottleBackoff } from './aws-call.js';

export interface VolumeDeps {
  ec2(region: string): EC2Client;
  /** Delay between DescribeVolumes polls while waiting for a state. */
  pollIntervalMs?: number;
  throttleBackoff?: ThrottleBackoff;
}

function toInfo(v: Volume): VolumeInfo {
  const tags: Record<string, string> = {};
  for (const t of v.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? '';
  return {
    volumeId: v.VolumeId ?? '',
    state: v.State ?? 'unknown',
    sizeGiB: v.Size ?? 0,
    volumeType: v.VolumeType ?? 'unknown',
    ...(v.Iops !== undefined ? { iops: v.Iops } : {}),
    ...(v.Throughput !== undefined ? { throughputMiBps: v.Throughput } : {}),
    availabilityZone: v.AvailabilityZone ?? '',
    ...(v.SnapshotId ? { snapshotId: v.SnapshotId } : {}),
    encrypted: v.Encrypted ?? false,
    tags,
    attachments: (v.Attachments ?? []).map((a) => ({ instanceId: a.InstanceId ?? '', device: a.Device ?? '', state: a.State ?? '' })),
    ...(v.CreateTime ? { createTime: v.CreateTime.toISOString() } : {}),
  };
}

/** An EC2 idempotency token (≤ 64 ASCII characters) derived from the run that asks. */
export function clientTokenFor(workflowId: string, runId: string): string {
  return createHash('sha256').update(`${workflowId}\n${runId}`).digest('hex').slice(0, 64);
}

type Ec2Of = VolumeDeps['ec2'];

/** Every volume matching `filters` (all pages), none being deleted: a volume being deleted no longer holds its name. */
async function describe(ec2: Ec2Of, region: string, filters: Filter[]): Promise<VolumeInfo[]> {
  const out: VolumeInfo[] = [];
  const pages = paginateDescribeVolumes({ client: ec2(region), pageSize: 500 }, { Filters: filters }, { abortSignal: abortSignal() });
  for await (const page of pages) out.push(...(page.Volumes ?? []).map(toInfo));
  return out.filter((v) => v.state !== 'deleting' && v.state !== 'deleted');
}

async function describeOne(ec2: Ec2Of, region: string, volumeId: string): Promise<VolumeInfo> {
  const res = await ec2(region).send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal: abortSignal() });
  const v = res.Volumes?.[0];
  if (!v) throw new TrainctlError(ErrorKind.NotFound, `volume ${volumeId} not found`);
  return toInfo(v);
}

/** The volume this run already made (found by its run-id tag), else a new one made in one tagged CreateVolume. */
async function createOnce(ec2: Ec2Of, args: { input: ProvisionVolumeInput; workflowId: string; runId: string }): Promise<VolumeInfo> {
  const { input, workflowId, runId } = args;
  const mine = await describe(ec2, input.region, [
    { Name: `tag:${TagKey.Name}`, Values: [input.name] },
    { Name: `tag:${TagKey.RunId}`, Values: [runId] },
  ]);
  if (mine[0]) {
    log.info('volume already created by this run', { volumeId: mine[0].volumeId, attempt: Context.current().info.attempt });
    return mine[0];
  }
  const tags = {
    ...input.tags,
    [TagKey.Name]: input.name,
    [TagKey.Managed]: 'true',
    [TagKey.WorkflowId]: workflowId,
    [TagKey.RunId]: runId,
    [PROJECT_TAG]: input.project,
  };
  const res = await ec2(input.region).send(
    new CreateVolumeCommand({
      AvailabilityZone: input.availabilityZone,
      Size: input.sizeGiB,
      VolumeType: input.volumeType,
      ...(input.iops !== undefined ? { Iops: input.iops } : {}),
      ...(input.throughputMiBps !== undefined ? { Throughput: input.throughputMiBps } : {}),
      ...(input.snapshotId ? { SnapshotId: input.snapshotId } : {}),
      Encrypted: input.encrypted,
      ClientToken: clientTokenFor(workflowId, runId),
      TagSpecifications: [{ ResourceType: 'volume', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }],
    }),
  );
  if (!res.VolumeId) throw new TrainctlError(ErrorKind.Unknown, 'CreateVolume returned no volume id');
  log.info('volume created', { volumeId: res.VolumeId, name: input.name });
  return toInfo(res);
}

/** Attaches the volume unless it already is, there; refuses when it is attached elsewhere. */
async function attachOnce(ec2: Ec2Of, args: { region: string; volumeId: string; instanceId: string; device: string }): Promise<void> {
  const v = await describeOne(ec2, args.region, args.volumeId);
  const current = v.attachments.find((a) => a.state !== 'detached');
  if (current?.instanceId === args.instanceId && current.device === args.device) return;
  if (current) {
    throw new TrainctlError(
      ErrorKind.InvalidInput,
      `volume ${args.volumeId} is attached to ${current.instanceId} at ${current.device}; detach it before attaching it to ${args.instanceId}`,
    );
  }
  await ec2(args.region).send(new AttachVolumeCommand({ VolumeId: args.volumeId, InstanceId: args.instanceId, Device: args.device }), {
    abortSignal: abortSignal(),
  });
}

/** Detaches the volume from whatever holds it; nothing to do when it is detached or gone. */
async function detachIfAttached(ec2: Ec2Of, args: { region: string; volumeId: string; force?: boolean }): Promise<void> {
  try {
    const v = await describeOne(ec2, args.region, args.volumeId);
    const current = v.attachments.find((a) => a.state === 'attached' || a.state === 'attaching');
    if (!current) return;
    // Naming the instance and device makes the call exact (and moto requires them).
    await ec2(args.region).send(
      new DetachVolumeCommand({ VolumeId: args.volumeId, InstanceId: current.instanceId, Device: current.device, Force: args.force ?? false }),
      {
        abortSignal: abortSignal(),
      },
    );
  } catch (err) {
    if (classify(err) === ErrorKind.NotFound) return;
    throw err;
  }
}

/** Deletes the volume; `deleted: false` when it was already gone. */
async function deleteIfExists(ec2: Ec2Of, args: { region: string; volumeId: string }): Promise<{ deleted: boolean }> {
  try {
    await ec2(args.region).send(new DeleteVolumeCommand({ VolumeId: args.volumeId }), { abortSignal: abortSignal() });
    log.info('volume deleted', { volumeId: args.volumeId });
    return { deleted: true };
  } catch (err) {
    if (classify(err) === ErrorKind.NotFound) return { deleted: false };
    throw err;
  }
}

export function createVolumeActivities(deps: VolumeDeps) {
  const backoff = deps.throttleBackoff;
  const ec2 = deps.ec2;

  return {
    /**
     * The trainctl-managed volumes whose Name tag is `name` (none being deleted). Read-only; the
     * provisioning workflow calls it before it creates anything, so a name is never made twice.
     */
    async findVolumesByName(args: { region: string; name: string; runId?: string }): Promise<VolumeInfo[]> {
      const filters = [
        { Name: `tag:${TagKey.Name}`, Values: [args.name] },
        { Name: `tag:${TagKey.Managed}`, Values: ['true'] },
        ...(args.runId ? [{ Name: `tag:${TagKey.RunId}`, Values: [args.runId] }] : []),
      ];
      return step(`find volumes named ${args.name}`, () => describe(ec2, args.region, filters), backoff);
    },

    /** Describes one volume; kind NotFound when it does not exist. */
    async describeVolume(args: { region: string; volumeId: string }): Promise<VolumeInfo> {
      return step(`describe ${args.volumeId}`, () => describeOne(ec2, args.region, args.volumeId), backoff);
    },

    /**
     * Creates the volume, tagged Name / trainctl:managed / trainctl:workflow-id / trainctl:run-id
     * plus the user's tags, in one call (TagSpecifications), so a volume never exists untagged.
     * Idempotent per run: a retry first looks for the volume this run already made (the emulator
     * ignores ClientToken), and CreateVolume carries a ClientToken derived from the run (real AWS
     * honours it). Not cancellable once sent: the workflow waits for it and cleans up by tag.
     */
    async createVolume(args: { input: ProvisionVolumeInput; workflowId: string; runId: string }): Promise<VolumeInfo> {
      return step(`create volume ${args.input.name}`, () => createOnce(ec2, args), backoff);
    },

    /**
     * Polls until the volume reaches `state`, heartbeating what it saw (`{ state }`), so the workflow
     * history stays one activity long however slow EC2 is. Cancellable between polls.
     */
    async waitForVolumeState(args: { region: string; volumeId: string; state: 'available' | 'in-use' }): Promise<VolumeInfo> {
      const probe = async () => {
        const v = await describeOne(ec2, args.region, args.volumeId);
        if (v.state === args.state) return { done: true as const, value: v };
        if (v.state === 'error') throw new TrainctlError(ErrorKind.Unknown, `volume ${args.volumeId} entered state error`);
        return { done: false as const, seen: { state: v.state } };
      };
      return step(`wait for ${args.volumeId} to be ${args.state}`, () => pollUntil(probe, deps.pollIntervalMs ?? 2_000), backoff);
    },

    /** Attaches the volume; done already if it is attached to that instance and device. */
    async attachVolume(args: { region: string; volumeId: string; instanceId: string; device: string }): Promise<void> {
      return step(`attach ${args.volumeId} to ${args.instanceId}`, () => attachOnce(ec2, args), backoff);
    },

    /** Detaches the volume from whatever holds it; done already if it is detached. */
    async detachVolume(args: { region: string; volumeId: string; force?: boolean }): Promise<void> {
      return step(`detach ${args.volumeId}`, () => detachIfAttached(ec2, args), backoff);
    },

    /** Deletes the volume. Already gone counts as done, so a retried delete never fails. */
    async deleteVolume(args: { region: string; volumeId: string }): Promise<{ deleted: boolean }> {
      return step(`delete ${args.volumeId}`, () => deleteIfExists(ec2, args), backoff);
    },
  };
}
