import { Context, log } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import { toFailure } from '../errors/classify.js';
import { abortSignal, step } from './aws-call.js';
import { downloadFile, runBatch, type BatchDeps } from '../transfer/engine.js';
import { uploadFile } from '../transfer/upload.js';
import { scanTree, type ScanInput, type ScanResult } from '../transfer/scan.js';
import { deleteFilesUnder, removePartialDownloads } from '../transfer/prune.js';
import { abortUploadsFor, deleteObjectsUnder, emptyPrefix, listS3Source, type S3ListResult, type S3StepDeps } from '../transfer/s3-maintenance.js';
import type { BatchInput, DownloadInput, FileResult, UploadInput } from '../transfer/types.js';
import { activityScope, isActivityCancelled } from './transfer-scope.js';
import { transferHooksFromEnv, type TransferHooks } from './transfer-hooks.js';
import type { HostFs } from './host-fs.js';

export type { TransferHooks } from './transfer-hooks.js';
export { transferHooksFromEnv } from './transfer-hooks.js';

export interface TransferEngineDeps {
  s3(region: string): S3Client;
  /** Turns a location's path into an absolute one this worker may touch (host roots, or anything locally). */
  resolvePath(path: string): Promise<string>;
  /** Roots that are a device or a file (host workers): no download lands on one. */
  fileRoots?: readonly string[] | undefined;
  hooks?: TransferHooks | undefined;
  /** How often a running activity heartbeats its checkpoint. */
  heartbeatIntervalMs?: number;
}

/** A failure leaving a transfer activity: cancellation as it came, anything else as a taxonomy failure naming what failed. */
function failure(err: unknown, what: string): unknown {
  return isActivityCancelled(err) ? err : toFailure(err, what);
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
    step,
    log,
    hooks: deps.hooks,
    heartbeatIntervalMs: deps.heartbeatIntervalMs ?? 1_000,
    fail: failure,
  };
  return {
    /**
     * Lists a local (or host) file or folder tree: relative paths and sizes, filtered by the
     * include/exclude globs. Symlinks leaving the root are skipped unless `followSymlinks`. Read-only.
     */
    async transferScan(input: ScanInput): Promise<ScanResult> {
      return step(`scan ${input.path}`, () => scanTree(input, { resolvePath: deps.resolvePath, heartbeat: (n) => Context.current().heartbeat(n) }));
    },
    /**
     * Uploads one file to S3 (PutObject, or multipart above one part) with trainctl's checksum in
     * the object's metadata and S3's SHA-256 part checksums. Heartbeats a checkpoint (upload id,
     * finished parts); a retry resumes from it without re-sending finished parts, and restarts
     * the file if it changed. With `sync`, an identical object is skipped. On cancel or a
     * non-retryable failure the multipart upload is aborted.
     */
    async transferUpload(input: UploadInput): Promise<FileResult> {
      return uploadFile(input, activityScope(input.label, input.progressIntervalMs), engine).catch((err: unknown) => {
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
      return downloadFile(input, activityScope(input.label, input.progressIntervalMs), engine).catch((err: unknown) => {
        throw failure(err, `download ${input.label}`);
      });
    },
    /**
     * Uploads many small files as one activity, `concurrency` at a time, heartbeating the files
     * finished so far: a retry skips them. Keeps a big tree's history small (one activity per
     * batch, not per file). Each file behaves as in {@link transferUpload}.
     */
    async transferUploadBatch(input: BatchInput<UploadInput>): Promise<FileResult[]> {
      return runBatch(input, 'upload', uploadFile, activityScope(input.label, input.progressIntervalMs), engine);
    },
    /** Downloads many small files as one activity; see {@link transferUploadBatch} and {@link transferDownload}. */
    async transferDownloadBatch(input: BatchInput<DownloadInput>): Promise<FileResult[]> {
      return runBatch(input, 'download', downloadFile, activityScope(input.label, input.progressIntervalMs), engine);
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
  s3(region: string): S3Client;
  transferHooks?: TransferHooks | undefined;
  /** This worker's confinement: a local path inside its roots, symlinks resolved, or InvalidInput naming the roots. */
  resolvePath(path: string): Promise<string>;
}) {
  return {
    ...createTransferEngine({ s3: deps.s3, hooks: deps.transferHooks, resolvePath: deps.resolvePath }),

    /**
     * Lists an S3 source: the object itself when the uri names one, else every object under the
     * prefix (folder markers skipped), filtered by the globs. Refuses (InvalidInput) any key whose
     * relative part could escape a destination folder, before anything is written. Read-only.
     */
    async transferListS3(input: { region: string; uri: string; include: string[]; exclude: string[] }): Promise<S3ListResult> {
      return listS3Source(deps.s3(input.region), input, s3StepDeps());
    },

    /**
     * Aborts the multipart uploads in progress for these keys: the sweep after a cancelled or
     * failed transfer, for uploads whose activity died before it could abort them. Idempotent.
     */
    async transferAbortUploads(input: { region: string; bucket: string; keys: string[] }): Promise<number> {
      return abortUploadsFor(deps.s3(input.region), input.bucket, input.keys, s3StepDeps());
    },

    /**
     * Deletes the objects `prefix + rel` (a sync's extraneous destination objects). Every rel is
     * checked as a relative key, so nothing outside the prefix is named. Idempotent.
     */
    async transferDeleteObjects(input: { region: string; bucket: string; prefix: string; rels: string[] }): Promise<number> {
      return deleteObjectsUnder(deps.s3(input.region), input, s3StepDeps());
    },

    /** Deletes every object under a (non-empty) staging prefix. Idempotent. */
    async transferDeletePrefix(input: { region: string; bucket: string; prefix: string }): Promise<number> {
      return emptyPrefix(deps.s3(input.region), input, s3StepDeps());
    },
  };
}

export type TransferActivities = ReturnType<typeof createTransferActivities>;

/** The engine as a host worker registers it: every path confined to the host's roots. */
export function createHostTransferActivities(deps: { fs: HostFs; s3(region: string): S3Client }) {
  return createTransferEngine({ s3: deps.s3, resolvePath: (p) => deps.fs.resolve(p), fileRoots: deps.fs.fileRoots, hooks: transferHooksFromEnv(process.env) });
}
