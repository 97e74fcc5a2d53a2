/**
 * Listing a dataset's S3 prefix from the host: what LocalCache syncs and what DirectS3 shows the
 * instance can reach. Temporal-free.
 *
 * @module
 */
import { paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import type { RemoteObject } from './cache-manifest.js';

/** Every object under `s3://bucket/prefix` (all pages; folder markers left out), as `BUCKET/KEY` ids. */
export async function listPrefix(s3: S3Client, bucket: string, prefix: string, signal?: AbortSignal): Promise<RemoteObject[]> {
  const out: RemoteObject[] = [];
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix }, { abortSignal: signal })) {
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined || o.Key.endsWith('/')) continue;
      out.push({ id: `${bucket}/${o.Key}`, size: o.Size ?? 0, etag: o.ETag ?? '' });
    }
  }
  return out;
}
