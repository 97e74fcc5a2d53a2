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
  fnv1a64,
  type CleanupDependency,
  type CleanupInput,
  type CleanupKind,
  type CleanupPlan,
  type PlannedResource,
  type SkippedResource,
} from './contracts/cleanup.js';
import { PROJECT_TAG } from './contracts/cost.js';

/** Tag key trainctl puts on a snapshot taken before a volume's deletion. */
export const SOURCE_VOLUME_TAG = 'trainctl:source-volume';

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
  /** S3 resources. */
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

const TRUTHY = /^(true|yes|1)$/i;

/** The value of a tag, its key compared case-insensitively. */
export function tagValue(tags: Record<string, string>, key: string): string | undefined {
  const wanted = key.toLowerCase();
  for (const [k, v] of Object.entries(tags)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

/** Whether the tag is set to true/yes/1 (any case), its key compared case-insensitively. */
export function tagIsTrue(tags: Record<string, string>, key: string): boolean {
  const v = tagValue(tags, key);
  return v !== undefined && TRUTHY.test(v.trim());
}

/** The tag as written on the resource (`Trainctl:Protected=TRUE`), for skip reasons. */
function tagAsWritten(tags: Record<string, string>, key: string): string {
  const wanted = key.toLowerCase();
  const entry = Object.entries(tags).find(([k]) => k.toLowerCase() === wanted);
  return entry ? `${entry[0]}=${entry[1]}` : key;
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** `30m` → 1 800 000. Throws on anything the schema would reject. */
export function durationMs(d: string): number {
  const m = /^(\d+)([smhdw])$/.exec(d);
  if (!m) throw new RangeError(`not a duration: ${d}`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/**
 * The plan's hash: region, options, every planned resource with its steps and dependencies, every
 * skip with its reason. Not the discovery time, so re-planning an unchanged account gives the same hash.
 */
export function planHash(plan: Omit<CleanupPlan, 'hash' | 'discoveredAt' | 'dryRun' | 'needsApproval' | 'approvalReasons'>): string {
  return fnv1a64(
    canonical({
      region: plan.region,
      force: plan.force,
      snapshotBeforeDelete: plan.snapshotBeforeDelete,
      resources: plan.resources.map((r) => ({ id: r.id, kind: r.kind, steps: r.steps, dependsOn: r.dependsOn, protection: r.protection })),
      skipped: plan.skipped.map((s) => ({ id: s.id, reason: s.reason })),
    }),
  );
}

type Protection = { level: 'protected' | 'important'; because: string } | undefined;

function protectionOf(r: { id: string; tags: Record<string, string> }, protectedIds: ReadonlySet<string>): Protection {
  if (protectedIds.has(r.id)) return { level: 'protected', because: 'its id is in the protected-ids list' };
  if (tagIsTrue(r.tags, TagKey.Protected)) return { level: 'protected', because: `tag ${tagAsWritten(r.tags, TagKey.Protected)}` };
  if (tagIsTrue(r.tags, TagKey.Important)) return { level: 'important', because: `tag ${tagAsWritten(r.tags, TagKey.Important)}` };
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
function selectionBlocks(r: DiscoveredResource, input: CleanupInput, explicit: boolean, now: number): string | undefined {
  if (explicit) return undefined;
  const sel = input.selector;
  if (!sel.kinds.includes(r.kind)) return `kind ${r.kind} is not selected`;
  if (!matchesTags(r.tags, sel.tags)) return 'does not carry every selected tag';
  if (sel.olderThan !== undefined) {
    const created = r.createdAt === undefined ? NaN : Date.parse(r.createdAt);
    if (Number.isNaN(created)) return `age unknown, so not older than ${sel.olderThan}`;
    if (now - created < durationMs(sel.olderThan)) return `newer than ${sel.olderThan}`;
  }
  if (!tagIsTrue(r.tags, TagKey.Managed)) return `not managed by trainctl (no ${TagKey.Managed}=true tag) and not listed by id`;
  return undefined;
}

type Chosen = Map<string, { r: DiscoveredResource; protection: Protection }>;

/** Sorted by id, each id once, then split into what the selector and protection allow and what they skip. */
function choose(
  discovery: Discovery,
  input: CleanupInput,
  explicitIds: ReadonlySet<string>,
  protectedIds: ReadonlySet<string>,
  skipped: SkippedResource[],
): Chosen {
  const now = Date.parse(discovery.discoveredAt);
  const chosen: Chosen = new Map();
  const seen = new Set<string>();
  const resources = [...discovery.resources].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).filter((r) => !seen.has(r.id) && seen.add(r.id));
  for (const r of resources) {
    const explicit = explicitIds.has(r.id);
    const notSelected = selectionBlocks(r, input, explicit, now);
    if (notSelected) {
      skipped.push({ id: r.id, kind: r.kind, reason: notSelected });
      continue;
    }
    const protection = protectionOf(r, protectedIds);
    const blocked = protectionBlocks(protection, input.force, explicit);
    if (blocked) {
      skipped.push({ id: r.id, kind: r.kind, reason: blocked });
      continue;
    }
    chosen.set(r.id, { r, protection });
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
): void {
  for (const [id, { r }] of [...chosen]) {
    if (r.kind !== 'instance') continue;
    for (const v of r.volumes ?? []) {
      if (!v.deleteOnTermination || chosen.has(v.volumeId)) continue;
      const blocked = protectionBlocks(protectionOf({ id: v.volumeId, tags: v.tags }, protectedIds), input.force, explicitIds.has(v.volumeId));
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
function lineOf(r: DiscoveredResource, protection: Protection, chosen: Chosen, volumeIds: string[], input: CleanupInput): PlannedResource {
  const project = tagValue(r.tags, PROJECT_TAG);
  const base = {
    id: r.id,
    kind: r.kind,
    ...(nameOf(r.tags) ? { name: nameOf(r.tags) } : {}),
    ...(protection ? { protection: protection.level } : {}),
    ...(project ? { project } : {}),
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
      return { ...base, steps: [CleanupStep.abortMultipartUpload], dependsOn: [], target: { bucket: r.bucket, key: r.key, uploadId: r.uploadId } };
    case 's3-prefix':
      return { ...base, steps: [CleanupStep.deleteS3Prefix], dependsOn: [], target: { bucket: r.bucket, prefix: r.prefix } };
  }
}

/** Why a real run of this plan must wait for a person's approval (none for a dry run). */
function approvalReasonsOf(planned: PlannedResource[], input: CleanupInput): string[] {
  const reasons: string[] = [];
  if (input.dryRun) return reasons;
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
export function planCleanup(discovery: Discovery, input: CleanupInput): CleanupPlan {
  const explicitIds = new Set(input.selector.ids);
  const protectedIds = new Set(input.protectedIds);
  const skipped: SkippedResource[] = [];
  const chosen = choose(discovery, input, explicitIds, protectedIds, skipped);
  keepInstancesHoldingKeptVolumes(chosen, input, explicitIds, protectedIds, skipped);
  keepVolumesHeldByRunningInstances(chosen, skipped);

  const volumeIds = [...chosen.values()].filter(({ r }) => r.kind === 'volume').map(({ r }) => r.id);
  const planned = [...chosen.values()].map(({ r, protection }) => lineOf(r, protection, chosen, volumeIds, input));
  for (const id of [...discovery.missingIds].sort()) skipped.push({ id, kind: 'unknown', reason: 'not found: it does not exist (already gone?)' });
  planned.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  const approvalReasons = approvalReasonsOf(planned, input);
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

/** Parses `s3://BUCKET/KEY#UPLOAD_ID` (an upload) or `s3://BUCKET/PREFIX` (a prefix). */
export function parseS3Id(id: string): { bucket: string; key: string; uploadId?: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/([^#]+)(?:#(.+))?$/.exec(id);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  return { bucket: m[1], key: m[2], ...(m[3] !== undefined ? { uploadId: m[3] } : {}) };
}
