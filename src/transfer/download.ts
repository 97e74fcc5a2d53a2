/**
 * The transfer engine's verified single-object download, as a plain library function: the transfer
 * activities and the host's local cache (prewarm's LocalCache) both fetch objects through it, so
 * both get the same ranged parallel GETs, the same verification and the same temp-file discipline.
 * It knows nothing of Temporal: the caller passes its abort signal, a checkpoint to resume from and
 * callbacks for progress and heartbeats.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { headObject } from './s3-maintenance.js';
import { ErrorKind, TrainctlError, isRetryable } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { createHash } from 'node:crypto';
import { compositeChecksum, digestFile } from './checksum.js';
import { hashRange } from './upload-parts.js';
import { byteLimit, decompressor } from './compress.js';
import { objectMeta } from './object-meta.js';
import { NOFOLLOW_CREATE, NOFOLLOW_UPDATE, NOFOLLOW_WRITE, checkDestination, exists, pool } from './download-files.js';
import type { DownloadCheckpoint, VerifiedDownloadOptions, VerifiedDownloadResult } from './download-types.js';
import { endsTheFile } from './types.js';
import { DEFAULT_MIN_PART_SIZE, partCount, partRange, planPartSize, tempPathFor } from './plan.js';

export type { DownloadCheckpoint, VerifiedDownloadOptions, VerifiedDownloadResult } from './download-types.js';
export { META_ENCODING, META_ORIGINAL_SIZE, objectMeta, type ObjectMeta } from './object-meta.js';

const identity = <T>(_what: string, fn: () => Promise<T>) => fn();

const WRITE_BATCH_BYTES = 1024 * 1024;

/** What the landed file was found to be: its checksum and length, and (from a whole pass) its SHA-256 and MD5. */
interface Landed {
  checksum: string;
  size: number;
  sha256?: string;
  md5?: string;
}

/**
 * Downloads one object with `concurrency` parallel ranged GETs (pinned to the ETag seen at the
 * start) into a temp file next to `path`, decodes it if trainctl compressed it, verifies it — against
 * trainctl's stored checksum, else a single-part ETag's MD5, else by length — and renames it into
 * place. A mismatch fetches the whole object once more; a second mismatch throws kind Integrity and
 * nothing is left at `path` or its temp name. With `resumable`, a retryable failure leaves the temp
 * file and a sidecar of finished ranges (none for a small one-range object) for the next call.
 */
export async function downloadVerified(o: VerifiedDownloadOptions): Promise<VerifiedDownloadResult> {
  const step = o.step ?? identity;
  const head = await step(`head s3://${o.bucket}/${o.key}`, () => headObject(o.s3, o.bucket, o.key, o.signal));
  const d = new VerifiedDownload(o, step, head);
  return (await d.syncSkip()) ?? d.fetch();
}

/** The object as HeadObject described it, and what its bytes are checked against. */
interface ObjectFacts {
  storedSize: number;
  etag: string;
  meta: ReturnType<typeof objectMeta>;
  verifyPartSize: number;
  singlePartMd5: string | undefined;
  verifiedBy: VerifiedDownloadResult['verifiedBy'];
}

/** Writes `rest` at `at` to the end; a write that makes no progress at all is a Transient failure. */
async function writeRest(fh: FileHandle, rest: Buffer, at: number, label: string): Promise<void> {
  for (let off = 0; off < rest.length; ) {
    const { bytesWritten } = await fh.write(rest, off, rest.length - off, at + off);
    if (bytesWritten === 0) throw new TrainctlError(ErrorKind.Transient, `${label}: wrote ${off} of ${rest.length} bytes at offset ${at}`);
    off += bytesWritten;
  }
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** One {@link downloadVerified} call: its temp files, checkpoint and byte counts. */
class VerifiedDownload {
  private readonly tmp: string;
  private readonly decoded: string;
  private readonly sidecar: string;
  /** Where the next record is written before it is renamed over the sidecar. */
  private readonly sidecarNext: string;
  /** Whether the bytes are synced before a record names them (see saveSidecar). */
  private readonly syncBeforeRecord: boolean;
  private readonly obj: ObjectFacts;
  private readonly rangeSize: number;
  /**
   * The ranges are trainctl's parts: each range's SHA-256 is taken as its bytes arrive, and their
   * composite is the recorded checksum — the landed file is never read again.
   */
  private readonly streamVerify: boolean;
  /**
   * SHA-256 (base64) of each range this call fetched and wrote, by range number. Only these are
   * trusted without reading the disk: a range a checkpoint says is finished is read back and hashed.
   */
  private readonly fetchedDigests = new Map<number, string>();
  private checkpoint!: DownloadCheckpoint;
  private sidecarQueued: Promise<void> | undefined;
  private sidecarError: unknown;
  private sent = 0;
  private fileBytes = 0;
  private sidecarWrites = Promise.resolve();

  constructor(
    private readonly o: VerifiedDownloadOptions,
    private readonly step: <T>(what: string, fn: () => Promise<T>) => Promise<T>,
    head: HeadObjectCommandOutput,
  ) {
    this.tmp = tempPathFor(o.path);
    this.decoded = `${this.tmp}.decoded`;
    this.sidecar = `${this.tmp}.json`;
    this.sidecarNext = tempPathFor(this.sidecar);
    const storedSize = head.ContentLength ?? 0;
    const etag = head.ETag ?? '';
    const meta = objectMeta(head);
    if (meta.encoding !== 'none' && !meta.checksum)
      throw new TrainctlError(ErrorKind.Integrity, `${o.label}: a ${meta.encoding}-encoded object without trainctl's checksum cannot be verified`);
    const singlePartMd5 = /^"?([0-9a-f]{32})"?$/.exec(etag)?.[1];
    const verifyPartSize = meta.partSize ?? planPartSize(meta.originalSize ?? storedSize);
    this.obj = { storedSize, etag, meta, verifyPartSize, singlePartMd5, verifiedBy: meta.checksum ? 'checksum' : singlePartMd5 ? 'etag-md5' : 'length' };
    this.rangeSize = o.rangeSize ?? verifyPartSize;
    this.streamVerify = !!meta.checksum && meta.encoding === 'none' && this.rangeSize === verifyPartSize && !o.wholeSha256;
    this.syncBeforeRecord = meta.encoding !== 'none' || this.obj.verifiedBy === 'length';
  }

  private bytes(n: number): void {
    this.o.onBytes?.(n);
  }

  private moved(n: number): void {
    this.fileBytes += n;
    this.bytes(n);
  }

  /** With `sync`: the result of skipping, when the file at `path` already has the object's checksum. */
  async syncSkip(): Promise<VerifiedDownloadResult | undefined> {
    const { o, obj } = this;
    if (!o.sync || !obj.meta.checksum) return undefined;
    const local = await stat(o.path).catch(() => undefined);
    if (!local?.isFile() || local.size !== (obj.meta.originalSize ?? obj.storedSize)) return undefined;
    const d = await this.step(`checksum ${o.label}`, () => digestFile(o.path, obj.verifyPartSize, o.signal));
    if (d.checksum !== obj.meta.checksum) return undefined;
    this.bytes(obj.storedSize);
    return {
      size: d.size,
      sent: 0,
      skipped: true,
      verifiedBy: obj.verifiedBy,
      checksum: d.checksum,
      sha256: d.sha256,
      etag: obj.etag,
      encoding: obj.meta.encoding,
      resumed: 0,
    };
  }

  /**
   * The checkpoint to resume from: the heartbeat's and the sidecar's finished ranges merged. The
   * heartbeat reaches the server at most every ~80 % of the heartbeat timeout; the sidecar records
   * every finished range, so a killed worker re-fetches only the ranges in flight.
   */
  private async resumePoint(): Promise<DownloadCheckpoint | undefined> {
    const { o, obj, rangeSize } = this;
    const matches = (c: unknown): c is DownloadCheckpoint => {
      const d = c as DownloadCheckpoint | undefined;
      return d?.kind === 'download' && d.etag === obj.etag && d.size === obj.storedSize && d.rangeSize === rangeSize && Array.isArray(d.done);
    };
    if (!o.resumable || !(await exists(this.tmp))) return undefined;
    // A torn sidecar (an older trainctl wrote it in place) is no record: its ranges are fetched again.
    const fromDisk: unknown = await readFile(this.sidecar, 'utf8').then(
      (t) => parseOrUndefined(t),
      () => undefined,
    );
    const fromHb = o.resume;
    if (!matches(fromHb) && !matches(fromDisk)) return undefined;
    return {
      kind: 'download',
      etag: obj.etag,
      size: obj.storedSize,
      rangeSize,
      done: [...new Set([...(matches(fromHb) ? fromHb.done : []), ...(matches(fromDisk) ? fromDisk.done : [])])],
    };
  }

  /**
   * Records the finished ranges beside the temp file, off the download's path: writes are chained
   * (never interleaved) and coalesced. Each record is written beside and renamed over the sidecar: a
   * SIGKILL mid-write leaves the last whole one. A recorded range survives a killed worker (page
   * cache); after a machine crash the final check of an uncompressed object reads every recorded
   * range back (checksum, ETag MD5), so no sync holds its record back (seconds, on a busy disk).
   * A compressed object (a hole fails its decoding) or a length-checked one is synced first.
   */
  private saveSidecar(fh: FileHandle): Promise<void> {
    if (!this.o.resumable) return Promise.resolve();
    // A write already queued will record this range too: wait for it rather than queue another.
    if (this.sidecarQueued) return this.sidecarQueued;
    const queued = this.sidecarWrites.then(async () => {
      this.sidecarQueued = undefined;
      const text = JSON.stringify(this.checkpoint);
      try {
        if (this.syncBeforeRecord) await fh.datasync();
      } catch (err) {
        // Kept and thrown by the download once its ranges settle: never an unhandled rejection.
        this.sidecarError ??= err;
        return;
      }
      // The record only saves work on a resume: one that cannot be written (a name too long for the
      // extra suffix, a full disk) leaves the last one, and the download goes on.
      await writeFile(this.sidecarNext, text, { flag: NOFOLLOW_WRITE, mode: 0o600 })
        .then(() => rename(this.sidecarNext, this.sidecar))
        .catch(() => rm(this.sidecarNext, { force: true }).catch(() => undefined));
    });
    this.sidecarQueued = queued;
    this.sidecarWrites = queued;
    return queued;
  }

  private async removeTemps(): Promise<void> {
    await this.sidecarWrites.catch(() => undefined);
    await rm(this.tmp, { force: true });
    await rm(this.decoded, { force: true });
    await rm(this.sidecar, { force: true });
    await rm(this.sidecarNext, { force: true });
  }

  /** Fetches, verifies (one whole re-fetch after a mismatch) and renames into place. */
  async fetch(): Promise<VerifiedDownloadResult> {
    const { o, obj } = this;
    await checkDestination(o.path, o.label);
    const cp = await this.resumePoint();
    await mkdir(dirname(o.path), { recursive: true });
    const fresh = !cp;
    const resumed = cp?.done.length ?? 0;
    this.checkpoint = cp ?? { kind: 'download', etag: obj.etag, size: obj.storedSize, rangeSize: this.rangeSize, done: [] };
    try {
      let digest: Landed;
      for (let attempt = 1; ; attempt++) {
        await this.fetchRanges(fresh || attempt > 1);
        const landed = await this.decode();
        digest = this.streamVerify
          ? await this.step(`checksum ${o.label}`, () => this.composite())
          : await this.step(`checksum ${o.label}`, () => digestFile(landed, obj.verifyPartSize, o.signal));
        const problem = this.mismatch(digest);
        if (!problem) {
          await rename(landed, o.path);
          break;
        }
        if (attempt >= 2) throw new TrainctlError(ErrorKind.Integrity, `${o.label}: checksum mismatch after download (${problem})`);
        this.checkpoint.done = [];
        this.fetchedDigests.clear();
        // The record of finished ranges goes before the file is emptied: a crash now resumes nothing stale.
        await rm(this.sidecar, { force: true });
        this.bytes(-this.fileBytes);
        this.fileBytes = 0;
      }
      await this.removeTemps();
      const { meta } = obj;
      return {
        size: digest.size,
        sent: this.sent,
        skipped: false,
        verifiedBy: obj.verifiedBy,
        ...(meta.checksum ? { checksum: meta.checksum } : {}),
        ...(digest.sha256 !== undefined ? { sha256: digest.sha256 } : {}),
        etag: obj.etag,
        encoding: meta.encoding,
        resumed,
      };
    } catch (err) {
      // Keep the partial file only for a retry that can resume from it.
      if (!o.resumable || endsTheFile(err, o.signal, (e) => isRetryable(classify(e)))) await this.removeTemps();
      else await rm(this.decoded, { force: true });
      throw err;
    }
  }

  /** Fills the temp file with every range the checkpoint lacks (`truncate`: start from an empty file). */
  private async fetchRanges(truncate: boolean): Promise<void> {
    const { o, obj, rangeSize } = this;
    const fh = await open(this.tmp, truncate ? NOFOLLOW_CREATE : NOFOLLOW_UPDATE, 0o600);
    try {
      if (truncate) await fh.truncate(obj.storedSize);
      const done = new Set(this.checkpoint.done);
      for (const i of done) {
        const r = partRange(obj.storedSize, rangeSize, i);
        this.moved(r.end - r.start);
      }
      const todo = Array.from({ length: partCount(obj.storedSize, rangeSize) }, (_, i) => i + 1).filter((i) => !done.has(i));
      await pool(todo, o.concurrency, async (i) => {
        const got = await this.fetchRange(fh, i);
        this.sent += got;
        this.checkpoint.done.push(i);
        o.onCheckpoint?.(this.checkpoint);
        // Coalesced: the lanes that finish while one record is being synced share the next one. A
        // small object of one range needs none: a retry fetches those few MiB again.
        if (todo.length + done.size > 1 || obj.storedSize > DEFAULT_MIN_PART_SIZE) await this.saveSidecar(fh);
      });
      await this.sidecarWrites;
      if (this.sidecarError !== undefined) throw this.sidecarError;
      await fh.sync();
    } finally {
      await this.sidecarWrites.catch(() => undefined);
      await fh.close();
    }
  }

  /** One ranged GET, written at its offset; returns its length. */
  private fetchRange(fh: FileHandle, i: number): Promise<number> {
    const { o, obj } = this;
    const { start, end } = partRange(obj.storedSize, this.rangeSize, i);
    return this.step(`download bytes ${start}-${end - 1} of ${o.label}`, async () => {
      const out = await o.s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: o.key, Range: `bytes=${start}-${end - 1}`, IfMatch: obj.etag || undefined }), {
        abortSignal: o.signal,
      });
      if (!out.Body) throw new TrainctlError(ErrorKind.Transient, 'GetObject returned no body');
      const h = this.streamVerify ? createHash('sha256') : undefined;
      let pos = start;
      // Chunks arrive at socket size (tens of KiB): written in batches of about 1 MiB, one system call each.
      let batch: Uint8Array[] = [];
      let batchBytes = 0;
      const flush = async () => {
        if (batchBytes === 0) return;
        const { bytesWritten } = await fh.writev(batch, pos);
        // A short write (a full disk, say) would leave a hole: write the rest, and the disk names its
        // reason on the next call (ENOSPC: QuotaExceeded, not retried) instead of a vague retryable short write.
        if (bytesWritten !== batchBytes) await writeRest(fh, Buffer.concat(batch).subarray(bytesWritten), pos + bytesWritten, o.label);
        pos += batchBytes;
        this.moved(batchBytes);
        batch = [];
        batchBytes = 0;
      };
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
        if (pos + batchBytes + chunk.length > end) throw new TrainctlError(ErrorKind.Transient, `range ${i} of ${o.label} returned too many bytes`);
        h?.update(chunk);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= WRITE_BATCH_BYTES) await flush();
      }
      await flush();
      if (pos !== end) throw new TrainctlError(ErrorKind.Transient, `range ${i} of ${o.label} ended after ${pos - start} of ${end - start} bytes`);
      if (h) this.fetchedDigests.set(i, h.digest('base64'));
      return end - start;
    });
  }

  /** The file as it lands: the temp file, or its decoded copy when trainctl compressed the object. */
  private async decode(): Promise<string> {
    const { o, obj } = this;
    if (obj.meta.encoding === 'none') return this.tmp;
    const encoding = obj.meta.encoding;
    const signal = o.signal;
    await this.step(`decode ${o.label}`, async () =>
      pipeline(
        createReadStream(this.tmp),
        decompressor(encoding),
        byteLimit(obj.meta.originalSize ?? 0, o.label),
        (await open(this.decoded, NOFOLLOW_WRITE, 0o600)).createWriteStream(),
        ...(signal ? [{ signal }] : []),
      ),
    );
    return this.decoded;
  }

  /**
   * trainctl's checksum of the landed file: the digests of the ranges this call wrote, and for a
   * range an earlier attempt wrote, its bytes read back from the temp file.
   */
  private async composite(): Promise<Landed> {
    const { obj, rangeSize } = this;
    const digests: Buffer[] = [];
    for (let i = 1; i <= partCount(obj.storedSize, rangeSize); i++) {
      const known = this.fetchedDigests.get(i);
      const r = partRange(obj.storedSize, rangeSize, i);
      digests.push(Buffer.from(known ?? (await hashRange(this.tmp, r.start, r.end)), 'base64'));
    }
    return { checksum: compositeChecksum(digests), size: obj.storedSize };
  }

  /** What is wrong with the landed bytes, or false. */
  private mismatch(digest: Landed): string | false {
    const { o, obj } = this;
    const where = `s3://${o.bucket}/${o.key}`;
    if (obj.meta.checksum) return digest.checksum !== obj.meta.checksum && `object ${where} has ${digest.checksum}, its upload recorded ${obj.meta.checksum}`;
    if (obj.singlePartMd5) return digest.md5 !== obj.singlePartMd5 && `object ${where} has MD5 ${digest.md5}, its ETag says ${obj.singlePartMd5}`;
    return digest.size !== obj.storedSize && `object ${where} gave ${digest.size} bytes, HeadObject said ${obj.storedSize}`;
  }
}

export { pool } from './download-files.js';
