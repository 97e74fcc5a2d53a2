import { Context, log } from '@temporalio/activity';
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { classify, toFailure } from '../errors/classify.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { endpointUrl } from '../transfer/s5cmd.js';
import { abortSignal, step } from './aws-call.js';
import { downloadFile, runBatch, type BatchDeps } from '../transfer/engine.js';
import { uploadFile } from '../transfer/upload.js';
import { copyObject, type CopyInput } from '../transfer/copy.js';
import { scanTree, type ScanInput, type ScanResult } from '../transfer/scan.js';
import { deleteFilesUnder, removePartialDownloads } from '../transfer/prune.js';
import { abortUploadsFor, deleteObjectsUnder, emptyPrefix, listS3Source, type S3ListResult, type S3StepDeps } from '../transfer/s3-maintenance.js';
import type { BatchInput, DownloadInput, FileResult, Step, UploadInput } from '../transfer/types.js';
import { activityScope, boundUnknown, isActivityCancelled, TRANSFER_THROTTLE_BACKOFF } from './transfer-scope.js';
import type { HostFs } from './host-fs.js';
import type { S3For, S3Target } from '../aws/profiles.js';

export interface TransferEngineDeps {
  s3: S3For;
  /** Turns a location's path into an absolute one this worker may touch (host roots, or anything locally). */
  resolvePath(path: string): Promise<string>;
  /** Roots that are a device or a file (host workers): no download lands on one. */
  fileRoots?: readonly string[] | undefined;
  /** How often a running activity heartbeats its checkpoint. */
  heartbeatIntervalMs?: number;
}

/** A failure leaving a transfer activity: cancellation as it came, anything else as a taxonomy failure naming what failed. */
function failure(err: unknown, what: string): unknown {
  return isActivityCancelled(err) ? err : boundUnknown(toFailure(err, what));
}

/** A file activity's step: a throttling store is backed off up to {@link TRANSFER_THROTTLE_BACKOFF}'s 10 minutes. */
const fileStep: Step = (what, fn) => step(what, fn, TRANSFER_THROTTLE_BACKOFF);

/** The location's S3 client; a profile that cannot be used fails as a taxonomy failure naming it. */
function s3Client(s3: S3For, target: S3Target): Promise<S3Client> {
  return step(`S3 client for ${target.profile ? `profile ${target.profile}` : 'the default profile'}`, () => s3(target));
}

/** HeadBucket with a profile's client; its errors have no body, so a 403 or 404 is said in words. */
function reachBucket(s3: S3Client, profile: string, bucket: string, endpoint: string | null): Promise<void> {
  return step(`reach s3://${profile}@${bucket}`, async () => {
    try {
      await s3.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: abortSignal() });
    } catch (err) {
      const kind = classify(err);
      const where = endpoint ?? 'AWS';
      if (kind === ErrorKind.PermissionDenied)
        throw new TrainctlError(
          kind,
          `${where} refused the credentials of AWS profile "${profile}" for bucket ${bucket}: check its aws_access_key_id and aws_secret_access_key (or its bucket policy)`,
          { cause: err },
        );
      if (kind === ErrorKind.NotFound) throw new TrainctlError(kind, `bucket ${bucket} does not exist at ${where} (AWS profile "${profile}")`, { cause: err });
      throw err;
    }
  });
}

/** What the S3 steps of the running activity run with. */
function s3StepDeps(): S3StepDeps {
  return { step, log, signal: abortSignal(), heartbeat: (d) => Context.current().heartbeat(d) };
}

/**
 * The file-moving activities. The same engine runs on the orchestration worker (local paths) and
 * on a host worker (paths confined to the host's roots), under the same activity names: the
 * workflow picks the machine by task queue.
 */
export function createTransferEngine(deps: TransferEngineDeps) {
  const engine: BatchDeps = {
    s3: deps.s3,
    resolvePath: deps.resolvePath,
    fileRoots: deps.fileRoots,
    step: fileStep,
    log,
    heartbeatIntervalMs: deps.heartbeatIntervalMs ?? 1_000,
    fail: failure,
  };
  return {
    /**
     * Lists a local (or host) file or folder tree: relative paths and sizes, filtered by the
     * include/exclude globs. Symlinks leaving the root are skipped unless `followSymlinks`. Paged
     * with `maxFiles`: the files after `after` in path order, and `next` when more follow. Read-only.
     */
    async transferScan(input: ScanInput): Promise<ScanResult> {
      return step(`scan ${input.path}`, () => scanTree(input, { resolvePath: deps.resolvePath, heartbeat: (n) => Context.current().heartbeat(n) }));
    },
    /**
     * Resolves, before a transfer lists or writes anything, the store each S3 location reaches from
     * this worker: its endpoint (null: AWS itself). A location naming a profile is also checked:
     * the profile is in this worker's shared config (InvalidInput naming it otherwise), it may be
     * used here (AWS itself needs TRAINCTL_AWS=real), and its credentials are accepted for the
     * bucket (HeadBucket: PermissionDenied naming the profile otherwise). Read-only.
     */
    async transferCheckStores(input: { region: string; locations: { profile?: string; bucket: string }[] }): Promise<(string | null)[]> {
      const out: (string | null)[] = [];
      for (const loc of input.locations) {
        const s3 = await s3Client(deps.s3, { region: input.region, profile: loc.profile });
        const endpoint = endpointUrl(await s3.config.endpoint?.()) ?? null;
        if (loc.profile) await reachBucket(s3, loc.profile, loc.bucket, endpoint);
        out.push(endpoint);
      }
      return out;
    },
    /**
     * Uploads one file to S3 (PutObject, or multipart above one part) with trainctl's checksum in
     * the object's metadata and S3's SHA-256 part checksums. Heartbeats a checkpoint (upload id,
     * finished parts); a retry resumes from it without re-sending finished parts, and restarts
     * the file if it changed. With `sync`, an identical object is skipped. On cancel or a
     * non-retryable failure the multipart upload is aborted.
     */
    async transferUpload(input: UploadInput): Promise<FileResult> {
      return uploadFile(input, activityScope(input.label), engine).catch((err: unknown) => {
        throw failure(err, `upload ${input.label}`);
      });
    },
    /**
     * Downloads one object with parallel ranged GETs into a temp file, verifies it against the
     * checksum recorded at upload, and renames it into place. Heartbeats the finished ranges; a
     * retry resumes them. A persistent mismatch fails with kind Integrity and removes the temp
     * file; so do cancel and non-retryable failures.
     */
    async transferDownload(input: DownloadInput): Promise<FileResult> {
      return downloadFile(input, activityScope(input.label), engine).catch((err: unknown) => {
        throw failure(err, `download ${input.label}`);
      });
    },
    /**
     * Uploads many small files as one activity, `concurrency` at a time, heartbeating the files
     * finished so far: a retry skips them. Keeps a big tree's history small (one activity per
     * batch, not per file). Each file behaves as in {@link transferUpload}.
     */
    async transferUploadBatch(input: BatchInput<UploadInput>): Promise<FileResult[]> {
      return runBatch(input, 'upload', uploadFile, activityScope(input.label), engine);
    },
    /** Downloads many small files as one activity; see {@link transferUploadBatch} and {@link transferDownload}. */
    async transferDownloadBatch(input: BatchInput<DownloadInput>): Promise<FileResult[]> {
      return runBatch(input, 'download', downloadFile, activityScope(input.label), engine);
    },
    /**
     * Deletes files under `root` named by relative paths (a sync's extraneous destination files).
     * Each path is checked (no `..`, absolute, backslash or NUL) and its folder, symlinks resolved,
     * must lie inside `root`: nothing outside the destination is ever removed. A symlink is removed
     * itself, never its target. Idempotent: a file already gone counts as deleted.
     */
    async transferDeleteFiles(input: { root: string; rels: string[] }): Promise<number> {
      return step(`delete ${input.rels.length} extraneous files under ${input.root}`, async () =>
        deleteFilesUnder(await deps.resolvePath(input.root), input.root, input.rels, (n) => Context.current().heartbeat(n)),
      );
    },
    /** Removes the temp files of unfinished downloads to these paths. Idempotent. */
    async transferRemoveTemp(input: { paths: string[] }): Promise<number> {
      const abs: string[] = [];
      for (const p of input.paths) abs.push(await deps.resolvePath(p));
      return removePartialDownloads(abs);
    },
  };
}

export type TransferEngine = ReturnType<typeof createTransferEngine>;

/**
 * The transfer activities of the orchestration worker: the engine on this machine's files, plus
 * the S3-only steps (list a source, abort leftover uploads, delete a staging prefix).
 */
export function createTransferActivities(deps: {
  s3: S3For;
  /** This worker's confinement: a local path inside its roots, symlinks resolved, or InvalidInput naming the roots. */
  resolvePath(path: string): Promise<string>;
}) {
  const copyDeps: BatchDeps = { s3: deps.s3, resolvePath: deps.resolvePath, step: fileStep, log, heartbeatIntervalMs: 1_000, fail: failure };
  return {
    ...createTransferEngine({ s3: deps.s3, resolvePath: deps.resolvePath }),

    /**
     * Copies one object from one S3 endpoint (profile) to another through this worker: ranged GETs,
     * part uploads, trainctl's checksum carried over and checked on the bytes read. Heartbeats its
     * checkpoint; a retry (here or on another worker) resumes without re-sending finished parts.
     */
    async transferCopy(input: CopyInput): Promise<FileResult> {
      return copyObject(input, activityScope(input.label), copyDeps).catch((err: unknown) => {
        throw failure(err, `copy ${input.label}`);
      });
    },
    /** Copies many small objects as one activity; see {@link transferCopy}. */
    async transferCopyBatch(input: BatchInput<CopyInput>): Promise<FileResult[]> {
      return runBatch(input, 'copy', copyObject, activityScope(input.label), copyDeps);
    },

    /**
     * Lists an S3 source: the object itself when the uri names one, else every object under the
     * prefix (folder markers skipped), filtered by the globs. Refuses (InvalidInput) any key whose
     * relative part could escape a destination folder, before anything of its page is written (a
     * later page's keys are checked as it is listed). Paged with `maxFiles`: the objects after
     * `after`, and `next` when more follow. Read-only.
     */
    async transferListS3(input: {
      region: string;
      profile?: string;
      uri: string;
      include: string[];
      exclude: string[];
      after?: string;
      maxFiles?: number;
    }): Promise<S3ListResult> {
      return listS3Source(await s3Client(deps.s3, input), input, s3StepDeps());
    },

    /**
     * Aborts the multipart uploads in progress for these keys: the sweep after a cancelled or
     * failed transfer, for uploads whose activity died before it could abort them. Idempotent.
     */
    async transferAbortUploads(input: { region: string; profile?: string; bucket: string; keys: string[] }): Promise<number> {
      return abortUploadsFor(await s3Client(deps.s3, input), input.bucket, input.keys, s3StepDeps());
    },

    /**
     * Deletes the objects `prefix + rel` (a sync's extraneous destination objects). Every rel is
     * checked as a relative key, so nothing outside the prefix is named. Idempotent.
     */
    async transferDeleteObjects(input: { region: string; profile?: string; bucket: string; prefix: string; rels: string[] }): Promise<number> {
      return deleteObjectsUnder(await s3Client(deps.s3, input), input, s3StepDeps());
    },

    /** Deletes every object under a (non-empty) staging prefix. Idempotent. */
    async transferDeletePrefix(input: { region: string; profile?: string; bucket: string; prefix: string }): Promise<number> {
      return emptyPrefix(await s3Client(deps.s3, input), input, s3StepDeps());
    },
  };
}

export type TransferActivities = ReturnType<typeof createTransferActivities>;

/** The engine as a host worker registers it: every path confined to the host's roots. */
export function createHostTransferActivities(deps: { fs: HostFs; s3: S3For }) {
  return createTransferEngine({ s3: deps.s3, resolvePath: (p) => deps.fs.resolve(p), fileRoots: deps.fs.fileRoots });
}
