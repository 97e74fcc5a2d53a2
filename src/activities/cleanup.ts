import { Context, log } from '@temporalio/activity';
import {
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Filter,
  type Instance,
  type Snapshot,
  type Tag,
  type Volume,
} from '@aws-sdk/client-ec2';
import { AbortMultipartUploadCommand, DeleteObjectsCommand, GetBucketTaggingCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { TagKey, type CleanupSelector } from '../config.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { SOURCE_VOLUME_TAG, parseS3Id, type DiscoveredResource, type Discovery } from '../cleanup-plan.js';
import { abortSignal, step, type ThrottleBackoff } from './aws-call.js';

export interface CleanupDeps {
  ec2(region: string): EC2Client;
  s3(region: string): S3Client;
  pollIntervalMs?: number;
  throttleBackoff?: ThrottleBackoff;
}

/** What a step found: `gone` when the resource no longer exists, which ends its line as already gone. */
export interface StepOutcome {
  gone: boolean;
}

function tagsOf(tags: Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key !== undefined) out[t.Key] = t.Value ?? '';
  return out;
}

function isNotFound(err: unknown): boolean {
  return classify(err) === ErrorKind.NotFound;
}

/** Runs `fn`; NotFound means the resource is already gone, which for a cleanup is success. */
async function goneIfNotFound(fn: () => Promise<void>): Promise<StepOutcome> {
  try {
    await fn();
    return { gone: false };
  } catch (err) {
    if (isNotFound(err)) return { gone: true };
    throw err;
  }
}

const GONE_INSTANCE_STATES = new Set(['terminated', 'shutting-down']);
const GONE_VOLUME_STATES = new Set(['deleting', 'deleted']);

export function createCleanupActivities(deps: CleanupDeps) {
  const backoff = deps.throttleBackoff;
  const pollMs = deps.pollIntervalMs ?? 2_000;
  const opts = () => ({ abortSignal: abortSignal() });

  async function describeInstances(region: string, filters: Filter[] | undefined, ids?: string[]): Promise<Instance[]> {
    const out: Instance[] = [];
    let token: string | undefined;
    do {
      const res = await deps.ec2(region).send(
        new DescribeInstancesCommand({ ...(filters ? { Filters: filters } : {}), ...(ids ? { InstanceIds: ids } : { MaxResults: 500 }), NextToken: token }),
        { abortSignal: abortSignal() },
      );
      for (const r of res.Reservations ?? []) out.push(...(r.Instances ?? []));
      token = res.NextToken;
    } while (token);
    return out;
  }

  async function describeVolumes(region: string, filters: Filter[] | undefined, ids?: string[]): Promise<Volume[]> {
    const out: Volume[] = [];
    let token: string | undefined;
    do {
      const res = await deps.ec2(region).send(
        new DescribeVolumesCommand({ ...(filters ? { Filters: filters } : {}), ...(ids ? { VolumeIds: ids } : { MaxResults: 500 }), NextToken: token }),
        { abortSignal: abortSignal() },
      );
      out.push(...(res.Volumes ?? []));
      token = res.NextToken;
    } while (token);
    return out;
  }

  async function describeSnapshots(region: string, filters: Filter[] | undefined, ids?: string[]): Promise<Snapshot[]> {
    const out: Snapshot[] = [];
    let token: string | undefined;
    do {
      const res = await deps.ec2(region).send(
        new DescribeSnapshotsCommand({ OwnerIds: ['self'], ...(filters ? { Filters: filters } : {}), ...(ids ? { SnapshotIds: ids } : {}), NextToken: token }),
        { abortSignal: abortSignal() },
      );
      out.push(...(res.Snapshots ?? []));
      token = res.NextToken;
    } while (token);
    return out;
  }

  /** One id at a time, so that one missing id does not hide the others. */
  async function describeById<T>(describe: () => Promise<T[]>): Promise<T[] | undefined> {
    try {
      return await describe();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async function bucketTags(region: string, bucket: string): Promise<Record<string, string>> {
    try {
      const res = await deps.s3(region).send(new GetBucketTaggingCommand({ Bucket: bucket }), { abortSignal: abortSignal() });
      return tagsOf(res.TagSet);
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchTagSet') return {};
      throw err;
    }
  }

  async function volumeResource(region: string, v: Volume, instanceStates: Map<string, string>): Promise<DiscoveredResource> {
    const a = (v.Attachments ?? []).find((x) => x.State === 'attached' || x.State === 'attaching');
    let attachment: DiscoveredResource['attachment'];
    if (a?.InstanceId) {
      let state = instanceStates.get(a.InstanceId);
      if (state === undefined) {
        const found = await describeById(() => describeInstances(region, undefined, [a.InstanceId!]));
        state = found?.[0]?.State?.Name ?? 'unknown';
        instanceStates.set(a.InstanceId, state);
      }
      attachment = { instanceId: a.InstanceId, device: a.Device ?? '', instanceState: state };
    }
    return {
      id: v.VolumeId ?? '',
      kind: 'volume',
      tags: tagsOf(v.Tags),
      state: v.State ?? 'unknown',
      ...(v.CreateTime ? { createdAt: v.CreateTime.toISOString() } : {}),
      ...(v.Size !== undefined ? { sizeGiB: v.Size } : {}),
      ...(attachment ? { attachment } : {}),
    };
  }

  async function instanceResource(region: string, i: Instance): Promise<DiscoveredResource> {
    const mappings = (i.BlockDeviceMappings ?? []).filter((b) => b.Ebs?.VolumeId);
    const ids = mappings.map((b) => b.Ebs!.VolumeId!);
    const vols = ids.length ? ((await describeById(() => describeVolumes(region, undefined, ids))) ?? []) : [];
    const tagsById = new Map(vols.map((v) => [v.VolumeId ?? '', tagsOf(v.Tags)]));
    return {
      id: i.InstanceId ?? '',
      kind: 'instance',
      tags: tagsOf(i.Tags),
      state: i.State?.Name ?? 'unknown',
      ...(i.LaunchTime ? { createdAt: i.LaunchTime.toISOString() } : {}),
      volumes: mappings.map((b) => ({
        volumeId: b.Ebs!.VolumeId!,
        device: b.DeviceName ?? '',
        deleteOnTermination: b.Ebs?.DeleteOnTermination ?? false,
        tags: tagsById.get(b.Ebs!.VolumeId!) ?? {},
      })),
    };
  }

  function snapshotResource(s: Snapshot): DiscoveredResource {
    return {
      id: s.SnapshotId ?? '',
      kind: 'snapshot',
      tags: tagsOf(s.Tags),
      state: s.State ?? 'unknown',
      ...(s.StartTime ? { createdAt: s.StartTime.toISOString() } : {}),
      ...(s.VolumeSize !== undefined ? { sizeGiB: s.VolumeSize } : {}),
    };
  }

  async function uploadsUnder(region: string, bucket: string, prefix: string, tags: Record<string, string>): Promise<DiscoveredResource[]> {
    const out: DiscoveredResource[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const res = await deps.s3(region).send(
        new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        { abortSignal: abortSignal() },
      );
      for (const u of res.Uploads ?? []) {
        if (!u.Key || !u.UploadId) continue;
        out.push({
          id: `s3://${bucket}/${u.Key}#${u.UploadId}`,
          kind: 'multipart-upload',
          tags,
          state: 'in-progress',
          ...(u.Initiated ? { createdAt: u.Initiated.toISOString() } : {}),
          bucket,
          key: u.Key,
          uploadId: u.UploadId,
        });
      }
      if (!res.IsTruncated) return out;
      keyMarker = res.NextKeyMarker;
      uploadIdMarker = res.NextUploadIdMarker;
    }
  }

  return {
    /**
     * Finds the resources a selector names in one region: instances, volumes and snapshots carrying
     * every selected tag (any managed state: the planner says why unmanaged ones are skipped), every
     * id listed explicitly, multipart uploads and the prefix of the selected bucket (which carry the
     * bucket's tags). Read-only, so safe to retry.
     */
    async cleanupDiscover(args: { region: string; selector: CleanupSelector }): Promise<Discovery> {
      const { region, selector } = args;
      return step(
        `discover cleanup candidates in ${region}`,
        async () => {
          const discoveredAt = new Date().toISOString();
          const tagFilters: Filter[] = Object.entries(selector.tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
          const byKind = (k: string) => selector.kinds.includes(k as CleanupSelector['kinds'][number]);
          const searchEc2 = tagFilters.length > 0 || selector.olderThan !== undefined;
          const resources: DiscoveredResource[] = [];
          const missingIds: string[] = [];
          const instanceStates = new Map<string, string>();
          const explicit = (prefix: string) => selector.ids.filter((id) => id.startsWith(prefix));

          const instances: Instance[] = [];
          if (byKind('instance') && searchEc2) instances.push(...(await describeInstances(region, tagFilters)));
          for (const id of explicit('i-')) {
            const found = await describeById(() => describeInstances(region, undefined, [id]));
            if (found?.[0]) instances.push(found[0]);
            else missingIds.push(id);
          }
          for (const i of instances) {
            const state = i.State?.Name ?? 'unknown';
            if (i.InstanceId) instanceStates.set(i.InstanceId, state);
            if (GONE_INSTANCE_STATES.has(state)) {
              if (selector.ids.includes(i.InstanceId ?? '')) missingIds.push(i.InstanceId ?? '');
              continue;
            }
            resources.push(await instanceResource(region, i));
          }

          const volumes: Volume[] = [];
          if (byKind('volume') && searchEc2) volumes.push(...(await describeVolumes(region, tagFilters)));
          for (const id of explicit('vol-')) {
            const found = await describeById(() => describeVolumes(region, undefined, [id]));
            if (found?.[0]) volumes.push(found[0]);
            else missingIds.push(id);
          }
          for (const v of volumes) {
            if (GONE_VOLUME_STATES.has(v.State ?? '')) {
              if (selector.ids.includes(v.VolumeId ?? '')) missingIds.push(v.VolumeId ?? '');
              continue;
            }
            resources.push(await volumeResource(region, v, instanceStates));
          }

          const snapshots: Snapshot[] = [];
          if (byKind('snapshot') && searchEc2) snapshots.push(...(await describeSnapshots(region, tagFilters)));
          for (const id of explicit('snap-')) {
            const found = await describeById(() => describeSnapshots(region, undefined, [id]));
            if (found?.[0]) snapshots.push(found[0]);
            else missingIds.push(id);
          }
          resources.push(...snapshots.map(snapshotResource));

          const s3Tags = new Map<string, Record<string, string>>();
          const tagsOfBucket = async (bucket: string) => {
            let t = s3Tags.get(bucket);
            if (!t) s3Tags.set(bucket, (t = await bucketTags(region, bucket)));
            return t;
          };
          if (selector.s3) {
            const { bucket, prefix } = selector.s3;
            if (byKind('multipart-upload')) resources.push(...(await uploadsUnder(region, bucket, prefix, await tagsOfBucket(bucket))));
            if (byKind('s3-prefix') && prefix !== '') {
              resources.push({ id: `s3://${bucket}/${prefix}`, kind: 's3-prefix', tags: await tagsOfBucket(bucket), state: 'present', bucket, prefix });
            }
          }
          for (const id of selector.ids.filter((x) => x.startsWith('s3://'))) {
            const parsed = parseS3Id(id);
            if (!parsed) continue;
            try {
              const tags = await tagsOfBucket(parsed.bucket);
              if (parsed.uploadId === undefined) {
                resources.push({ id, kind: 's3-prefix', tags, state: 'present', bucket: parsed.bucket, prefix: parsed.key });
                continue;
              }
              const upload = (await uploadsUnder(region, parsed.bucket, parsed.key, tags)).find((u) => u.id === id);
              if (upload) resources.push(upload);
              else missingIds.push(id);
            } catch (err) {
              if (!isNotFound(err)) throw err;
              missingIds.push(id);
            }
          }
          log.info('cleanup candidates discovered', { region, resources: resources.length, missing: missingIds.length });
          return { region, discoveredAt, resources, missingIds };
        },
        backoff,
      );
    },

    /** Stops the instance (a no-op when stopped). Already gone counts as done. */
    async cleanupStopInstance(args: { region: string; instanceId: string }): Promise<StepOutcome> {
      return step(
        `stop ${args.instanceId}`,
        () => goneIfNotFound(async () => void (await deps.ec2(args.region).send(new StopInstancesCommand({ InstanceIds: [args.instanceId] }), opts()))),
        backoff,
      );
    },

    /** Terminates the instance (a no-op when terminated). Already gone counts as done. */
    async cleanupTerminateInstance(args: { region: string; instanceId: string }): Promise<StepOutcome> {
      return step(
        `terminate ${args.instanceId}`,
        () => goneIfNotFound(async () => void (await deps.ec2(args.region).send(new TerminateInstancesCommand({ InstanceIds: [args.instanceId] }), opts()))),
        backoff,
      );
    },

    /**
     * Polls until the instance is `stopped` (or `terminated`), heartbeating what it saw; cancellable
     * between polls. A terminated instance is stopped too; a vanished one is `gone`.
     */
    async cleanupWaitInstance(args: { region: string; instanceId: string; state: 'stopped' | 'terminated' }): Promise<StepOutcome> {
      const ctx = Context.current();
      return step(
        `wait for ${args.instanceId} to be ${args.state}`,
        async () => {
          for (;;) {
            const found = await describeById(() => describeInstances(args.region, undefined, [args.instanceId]));
            const state = found?.[0]?.State?.Name;
            if (state === undefined) return { gone: true };
            ctx.heartbeat({ state });
            if (state === args.state || state === 'terminated') return { gone: false };
            await ctx.sleep(pollMs);
          }
        },
        backoff,
      );
    },

    /** Detaches the volume from the instance holding it; already detached is done, already gone is `gone`. */
    async cleanupDetachVolume(args: { region: string; volumeId: string; instanceId?: string; device?: string }): Promise<StepOutcome> {
      return step(
        `detach ${args.volumeId}`,
        async () => {
          const found = await describeById(() => describeVolumes(args.region, undefined, [args.volumeId]));
          const v = found?.[0];
          if (!v || GONE_VOLUME_STATES.has(v.State ?? '')) return { gone: true };
          const a = (v.Attachments ?? []).find((x) => x.State === 'attached' || x.State === 'attaching');
          if (!a) return { gone: false };
          try {
            // The instance and device are passed too: the emulator needs them, and they make sure the
            // attachment detached is the one that was planned.
            await deps.ec2(args.region).send(new DetachVolumeCommand({ VolumeId: args.volumeId, InstanceId: a.InstanceId, Device: a.Device }), opts());
          } catch (err) {
            // InvalidAttachment.NotFound: it detached between the describe and the call.
            if (!isNotFound(err)) throw err;
          }
          return { gone: false };
        },
        backoff,
      );
    },

    /** Polls until the volume is `available`, heartbeating; `gone` if it was deleted meanwhile. */
    async cleanupWaitVolumeAvailable(args: { region: string; volumeId: string }): Promise<StepOutcome> {
      const ctx = Context.current();
      return step(
        `wait for ${args.volumeId} to be available`,
        async () => {
          for (;;) {
            const v = (await describeById(() => describeVolumes(args.region, undefined, [args.volumeId])))?.[0];
            if (!v || GONE_VOLUME_STATES.has(v.State ?? '')) return { gone: true };
            ctx.heartbeat({ state: v.State });
            if (v.State === 'available') return { gone: false };
            if (v.State === 'error') throw new TrainctlError(ErrorKind.Unknown, `volume ${args.volumeId} entered state error`);
            await ctx.sleep(pollMs);
          }
        },
        backoff,
      );
    },

    /**
     * Starts a snapshot of the volume, tagged in the same call with the volume's tags plus
     * `trainctl:source-volume` and `trainctl:workflow-id`. Idempotent per workflow: a retry finds
     * the snapshot this workflow already started for the volume and returns it.
     */
    async cleanupSnapshotVolume(args: { region: string; volumeId: string; workflowId: string }): Promise<{ gone: boolean; snapshotId?: string }> {
      return step(
        `snapshot ${args.volumeId}`,
        async () => {
          const mine = await describeSnapshots(args.region, [
            { Name: `tag:${SOURCE_VOLUME_TAG}`, Values: [args.volumeId] },
            { Name: `tag:${TagKey.WorkflowId}`, Values: [args.workflowId] },
          ]);
          const existing = mine.find((s) => s.State !== 'error');
          if (existing?.SnapshotId) return { gone: false, snapshotId: existing.SnapshotId };
          const v = (await describeById(() => describeVolumes(args.region, undefined, [args.volumeId])))?.[0];
          if (!v || GONE_VOLUME_STATES.has(v.State ?? '')) return { gone: true };
          const tags = { ...tagsOf(v.Tags), [SOURCE_VOLUME_TAG]: args.volumeId, [TagKey.WorkflowId]: args.workflowId };
          // aws:* tags belong to AWS and cannot be copied.
          const copied = Object.entries(tags).filter(([k]) => !k.toLowerCase().startsWith('aws:'));
          const res = await deps.ec2(args.region).send(
            new CreateSnapshotCommand({
              VolumeId: args.volumeId,
              Description: `trainctl cleanup: ${args.volumeId} before deletion`,
              TagSpecifications: [{ ResourceType: 'snapshot', Tags: copied.map(([Key, Value]) => ({ Key, Value })) }],
            }),
            opts(),
          );
          if (!res.SnapshotId) throw new TrainctlError(ErrorKind.Unknown, 'CreateSnapshot returned no snapshot id');
          log.info('snapshot started before deletion', { volumeId: args.volumeId, snapshotId: res.SnapshotId });
          return { gone: false, snapshotId: res.SnapshotId };
        },
        backoff,
      );
    },

    /** Polls until the snapshot is `completed`, heartbeating its progress; fails if it errors. */
    async cleanupWaitSnapshotCompleted(args: { region: string; snapshotId: string }): Promise<void> {
      const ctx = Context.current();
      return step(
        `wait for ${args.snapshotId} to complete`,
        async () => {
          for (;;) {
            const s = (await describeSnapshots(args.region, undefined, [args.snapshotId]))[0];
            if (!s) throw new TrainctlError(ErrorKind.NotFound, `snapshot ${args.snapshotId} disappeared`);
            ctx.heartbeat({ state: s.State, progress: s.Progress });
            if (s.State === 'completed') return;
            if (s.State === 'error') throw new TrainctlError(ErrorKind.Unknown, `snapshot ${args.snapshotId} failed: ${s.StateMessage ?? 'no message'}`);
            await ctx.sleep(pollMs);
          }
        },
        backoff,
      );
    },

    /** Deletes the volume. NotFound means already gone; VolumeInUse is a Conflict, retried. */
    async cleanupDeleteVolume(args: { region: string; volumeId: string }): Promise<StepOutcome> {
      return step(`delete ${args.volumeId}`, () => goneIfNotFound(async () => void (await deps.ec2(args.region).send(new DeleteVolumeCommand({ VolumeId: args.volumeId }), opts()))), backoff);
    },

    /** Deletes the snapshot. NotFound means already gone. */
    async cleanupDeleteSnapshot(args: { region: string; snapshotId: string }): Promise<StepOutcome> {
      return step(
        `delete ${args.snapshotId}`,
        () => goneIfNotFound(async () => void (await deps.ec2(args.region).send(new DeleteSnapshotCommand({ SnapshotId: args.snapshotId }), opts()))),
        backoff,
      );
    },

    /** Aborts the multipart upload, freeing its parts. NoSuchUpload means already gone. */
    async cleanupAbortMultipartUpload(args: { region: string; bucket: string; key: string; uploadId: string }): Promise<StepOutcome> {
      return step(
        `abort upload ${args.uploadId} of s3://${args.bucket}/${args.key}`,
        () =>
          goneIfNotFound(async () => {
            await deps.s3(args.region).send(new AbortMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, UploadId: args.uploadId }), {
              abortSignal: abortSignal(),
            });
          }),
        backoff,
      );
    },

    /**
     * Deletes every object under the prefix, a page (≤1000 keys) at a time, heartbeating the count.
     * Idempotent: a retry lists what is left. `gone` when there was nothing to delete.
     */
    async cleanupDeleteS3Prefix(args: { region: string; bucket: string; prefix: string }): Promise<StepOutcome & { objects: number }> {
      const ctx = Context.current();
      return step(
        `delete s3://${args.bucket}/${args.prefix}`,
        async () => {
          let objects = 0;
          for (;;) {
            const page = await deps.s3(args.region).send(new ListObjectsV2Command({ Bucket: args.bucket, Prefix: args.prefix, MaxKeys: 1000 }), {
              abortSignal: abortSignal(),
            });
            const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
            if (keys.length === 0) return { gone: objects === 0, objects };
            const res = await deps.s3(args.region).send(new DeleteObjectsCommand({ Bucket: args.bucket, Delete: { Objects: keys, Quiet: true } }), {
              abortSignal: abortSignal(),
            });
            const firstError = res.Errors?.[0];
            if (firstError) {
              throw new TrainctlError(
                firstError.Code === 'AccessDenied' ? ErrorKind.PermissionDenied : ErrorKind.Transient,
                `could not delete ${res.Errors?.length} objects under s3://${args.bucket}/${args.prefix}, e.g. ${firstError.Key}: ${firstError.Code ?? 'error'}`,
              );
            }
            objects += keys.length;
            ctx.heartbeat({ objects });
          }
        },
        backoff,
      );
    },
  };
}
