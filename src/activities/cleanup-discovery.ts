import { log } from '@temporalio/activity';
import {
  paginateDescribeInstances,
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
  type EC2Client,
  type Filter,
  type Instance,
  type Snapshot,
  type Volume,
} from '@aws-sdk/client-ec2';
import { GetBucketTaggingCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { listAllMultipartUploads } from '../aws/multipart.js';
import { tagsOf } from '../aws/tags.js';
import { parseS3Id, type DiscoveredResource, type Discovery } from '../cleanup-plan.js';
import { folderPrefix } from '../cleanup-tags.js';
import type { CleanupSelector, PrefixObjects } from '../contracts/cleanup.js';
import { CLEANUP_MAX_DISCOVERY_BYTES, NARROW_THE_SELECTOR } from '../cleanup-chunks.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { abortSignal, step, type ThrottleBackoff } from './aws-call.js';
import type { S3For, S3Target } from '../aws/profiles.js';

export interface CleanupDiscoveryDeps {
  ec2(region: string): EC2Client;
  s3: S3For;
  throttleBackoff?: ThrottleBackoff;
}

export function isNotFound(err: unknown): boolean {
  return classify(err) === ErrorKind.NotFound;
}

export const GONE_INSTANCE_STATES = new Set(['terminated', 'shutting-down']);
export const GONE_VOLUME_STATES = new Set(['deleting', 'deleted']);

/**
 * Read-only EC2 and S3 lookups, all pages, cancellable (the activity's abort signal): by filters,
 * or by ids (then without a page size, which EC2 refuses together with ids).
 */
export function createDescribers(deps: Pick<CleanupDiscoveryDeps, 'ec2' | 's3'>) {
  const commandOptions = () => ({ abortSignal: abortSignal() });

  async function describeInstances(region: string, filters: Filter[] | undefined, ids?: string[]): Promise<Instance[]> {
    const out: Instance[] = [];
    const config = { client: deps.ec2(region), ...(ids ? {} : { pageSize: 500 }) };
    const input = { ...(filters ? { Filters: filters } : {}), ...(ids ? { InstanceIds: ids } : {}) };
    for await (const page of paginateDescribeInstances(config, input, commandOptions()))
      for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
    return out;
  }

  async function describeVolumes(region: string, filters: Filter[] | undefined, ids?: string[]): Promise<Volume[]> {
    const out: Volume[] = [];
    const config = { client: deps.ec2(region), ...(ids ? {} : { pageSize: 500 }) };
    const input = { ...(filters ? { Filters: filters } : {}), ...(ids ? { VolumeIds: ids } : {}) };
    for await (const page of paginateDescribeVolumes(config, input, commandOptions())) out.push(...(page.Volumes ?? []));
    return out;
  }

  async function describeSnapshots(region: string, filters: Filter[] | undefined, ids?: string[]): Promise<Snapshot[]> {
    const out: Snapshot[] = [];
    const input = { OwnerIds: ['self'], ...(filters ? { Filters: filters } : {}), ...(ids ? { SnapshotIds: ids } : {}) };
    for await (const page of paginateDescribeSnapshots({ client: deps.ec2(region) }, input, commandOptions())) out.push(...(page.Snapshots ?? []));
    return out;
  }

  /** One id at a time, so that one missing id does not hide the others: undefined when it does not exist. */
  async function describeById<T>(describe: () => Promise<T[]>): Promise<T[] | undefined> {
    try {
      return await describe();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async function bucketTags(at: S3Target, bucket: string): Promise<Record<string, string>> {
    try {
      const res = await (await deps.s3(at)).send(new GetBucketTaggingCommand({ Bucket: bucket }), commandOptions());
      return tagsOf(res.TagSet);
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchTagSet') return {};
      throw err;
    }
  }

  async function uploadsUnder(at: S3Target, bucket: string, prefix: string, tags: Record<string, string>): Promise<DiscoveredResource[]> {
    const uploads = await listAllMultipartUploads(await deps.s3(at), bucket, prefix || undefined, abortSignal());
    return uploads.flatMap((u): DiscoveredResource[] =>
      u.Key && u.UploadId
        ? [
            {
              id: `s3://${at.profile ? `${at.profile}@` : ''}${bucket}/${u.Key}#${u.UploadId}`,
              kind: 'multipart-upload',
              tags,
              state: 'in-progress',
              ...(u.Initiated ? { createdAt: u.Initiated.toISOString() } : {}),
              ...(at.profile ? { profile: at.profile } : {}),
              bucket,
              key: u.Key,
              uploadId: u.UploadId,
            },
          ]
        : [],
    );
  }

  /**
   * Every object under a folder prefix (which ends with `/`, so `data/` never reaches `data-old/`):
   * count, bytes, the first keys, and with `keys` all of them (what a deletion may delete).
   */
  async function objectsUnder(at: S3Target, bucket: string, prefix: string, keys?: { key: string; size: number }[]): Promise<PrefixObjects> {
    const out: PrefixObjects = { count: 0, bytes: 0, sample: [] };
    let token: string | undefined;
    do {
      const page = await (await deps.s3(at)).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }), commandOptions());
      for (const o of page.Contents ?? []) {
        if (!o.Key || !o.Key.startsWith(prefix)) continue;
        out.count += 1;
        out.bytes += o.Size ?? 0;
        if (out.sample.length < 10) out.sample.push(o.Key);
        keys?.push({ key: o.Key, size: o.Size ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  return { describeInstances, describeVolumes, describeSnapshots, describeById, bucketTags, uploadsUnder, objectsUnder };
}

type Describers = ReturnType<typeof createDescribers>;

async function volumeResource(d: Describers, region: string, v: Volume, instanceStates: Map<string, string>): Promise<DiscoveredResource> {
  const a = (v.Attachments ?? []).find((x) => x.State === 'attached' || x.State === 'attaching');
  let attachment: DiscoveredResource['attachment'];
  if (a?.InstanceId) {
    let state = instanceStates.get(a.InstanceId);
    if (state === undefined) {
      const found = await d.describeById(() => d.describeInstances(region, undefined, [a.InstanceId!]));
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
    ...(v.VolumeType ? { type: v.VolumeType } : {}),
    ...(attachment ? { attachment } : {}),
  };
}

async function instanceResource(d: Describers, region: string, i: Instance): Promise<DiscoveredResource> {
  const mappings = (i.BlockDeviceMappings ?? []).filter((b) => b.Ebs?.VolumeId);
  const ids = mappings.map((b) => b.Ebs!.VolumeId!);
  const vols = ids.length ? ((await d.describeById(() => d.describeVolumes(region, undefined, ids))) ?? []) : [];
  const tagsById = new Map(vols.map((v) => [v.VolumeId ?? '', tagsOf(v.Tags)]));
  return {
    id: i.InstanceId ?? '',
    kind: 'instance',
    tags: tagsOf(i.Tags),
    state: i.State?.Name ?? 'unknown',
    ...(i.LaunchTime ? { createdAt: i.LaunchTime.toISOString() } : {}),
    ...(i.InstanceType ? { type: i.InstanceType } : {}),
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

/** What one discovery gathers as it goes. */
interface Found {
  region: string;
  selector: CleanupSelector;
  tagFilters: Filter[];
  /** Search EC2 by filters (tags or age given), besides the ids listed explicitly. */
  searchEc2: boolean;
  resources: DiscoveredResource[];
  missingIds: string[];
  instanceStates: Map<string, string>;
}

const explicit = (f: Found, prefix: string) => f.selector.ids.filter((id) => id.startsWith(prefix));
const selected = (f: Found, kind: CleanupSelector['kinds'][number]) => f.selector.kinds.includes(kind);

async function discoverInstances(d: Describers, f: Found): Promise<void> {
  const instances: Instance[] = [];
  if (selected(f, 'instance') && f.searchEc2) instances.push(...(await d.describeInstances(f.region, f.tagFilters)));
  for (const id of explicit(f, 'i-')) {
    const found = await d.describeById(() => d.describeInstances(f.region, undefined, [id]));
    if (found?.[0]) instances.push(found[0]);
    else f.missingIds.push(id);
  }
  for (const i of instances) {
    const state = i.State?.Name ?? 'unknown';
    if (i.InstanceId) f.instanceStates.set(i.InstanceId, state);
    if (GONE_INSTANCE_STATES.has(state)) {
      if (f.selector.ids.includes(i.InstanceId ?? '')) f.missingIds.push(i.InstanceId ?? '');
      continue;
    }
    f.resources.push(await instanceResource(d, f.region, i));
  }
}

async function discoverVolumes(d: Describers, f: Found): Promise<void> {
  const volumes: Volume[] = [];
  if (selected(f, 'volume') && f.searchEc2) volumes.push(...(await d.describeVolumes(f.region, f.tagFilters)));
  for (const id of explicit(f, 'vol-')) {
    const found = await d.describeById(() => d.describeVolumes(f.region, undefined, [id]));
    if (found?.[0]) volumes.push(found[0]);
    else f.missingIds.push(id);
  }
  for (const v of volumes) {
    if (GONE_VOLUME_STATES.has(v.State ?? '')) {
      if (f.selector.ids.includes(v.VolumeId ?? '')) f.missingIds.push(v.VolumeId ?? '');
      continue;
    }
    f.resources.push(await volumeResource(d, f.region, v, f.instanceStates));
  }
}

async function discoverSnapshots(d: Describers, f: Found): Promise<void> {
  const snapshots: Snapshot[] = [];
  if (selected(f, 'snapshot') && f.searchEc2) snapshots.push(...(await d.describeSnapshots(f.region, f.tagFilters)));
  for (const id of explicit(f, 'snap-')) {
    const found = await d.describeById(() => d.describeSnapshots(f.region, undefined, [id]));
    if (found?.[0]) snapshots.push(found[0]);
    else f.missingIds.push(id);
  }
  f.resources.push(...snapshots.map(snapshotResource));
}

/** Multipart uploads and the prefix of the selected bucket, and every s3:// id listed; each carries its bucket's tags. */
async function discoverS3(d: Describers, f: Found): Promise<void> {
  const s3Tags = new Map<string, Record<string, string>>();
  // Each S3 resource is reached through its store's profile (absent: the worker's default).
  const at = (profile: string | undefined): S3Target => ({ region: f.region, ...(profile ? { profile } : {}) });
  const tagsOfBucket = async (profile: string | undefined, bucket: string) => {
    const key = `${profile ?? ''}@${bucket}`;
    let t = s3Tags.get(key);
    if (!t) s3Tags.set(key, (t = await d.bucketTags(at(profile), bucket)));
    return t;
  };
  const prefixResource = async (profile: string | undefined, bucket: string, prefix: string): Promise<DiscoveredResource> => ({
    id: `s3://${profile ? `${profile}@` : ''}${bucket}/${prefix}`,
    kind: 's3-prefix',
    tags: await tagsOfBucket(profile, bucket),
    state: 'present',
    ...(profile ? { profile } : {}),
    bucket,
    prefix,
    objects: await d.objectsUnder(at(profile), bucket, prefix),
  });
  if (f.selector.s3) {
    // A prefix names a folder: `data` means `data/`, never `data*` (issue 10, guard 2).
    const { bucket, profile } = f.selector.s3;
    const prefix = folderPrefix(f.selector.s3.prefix);
    if (selected(f, 'multipart-upload')) f.resources.push(...(await d.uploadsUnder(at(profile), bucket, prefix, await tagsOfBucket(profile, bucket))));
    if (selected(f, 's3-prefix') && prefix !== '') f.resources.push(await prefixResource(profile, bucket, prefix));
  }
  for (const id of f.selector.ids.filter((x) => x.startsWith('s3://'))) {
    const parsed = parseS3Id(id);
    if (!parsed) continue;
    try {
      const tags = await tagsOfBucket(parsed.profile, parsed.bucket);
      if (parsed.uploadId === undefined) {
        f.resources.push(await prefixResource(parsed.profile, parsed.bucket, folderPrefix(parsed.key)));
        continue;
      }
      const upload = (await d.uploadsUnder(at(parsed.profile), parsed.bucket, parsed.key, tags)).find((u) => u.id === id);
      if (upload) f.resources.push(upload);
      else f.missingIds.push(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      f.missingIds.push(id);
    }
  }
}

export function createCleanupDiscovery(deps: CleanupDiscoveryDeps) {
  const d = createDescribers(deps);
  return {
    /**
     * Finds the resources a selector names in one region: instances, volumes and snapshots carrying
     * every selected tag (any managed state: the planner says why unmanaged ones are skipped), every
     * id listed explicitly, multipart uploads and the prefix of the selected bucket (which carry the
     * bucket's tags). Read-only, so safe to retry. Refuses (InvalidInput) a result over
     * `CLEANUP_MAX_DISCOVERY_BYTES` as JSON, naming how to narrow the selector.
     */
    async cleanupDiscover(args: { region: string; selector: CleanupSelector }): Promise<Discovery> {
      const { region, selector } = args;
      return step(
        `discover cleanup candidates in ${region}`,
        async () => {
          const discoveredAt = new Date().toISOString();
          const tagFilters: Filter[] = Object.entries(selector.tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
          const f: Found = {
            region,
            selector,
            tagFilters,
            searchEc2: tagFilters.length > 0 || selector.olderThan !== undefined,
            resources: [],
            missingIds: [],
            instanceStates: new Map(),
          };
          await discoverInstances(d, f);
          await discoverVolumes(d, f);
          await discoverSnapshots(d, f);
          await discoverS3(d, f);
          log.info('cleanup candidates discovered', { region, resources: f.resources.length, missing: f.missingIds.length });
          const discovery: Discovery = { region, discoveredAt, resources: f.resources, missingIds: f.missingIds };
          const bytes = Buffer.byteLength(JSON.stringify(discovery));
          if (bytes > CLEANUP_MAX_DISCOVERY_BYTES) {
            throw new TrainctlError(
              ErrorKind.InvalidInput,
              `the selector matches too much for one cleanup: ${f.resources.length} resources found (${bytes} bytes, at most ${CLEANUP_MAX_DISCOVERY_BYTES}): ${NARROW_THE_SELECTOR}`,
            );
          }
          return discovery;
        },
        deps.throttleBackoff,
      );
    },
  };
}
