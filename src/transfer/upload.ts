/**
 * The resumable upload engine: one file to S3 (PutObject, or multipart above one part) with
 * trainctl's checksum in the object's metadata and S3's SHA-256 part checksums. A checkpoint (upload
 * id, finished parts) is heartbeated and kept on disk; a retry resumes from it without re-sending
 * finished parts, and restarts the file if it changed. Temporal-free: the activity passes its
 * heartbeat, abort signal and progress sink in a {@link RunScope}.
 *
 * @module
 */
import { rm, stat } from 'node:fs/promises';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { ErrorKind, TrainctlError, isRetryable } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { META_CHECKSUM, META_PART_SIZE, fileChecksum } from './checksum.js';
import { checkpointStore, type CheckpointStore } from './checkpoint-store.js';
import { encodingFor, type Encoding } from './compress.js';
import { META_ENCODING, META_ORIGINAL_SIZE, objectMeta, pool } from './download.js';
import { baseName, partCount, partRange, planPartSize } from './plan.js';
import { heartbeatEvery } from './progress.js';
import { prepareBody, type Body } from './upload-body.js';
import { abortUpload, headOrUndefined } from './s3-maintenance.js';
import { sendsPartChecksums } from '../aws/profiles.js';
import { compositeSha256, mergeUploadCheckpoints, type UploadCheckpoint } from './upload-checkpoint.js';
import { abortUnrecordedUploads, hashRange, listParts, rangeBody, uploadIdsOfKey, verifyUploaded, withPartRetries } from './upload-parts.js';
import { type EngineDeps, type FileResult, type RunScope, type UploadInput, endsTheFile } from './types.js';

/**
 * Uploads one file (see the module comment). On cancel or a non-retryable failure the multipart
 * upload is aborted; a retryable failure keeps it and the checkpoint for the next attempt.
 */
export async function uploadFile(input: UploadInput, scope: RunScope, deps: EngineDeps): Promise<FileResult> {
  const origAbs = await deps.resolvePath(input.path);
  const origSt = await stat(origAbs);
  if (!origSt.isFile()) throw new TrainctlError(ErrorKind.InvalidInput, `${input.label} is not a regular file`);
  const run = new FileUpload(input, scope, deps, origAbs, origSt);
  // The heartbeat runs from the first step: hashing and compressing a large file take longer than a
  // heartbeat timeout on a loaded machine. Until this attempt has a checkpoint of its own it repeats
  // the last attempt's, so a crash while compressing loses nothing the server had.
  const stopHb = scope.heartbeat
    ? heartbeatEvery(scope.heartbeat, () => run.cp ?? run.previous ?? { kind: 'upload', phase: 'checksum' }, deps.heartbeatIntervalMs)
    : () => undefined;
  try {
    return await run.execute();
  } finally {
    stopHb();
  }
}

class FileUpload {
  cp: UploadCheckpoint | undefined;
  previous: UploadCheckpoint | undefined;
  private s3!: S3Client;
  /** Whether parts carry S3's SHA-256 checksum (a store may not take them: then trainctl's own checksum alone verifies). */
  private partSums = true;
  private readonly encoding: Encoding;
  private body!: Body;
  private partSize = 0;
  private partDigests: Buffer[] | undefined;
  private state!: CheckpointStore<UploadCheckpoint>;

  constructor(
    private readonly input: UploadInput,
    private readonly scope: RunScope,
    private readonly deps: EngineDeps,
    private readonly origAbs: string,
    private readonly origSt: { size: number; mtimeMs: number; ino: number; ctimeMs: number },
  ) {
    this.encoding = encodingFor(baseName(input.path), input.compress ?? 'none', input.compressAll ?? false);
    this.previous = scope.resume as UploadCheckpoint | undefined;
  }

  private step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.deps.step(what, fn);
  }

  private result(sent: number, skipped: boolean, checksum: string, resumed: number): FileResult {
    // Without S3's part checksums (a store that refuses them) nothing checked the bytes the store kept: not claimed verified.
    return { label: this.input.label, size: this.origSt.size, sent, skipped, verified: skipped || this.partSums, checksum, resumed };
  }

  async execute(): Promise<FileResult> {
    const { input } = this;
    this.s3 = await this.step(`S3 client for ${input.label}`, () => this.deps.s3(input));
    this.partSums = sendsPartChecksums(this.s3);
    this.body = await prepareBody(
      { abs: this.origAbs, st: this.origSt, encoding: this.encoding, scopeId: this.scope.id, key: input.key, label: input.label },
      this.step.bind(this),
      this.scope.signal,
    );
    this.partSize = planPartSize(this.body.size, input.partSize);
    const nParts = partCount(this.body.size, this.partSize);
    // The server keeps the last heartbeat that got through, at most one per ~80 % of the heartbeat
    // timeout; a state file on this machine keeps every step, so a SIGKILL right after the upload
    // was created or a part finished loses nothing. Both are merged.
    this.state = checkpointStore<UploadCheckpoint>(`${this.scope.id}/upload/${input.key}`);
    await this.loadCheckpoint();
    let finished = false;
    try {
      if (!this.cp) {
        const skipped = await this.begin();
        if (skipped) {
          finished = true;
          return skipped;
        }
      }
      const r = nParts <= 1 ? await this.putWhole() : await this.putMultipart(nParts);
      finished = true;
      return r;
    } catch (err) {
      // A cancel or a failure no retry can fix must not leave a multipart upload (and its bill) behind.
      const finalFailure = endsTheFile(err, this.scope.signal, (e) => isRetryable(classify(e)));
      if (finalFailure && this.cp?.uploadId) await abortUpload(this.s3, this.deps.log, input.bucket, input.key, this.cp.uploadId);
      if (finalFailure) finished = true;
      throw err;
    } finally {
      await this.state.settle();
      if (finished) await this.state.remove();
      if (this.body.temp) await rm(this.body.temp, { force: true });
    }
  }

  /** The checkpoint to resume from, unless the source changed since (then the file starts over). */
  private async loadCheckpoint(): Promise<void> {
    const { input, body } = this;
    const cp = mergeUploadCheckpoints(this.previous, await this.state.read());
    this.cp = cp;
    if (
      cp &&
      (cp.kind !== 'upload' ||
        cp.key !== input.key ||
        cp.size !== body.size ||
        cp.mtimeMs !== body.mtimeMs ||
        cp.ino !== body.ino ||
        cp.ctimeMs !== body.ctimeMs ||
        cp.partSize !== this.partSize)
    ) {
      // The source changed since the checkpoint: this file starts over, never a mix of old and new parts.
      this.deps.log.info('source changed since checkpoint; restarting file', { label: input.label });
      if (cp.kind === 'upload' && cp.uploadId) await abortUpload(this.s3, this.deps.log, input.bucket, cp.key, cp.uploadId);
      this.cp = undefined;
      this.previous = undefined;
    }
  }

  /** A first attempt: the body's checksum, and with `sync` the skip of an identical object. */
  private async begin(): Promise<FileResult | undefined> {
    const { input, body } = this;
    const sums = await this.step(`checksum ${input.label}`, () => fileChecksum(body.abs, this.partSize, this.scope.signal));
    this.partDigests = sums.parts;
    const checksum = body.original?.checksum ?? sums.checksum;
    if (input.sync) {
      const head = await this.step(`head s3://${input.bucket}/${input.key}`, () => headOrUndefined(this.s3, input.bucket, input.key, this.scope.signal));
      const meta = head ? objectMeta(head) : undefined;
      if (head && head.ContentLength === body.size && meta?.checksum === checksum && meta.encoding === this.encoding) {
        this.scope.progress.add(body.size);
        return this.result(0, true, checksum, 0);
      }
    }
    this.cp = {
      kind: 'upload',
      key: input.key,
      size: body.size,
      mtimeMs: body.mtimeMs,
      ino: body.ino,
      ctimeMs: body.ctimeMs,
      partSize: this.partSize,
      checksum,
      parts: [],
    };
    return undefined;
  }

  private metadata(cp: UploadCheckpoint): Record<string, string> {
    return {
      [META_CHECKSUM]: cp.checksum,
      [META_PART_SIZE]: String(this.body.original?.partSize ?? this.partSize),
      ...(this.encoding !== 'none' ? { [META_ENCODING]: this.encoding, [META_ORIGINAL_SIZE]: String(this.origSt.size) } : {}),
    };
  }

  /** Part `n`'s SHA-256 (base64): from the first pass when this attempt made one, else from the file. */
  private async digestOf(n: number): Promise<string> {
    const known = this.partDigests?.[n - 1];
    if (known) return known.toString('base64');
    const r = partRange(this.body.size, this.partSize, n);
    return hashRange(this.body.abs, r.start, r.end);
  }

  private async checkUnchanged(): Promise<void> {
    const now = await stat(this.origAbs);
    if (now.size !== this.origSt.size || now.mtimeMs !== this.origSt.mtimeMs || now.ino !== this.origSt.ino || now.ctimeMs !== this.origSt.ctimeMs) {
      // Retryable: the next attempt sees the checkpoint no longer matches and restarts this file.
      throw new TrainctlError(ErrorKind.Transient, `${this.input.label} changed while it was being uploaded; restarting it`);
    }
  }

  /** One PutObject: part bodies are streamed from the file, never held whole. */
  private async putWhole(): Promise<FileResult> {
    const { input, body } = this;
    const cp = this.cp as UploadCheckpoint;
    const digest = await this.digestOf(1);
    const put = await this.step(`put s3://${input.bucket}/${input.key}`, () =>
      withPartRetries(this.scope.signal, () =>
        this.s3.send(
          new PutObjectCommand({
            Bucket: input.bucket,
            Key: input.key,
            Body: rangeBody(body.abs, 0, body.size),
            ContentLength: body.size,
            ...(this.partSums ? { ChecksumSHA256: digest } : {}),
            Metadata: this.metadata(cp),
          }),
          { abortSignal: this.scope.signal },
        ),
      ),
    );
    this.scope.progress.add(body.size);
    await this.checkUnchanged();
    // A store that checked the SHA-256 sent with the body names it in its answer: those bytes are
    // stored (moto does not answer with it). A compressed object is read back all the same: a store
    // that dropped its metadata would hand back gzip bytes as the file.
    if (!this.partSums || put.ChecksumSHA256 !== digest || this.encoding !== 'none')
      await verifyUploaded(this.s3, input, body.size, cp.checksum, this.step.bind(this), this.scope.signal);
    return this.result(body.size, false, cp.checksum, 0);
  }

  /** A multipart upload: started (its id recorded before any part) or resumed, parts sent, completed, verified. */
  private async putMultipart(nParts: number): Promise<FileResult> {
    const cp = this.cp as UploadCheckpoint;
    let resumed = 0;
    if (cp.uploadId) {
      try {
        resumed = await this.resume(cp, nParts);
      } catch (err) {
        if (classify(err) !== ErrorKind.NotFound) throw err;
        // The upload is gone: completed by an attempt whose response was lost, or aborted.
        if (await this.alreadyStored(cp)) return (await this.abortOrphans(cp), this.result(0, false, cp.checksum, cp.parts.length));
        cp.parts = [];
        delete cp.uploadId;
        await this.create(cp);
      }
    } else await this.create(cp);
    const done = new Set(cp.parts.map((p) => p.n));
    const todo = Array.from({ length: nParts }, (_, i) => i + 1).filter((n) => !done.has(n));
    let sent = 0;
    await pool(todo, this.input.concurrency, async (n) => {
      const bytes = await this.sendPart(cp, n, nParts);
      sent += bytes;
    });
    await this.checkUnchanged();
    await this.complete(cp);
    await verifyUploaded(this.s3, this.input, this.body.size, cp.checksum, this.step.bind(this), this.scope.signal);
    await this.abortOrphans(cp);
    return this.result(sent, false, cp.checksum, resumed);
  }

  private async create(cp: UploadCheckpoint): Promise<void> {
    const { input } = this;
    // Recorded before the upload is started: see abortOrphans.
    cp.others ??= await uploadIdsOfKey(this.s3, input, this.step.bind(this), this.scope.signal);
    cp.creates = (cp.creates ?? 0) + 1;
    this.scope.heartbeat?.(cp);
    await this.state.save(cp);
    const created = await this.step(`start multipart upload s3://${input.bucket}/${input.key}`, () =>
      this.s3.send(
        new CreateMultipartUploadCommand({
          Bucket: input.bucket,
          Key: input.key,
          Metadata: this.metadata(cp),
          ...(this.partSums ? { ChecksumAlgorithm: 'SHA256' } : {}),
        }),
        {
          abortSignal: this.scope.signal,
        },
      ),
    );
    if (!created.UploadId) throw new TrainctlError(ErrorKind.Transient, 'CreateMultipartUpload returned no UploadId');
    cp.uploadId = created.UploadId;
    // The upload id must be recorded before any part is sent, or a crash would orphan it.
    this.scope.heartbeat?.(cp);
    await this.state.save(cp);
  }

  /** Parts S3 finished after the last heartbeat that reached the server are found here, so a crash re-sends at most the parts that were in flight. */
  private async resume(cp: UploadCheckpoint, nParts: number): Promise<number> {
    const { input, body } = this;
    const uploadId = cp.uploadId as string;
    const known = new Map(cp.parts.map((p) => [p.n, p]));
    for (const p of await listParts(this.s3, input.bucket, input.key, uploadId, this.step.bind(this), this.scope.signal)) {
      const expected = partRange(body.size, this.partSize, p.n);
      if (p.size !== expected.end - expected.start || known.has(p.n)) continue;
      // A part whose checksum (as S3 reports it) is not the local part's is sent again.
      if (p.sha256 && p.sha256 !== (await this.digestOf(p.n))) continue;
      known.set(p.n, { n: p.n, etag: p.etag, ...(p.sha256 ? { sha256: p.sha256 } : {}) });
    }
    cp.parts = [...known.values()];
    for (const p of cp.parts) {
      const r = partRange(body.size, this.partSize, p.n);
      this.scope.progress.add(r.end - r.start);
    }
    this.deps.log.info('resuming multipart upload', { label: input.label, uploadId, finishedParts: cp.parts.length, parts: nParts });
    return cp.parts.length;
  }

  /** Sends part `n`, records it (heartbeat and state file) and returns its size. */
  private async sendPart(cp: UploadCheckpoint, n: number, nParts: number): Promise<number> {
    const { input, body } = this;
    const { start, end } = partRange(body.size, this.partSize, n);
    const digest = await this.digestOf(n);
    const out = await this.step(`upload part ${n}/${nParts} of ${input.label}`, () =>
      withPartRetries(this.scope.signal, () =>
        this.s3.send(
          new UploadPartCommand({
            Bucket: input.bucket,
            Key: input.key,
            UploadId: cp.uploadId,
            PartNumber: n,
            Body: rangeBody(body.abs, start, end),
            ContentLength: end - start,
            ...(this.partSums ? { ChecksumSHA256: digest } : {}),
          }),
          { abortSignal: this.scope.signal },
        ),
      ),
    );
    if (!out.ETag) throw new TrainctlError(ErrorKind.Transient, `UploadPart ${n} returned no ETag`);
    cp.parts.push({ n, etag: out.ETag, sha256: digest });
    this.scope.progress.add(end - start);
    this.scope.heartbeat?.(cp);
    await this.state.save(cp);
    return end - start;
  }

  private async complete(cp: UploadCheckpoint): Promise<void> {
    const { input, body } = this;
    const parts = [...cp.parts].sort((a, b) => a.n - b.n);
    for (const p of parts) {
      // Parts recovered from ListParts on an emulator carry no checksum: compute it from the file.
      if (!p.sha256) {
        const r = partRange(body.size, this.partSize, p.n);
        p.sha256 = await hashRange(body.abs, r.start, r.end);
      }
    }
    const completed = await this.step(`complete multipart upload of ${input.label}`, () =>
      this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: input.bucket,
          Key: input.key,
          UploadId: cp.uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag, ...(this.partSums ? { ChecksumSHA256: p.sha256 } : {}) })) },
        }),
        { abortSignal: this.scope.signal },
      ),
    ).catch(async (err: unknown) => {
      // NoSuchUpload after a lost response: the object is there if an earlier call completed it.
      if (classify(err) === ErrorKind.NotFound && (await this.alreadyStored(cp))) return undefined;
      throw err;
    });
    // What S3 reports (its composite of the part checksums, where the server returns one) must be what was sent.
    const reported = completed?.ChecksumSHA256;
    const local = compositeSha256(parts.map((p) => p.sha256 as string));
    if (reported && /-\d+$/.test(reported) && reported !== local)
      throw new TrainctlError(ErrorKind.Integrity, `${input.label}: S3 reports checksum ${reported} for the parts, the local parts give ${local}`);
  }

  /**
   * Once the object is complete, aborts the uploads of this key this run started but never recorded
   * (a CreateMultipartUpload whose reply was lost, a worker killed before its checkpoint), which can
   * exist only when it sent more than one. See {@link abortUnrecordedUploads}: a failure fails the
   * attempt, and the next finds the object stored and sweeps again.
   */
  private async abortOrphans(cp: UploadCheckpoint): Promise<void> {
    if (!cp.others || (cp.creates ?? 0) < 2) return;
    await abortUnrecordedUploads(this.s3, this.input, new Set([...cp.others, cp.uploadId]), this.step.bind(this), this.scope.signal);
  }

  /** Whether the object already holds this upload (its size and trainctl checksum). */
  private async alreadyStored(cp: UploadCheckpoint): Promise<boolean> {
    const { input, body } = this;
    const head = await headOrUndefined(this.s3, input.bucket, input.key, this.scope.signal);
    return !!head && head.ContentLength === body.size && head.Metadata?.[META_CHECKSUM] === cp.checksum;
  }
}
