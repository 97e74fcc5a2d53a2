/**
 * What the campaign checks after every run, read straight from the emulator (never through the
 * fault proxy) and from the files: objects and their bytes, multipart uploads still open, volumes
 * per Name tag, files and their SHA-256. Nothing here asks trainctl what it did.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DeleteVolumeCommand, DescribeVolumesCommand, DetachVolumeCommand, type EC2Client, type Volume } from '@aws-sdk/client-ec2';

/** The four counters every run reports, besides how it ended. */
export interface Counts {
  duplicates: number;
  leaked: number;
  corruptBytes: number;
  wrongDeletions: number;
  /** What a run that says it completed should have made and the emulator does not show: the run counts as unexpected. */
  unmet: number;
  /** Findings behind non-zero counters, for the report's notes. */
  findings: string[];
}

export function noCounts(): Counts {
  return { duplicates: 0, leaked: 0, corruptBytes: 0, wrongDeletions: 0, unmet: 0, findings: [] };
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Bytes of `got` that differ from `want`, a length difference counting in full. */
export function differingBytes(want: Buffer, got: Buffer): number {
  if (sha256(want) === sha256(got)) return 0;
  let n = Math.abs(want.length - got.length);
  const len = Math.min(want.length, got.length);
  for (let i = 0; i < len; i++) if (want[i] !== got[i]) n++;
  return Math.max(n, 1);
}

/** Every key under `prefix` in `bucket`, with its size. */
export async function objectsUnder(s3: S3Client, bucket: string, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of page.Contents ?? []) if (o.Key) out.set(o.Key, o.Size ?? 0);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function objectBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

/** Multipart uploads still open under `prefix`: each one is stored parts nobody will complete (a leak). */
export async function openUploads(s3: S3Client, bucket: string, prefix: string): Promise<{ key: string; uploadId: string }[]> {
  const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (res.Uploads ?? []).flatMap((u) => (u.Key && u.UploadId ? [{ key: u.Key, uploadId: u.UploadId }] : []));
}

/** Relative path → file bytes of every file under `root` (temp files included: they count as leaks). */
export function filesUnder(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(root, p), readFileSync(p));
    }
  };
  if (statSync(root, { throwIfNoEntry: false })?.isDirectory()) walk(root);
  return out;
}

/**
 * Compares what arrived with what was sent: a missing file is not completed work (counted as corrupt
 * bytes in full, as the run said it completed), a differing one counts its differing bytes, an extra
 * one is a leak (a temp file, a staging object, a stray copy).
 */
export function compareTrees(want: Map<string, Buffer>, got: Map<string, Buffer>, where: string): Counts {
  const c = noCounts();
  for (const [path, data] of want) {
    const arrived = got.get(path);
    if (arrived === undefined) {
      c.corruptBytes += data.length;
      c.findings.push(`${where}: ${path} missing`);
      continue;
    }
    const diff = differingBytes(data, arrived);
    if (diff > 0) {
      c.corruptBytes += diff;
      c.findings.push(`${where}: ${path} differs in ${diff} bytes`);
    }
  }
  for (const path of got.keys()) {
    if (want.has(path)) continue;
    c.leaked++;
    c.findings.push(`${where}: unexpected ${path}`);
  }
  return c;
}

export function addCounts(a: Counts, b: Counts): Counts {
  return {
    duplicates: a.duplicates + b.duplicates,
    leaked: a.leaked + b.leaked,
    corruptBytes: a.corruptBytes + b.corruptBytes,
    wrongDeletions: a.wrongDeletions + b.wrongDeletions,
    unmet: a.unmet + b.unmet,
    findings: [...a.findings, ...b.findings],
  };
}

/** Every volume (not deleted) carrying `tag=value`. */
export async function volumesTagged(ec2: EC2Client, tag: string, value: string): Promise<Volume[]> {
  const res = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: `tag:${tag}`, Values: [value] }] }));
  return (res.Volumes ?? []).filter((v) => v.State !== 'deleted' && v.State !== 'deleting');
}

export async function volumeExists(ec2: EC2Client, id: string): Promise<boolean> {
  try {
    const v = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes?.[0];
    return v !== undefined && v.State !== 'deleted' && v.State !== 'deleting';
  } catch (err) {
    if ((err as { name?: string }).name === 'InvalidVolume.NotFound') return false;
    throw err;
  }
}

/** Housekeeping after the checks: deletes every volume tagged `tag=value` (detaching first). */
export async function deleteVolumesTagged(ec2: EC2Client, tag: string, value: string): Promise<void> {
  for (const v of await volumesTagged(ec2, tag, value)) {
    for (const a of v.Attachments ?? []) {
      await ec2.send(new DetachVolumeCommand({ VolumeId: v.VolumeId, InstanceId: a.InstanceId, Device: a.Device, Force: true })).catch(() => undefined);
    }
    await ec2.send(new DeleteVolumeCommand({ VolumeId: v.VolumeId })).catch(() => undefined);
  }
}

/** Housekeeping after the checks: empties `prefix` of `bucket`, open multipart uploads included. */
export async function emptyPrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  for (;;) {
    const keys = [...(await objectsUnder(s3, bucket, prefix)).keys()].slice(0, 1_000);
    if (keys.length === 0) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
  }
  for (const u of await openUploads(s3, bucket, prefix)) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId })).catch(() => undefined);
  }
}
