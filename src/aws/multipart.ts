import { ListMultipartUploadsCommand, type MultipartUpload, type S3Client } from '@aws-sdk/client-s3';

/**
 * Every in-progress multipart upload under `prefix`, all pages. The SDK has no paginator for
 * ListMultipartUploads, so this follows KeyMarker / UploadIdMarker itself.
 */
export async function listAllMultipartUploads(s3: S3Client, bucket: string, prefix: string | undefined, abortSignal?: AbortSignal): Promise<MultipartUpload[]> {
  const out: MultipartUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const res = await s3.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        ...(prefix ? { Prefix: prefix } : {}),
        ...(keyMarker ? { KeyMarker: keyMarker } : {}),
        ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
      }),
      abortSignal ? { abortSignal } : {},
    );
    out.push(...(res.Uploads ?? []));
    if (!res.IsTruncated) return out;
    keyMarker = res.NextKeyMarker;
    uploadIdMarker = res.NextUploadIdMarker;
  }
}
