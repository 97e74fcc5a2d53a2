import { CancellationScope, log, proxyActivities, type ActivityInterfaceFor } from '@temporalio/workflow';
import type { TransferActivities, TransferEngine } from '../activities/transfer.js';
import type { S5cmdActivities } from '../activities/transfer-s5cmd.js';
import type { DataLocation, TransferInput, TransferProgress } from '../contracts/transfer.js';
import { batchUnits, unitLabel, type CopyJob, type DownloadJob, type Job, type UploadJob } from '../transfer/legs.js';
import { DEFAULT_MIN_PART_SIZE } from '../transfer/plan.js';
import type { FileResult } from '../transfer/types.js';
import { hostTransfer, hostTransferStep, localTransfer, onHost, transferStep, withHeartbeat } from './options.js';
import type { TransferProgressTracker } from './transfer-progress.js';
import { fileFailure } from './transfer-failures.js';

export type Engine = ActivityInterfaceFor<TransferEngine>;

/** Options every file activity shares. */
export interface FileOptions {
  region: string;
  partSize: number | undefined;
  concurrency: number;
  sync: boolean;
  progressIntervalMs: number;
}

/** A transfer's activity proxies: the orchestration worker's, and each host's on its own task queue. */
export class TransferEngines {
  readonly local: ActivityInterfaceFor<TransferActivities & S5cmdActivities>;
  readonly quick: ActivityInterfaceFor<TransferActivities>;

  constructor(private readonly heartbeatTimeoutSeconds: TransferInput['heartbeatTimeoutSeconds']) {
    this.local = proxyActivities<TransferActivities & S5cmdActivities>(withHeartbeat(localTransfer, heartbeatTimeoutSeconds));
    this.quick = proxyActivities<TransferActivities>(transferStep);
  }

  /** The file activities on the machine that holds `loc`'s files. */
  engineFor(loc: DataLocation): Engine {
    return loc.kind === 'host' ? proxyActivities<TransferEngine>(onHost(withHeartbeat(hostTransfer, this.heartbeatTimeoutSeconds), loc.hostId)) : this.local;
  }

  /** The short steps (scan, delete, remove temp) on the machine that holds `loc`'s files. */
  quickEngineFor(loc: DataLocation): Engine {
    return loc.kind === 'host'
      ? proxyActivities<TransferEngine>(onHost(withHeartbeat(hostTransferStep, this.heartbeatTimeoutSeconds), loc.hostId))
      : this.quick;
  }
}

/**
 * Runs a transfer's legs (built-in engine or s5cmd) and remembers what they started, so that
 * `cleanUp` can sweep it after a cancel or failure.
 */
export class LegRunner {
  /** Sweeps after a cancel or failure: uploads whose activity could not abort them, partial downloads. */
  private readonly startedUploads: { profile?: string; bucket: string; keys: Set<string> }[] = [];
  private readonly startedDownloads: { engine: Engine; paths: Set<string> }[] = [];

  constructor(
    private readonly input: TransferInput,
    private readonly engines: TransferEngines,
    private readonly progress: TransferProgressTracker,
    private readonly common: FileOptions,
  ) {}

  /** One leg with the built-in engine: large files one activity each, small files in batches, `fileConcurrency` lanes. */
  async runJobs(jobs: Job[], engine: Engine, phase: TransferProgress['phase']): Promise<void> {
    this.progress.startLeg(phase, jobs, true);
    const { source: src, destination: dst } = this.input;
    const uploads: { profile?: string; bucket: string; keys: Set<string> } = { bucket: '', keys: new Set<string>() };
    const downloads = { engine: this.engines.quickEngineFor(phase === 'staging download' || src.kind === 's3' ? dst : src), paths: new Set<string>() };
    this.startedUploads.push(uploads);
    this.startedDownloads.push(downloads);
    const units = batchUnits(jobs, this.common.partSize ?? DEFAULT_MIN_PART_SIZE);
    const one = async (unit: Job[]) => {
      const label = unitLabel(unit);
      this.progress.running(label, (unit[0] as Job).label);
      const uploadJobs = unit.filter((j): j is UploadJob => j.kind === 'upload');
      const downloadJobs = unit.filter((j): j is DownloadJob => j.kind === 'download');
      const copyJobs = unit.filter((j): j is CopyJob => j.kind === 'copy');
      for (const j of [...uploadJobs, ...copyJobs.map((c) => c.destination)]) {
        if (j.profile) uploads.profile = j.profile;
        uploads.bucket = j.bucket;
        uploads.keys.add(j.key);
      }
      for (const j of downloadJobs) downloads.paths.add(j.path);
      const done = copyJobs.length > 0 ? await this.runCopies(label, copyJobs) : await this.runUnit(engine, label, uploadJobs, downloadJobs);
      for (const j of [...uploadJobs, ...copyJobs.map((c) => c.destination)]) uploads.keys.delete(j.key);
      for (const j of downloadJobs) downloads.paths.delete(j.path);
      this.progress.ended(label);
      this.progress.finished(done);
    };
    let next = 0;
    let failure: unknown;
    const lane = async () => {
      while (failure === undefined && next < units.length) {
        const unit = units[next++] as Job[];
        try {
          await one(unit);
        } catch (err) {
          failure ??= fileFailure(unit, err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.input.fileConcurrency, units.length)) }, lane));
    if (failure !== undefined) throw failure;
  }

  /**
   * One unit's activity: a single file up or down, or a batch of small files. Every branch awaits
   * its activity the same way, so concurrent lanes resume (and schedule their next unit) in the
   * order the recorded histories have.
   */
  private async runUnit(engine: Engine, label: string, uploadJobs: UploadJob[], downloadJobs: DownloadJob[]): Promise<FileResult[]> {
    const { common, input } = this;
    const uploadArgs = uploadJobs.map((j) => ({
      ...common,
      ...(j.profile ? { profile: j.profile } : {}),
      path: j.path,
      bucket: j.bucket,
      key: j.key,
      label: j.label,
      compress: input.compress,
      compressAll: input.compressAll,
    }));
    const downloadArgs = downloadJobs.map((j) => ({
      ...common,
      ...(j.profile ? { profile: j.profile } : {}),
      path: j.path,
      bucket: j.bucket,
      key: j.key,
      label: j.label,
    }));
    const batchOf = <T>(files: T[]) => ({ label, files, concurrency: input.fileConcurrency, progressIntervalMs: input.progressIntervalMs });
    const single = uploadJobs.length + downloadJobs.length === 1;
    if (single && uploadArgs[0]) return [await engine.transferUpload.executeWithOptions({ summary: `upload ${label}` }, [uploadArgs[0]])];
    if (single && downloadArgs[0]) return [await engine.transferDownload.executeWithOptions({ summary: `download ${label}` }, [downloadArgs[0]])];
    if (uploadArgs.length > 0) return await engine.transferUploadBatch.executeWithOptions({ summary: `upload ${label}` }, [batchOf(uploadArgs)]);
    return await engine.transferDownloadBatch.executeWithOptions({ summary: `download ${label}` }, [batchOf(downloadArgs)]);
  }

  /** S3 → S3 objects through the orchestration worker: one large object, or a batch of small ones. */
  private async runCopies(label: string, jobs: CopyJob[]): Promise<FileResult[]> {
    const { common, input } = this;
    const args = jobs.map((j) => ({ ...common, source: j.source, destination: j.destination, label: j.label }));
    if (args.length === 1 && args[0]) return [await this.engines.local.transferCopy.executeWithOptions({ summary: `copy ${label}` }, [args[0]])];
    return await this.engines.local.transferCopyBatch.executeWithOptions({ summary: `copy ${label}` }, [
      { label, files: args, concurrency: input.fileConcurrency, progressIntervalMs: input.progressIntervalMs },
    ]);
  }

  /**
   * Local ↔ S3 files through s5cmd on the orchestration worker, which looks it up on its PATH.
   * False when engine `auto` found none there: the built-in engine then copies.
   */
  async runS5cmd(jobs: (UploadJob | DownloadJob)[]): Promise<boolean> {
    const { input } = this;
    this.progress.startLeg('transferring', jobs, false);
    const label = jobs.length === 1 ? (jobs[0]?.label ?? '') : `${jobs.length} files`;
    const profile = jobs[0]?.profile;
    const uploads = { ...(profile ? { profile } : {}), bucket: '', keys: new Set<string>() };
    const downloads = { engine: this.engines.quick, paths: new Set<string>() };
    for (const j of jobs) {
      if (j.kind === 'upload') {
        uploads.bucket = j.bucket;
        uploads.keys.add(j.key);
      } else downloads.paths.add(j.path);
    }
    this.startedUploads.push(uploads);
    this.startedDownloads.push(downloads);
    this.progress.running(label);
    let out: Awaited<ReturnType<S5cmdActivities['transferS5cmd']>>;
    try {
      out = await this.engines.local.transferS5cmd.executeWithOptions({ summary: `s5cmd ${jobs[0]?.kind ?? 'copy'} ${label}` }, [
        {
          region: input.region,
          ...(profile ? { profile } : {}),
          engine: input.engine === 's5cmd' ? 's5cmd' : 'auto',
          direction: jobs[0]?.kind ?? 'upload',
          files: jobs.map((j) => ({ label: j.label, path: j.path, bucket: j.bucket, key: j.key, size: j.size })),
          partSize: this.common.partSize,
          concurrency: input.concurrency,
          fileConcurrency: input.fileConcurrency,
          sync: this.common.sync,
          label,
          progressIntervalMs: input.progressIntervalMs,
        },
      ]);
    } catch (err) {
      throw fileFailure(jobs, err);
    }
    uploads.keys.clear();
    downloads.paths.clear();
    this.progress.ended(label);
    if (out.engine !== 's5cmd') return false;
    this.progress.finished(out.files);
    return true;
  }

  /** After a cancel or failure, whatever happens to the run: aborts unfinished uploads and removes partial downloads. */
  async cleanUp(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      this.progress.enter('cleaning up');
      for (const u of this.startedUploads) {
        if (u.keys.size === 0) continue;
        try {
          const n = await this.engines.quick.transferAbortUploads.executeWithOptions({ summary: 'abort unfinished multipart uploads' }, [
            { region: this.input.region, ...(u.profile ? { profile: u.profile } : {}), bucket: u.bucket, keys: [...u.keys] },
          ]);
          if (n > 0) log.info('aborted multipart uploads left by the transfer', { count: n });
        } catch (sweepErr) {
          log.warn('could not abort unfinished uploads', { error: String(sweepErr) });
        }
      }
      for (const d of this.startedDownloads) {
        if (d.paths.size === 0) continue;
        try {
          await d.engine.transferRemoveTemp.executeWithOptions({ summary: 'remove partial downloads' }, [{ paths: [...d.paths] }]);
        } catch (sweepErr) {
          log.warn('could not remove partial downloads', { error: String(sweepErr) });
        }
      }
    });
  }
}
