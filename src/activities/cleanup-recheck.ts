/**
 * The re-check before every destructive cleanup step (issue 10, guard 4): time passes between plan
 * and apply, so each step describes its resource again and compares it with what the plan saw
 * (`PlannedResource.expect`). A difference is a reason the step returns instead of acting; the
 * workflow skips that resource as "changed since the plan" and goes on with the rest.
 *
 * @module
 */
import { tagsOf } from '../aws/tags.js';
import type { S3Target } from '../aws/profiles.js';
import { PROTECTION_RANK, tagProtection } from '../cleanup-tags.js';
import type { CleanupExpectation } from '../contracts/cleanup.js';
import type { createDescribers } from './cleanup-discovery.js';

type Describers = ReturnType<typeof createDescribers>;

/** A protection tag added (or raised) since the plan. */
function protectionAdded(tags: Record<string, string>, e: CleanupExpectation): string | undefined {
  const now = tagProtection(tags);
  return PROTECTION_RANK[now] > PROTECTION_RANK[e.protection] ? `it is ${now} now (the plan saw ${e.protection})` : undefined;
}

const RUNNING = new Set(['pending', 'running']);

/**
 * Why the instance may no longer be stopped or terminated as planned, or undefined. `gone` when it
 * does not exist (the step itself then counts it as already gone).
 */
export async function instanceChanged(
  d: Describers,
  region: string,
  id: string,
  e: CleanupExpectation | undefined,
  step: 'stop' | 'terminate',
): Promise<string | undefined> {
  if (!e) return undefined;
  const i = (await d.describeById(() => d.describeInstances(region, undefined, [id])))?.[0];
  if (!i) return undefined;
  const reasons = [protectionAdded(tagsOf(i.Tags), e)];
  if (e.type !== undefined && i.InstanceType !== e.type) reasons.push(`its type is ${i.InstanceType} (the plan saw ${e.type})`);
  const state = i.State?.Name ?? 'unknown';
  if (step === 'stop' && e.state !== undefined && !RUNNING.has(e.state) && RUNNING.has(state)) reasons.push(`it is ${state} now (the plan saw it ${e.state})`);
  if (step === 'terminate') {
    // AWS deletes DeleteOnTermination volumes with the instance: only those the plan named may go.
    const allowed = new Set(e.deleteOnTermination ?? []);
    const extra = (i.BlockDeviceMappings ?? []).filter((b) => b.Ebs?.VolumeId && b.Ebs.DeleteOnTermination && !allowed.has(b.Ebs.VolumeId));
    if (extra.length)
      reasons.push(`terminating it would delete ${extra.map((b) => b.Ebs!.VolumeId).join(', ')} (DeleteOnTermination), which the plan did not name`);
  }
  return joined(reasons);
}

/** Why the volume may no longer be detached, snapshotted or deleted as planned, or undefined. */
export async function volumeChanged(
  d: Describers,
  region: string,
  id: string,
  e: CleanupExpectation | undefined,
  step: 'detach' | 'snapshot' | 'delete',
): Promise<string | undefined> {
  if (!e) return undefined;
  const v = (await d.describeById(() => d.describeVolumes(region, undefined, [id])))?.[0];
  if (!v) return undefined;
  const reasons = [protectionAdded(tagsOf(v.Tags), e)];
  if (e.sizeGiB !== undefined && v.Size !== e.sizeGiB) reasons.push(`its size is ${v.Size} GiB (the plan saw ${e.sizeGiB} GiB)`);
  if (e.type !== undefined && v.VolumeType !== e.type) reasons.push(`its type is ${v.VolumeType} (the plan saw ${e.type})`);
  const holder = (v.Attachments ?? []).find((a) => a.State === 'attached' || a.State === 'attaching')?.InstanceId;
  if (step === 'detach') {
    if (holder !== undefined && holder !== e.attachedTo) reasons.push(`it is attached to ${holder} (the plan saw ${e.attachedTo ?? 'no instance'})`);
  } else if (holder !== undefined) {
    reasons.push(`it is attached to ${holder} again`);
  }
  return joined(reasons);
}

/** Why the snapshot may no longer be deleted as planned, or undefined. */
export async function snapshotChanged(d: Describers, region: string, id: string, e: CleanupExpectation | undefined): Promise<string | undefined> {
  if (!e) return undefined;
  const s = (await d.describeById(() => d.describeSnapshots(region, undefined, [id])))?.[0];
  if (!s) return undefined;
  return joined([protectionAdded(tagsOf(s.Tags), e)]);
}

/** Why an S3 target may no longer be deleted as planned (its bucket now protected, its objects changed), or undefined. */
export async function s3Changed(
  d: Describers,
  at: S3Target,
  bucket: string,
  e: CleanupExpectation | undefined,
  objects?: { count: number; bytes: number },
): Promise<string | undefined> {
  if (!e) return undefined;
  const reasons = [protectionAdded(await d.bucketTags(at, bucket), e)];
  if (objects && e.objects && (objects.count !== e.objects.count || objects.bytes !== e.objects.bytes)) {
    reasons.push(`it holds ${objects.count} objects, ${objects.bytes} bytes (the plan saw ${e.objects.count} objects, ${e.objects.bytes} bytes)`);
  }
  return joined(reasons);
}

function joined(reasons: (string | undefined)[]): string | undefined {
  const r = reasons.filter((x): x is string => x !== undefined);
  return r.length ? r.join('; ') : undefined;
}
