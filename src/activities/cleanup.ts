import { Context, log } from '@temporalio/activity';
import {
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DetachVolumeCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { AbortMultipartUploadCommand, DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { tagsOf } from '../aws/tags.js';
import { SOURCE_VOLUME_TAG } from '../cleanup-plan.js';
import { TagKey } from '../contracts/common.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { abortSignal, step, type ThrottleBackoff } from './aws-call.js';
import { GONE_VOLUME_STATES, createCleanupDiscovery, createDescribers, isNotFound } from './cleanup-discovery.js';

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

/**
 * The cleanup activities: discovery (read-only, `./cleanup-discovery.ts`) and one activity per
 * step of a resource's line, each idempotent (NotFound on delete is `gone`) and cancellable.
 */
export function createCleanupActivities(deps: CleanupDeps) {
  const backoff = deps.throttleBackoff;
  const pollMs = deps.pollIntervalMs ?? 2_000;
  const opts = () => ({ abortSignal: abortSignal() });
  const { describeInstances, describeVolumes, describeSnapshots, describeById } = createDescribers(deps);

  return {
    ...createCleanupDiscovery(deps),

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
      return step(
        `delete ${args.volumeId}`,
        () => goneIfNotFound(async () => void (await deps.ec2(args.region).send(new DeleteVolumeCommand({ VolumeId: args.volumeId }), opts()))),
        backoff,
      );
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
