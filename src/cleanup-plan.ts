/**
 * Cleanup planning: pure functions from "what exists" (a {@link Discovery}) and the request to a
 * {@link CleanupPlan}: which resources are deleted with which steps, which are skipped and why,
 * the dependencies between resources, and a hash the approver must name.
 *
 * Imported by workflow code, the CLI and the activities, so no Node built-ins, no AWS SDK and no
 * clock: time comes in as `Discovery.discoveredAt`. The plan's types are in `contracts/cleanup.ts`.
 *
 * @module
 */
import { TagKey } from './contracts/common.js';
import {
  CleanupStep,
  canonical,
  type CleanupDependency,
  type CleanupExpectation,
  type CleanupInput,
  type CleanupKind,
  type CleanupPlan,
  type PlannedResource,
  type PrefixObjects,
  type SkippedResource,
} from './contracts/cleanup.js';
import { PROJECT_TAG } from './contracts/cost.js';
import { sha256Hex } from './contracts/sha256.js';
import { folderOfS3Id, isBackupSnapshot, tagAsWritten, tagExplicitlyTrue, tagIsTrue, tagProtects, tagValue, SOURCE_VOLUME_TAG } from './cleanup-tags.js';

export { SOURCE_VOLUME_TAG, tagIsTrue, tagValue };

/** One resource as discovery found it. Tags are the resource's own (a multipart upload or prefix carries its bucket's). */
export interface DiscoveredResource {
  id: string;
  kind: CleanupKind;
  tags: Record<string, string>;
  state: string;
  /** ISO time of creation (launch, create, start, initiated), when known. */
  createdAt?: string;
  /** Instances: the EBS volumes attached to it. */
  volumes?: { volumeId: string; device: string; deleteOnTermination: boolean; tags: Record<string, string> }[];
  /** Volumes: the instance holding it, and that instance's state. */
  attachment?: { instanceId: string; device: string; instanceState: string };
  sizeGiB?: number;
  /** Volume type or instance type. */
  type?: string;
  /** S3 prefixes: what is under the folder. */
  objects?: PrefixObjects;
  /** S3 resources: the AWS profile of their store (absent: the worker's default), bucket, key, upload, prefix. */
  profile?: string;
  bucket?: string;
  key?: string;
  uploadId?: string;
  prefix?: string;
}

export interface Discovery {
  region: string;
  discoveredAt: string;
  resources: DiscoveredResource[];
  /** Ids listed explicitly that do not exist. */
  missingIds: string[];
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** `30m` → 1 800 000. Throws on anything the schema would reject. */
export function durationMs(d: string): number {
  const m = /^(\d+)([smhdw])$/.exec(d);
  if (!m) throw new RangeError(`not a duration: ${d}`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/**
 * The plan's hash: SHA-256 over the complete plan — region, flags, every planned resource whole
 * (steps, dependencies, targets, notes, object counts, what is re-checked), every skip with its
 * reason, and the counts. Not the discovery time (re-planning an unchanged account gives the same
 * hash), nor the approval verdict (which follows from the request, bound by the workflow id).
 */
export function planHash(plan: Omit<CleanupPlan, 'hash' | 'discoveredAt' | 'dryRun' | 'needsApproval' | 'approvalReasons'>): string {
  return sha256Hex(
    canonical({
      region: plan.region,
      force: plan.force,
      snapshotBeforeDelete: plan.snapshotBeforeDelete,
      resources: plan.resources,
      skipped: plan.skipped,
      counts: { resources: plan.resources.length, skipped: plan.skipped.length },
    }),
  );
}

/** How the planner reads tags: fail closed (issue 10), or as runs planned before that did (replay only). */
export interface PlanOptions {
  failClosed: boolean;
}

type Protection = { level: 'protected' | 'important'; because: string } | undefined;

function protectionOf(r: { id: string; tags: Record<string, string> }, protectedIds: ReadonlySet<string>, o: PlanOptions): Protection {
  const isSet = o.failClosed ? tagProtects : tagIsTrue;
  if (protectedIds.has(r.id)) return { level: 'protected', because: 'its id is in the protected-ids list' };
  if (isSet(r.tags, TagKey.Protected)) return { level: 'protected', because: `tag ${tagAsWritten(r.tags, TagKey.Protected)}` };
  if (isSet(r.tags, TagKey.Important)) return { level: 'important', because: `tag ${tagAsWritten(r.tags, TagKey.Important)}` };
  return undefined;
}

/** Why a protected or important resource may not be deleted under these options, or undefined if it may. */
function protectionBlocks(p: Protection, force: boolean, explicit: boolean): string | undefined {
  if (!p) return undefined;
  if (p.level === 'important' && !force) return `important (${p.because}): deleted only with force`;
  if (p.level === 'protected' && !(force && explicit)) return `protected (${p.because}): deleted only with force and its id listed explicitly`;
  return undefined;
}

function matchesTags(tags: Record<string, string>, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([k, v]) => tags[k] === v);
}

function nameOf(tags: Record<string, string>): string | undefined {
  return tagValue(tags, TagKey.Name);
}

/**
 * Why a discovered resource is not a candidate at all (selector, managed tag), or undefined if it is.
 * Explicitly listed ids are candidates whatever their tags, kind and age.
 */
function selectionBlocks(r: DiscoveredResource, input: CleanupInput, explicit: boolean, now: number, o: PlanOptions): string | undefined {
  if (explicit) return undefined;
  if (o.failClosed && r.kind === 'snapshot' && isBackupSnapshot(r.tags))
    return `a backup taken by snapshot-before-delete (tag ${tagAsWritten(r.tags, SOURCE_VOLUME_TAG)}): deleted only when its id is listed`;
  const sel = input.selector;
  if (!sel.kinds.includes(r.kind)) return `kind ${r.kind} is not selected`;
  if (!matchesTags(r.tags, sel.tags)) return 'does not carry every selected tag';
  if (sel.olderThan !== undefined) {
    const created = r.createdAt === undefined ? NaN : Date.parse(r.createdAt);
    if (Number.isNaN(created)) return `age unknown, so not older than ${sel.olderThan}`;
    if (now - created < durationMs(sel.olderThan)) return `newer than ${sel.olderThan}`;
  }
  const managed = o.failClosed ? tagExplicitlyTrue(r.tags, TagKey.Managed) : tagIsTrue(r.tags, TagKey.Managed);
  if (!managed) return `not managed by trainctl (no explicit ${TagKey.Managed}=true tag) and not listed by id`;
  return undefined;
}

type Chosen = Map<string, { r: DiscoveredResource; protection: Protection; explicit: boolean }>;

/** Sorted by id, each id once, then split into what the selector and protection allow and what they skip. */
function choose(
  discovery: Discovery,
  input: CleanupInput,
  explicitIds: ReadonlySet<string>,
  protectedIds: ReadonlySet<string>,
  skipped: SkippedResource[],
  o: PlanOptions,
): Chosen {
  const now = Date.parse(discovery.discoveredAt);
  const chosen: Chosen = new Map();
  const seen = new Set<string>();
  const resources = [...discovery.resources].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).filter((r) => !seen.has(r.id) && seen.add(r.id));
  for (const r of resources) {
    const explicit = explicitIds.has(r.id);
    const notSelected = selectionBlocks(r, input, explicit, now, o);
    if (notSelected) {
      skipped.push({ id: r.id, kind: r.kind, reason: notSelected });
      continue;
    }
    const protection = protectionOf(r, protectedIds, o);
    const blocked = protectionBlocks(protection, input.force, explicit);
    if (blocked) {
      skipped.push({ id: r.id, kind: r.kind, reason: blocked });
      continue;
    }
    chosen.set(r.id, { r, protection, explicit });
  }
  return chosen;
}

/**
 * An instance whose termination would also delete a volume that is protected (or otherwise kept)
 * is left alone: AWS deletes DeleteOnTermination volumes with the instance.
 */
function keepInstancesHoldingKeptVolumes(
  chosen: Chosen,
  input: CleanupInput,
  explicitIds: ReadonlySet<string>,
  protectedIds: ReadonlySet<string>,
  skipped: SkippedResource[],
  o: PlanOptions,
): void {
  for (const [id, { r }] of [...chosen]) {
    if (r.kind !== 'instance') continue;
    for (const v of r.volumes ?? []) {
      if (!v.deleteOnTermination || chosen.has(v.volumeId)) continue;
      const blocked = protectionBlocks(protectionOf({ id: v.volumeId, tags: v.tags }, protectedIds, o), input.force, explicitIds.has(v.volumeId));
      if (blocked) {
        chosen.delete(id);
        skipped.push({
          id,
          kind: r.kind,
          reason: `terminating it would delete its volume ${v.volumeId} (DeleteOnTermination), which is ${blocked.split(' (')[0]}`,
        });
        break;
      }
    }
  }
}

/** A volume held by an instance this cleanup does not stop can only be detached if that instance is stopped. */
function keepVolumesHeldByRunningInstances(chosen: Chosen, skipped: SkippedResource[]): void {
  for (const [id, { r }] of [...chosen]) {
    const a = r.kind === 'volume' ? r.attachment : undefined;
    if (!a || chosen.has(a.instanceId)) continue;
    if (a.instanceState !== 'stopped' && a.instanceState !== 'terminated') {
      chosen.delete(id);
      skipped.push({
        id,
        kind: r.kind,
        reason: `attached to ${a.instanceState} instance ${a.instanceId}, which this cleanup does not stop; select that instance too or stop it first`,
      });
    }
  }
}

/** One chosen resource's line: its steps, and what other lines they wait for. */
function lineOf(
  r: DiscoveredResource,
  c: { protection: Protection; explicit: boolean },
  chosen: Chosen,
  volumeIds: string[],
  input: CleanupInput,
  o: PlanOptions,
): PlannedResource {
  const { protection } = c;
  const project = tagValue(r.tags, PROJECT_TAG);
  const base = {
    id: r.id,
    kind: r.kind,
    ...(nameOf(r.tags) ? { name: nameOf(r.tags) } : {}),
    ...(protection ? { protection: protection.level } : {}),
    ...(project ? { project } : {}),
    ...(o.failClosed && c.explicit && !tagExplicitlyTrue(r.tags, TagKey.Managed) ? { unmanaged: true as const } : {}),
    ...(r.objects ? { objects: r.objects } : {}),
    expect: expectationOf(r, protection, chosen),
  };
  switch (r.kind) {
    case 'instance': {
      const mine = (r.volumes ?? []).filter((v) => chosen.has(v.volumeId));
      const goesWithIt = (r.volumes ?? []).filter((v) => v.deleteOnTermination && !chosen.has(v.volumeId)).map((v) => v.volumeId);
      return {
        ...base,
        steps: [CleanupStep.stopInstance, CleanupStep.waitInstanceStopped, CleanupStep.terminateInstance, CleanupStep.waitInstanceTerminated],
        dependsOn: mine.map((v) => ({ beforeStep: CleanupStep.terminateInstance, resourceId: v.volumeId, after: 'settled' as const })),
        ...(goesWithIt.length ? { notes: [`AWS deletes ${goesWithIt.join(', ')} with it (DeleteOnTermination)`] } : {}),
        target: {},
      };
    }
    case 'volume': {
      const a = r.attachment;
      const steps: CleanupStep[] = [];
      const dependsOn: CleanupDependency[] = [];
      if (a) {
        steps.push(CleanupStep.detachVolume, CleanupStep.waitVolumeAvailable);
        if (chosen.has(a.instanceId))
          dependsOn.push({ beforeStep: CleanupStep.detachVolume, resourceId: a.instanceId, after: CleanupStep.waitInstanceStopped });
      }
      if (input.snapshotBeforeDelete) steps.push(CleanupStep.snapshotVolume, CleanupStep.waitSnapshotCompleted);
      steps.push(CleanupStep.deleteVolume);
      return { ...base, steps, dependsOn, target: a ? { instanceId: a.instanceId, device: a.device } : {} };
    }
    case 'snapshot':
      return {
        ...base,
        steps: [CleanupStep.deleteSnapshot],
        dependsOn: volumeIds.map((v) => ({ beforeStep: CleanupStep.deleteSnapshot, resourceId: v, after: 'settled' as const })),
        target: {},
      };
    case 'multipart-upload':
      return {
        ...base,
        steps: [CleanupStep.abortMultipartUpload],
        dependsOn: [],
        target: { ...(r.profile ? { profile: r.profile } : {}), bucket: r.bucket, key: r.key, uploadId: r.uploadId },
      };
    case 's3-prefix':
      return {
        ...base,
        steps: [CleanupStep.deleteS3Prefix],
        dependsOn: [],
        target: { ...(r.profile ? { profile: r.profile } : {}), bucket: r.bucket, prefix: r.prefix },
      };
  }
}

/** What the steps check again before they act: what discovery saw, and the protection the plan accepted. */
function expectationOf(r: DiscoveredResource, protection: Protection, chosen: Chosen): CleanupExpectation {
  return {
    protection: protection?.level ?? 'none',
    ...(r.kind === 'instance' || r.kind === 'volume' ? { state: r.state } : {}),
    ...(r.sizeGiB !== undefined ? { sizeGiB: r.sizeGiB } : {}),
    ...(r.type !== undefined ? { type: r.type } : {}),
    ...(r.kind === 'volume' ? { attachedTo: r.attachment?.instanceId ?? null } : {}),
    ...(r.kind === 'instance'
      ? { deleteOnTermination: (r.volumes ?? []).filter((v) => v.deleteOnTermination && !chosen.has(v.volumeId)).map((v) => v.volumeId) }
      : {}),
    ...(r.objects ? { objects: { count: r.objects.count, bytes: r.objects.bytes } } : {}),
  };
}

/** Why a real run of this plan must wait for a person's approval (none for a dry run). */
function approvalReasonsOf(planned: PlannedResource[], input: CleanupInput, o: PlanOptions): string[] {
  const reasons: string[] = [];
  if (input.dryRun) return reasons;
  if (o.failClosed) {
    const s3 = planned.filter((p) => p.kind === 's3-prefix' || p.kind === 'multipart-upload');
    if (s3.length)
      reasons.push(`deletes S3 data: ${s3.map((p) => (p.objects ? `${p.id} (${p.objects.count} objects, ${p.objects.bytes} bytes)` : p.id)).join(', ')}`);
    const unmanaged = planned.filter((p) => p.unmanaged);
    if (unmanaged.length) reasons.push(`deletes resources not managed by trainctl, listed by id: ${unmanaged.map((p) => p.id).join(', ')}`);
  }
  if (planned.length > input.approvalThreshold)
    reasons.push(`deletes ${planned.length} resources, more than the approval threshold of ${input.approvalThreshold}`);
  const risky = planned.filter((p) => p.protection);
  if (risky.length) reasons.push(`deletes protected or important resources: ${risky.map((p) => `${p.id} (${p.protection})`).join(', ')}`);
  return reasons;
}

const KIND_ORDER: CleanupKind[] = ['instance', 'volume', 'snapshot', 'multipart-upload', 's3-prefix'];

/**
 * Plans a cleanup. Pure and deterministic: the same discovery and input give the same plan and hash.
 *
 * Order of the steps (each resource its own line; a dependency makes one line wait for another):
 * instance: stop → wait stopped → (its planned volumes detached) → terminate → wait terminated;
 * volume: (its instance stopped) → detach → wait available → [snapshot → wait completed] → delete;
 * snapshot: (every volume line ended) → delete; multipart upload: abort; prefix: delete objects.
 */
export function planCleanup(discovery: Discovery, input: CleanupInput, options: PlanOptions = { failClosed: true }): CleanupPlan {
  const o = options;
  // `s3://B/data` and `s3://B/data/` name the same folder, as discovery reports it.
  const explicitIds = new Set(o.failClosed ? input.selector.ids.map(folderOfS3Id) : input.selector.ids);
  const protectedIds = new Set(o.failClosed ? input.protectedIds.map(folderOfS3Id) : input.protectedIds);
  const skipped: SkippedResource[] = [];
  const chosen = choose(discovery, input, explicitIds, protectedIds, skipped, o);
  keepInstancesHoldingKeptVolumes(chosen, input, explicitIds, protectedIds, skipped, o);
  keepVolumesHeldByRunningInstances(chosen, skipped);

  const volumeIds = [...chosen.values()].filter(({ r }) => r.kind === 'volume').map(({ r }) => r.id);
  const planned = [...chosen.values()].map((c) => lineOf(c.r, c, chosen, volumeIds, input, o));
  for (const id of [...discovery.missingIds].sort()) skipped.push({ id, kind: 'unknown', reason: 'not found: it does not exist (already gone?)' });
  planned.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  const approvalReasons = approvalReasonsOf(planned, input, o);
  const body = { region: discovery.region, force: input.force, snapshotBeforeDelete: input.snapshotBeforeDelete, resources: planned, skipped };
  return {
    ...body,
    hash: planHash(body),
    dryRun: input.dryRun,
    discoveredAt: discovery.discoveredAt,
    needsApproval: approvalReasons.length > 0,
    approvalReasons,
  };
}

/** Parses `s3://[PROFILE@]BUCKET/KEY#UPLOAD_ID` (an upload) or `s3://[PROFILE@]BUCKET/PREFIX` (a prefix). */
export function parseS3Id(id: string): { profile?: string; bucket: string; key: string; uploadId?: string } | undefined {
  const m = /^s3:\/\/(?:([A-Za-z0-9_.+=,-]{1,64})@)?([^/@]+)\/([^#]+)(?:#(.+))?$/.exec(id);
  if (!m || m[2] === undefined || m[3] === undefined) return undefined;
  return { ...(m[1] ? { profile: m[1] } : {}), bucket: m[2], key: m[3], ...(m[4] !== undefined ? { uploadId: m[4] } : {}) };
}
