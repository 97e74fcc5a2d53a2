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
import { AbortMultipartUploadCommand, DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { tagsOf } from '../aws/tags.js';
import { SOURCE_VOLUME_TAG } from '../cleanup-plan.js';
import { folderPrefix } from '../cleanup-tags.js';
import type { CleanupExpectation } from '../contracts/cleanup.js';
import { TagKey } from '../contracts/common.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { abortSignal, step, type ThrottleBackoff } from './aws-call.js';
import { GONE_VOLUME_STATES, createCleanupDiscovery, createDescribers, isNotFound } from './cleanup-discovery.js';
import { instanceChanged, s3Changed, snapshotChanged, volumeChanged } from './cleanup-recheck.js';
import type { S3For } from '../aws/profiles.js';

export interface CleanupDeps {
  ec2(region: string): EC2Client;
  s3: S3For;
  pollIntervalMs?: number;
  throttleBackoff?: ThrottleBackoff;
}

/**
 * What a step found: `gone` when the resource no longer exists, which ends its line as already
 * gone; `changed` (and nothing done) when it is no longer what the plan saw.
 */
export interface StepOutcome {
  gone: boolean;
  changed?: string;
}

/** What every destructive step is told: what the plan saw, re-checked before it acts (absent: no re-check, as before). */
export interface Checked {
  expect?: CleanupExpectation;
}

const changed = (reason: string | undefined): StepOutcome | undefined => (reason === undefined ? undefined : { gone: false, changed: reason });

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
  const d = createDescribers(deps);
  const { describeInstances, describeVolumes, describeSnapshots, describeById } = d;

  return {
    ...createCleanupDiscovery(deps),

    /** Stops the instance (a no-op when stopped) unless it changed since the plan. Already gone counts as done. */
    async cleanupStopInstance(args: { region: string; instanceId: string } & Checked): Promise<StepOutcome> {
      return step(
        `stop ${args.instanceId}`,
        async () =>
          changed(await instanceChanged(d, args.region, args.instanceId, args.expect, 'stop')) ??
          goneIfNotFound(async () => void (await deps.ec2(args.region).send(new StopInstancesCommand({ InstanceIds: [args.instanceId] }), opts()))),
        backoff,
      );
    },

    /**
     * Terminates the instance (a no-op when terminated) unless it changed since the plan — e.g. a
     * DeleteOnTermination volume the plan did not name is attached now. Already gone counts as done.
     */
    async cleanupTerminateInstance(args: { region: string; instanceId: string } & Checked): Promise<StepOutcome> {
      return step(
        `terminate ${args.instanceId}`,
        async () =>
          changed(await instanceChanged(d, args.region, args.instanceId, args.expect, 'terminate')) ??
          goneIfNotFound(async () => void (await deps.ec2(args.region).send(new TerminateInstancesCommand({ InstanceIds: [args.instanceId] }), opts()))),
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

    /**
     * Detaches the volume from the planned instance only; already detached is done, already gone is
     * `gone`, attached elsewhere (or otherwise changed since the plan) is `changed`.
     */
    async cleanupDetachVolume(args: { region: string; volumeId: string; instanceId?: string; device?: string } & Checked): Promise<StepOutcome> {
      return step(
        `detach ${args.volumeId}`,
        async () => {
          const found = await describeById(() => describeVolumes(args.region, undefined, [args.volumeId]));
          const v = found?.[0];
          if (!v || GONE_VOLUME_STATES.has(v.State ?? '')) return { gone: true };
          const a = (v.Attachments ?? []).find((x) => x.State === 'attached' || x.State === 'attaching');
          if (!a) return { gone: false };
          if (args.instanceId !== undefined && a.InstanceId !== args.instanceId)
            return { gone: false, changed: `it is attached to ${a.InstanceId} (the plan saw ${args.instanceId})` };
          const why = await volumeChanged(d, args.region, args.volumeId, args.expect, 'detach');
          if (why) return { gone: false, changed: why };
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
    async cleanupSnapshotVolume(args: { region: string; volumeId: string; workflowId: string } & Checked): Promise<StepOutcome & { snapshotId?: string }> {
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
          const why = await volumeChanged(d, args.region, args.volumeId, args.expect, 'snapshot');
          if (why) return { gone: false, changed: why };
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

    /** Deletes the volume unless it changed since the plan. NotFound means already gone; VolumeInUse is a Conflict, retried. */
    async cleanupDeleteVolume(args: { region: string; volumeId: string } & Checked): Promise<StepOutcome> {
      return step(
        `delete ${args.volumeId}`,
        async () =>
          changed(await volumeChanged(d, args.region, args.volumeId, args.expect, 'delete')) ??
          goneIfNotFound(async () => void (await deps.ec2(args.region).send(new DeleteVolumeCommand({ VolumeId: args.volumeId }), opts()))),
        backoff,
      );
    },

    /** Deletes the snapshot unless a protection tag was added since the plan. NotFound means already gone. */
    async cleanupDeleteSnapshot(args: { region: string; snapshotId: string } & Checked): Promise<StepOutcome> {
      return step(
        `delete ${args.snapshotId}`,
        async () =>
          changed(await snapshotChanged(d, args.region, args.snapshotId, args.expect)) ??
          goneIfNotFound(async () => void (await deps.ec2(args.region).send(new DeleteSnapshotCommand({ SnapshotId: args.snapshotId }), opts()))),
        backoff,
      );
    },

    /** Aborts the multipart upload, freeing its parts. NoSuchUpload means already gone. */
    async cleanupAbortMultipartUpload(
      args: { region: string; profile?: string; bucket: string; key: string; uploadId: string } & Checked,
    ): Promise<StepOutcome> {
      return step(
        `abort upload ${args.uploadId} of s3://${args.bucket}/${args.key}`,
        async () =>
          changed(await s3Changed(d, args, args.bucket, args.expect)) ??
          goneIfNotFound(async () => {
            await (
              await deps.s3(args)
            ).send(new AbortMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, UploadId: args.uploadId }), {
              abortSignal: abortSignal(),
            });
          }),
        backoff,
      );
    },

    /**
     * Deletes the objects under the folder `PREFIX/` (a prefix without the slash means that folder,
     * never `PREFIX*`), a page (≤1000 keys) at a time, heartbeating the count — but first compares
     * what is there with what the plan counted (and the bucket's protection): a difference is
     * `changed` and nothing is deleted. Only keys it listed under the folder are deleted.
     * Idempotent: a retry counts what it deleted before (heartbeat) plus what is left.
     */
    async cleanupDeleteS3Prefix(
      args: { region: string; profile?: string; bucket: string; prefix: string } & Checked,
    ): Promise<StepOutcome & { objects: number }> {
      const ctx = Context.current();
      const prefix = folderPrefix(args.prefix);
      const before = (ctx.info.heartbeatDetails as { objects?: number; bytes?: number } | undefined) ?? {};
      return step(
        `delete s3://${args.bucket}/${prefix}`,
        async () => {
          if (prefix === '') throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete the whole bucket ${args.bucket}: the prefix is empty`);
          const keys: { key: string; size: number }[] = [];
          const found = await d.objectsUnder(args, args.bucket, prefix, keys);
          const seen = { count: found.count + (before.objects ?? 0), bytes: found.bytes + (before.bytes ?? 0) };
          const why = await s3Changed(d, args, args.bucket, args.expect, seen);
          if (why) return { gone: false, changed: why, objects: 0 };
          if (keys.length === 0) return { gone: (before.objects ?? 0) === 0, objects: before.objects ?? 0 };
          let objects = before.objects ?? 0;
          let bytes = before.bytes ?? 0;
          for (let i = 0; i < keys.length; i += 1000) {
            const chunk = keys.slice(i, i + 1000);
            const res = await (
              await deps.s3(args)
            ).send(new DeleteObjectsCommand({ Bucket: args.bucket, Delete: { Objects: chunk.map((o) => ({ Key: o.key })), Quiet: true } }), {
              abortSignal: abortSignal(),
            });
            const firstError = res.Errors?.[0];
            if (firstError) {
              throw new TrainctlError(
                firstError.Code === 'AccessDenied' ? ErrorKind.PermissionDenied : ErrorKind.Transient,
                `could not delete ${res.Errors?.length} objects under s3://${args.bucket}/${prefix}, e.g. ${firstError.Key}: ${firstError.Code ?? 'error'}`,
              );
            }
            objects += chunk.length;
            bytes += chunk.reduce((n, o) => n + o.size, 0);
            ctx.heartbeat({ objects, bytes });
          }
          return { gone: false, objects };
        },
        backoff,
      );
    },
  };
}
