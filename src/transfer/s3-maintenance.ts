/**
 * The S3-only steps of a transfer: list a source (or a destination for deleteExtraneous), abort
 * multipart uploads a failed transfer left, delete extraneous objects, empty a staging prefix.
 * Temporal-free: the caller passes its step wrapper, abort signal, heartbeat and logger.
 *
 * @module
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { listAllMultipartUploads } from '../aws/multipart.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { baseName, checkRelativeKey, parseS3Uri, selected } from './plan.js';
import { checkListingSize } from './listing-size.js';
import type { Logger, Step } from './types.js';

export interface S3ListResult {
  single: boolean;
  bucket: string;
  files: { rel: string; key: string; size: number }[];
  /** The last file of this page, when more follow (a paged listing only). */
  next?: string;
}

/** What an S3 maintenance step runs with. */
export interface S3StepDeps {
  step: Step;
  log: Logger;
  signal?: AbortSignal | undefined;
  heartbeat(details: unknown): void;
}

/** The object's head, with S3's own checksum of it where the store keeps one (what `objectMeta` reads). */
export function headObject(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<HeadObjectCommandOutput> {
  return s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }), { abortSignal: signal });
}

/** The object's head (see {@link headObject}), or undefined when there is no such object. */
export async function headOrUndefined(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<HeadObjectCommandOutput | undefined> {
  try {
    return await headObject(s3, bucket, key, signal);
  } catch (err) {
    if (classify(err) === ErrorKind.NotFound) return undefined;
    throw err;
  }
}

/** Aborts one multipart upload; one already gone is fine, any other failure is logged, never thrown. */
export async function abortUpload(s3: S3Client, log: Logger, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    // Not under the activity's abort signal: this runs because the activity is being cancelled.
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    log.info('aborted multipart upload', { bucket, key, uploadId });
  } catch (err) {
    if (classify(err) !== ErrorKind.NotFound) log.warn('could not abort multipart upload', { bucket, key, uploadId, error: String(err) });
  }
}

/**
 * Lists an S3 source: the object itself when the uri names one, else every object under the
 * prefix (folder markers skipped), filtered by the globs. Refuses (InvalidInput) any key whose
 * relative part could escape a destination folder.
 */
export async function listS3Source(
  s3: S3Client,
  input: { uri: string; include: string[]; exclude: string[]; after?: string; maxFiles?: number },
  deps: S3StepDeps,
): Promise<S3ListResult> {
  const { step, signal } = deps;
  const { bucket, prefix } = parseS3Uri(input.uri);
  if (prefix !== '' && !prefix.endsWith('/')) {
    const head = await step(`head ${input.uri}`, () => headOrUndefined(s3, bucket, prefix, signal));
    if (head) {
      const rel = baseName(prefix);
      await step(`check key ${prefix}`, async () => checkRelativeKey(rel));
      return { single: true, bucket, files: selected(rel, input.include, input.exclude) ? [{ rel, key: prefix, size: head.ContentLength ?? 0 }] : [] };
    }
  }
  const listPrefix = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  const { after, maxFiles } = input;
  const files: S3ListResult['files'] = [];
  // A paged listing stops once it holds one file more than the page: that one says more follow.
  const full = () => maxFiles !== undefined && files.length > maxFiles;
  await step(`list ${input.uri}`, async () => {
    const startAfter = after === undefined ? {} : { StartAfter: `${listPrefix}${after}` };
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: listPrefix, ...startAfter }, { abortSignal: signal })) {
      for (const o of page.Contents ?? []) {
        if (!o.Key || (o.Key.endsWith('/') && (o.Size ?? 0) === 0)) continue;
        const rel = o.Key.slice(listPrefix.length);
        checkRelativeKey(rel);
        if (selected(rel, input.include, input.exclude)) files.push({ rel, key: o.Key, size: o.Size ?? 0 });
        if (full()) break;
      }
      deps.heartbeat(files.length);
      if (full()) break;
    }
  });
  const more = full();
  if (more) files.length = maxFiles as number;
  await step(`check the size of the listing of ${input.uri}`, async () => checkListingSize(files, input.uri));
  return { single: false, bucket, files, ...(more ? { next: (files.at(-1) as { rel: string }).rel } : {}) };
}

/** Aborts every multipart upload in progress for these keys (all pages of the listing); returns how many. */
export async function abortUploadsFor(s3: S3Client, bucket: string, keys: string[], deps: S3StepDeps): Promise<number> {
  const wanted = new Set(keys);
  const uploads = await deps.step(`list multipart uploads in ${bucket}`, () => listAllMultipartUploads(s3, bucket, undefined));
  let aborted = 0;
  for (const u of uploads) {
    if (u.Key && u.UploadId && wanted.has(u.Key)) {
      await abortUpload(s3, deps.log, bucket, u.Key, u.UploadId);
      aborted++;
    }
  }
  return aborted;
}

/** How many times the keys S3 failed to delete (with a retryable code) are sent again within one call. */
const DELETE_ROUNDS = 3;

/**
 * Deletes keys, 1000 a request, reading DeleteObjects' per-key errors: a key already gone
 * (NoSuchKey) counts as deleted; AccessDenied fails at once (PermissionDenied, no retry loop); only
 * the keys that failed otherwise are sent again, a few rounds, then it fails Transient naming them.
 */
async function deleteKeys(s3: S3Client, bucket: string, keys: string[], what: string, deps: S3StepDeps): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    let batch = keys.slice(i, i + 1000);
    for (let round = 1; batch.length > 0; round++) {
      const objects = batch.map((Key) => ({ Key }));
      const out = await deps.step(`delete ${objects.length} ${what}`, () =>
        s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }), { abortSignal: deps.signal }),
      );
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      const denied = failed.find((e) => e.Code === 'AccessDenied' || e.Code === 'AllAccessDisabled');
      if (denied) throw new TrainctlError(ErrorKind.PermissionDenied, `S3 refused to delete ${denied.Key}: ${denied.Code}`);
      if (failed.length > 0 && round >= DELETE_ROUNDS)
        throw new TrainctlError(ErrorKind.Transient, `${failed.length} objects could not be deleted (first: ${failed[0]?.Key}: ${failed[0]?.Code})`);
      batch = failed.map((e) => e.Key ?? '').filter((k) => batch.includes(k));
    }
    deps.heartbeat(Math.min(keys.length, i + 1000));
  }
}

/** Deletes the objects `prefix + rel`, each rel checked as a relative key so nothing outside the prefix is named. */
export async function deleteObjectsUnder(s3: S3Client, input: { bucket: string; prefix: string; rels: string[] }, deps: S3StepDeps): Promise<number> {
  if (input.prefix !== '' && !input.prefix.endsWith('/'))
    throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete under prefix ${JSON.stringify(input.prefix)}: it must end with /`);
  const keys: string[] = [];
  for (const rel of input.rels) {
    await deps.step(`check key ${rel}`, async () => checkRelativeKey(rel));
    keys.push(`${input.prefix}${rel}`);
  }
  await deleteKeys(s3, input.bucket, keys, 'extraneous objects', deps);
  return keys.length;
}

/** Deletes every object under a (non-empty) staging prefix and aborts its unfinished uploads; returns the objects deleted. */
export async function emptyPrefix(s3: S3Client, input: { bucket: string; prefix: string }, deps: S3StepDeps): Promise<number> {
  if (input.prefix === '' || !input.prefix.endsWith('/'))
    throw new TrainctlError(ErrorKind.InvalidInput, `refusing to delete prefix ${JSON.stringify(input.prefix)}`);
  const keys = await deps.step(`list s3://${input.bucket}/${input.prefix}`, async () => {
    const out: string[] = [];
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: input.bucket, Prefix: input.prefix })) {
      for (const o of page.Contents ?? []) if (o.Key) out.push(o.Key);
    }
    return out;
  });
  await deleteKeys(s3, input.bucket, keys, 'staging objects', { ...deps, signal: undefined });
  await deps.step('abort staging uploads', async () => {
    for (const u of await listAllMultipartUploads(s3, input.bucket, input.prefix))
      if (u.Key && u.UploadId) await abortUpload(s3, deps.log, input.bucket, u.Key, u.UploadId);
  });
  return keys.length;
}
