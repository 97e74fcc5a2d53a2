/**
 * S3 → S3 across endpoints (AWS and a lab store, two accounts, two stores): one object streamed
 * through this worker, part by part — a ranged GET from the source, a part upload to the
 * destination — resumable and verified like an upload. Temporal-free.
 *
 * - The part size is the source's recorded one when it carries trainctl's checksum, so the part
 *   digests of the bytes read compose into that checksum: a mismatch is kind Integrity and the
 *   copy is aborted. A foreign object gets the checksum of the bytes read.
 * - A compressed object is copied as stored, its metadata with it; after the copy the destination
 *   is read back through the decompressor and must give the original's checksum.
 * - The checkpoint (upload id, finished parts and their digests, the source's ETag) is heartbeated
 *   after every part. A retry — on this machine or a fresh one — resumes it; parts S3 finished
 *   after the last heartbeat are found by ListParts and re-read (not re-sent) for their digest.
 *   A source that changed since the checkpoint (ETag or size) restarts the object.
 *
 * @module
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ErrorKind, TrainctlError, isRetryable } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { sendsPartChecksums } from '../aws/profiles.js';
import { META_CHECKSUM, META_PART_SIZE, compositeChecksum, sha256 } from './checksum.js';
import { META_ENCODING, META_ORIGINAL_SIZE, objectMeta, pool, type ObjectMeta } from './download.js';
import { partCount, partRange, planPartSize } from './plan.js';
import { heartbeatEvery } from './progress.js';
import { abortUpload, headOrUndefined } from './s3-maintenance.js';
import { listParts, verifyUploaded, withPartRetries } from './upload-parts.js';
import { readAll, verifyDecoded, withBuffer } from './copy-buffers.js';
import { checkpointStore, type CheckpointStore } from './checkpoint-store.js';
import { endsTheFile, type EngineDeps, type FileResult, type RunScope } from './types.js';

/** One end of a copy. */
export interface CopyEnd {
  profile?: string | undefined;
  bucket: string;
  key: string;
}

export interface CopyInput {
  /** The transfer's region: each end's unless its profile names another. */
  region: string;
  source: CopyEnd;
  destination: CopyEnd;
  partSize?: number | undefined;
  concurrency: number;
  sync: boolean;
  label: string;
  progressIntervalMs: number;
}

export interface CopyCheckpoint {
  kind: 'copy';
  key: string;
  /** The source as it was when the copy began: a different ETag or size restarts the object. */
  sourceEtag: string;
  size: number;
  partSize: number;
  uploadId?: string;
  /** Finished parts with the SHA-256 (base64) of the bytes sent. */
  parts: { n: number; etag: string; sha256: string }[];
}

function uri(end: CopyEnd): string {
  return `s3://${end.profile ? `${end.profile}@` : ''}${end.bucket}/${end.key}`;
}

/** Copies one object (see the module comment). A cancel or a failure no retry fixes aborts the destination's multipart upload. */
export async function copyObject(input: CopyInput, scope: RunScope, deps: EngineDeps): Promise<FileResult> {
  const run = new ObjectCopy(input, scope, deps);
  const stopHb = scope.heartbeat
    ? heartbeatEvery(scope.heartbeat, () => run.cp ?? scope.resume ?? { kind: 'copy', phase: 'starting' }, deps.heartbeatIntervalMs)
    : () => undefined;
  try {
    return await run.execute();
  } finally {
    stopHb();
  }
}

class ObjectCopy {
  cp: CopyCheckpoint | undefined;
  private src!: S3Client;
  private dst!: S3Client;
  private head!: HeadObjectCommandOutput;
  private meta!: ObjectMeta;
  private size = 0;
  private partSize = 0;
  private state!: CheckpointStore<CopyCheckpoint>;

  constructor(
    private readonly input: CopyInput,
    private readonly scope: RunScope,
    private readonly deps: EngineDeps,
  ) {}

  private step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.deps.step(what, fn);
  }

  async execute(): Promise<FileResult> {
    const { input, scope } = this;
    const { source, destination } = input;
    this.src = await this.step(`S3 client for ${uri(source)}`, () => this.deps.s3({ region: input.region, profile: source.profile }));
    this.dst = await this.step(`S3 client for ${uri(destination)}`, () => this.deps.s3({ region: input.region, profile: destination.profile }));
    const head = await this.step(`head ${uri(source)}`, () => headOrUndefined(this.src, source.bucket, source.key, scope.signal));
    if (!head) throw new TrainctlError(ErrorKind.NotFound, `${uri(source)} is gone (it was listed when the transfer planned)`);
    this.head = head;
    this.meta = objectMeta(head);
    this.size = head.ContentLength ?? 0;
    // Parts of the recorded size compose into the recorded checksum; a compressed object's is the original's.
    this.partSize =
      this.meta.checksum && this.meta.encoding === 'none' ? (this.meta.partSize ?? planPartSize(this.size)) : planPartSize(this.size, input.partSize);
    const skipped = await this.skipIfSame();
    if (skipped) return skipped;
    // As for uploads: the server keeps only the heartbeats that got through; this machine's state file keeps every part.
    this.state = checkpointStore<CopyCheckpoint>(`${scope.id}/copy/${destination.bucket}/${destination.key}`);
    await this.loadCheckpoint();
    let finished = false;
    try {
      const r = partCount(this.size, this.partSize) <= 1 ? await this.putWhole() : await this.putMultipart();
      finished = true;
      return r;
    } catch (err) {
      const finalFailure = endsTheFile(err, scope.signal, (e) => isRetryable(classify(e)));
      if (finalFailure && this.cp?.uploadId) await abortUpload(this.dst, this.deps.log, destination.bucket, destination.key, this.cp.uploadId);
      if (finalFailure) {
        finished = true;
        this.cp = undefined;
      }
      throw err;
    } finally {
      await this.state.settle();
      if (finished) await this.state.remove();
    }
  }

  /** With `sync`: an identical destination (same size and trainctl checksum) is left as it is. */
  private async skipIfSame(): Promise<FileResult | undefined> {
    const { input, meta } = this;
    if (!input.sync || !meta.checksum) return undefined;
    const head = await this.step(`head ${uri(input.destination)}`, () =>
      headOrUndefined(this.dst, input.destination.bucket, input.destination.key, this.scope.signal),
    );
    if (!head || head.ContentLength !== this.size || objectMeta(head).checksum !== meta.checksum) return undefined;
    this.scope.progress.add(this.size);
    return { label: input.label, size: this.size, sent: 0, skipped: true, verified: true, checksum: meta.checksum, resumed: 0 };
  }

  /** The heartbeat's checkpoint and this machine's, parts merged when they name the same upload. */
  private async loadCheckpoint(): Promise<void> {
    const ok = (c: CopyCheckpoint | undefined): c is CopyCheckpoint => c?.kind === 'copy' && Array.isArray(c.parts);
    const hb = this.scope.resume as CopyCheckpoint | undefined;
    const disk = await this.state.read();
    let prev: CopyCheckpoint | undefined = ok(hb) ? hb : ok(disk) ? disk : undefined;
    if (ok(hb) && ok(disk) && (hb.uploadId === undefined || hb.uploadId === disk.uploadId))
      prev = { ...disk, parts: [...new Map([...hb.parts, ...disk.parts].map((p) => [p.n, p])).values()] };
    const etag = this.head.ETag ?? '';
    const same =
      prev?.kind === 'copy' &&
      prev.key === this.input.destination.key &&
      prev.sourceEtag === etag &&
      prev.size === this.size &&
      prev.partSize === this.partSize;
    if (prev?.kind === 'copy' && !same) {
      this.deps.log.info('source changed since checkpoint; restarting object', { label: this.input.label });
      // The old upload's parts are of other bytes: abort it, or it would be billed until a lifecycle rule finds it.
      if (prev.uploadId) await abortUpload(this.dst, this.deps.log, this.input.destination.bucket, prev.key, prev.uploadId);
    }
    this.cp =
      same && prev
        ? { ...prev, parts: [...prev.parts] }
        : { kind: 'copy', key: this.input.destination.key, sourceEtag: etag, size: this.size, partSize: this.partSize, parts: [] };
  }

  /** Bytes [start, end) of the source, whole in memory (one part). */
  private async fetch(start: number, end: number): Promise<Buffer> {
    const { source } = this.input;
    if (end <= start) return Buffer.alloc(0);
    return withPartRetries(this.scope.signal, async () => {
      // Pinned to the ETag the copy began with: a source replaced mid-copy fails at its next part, not after the last.
      const out = await this.src.send(
        new GetObjectCommand({ Bucket: source.bucket, Key: source.key, Range: `bytes=${start}-${end - 1}`, IfMatch: this.head.ETag || undefined }),
        { abortSignal: this.scope.signal },
      );
      return readAll(out.Body, end - start, `${uri(source)} bytes ${start}-${end - 1}`);
    });
  }

  /** The source's trainctl metadata, carried over; a foreign object stays foreign (its checksum would be known only after its last part). */
  private metadata(): Record<string, string> {
    const { meta } = this;
    if (!meta.checksum) return {};
    return {
      [META_CHECKSUM]: meta.checksum,
      [META_PART_SIZE]: String(meta.partSize ?? planPartSize(meta.originalSize ?? this.size)),
      ...(meta.encoding !== 'none' ? { [META_ENCODING]: meta.encoding, [META_ORIGINAL_SIZE]: String(meta.originalSize) } : {}),
    };
  }

  /** The checksum of the bytes sent, checked against the source's recorded one (unless compressed: then checked after). */
  private checksumOf(digests: Buffer[]): string {
    const sum = compositeChecksum(digests);
    if (this.meta.checksum && this.meta.encoding === 'none' && sum !== this.meta.checksum) {
      throw new TrainctlError(
        ErrorKind.Integrity,
        `${this.input.label}: the bytes read from ${uri(this.input.source)} give checksum ${sum}, its metadata records ${this.meta.checksum}; nothing was kept`,
      );
    }
    return sum;
  }

  private putWhole(): Promise<FileResult> {
    return withBuffer(this.size, () => this.putWholeBuffered());
  }

  private async putWholeBuffered(): Promise<FileResult> {
    const { input } = this;
    const body = await this.fetch(0, this.size);
    const digest = sha256(body);
    const checksum = this.checksumOf(this.size === 0 ? [] : [digest]);
    await this.sourceUnchanged();
    await this.step(`put ${uri(input.destination)}`, () =>
      withPartRetries(this.scope.signal, () =>
        this.dst.send(
          new PutObjectCommand({
            Bucket: input.destination.bucket,
            Key: input.destination.key,
            Body: body,
            ContentLength: body.length,
            ...(this.head.ContentType ? { ContentType: this.head.ContentType } : {}),
            ...(sendsPartChecksums(this.dst) ? { ChecksumSHA256: digest.toString('base64') } : {}),
            Metadata: this.metadata(),
          }),
          { abortSignal: this.scope.signal },
        ),
      ),
    );
    this.scope.progress.add(this.size);
    return this.finish(checksum, this.size, 0);
  }

  private async putMultipart(): Promise<FileResult> {
    const { input, scope } = this;
    const cp = this.cp as CopyCheckpoint;
    const nParts = partCount(this.size, this.partSize);
    const sums = sendsPartChecksums(this.dst);
    let resumed = 0;
    if (cp.uploadId) {
      try {
        resumed = await this.recoverParts(cp);
      } catch (err) {
        if (classify(err) !== ErrorKind.NotFound) throw err;
        cp.parts = [];
        delete cp.uploadId;
      }
    }
    if (!cp.uploadId) {
      const created = await this.step(`start multipart upload ${uri(input.destination)}`, () =>
        this.dst.send(
          new CreateMultipartUploadCommand({
            Bucket: input.destination.bucket,
            Key: input.destination.key,
            ...(this.head.ContentType ? { ContentType: this.head.ContentType } : {}),
            Metadata: this.metadata(),
            ...(sums ? { ChecksumAlgorithm: 'SHA256' } : {}),
          }),
          { abortSignal: scope.signal },
        ),
      );
      if (!created.UploadId) throw new TrainctlError(ErrorKind.Transient, 'CreateMultipartUpload returned no UploadId');
      cp.uploadId = created.UploadId;
      // Recorded before any part is sent, or a crash would orphan the upload.
      scope.heartbeat?.(cp);
      await this.state.save(cp);
    }
    const done = new Set(cp.parts.map((p) => p.n));
    const todo = Array.from({ length: nParts }, (_, i) => i + 1).filter((n) => !done.has(n));
    let sent = 0;
    await pool(todo, input.concurrency, async (n) => {
      const { start, end } = partRange(this.size, this.partSize, n);
      await withBuffer(end - start, async () => {
        const body = await this.fetch(start, end);
        const digest = sha256(body).toString('base64');
        const out = await this.step(`upload part ${n}/${nParts} of ${input.label}`, () =>
          withPartRetries(scope.signal, () =>
            this.dst.send(
              new UploadPartCommand({
                Bucket: input.destination.bucket,
                Key: input.destination.key,
                UploadId: cp.uploadId,
                PartNumber: n,
                Body: body,
                ContentLength: body.length,
                ...(sums ? { ChecksumSHA256: digest } : {}),
              }),
              { abortSignal: scope.signal },
            ),
          ),
        );
        if (!out.ETag) throw new TrainctlError(ErrorKind.Transient, `UploadPart ${n} returned no ETag`);
        cp.parts.push({ n, etag: out.ETag, sha256: digest });
        sent += body.length;
        scope.progress.add(body.length);
        scope.heartbeat?.(cp);
        await this.state.save(cp);
      });
    });
    const parts = [...cp.parts].sort((a, b) => a.n - b.n);
    const checksum = this.checksumOf(parts.map((p) => Buffer.from(p.sha256, 'base64')));
    await this.sourceUnchanged();
    await this.step(`complete multipart upload of ${input.label}`, () =>
      this.dst.send(
        new CompleteMultipartUploadCommand({
          Bucket: input.destination.bucket,
          Key: input.destination.key,
          UploadId: cp.uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag, ...(sums ? { ChecksumSHA256: p.sha256 } : {}) })) },
        }),
        { abortSignal: scope.signal },
      ),
    );
    return this.finish(checksum, sent, resumed);
  }

  /** Parts the destination finished after the last heartbeat that reached the server: re-read from the source for their digest, not re-sent. */
  private async recoverParts(cp: CopyCheckpoint): Promise<number> {
    const { destination } = this.input;
    const known = new Map(cp.parts.map((p) => [p.n, p]));
    for (const p of await listParts(this.dst, destination.bucket, destination.key, cp.uploadId as string, this.step.bind(this), this.scope.signal)) {
      const r = partRange(this.size, this.partSize, p.n);
      if (known.has(p.n) || p.size !== r.end - r.start) continue;
      const digest = await withBuffer(r.end - r.start, async () => sha256(await this.fetch(r.start, r.end)).toString('base64'));
      if (p.sha256 && p.sha256 !== digest) continue;
      known.set(p.n, { n: p.n, etag: p.etag, sha256: digest });
    }
    cp.parts = [...known.values()];
    for (const p of cp.parts) {
      const r = partRange(this.size, this.partSize, p.n);
      this.scope.progress.add(r.end - r.start);
    }
    this.deps.log.info('resuming copy', { label: this.input.label, uploadId: cp.uploadId, finishedParts: cp.parts.length });
    return cp.parts.length;
  }

  /** The source must still be what the copy began with: a change mid-copy is retryable, and the retry starts the object over. */
  private async sourceUnchanged(): Promise<void> {
    const { source } = this.input;
    const now = await this.step(`head ${uri(source)}`, () => headOrUndefined(this.src, source.bucket, source.key, this.scope.signal));
    if (!now || now.ETag !== this.head.ETag || now.ContentLength !== this.size)
      throw new TrainctlError(ErrorKind.Transient, `${uri(source)} changed while it was being copied; copying it again`);
  }

  /**
   * Checks the stored copy and reports it: its size and trainctl checksum (a compressed one read
   * back and decompressed too); a foreign object, its size (its parts were checked by the store's
   * SHA-256 where it takes them).
   */
  private async finish(checksum: string, sent: number, resumed: number): Promise<FileResult> {
    const { input, meta } = this;
    const { bucket, key } = input.destination;
    if (meta.checksum) {
      await verifyUploaded(this.dst, { bucket, key, label: input.label }, this.size, meta.checksum, this.step.bind(this), this.scope.signal);
      if (meta.encoding !== 'none')
        await this.step(`read back ${uri(input.destination)}`, () => verifyDecoded(this.dst, input.destination, input.label, meta, this.scope.signal));
    } else {
      const head = await this.step(`head ${uri(input.destination)}`, () => headOrUndefined(this.dst, bucket, key, this.scope.signal));
      if (head?.ContentLength !== this.size)
        throw new TrainctlError(ErrorKind.Integrity, `${input.label}: the copy holds ${head?.ContentLength ?? 'no'} bytes, the source ${this.size}`);
    }
    this.cp = undefined;
    // Verified: the bytes read gave the source's checksum, and the store checked each part's SHA-256 as it arrived.
    const verified = meta.checksum !== undefined && sendsPartChecksums(this.dst);
    return { label: input.label, size: this.size, sent, skipped: false, verified, checksum: meta.checksum ?? checksum, resumed };
  }
}
