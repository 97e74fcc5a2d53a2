/**
 * Pure planning of a transfer's legs: which file goes from where to where, how files are grouped
 * into activities, and what a dry run reports. No Node built-ins: the transfer workflow uses it.
 *
 * @module
 */
import type { DataLocation } from '../contracts/transfer.js';
import { destinationKey, destinationPath, joinPath, parseS3Uri } from './plan.js';

export interface UploadJob {
  kind: 'upload';
  label: string;
  path: string;
  bucket: string;
  key: string;
  size: number;
}
export interface DownloadJob {
  kind: 'download';
  label: string;
  bucket: string;
  key: string;
  path: string;
  size: number;
}
export type Job = UploadJob | DownloadJob;

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
export function planLegs(
  src: DataLocation,
  dst: DataLocation,
  list: SourceList,
  srcBucket: string,
  staging: { bucket: string; prefix: string } | undefined,
): Job[][] | undefined {
  const { single, files } = list;
  const srcPath = (rel: string) => (single ? pathOf(src) : joinPath(pathOf(src), rel));
  if (src.kind !== 's3' && dst.kind === 's3') {
    const { bucket, prefix } = parseS3Uri(dst.uri);
    return [files.map((f) => ({ kind: 'upload', label: f.rel, path: srcPath(f.rel), bucket, key: destinationKey(prefix, f.rel, single), size: f.size }))];
  }
  if (src.kind === 's3' && dst.kind !== 's3') {
    return [
      files.map((f) => ({ kind: 'download', label: f.rel, bucket: srcBucket, key: f.key ?? '', path: destinationPath(dst.path, f.rel, single), size: f.size })),
    ];
  }
  if (staging && dst.kind !== 's3') {
    return [
      files.map((f) => ({ kind: 'upload', label: f.rel, path: srcPath(f.rel), bucket: staging.bucket, key: joinPath(staging.prefix, f.rel), size: f.size })),
      files.map((f) => ({
        kind: 'download',
        label: f.rel,
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
  return first.map((j, i) => {
    const end = last[i] ?? j;
    return {
      from: j.kind === 'upload' ? j.path : `s3://${j.bucket}/${j.key}`,
      to: end.kind === 'download' ? end.path : `s3://${end.bucket}/${end.key}`,
      size: j.size,
    };
  });
}
