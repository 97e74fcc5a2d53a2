/**
 * The resumable upload engine: one file to S3 (PutObject, or multipart above one part) with S3's
 * SHA-256 part checksums, read once: the SDK hashes each part as it sends it, the store checks that
 * hash and names it in its answer, and trainctl's checksum of the file is S3's own SHA-256 of the
 * object (see `objectMeta`). Where it is needed before sending (`sync`, a compressed body, a store
 * without part checksums) the file is hashed first and the checksum goes in the metadata. A
 * checkpoint (upload id, finished parts) is heartbeated and kept on disk; a retry resumes from it
 * without re-sending finished parts, and restarts the file if it changed. Temporal-free: the activity
 * passes its heartbeat, abort signal and progress sink in a {@link RunScope}.
 *
 * @module
 */
import { rm, stat } from 'node:fs/promises';
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { ErrorKind, TrainctlError, isRetryable } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { META_CHECKSUM, META_PART_SIZE, compositeChecksum } from './checksum.js';
import { checkpointStore, type CheckpointStore } from './checkpoint-store.js';
import { encodingFor, type Encoding } from './compress.js';
import { META_ENCODING, META_ORIGINAL_SIZE, objectMeta, pool } from './download.js';
import { baseName, partCount, partRange, planPartSize } from './plan.js';
import { heartbeatEvery } from './progress.js';
import { prepareBody, type Body } from './upload-body.js';
import { abortUpload, headOrUndefined } from './s3-maintenance.js';
import { sendsPartChecksums } from '../aws/profiles.js';
import { INLINE_MAX, acknowledged, firstPass, noteStoreReportsChecksums, partBody, storeReportsChecksums, type PartBody } from './upload-checksums.js';
import { checksumOfDigests, isUploadKind, mergeUploadCheckpoints, type UploadCheckpoint } from './upload-checkpoint.js';
import {
  StoreKeepsNoChecksum,
  abortUnrecordedUploads,
  checkUnchanged,
  completeMultipart,
  hashRange,
  listParts,
  uploadIdsOfKey,
  verifyUploaded,
  withPartRetries,
} from './upload-parts.js';
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
  /** The file is hashed as it is sent, not before: its checksum is known once the last part is (see the module comment). */
  private hashWhileSending = false;
  private inline: Buffer | undefined;
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
      const r = await this.send(nParts).catch(async (err: unknown) => {
        if (!(err instanceof StoreKeepsNoChecksum) || !this.hashWhileSending) throw err;
        // The store took the SDK's checksum but reports none on HeadObject: hash first from now on, and send the file again with its checksum in the metadata.
        this.deps.log.warn('the store reports no SHA-256 of the object: sending it again, hashed first', { label: input.label });
        noteStoreReportsChecksums(this.s3, false);
        return (await this.begin()) ?? this.send(nParts);
      });
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

  private send(nParts: number): Promise<FileResult> {
    return nParts <= 1 ? this.putWhole() : this.putMultipart(nParts);
  }

  /** The checkpoint to resume from, unless the source changed since (then the file starts over). */
  private async loadCheckpoint(): Promise<void> {
    const { input, body } = this;
    const cp = mergeUploadCheckpoints(this.previous, await this.state.read());
    this.cp = cp;
    if (
      cp &&
      (!isUploadKind(cp.kind) ||
        // Hashed while sending, the parts carry S3's checksums: a client that sends none cannot go on with them.
        (cp.kind === 'upload2' && !this.partSums) ||
        cp.key !== input.key ||
        cp.size !== body.size ||
        cp.mtimeMs !== body.mtimeMs ||
        cp.ino !== body.ino ||
        cp.ctimeMs !== body.ctimeMs ||
        cp.partSize !== this.partSize)
    ) {
      // The source changed since the checkpoint: this file starts over, never a mix of old and new parts.
      this.deps.log.info('source changed since checkpoint; restarting file', { label: input.label });
      if (isUploadKind(cp.kind) && cp.uploadId) await abortUpload(this.s3, this.deps.log, input.bucket, cp.key, cp.uploadId);
      this.cp = undefined;
      this.previous = undefined;
    }
    this.hashWhileSending = this.cp?.kind === 'upload2';
  }

  /** A first attempt: the body's checksum, and with `sync` the skip of an identical object. */
  private async begin(): Promise<FileResult | undefined> {
    const { input, body } = this;
    // Hashing first costs a whole read of the file: only where the checksum is needed before sending.
    this.hashWhileSending = this.partSums && this.encoding === 'none' && !input.sync && body.size > INLINE_MAX && storeReportsChecksums(this.s3) !== false;
    let checksum: string | undefined;
    if (!this.hashWhileSending) {
      const sums = await this.step(`checksum ${input.label}`, () => firstPass(body.abs, body.size, this.partSize, this.scope.signal));
      this.partDigests = sums.parts;
      this.inline = sums.inline;
      checksum = body.original?.checksum ?? sums.checksum;
    }
    if (input.sync && checksum !== undefined) {
      const head = await this.step(`head s3://${input.bucket}/${input.key}`, () => headOrUndefined(this.s3, input.bucket, input.key, this.scope.signal));
      const meta = head ? objectMeta(head) : undefined;
      if (head && head.ContentLength === body.size && meta?.checksum === checksum && meta.encoding === this.encoding) {
        this.scope.progress.add(body.size);
        return this.result(0, true, checksum, 0);
      }
    }
    this.cp = {
      kind: this.hashWhileSending ? 'upload2' : 'upload',
      key: input.key,
      size: body.size,
      mtimeMs: body.mtimeMs,
      ino: body.ino,
      ctimeMs: body.ctimeMs,
      partSize: this.partSize,
      ...(checksum !== undefined ? { checksum } : {}),
      parts: [],
    };
    return undefined;
  }

  private metadata(cp: UploadCheckpoint): Record<string, string> {
    return {
      ...(cp.checksum !== undefined ? { [META_CHECKSUM]: cp.checksum } : {}),
      [META_PART_SIZE]: String(this.body.original?.partSize ?? this.partSize),
      ...(this.encoding !== 'none' ? { [META_ENCODING]: this.encoding, [META_ORIGINAL_SIZE]: String(this.origSt.size) } : {}),
    };
  }

  /** Part `n`'s SHA-256 (base64): from the first pass when this attempt made one, else from the file. */
  private async digestOf(n: number): Promise<string> {
    const known = this.partDigests?.[n - 1];
    const r = partRange(this.body.size, this.partSize, n);
    return known ? known.toString('base64') : hashRange(this.body.abs, r.start, r.end);
  }

  /** One PutObject: part bodies are streamed from the file, never held whole. */
  private async putWhole(): Promise<FileResult> {
    const { input, body } = this;
    const cp = this.cp as UploadCheckpoint;
    const digest = this.hashWhileSending ? undefined : await this.digestOf(1);
    const Metadata = this.metadata(cp);
    let part!: PartBody;
    const put = await this.step(`put s3://${input.bucket}/${input.key}`, () =>
      withPartRetries(this.scope.signal, () => {
        part = partBody(body.abs, 0, body.size, digest, this.partSums, this.inline);
        const cmd = new PutObjectCommand({ Bucket: input.bucket, Key: input.key, Body: part.body, ContentLength: body.size, ...part.checksum, Metadata });
        return this.s3.send(cmd, { abortSignal: this.scope.signal });
      }),
    );
    this.scope.progress.add(body.size);
    await checkUnchanged(this.origAbs, this.origSt, this.input.label);
    const sent = acknowledged(part.sent(), put.ChecksumSHA256, input.label) ?? (await this.digestOf(1));
    cp.checksum ??= compositeChecksum([Buffer.from(sent, 'base64')]);
    // A store that checked the body's SHA-256 names it in its answer (moto not when it was sent ahead); hashed while sending,
    // the object's checksum is the store's, so it is read back once per client to see that the store reports it. A compressed
    // object is read back all the same: a store that dropped its metadata would hand back gzip bytes as the file.
    const seen = this.partSums && put.ChecksumSHA256 === sent && this.encoding === 'none';
    if (!seen || (this.hashWhileSending && storeReportsChecksums(this.s3) !== true)) await this.verify(cp.checksum);
    return this.result(body.size, false, cp.checksum, 0);
  }

  /** Reads the stored object back: its size and checksum must be what was sent (hashed while sending, the store's SHA-256 of it). */
  private async verify(checksum: string): Promise<void> {
    await verifyUploaded(this.s3, this.input, this.body.size, checksum, this.step.bind(this), this.scope.signal);
    if (this.hashWhileSending) noteStoreReportsChecksums(this.s3, true);
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
        const stored = await this.alreadyStored(cp, nParts);
        if (stored) return (await this.abortOrphans(cp), this.result(0, false, stored, cp.parts.length));
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
    await checkUnchanged(this.origAbs, this.origSt, this.input.label);
    const checksum = await this.complete(cp);
    await this.verify(checksum);
    await this.abortOrphans(cp);
    return this.result(sent, false, checksum, resumed);
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
    const digest = this.hashWhileSending ? undefined : await this.digestOf(n);
    let part!: PartBody;
    const out = await this.step(`upload part ${n}/${nParts} of ${input.label}`, () =>
      withPartRetries(this.scope.signal, () => {
        part = partBody(body.abs, start, end, digest, this.partSums);
        const cmd = new UploadPartCommand({
          Bucket: input.bucket,
          Key: input.key,
          UploadId: cp.uploadId,
          PartNumber: n,
          Body: part.body,
          ContentLength: end - start,
          ...part.checksum,
        });
        return this.s3.send(cmd, { abortSignal: this.scope.signal });
      }),
    );
    if (!out.ETag) throw new TrainctlError(ErrorKind.Transient, `UploadPart ${n} returned no ETag`);
    const sha256 = acknowledged(part.sent(), out.ChecksumSHA256, `part ${n} of ${input.label}`);
    cp.parts.push({ n, etag: out.ETag, ...(sha256 !== undefined ? { sha256 } : {}) });
    this.scope.progress.add(end - start);
    this.scope.heartbeat?.(cp);
    await this.state.save(cp);
    return end - start;
  }

  /** Completes the upload; returns the file's checksum. */
  private async complete(cp: UploadCheckpoint): Promise<string> {
    const parts = [...cp.parts].sort((a, b) => a.n - b.n);
    // Parts recovered from ListParts on an emulator carry no checksum: computed from the file.
    for (const p of parts) p.sha256 ??= await this.digestOf(p.n);
    const digests = parts.map((p) => p.sha256 as string);
    const { input, s3, scope } = this;
    const o = { s3, input, uploadId: cp.uploadId as string, partSums: this.partSums, step: this.step.bind(this), signal: scope.signal };
    await completeMultipart(o, parts, async () => !!(await this.alreadyStored(cp, parts.length)));
    return (cp.checksum ??= checksumOfDigests(digests));
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

  /** The file's checksum if the object already holds this upload (its size and checksum); hashed while sending, digests the checkpoint lacks are read from the file. */
  private async alreadyStored(cp: UploadCheckpoint, nParts: number): Promise<string | undefined> {
    const { input, body } = this;
    const head = await headOrUndefined(this.s3, input.bucket, input.key, this.scope.signal);
    if (!head || head.ContentLength !== body.size) return undefined;
    const known = new Map(cp.parts.map((p) => [p.n, p.sha256]));
    const digests: string[] = [];
    if (cp.checksum === undefined) for (let n = 1; n <= nParts; n++) digests.push(known.get(n) ?? (await this.digestOf(n)));
    const checksum = cp.checksum ?? checksumOfDigests(digests);
    return objectMeta(head).checksum === checksum ? checksum : undefined;
  }
}
