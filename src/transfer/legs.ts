/**
 * Pure planning of a transfer's legs: which file goes from where to where, how files are grouped
 * into activities, and what a dry run reports. No Node built-ins: the transfer workflow uses it.
 *
 * @module
 */
import type { DataLocation } from '../contracts/transfer.js';
import { s3LocationUri, type S3Location } from '../contracts/common.js';
import { destinationKey, destinationPath, joinPath, parseS3Uri } from './plan.js';

export interface UploadJob {
  kind: 'upload';
  label: string;
  path: string;
  /** The destination's AWS profile, when its uri names one. */
  profile?: string;
  bucket: string;
  key: string;
  size: number;
}
export interface DownloadJob {
  kind: 'download';
  label: string;
  /** The source's AWS profile, when its uri names one. */
  profile?: string;
  bucket: string;
  key: string;
  path: string;
  size: number;
}
/** S3 → S3: one object from one endpoint (profile) to another, through the orchestration worker. */
export interface CopyJob {
  kind: 'copy';
  label: string;
  source: { profile?: string; bucket: string; key: string };
  destination: { profile?: string; bucket: string; key: string };
  size: number;
}
export type Job = UploadJob | DownloadJob | CopyJob;

function profileOf(loc: { profile?: string }): { profile?: string } {
  return loc.profile ? { profile: loc.profile } : {};
}

/** Where a job reads from and writes to, as a path or an `s3://[PROFILE@]…` uri. */
export function jobEnds(j: Job): { from: string; to: string } {
  const s3 = (e: { profile?: string; bucket: string; key: string }) => s3LocationUri({ profile: e.profile, bucket: e.bucket, prefix: e.key });
  if (j.kind === 'upload') return { from: j.path, to: s3(j) };
  if (j.kind === 'download') return { from: s3(j), to: j.path };
  return { from: s3(j.source), to: s3(j.destination) };
}

/** The source as listed or scanned: one file or a tree, by relative path (with its key for S3). */
export interface SourceList {
  single: boolean;
  files: { rel: string; size: number; key?: string }[];
}

/** Files no bigger than a part go in batches: one activity (and a handful of events) per batch. */
export const BATCH_FILES = 100;
export const BATCH_BYTES = 64 * 1024 * 1024;

/** A folder path or an S3 uri. */
export function pathOf(loc: DataLocation): string {
  return loc.kind === 's3' ? loc.uri : loc.path;
}

/**
 * The legs of a transfer: one (upload or download), or two through a staging prefix (local ↔
 * host: up to staging, then down). Undefined for a direction no leg plan covers.
 */
export function planLegs(src: DataLocation, dst: DataLocation, list: SourceList, srcBucket: string, staging: S3Location | undefined): Job[][] | undefined {
  const { single, files } = list;
  const srcPath = (rel: string) => (single ? pathOf(src) : joinPath(pathOf(src), rel));
  if (src.kind === 's3' && dst.kind === 's3') {
    const from = profileOf(parseS3Uri(src.uri));
    const to = parseS3Uri(dst.uri);
    return [
      files.map((f) => ({
        kind: 'copy',
        label: f.rel,
        source: { ...from, bucket: srcBucket, key: f.key ?? '' },
        destination: { ...profileOf(to), bucket: to.bucket, key: destinationKey(to.prefix, f.rel, single) },
        size: f.size,
      })),
    ];
  }
  if (src.kind !== 's3' && dst.kind === 's3') {
    const to = parseS3Uri(dst.uri);
    return [
      files.map((f) => ({
        kind: 'upload',
        label: f.rel,
        path: srcPath(f.rel),
        ...profileOf(to),
        bucket: to.bucket,
        key: destinationKey(to.prefix, f.rel, single),
        size: f.size,
      })),
    ];
  }
  if (src.kind === 's3' && dst.kind !== 's3') {
    const from = profileOf(parseS3Uri(src.uri));
    return [
      files.map((f) => ({
        kind: 'download',
        label: f.rel,
        ...from,
        bucket: srcBucket,
        key: f.key ?? '',
        path: destinationPath(dst.path, f.rel, single),
        size: f.size,
      })),
    ];
  }
  if (staging && dst.kind !== 's3') {
    const via = profileOf(staging);
    return [
      files.map((f) => ({
        kind: 'upload',
        label: f.rel,
        path: srcPath(f.rel),
        ...via,
        bucket: staging.bucket,
        key: joinPath(staging.prefix, f.rel),
        size: f.size,
      })),
      files.map((f) => ({
        kind: 'download',
        label: f.rel,
        ...via,
        bucket: staging.bucket,
        key: joinPath(staging.prefix, f.rel),
        path: destinationPath(dst.path, f.rel, single),
        size: f.size,
      })),
    ];
  }
  return undefined;
}

/** Large files (over `smallLimit`) one to a unit, resumable part by part; small files in batches. */
export function batchUnits(jobs: Job[], smallLimit: number): Job[][] {
  const units: Job[][] = jobs.filter((j) => j.size > smallLimit).map((j) => [j]);
  let batch: Job[] = [];
  let batchBytes = 0;
  for (const j of jobs.filter((j) => j.size <= smallLimit)) {
    if (batch.length >= BATCH_FILES || batchBytes + j.size > BATCH_BYTES) {
      units.push(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push(j);
    batchBytes += j.size;
  }
  if (batch.length > 0) units.push(batch);
  return units;
}

/** How a unit is named in progress and activity summaries. */
export function unitLabel(unit: Job[]): string {
  const first = unit[0] as Job;
  return unit.length === 1 ? first.label : `${unit.length} files from ${first.label}`;
}

/** What a dry run reports: each file from its first leg's source to its last leg's destination. */
export function plannedPairs(legs: Job[][]): { from: string; to: string; size: number }[] {
  const first = legs[0] ?? [];
  const last = legs[legs.length - 1] ?? [];
  return first.map((j, i) => ({ from: jobEnds(j).from, to: jobEnds(last[i] ?? j).to, size: j.size }));
}
