import { ApplicationFailure, CancellationScope, log, proxyActivities, workflowInfo, type ActivityInterfaceFor } from '@temporalio/workflow';
import type { TransferActivities, TransferEngine } from '../activities/transfer.js';
import type { S5cmdActivities } from '../activities/transfer-s5cmd.js';
import {
  TransferInputSchema,
  type DataLocation,
  type TransferEngineKind,
  type TransferInput,
  type TransferProgress,
  type TransferReport,
  type TransferRequest,
} from '../contracts/transfer.js';
import { ErrorKind } from '../errors/kinds.js';
import { batchUnits, pathOf, planLegs, plannedPairs, unitLabel, type DownloadJob, type Job, type SourceList, type UploadJob } from '../transfer/legs.js';
import { DEFAULT_MIN_PART_SIZE, MiB, checkRelativeKey, joinPath, parseS3Uri } from '../transfer/plan.js';
import type { FileResult } from '../transfer/types.js';
import { hostTransfer, hostTransferStep, localTransfer, onHost, transferStep, withHeartbeat } from './options.js';
import { TransferProgressTracker } from './transfer-progress.js';
import { fileFailure, planFailure } from './transfer-failures.js';

/** One run's file list travels in its history; bigger trees are split by prefix or --include. */
const MAX_FILES = 20_000;

type Engine = ActivityInterfaceFor<TransferEngine>;

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message });
}

const now = () => new Date().getTime();

/**
 * Moves files between this machine, S3 and a training instance (all six directions; local ↔ host
 * goes through an S3 staging prefix that is emptied afterwards, whatever the outcome). Each file is
 * one activity on the machine that holds it, `fileConcurrency` at a time; large files go in parts
 * (`concurrency` at once) with a heartbeated checkpoint, so a killed worker's file resumes
 * without re-sending finished parts. Every byte is verified against a SHA-256 checksum.
 *
 * Answers the `progress` query; with `sync`, identical files are skipped; with `dryRun`, only
 * plans. On cancel or failure it aborts the multipart uploads it started and removes temp files.
 */
export async function transfer(request: TransferRequest): Promise<TransferReport> {
  const input = validate(request);
  const run = new TransferRun(input, new TransferProgressTracker(now()));
  try {
    const plan = await run.plan();
    if (input.dryRun) return run.dryRunReport(plan);
    await run.transferAll(plan);
    await run.deleteExtraneous(plan);
  } catch (err) {
    await run.cleanUp();
    throw err;
  } finally {
    await run.emptyStaging();
  }
  return run.report();
}

/** The request, validated inside the workflow too: a start that bypassed the API fails here, kind InvalidInput. */
function validate(request: TransferRequest): TransferInput {
  const parsed = TransferInputSchema.safeParse(request);
  if (!parsed.success) throw invalid(parsed.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; '));
  return parsed.data;
}

/** Destination entries the (filtered) source lacks, found before anything moves and deleted after every file arrived. */
interface Extraneous {
  rels: string[];
  items: string[];
  remove(): Promise<number>;
}

interface Plan {
  legs: Job[][];
  extraneous: Extraneous | undefined;
}

/** One transfer's activities, progress and sweep lists; its methods are the workflow's phases. */
class TransferRun {
  private readonly src: DataLocation;
  private readonly dst: DataLocation;
  private readonly local: ActivityInterfaceFor<TransferActivities & S5cmdActivities>;
  private readonly quick: ActivityInterfaceFor<TransferActivities>;
  private readonly partSize: number | undefined;
  /** Options every file activity shares. Deleting what the source lacks only makes sense for a mirror: it implies sync. */
  private readonly common: { region: string; partSize: number | undefined; concurrency: number; sync: boolean; progressIntervalMs: number };
  private readonly staging: { bucket: string; prefix: string } | undefined;
  /** Sweeps after a cancel or failure: uploads whose activity could not abort them, partial downloads. */
  private readonly startedUploads: { bucket: string; keys: Set<string> }[] = [];
  private readonly startedDownloads: { engine: Engine; paths: Set<string> }[] = [];
  private legs: Job[][] = [];
  private skippedSymlinks: string[] = [];
  private engineUsed: TransferEngineKind = 'builtin';
  private stagingObjectsDeleted: number | undefined;
  private deleted: TransferReport['deleted'];

  constructor(
    private readonly input: TransferInput,
    private readonly progress: TransferProgressTracker,
  ) {
    this.src = input.source;
    this.dst = input.destination;
    this.local = proxyActivities<TransferActivities & S5cmdActivities>(withHeartbeat(localTransfer, input.heartbeatTimeoutSeconds));
    this.quick = proxyActivities<TransferActivities>(transferStep);
    this.partSize = input.partSizeMiB === undefined ? undefined : input.partSizeMiB * MiB;
    this.common = {
      region: input.region,
      partSize: this.partSize,
      concurrency: input.concurrency,
      sync: input.sync || input.deleteExtraneous,
      progressIntervalMs: input.progressIntervalMs,
    };
    const staging = input.stagingUri === undefined ? undefined : parseS3Uri(input.stagingUri);
    this.staging = staging && {
      bucket: staging.bucket,
      prefix: joinPath(staging.prefix, `trainctl-staging/${workflowInfo().workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}/`),
    };
  }

  /** The file activities on the machine that holds `loc`'s files. */
  private engineFor(loc: DataLocation): Engine {
    return loc.kind === 'host'
      ? proxyActivities<TransferEngine>(onHost(withHeartbeat(hostTransfer, this.input.heartbeatTimeoutSeconds), loc.hostId))
      : this.local;
  }

  /** The short steps (scan, delete, remove temp) on the machine that holds `loc`'s files. */
  private quickEngineFor(loc: DataLocation): Engine {
    return loc.kind === 'host'
      ? proxyActivities<TransferEngine>(onHost(withHeartbeat(hostTransferStep, this.input.heartbeatTimeoutSeconds), loc.hostId))
      : this.quick;
  }

  /**
   * Plans every leg before moving a byte: lists (or scans) the source, checks every key, maps files
   * to their legs and, with `deleteExtraneous`, lists what the destination has extra. A bad key or
   * path fails here, with nothing written.
   */
  async plan(): Promise<Plan> {
    const { src, dst, input } = this;
    const { list, srcBucket } = await this.listSource();
    if (list.files.length > MAX_FILES)
      throw invalid(`${list.files.length} files is more than one transfer handles (${MAX_FILES}); split it by prefix or --include`);
    for (const f of list.files) {
      try {
        checkRelativeKey(f.rel);
      } catch (err) {
        throw invalid(err instanceof Error ? err.message : String(err));
      }
    }
    const legs = planLegs(src, dst, list, srcBucket, this.staging);
    if (!legs) throw invalid(`${src.kind} → ${dst.kind} is not supported`);
    this.legs = legs;
    let extraneous: Extraneous | undefined;
    if (input.deleteExtraneous) {
      if (list.single) throw invalid('deleteExtraneous needs a folder (or prefix) source: a single file has no extraneous siblings to delete');
      extraneous = await this.listExtraneous(new Set(list.files.map((f) => f.rel)));
      if (extraneous.rels.length > MAX_FILES)
        throw invalid(`${extraneous.rels.length} extraneous files is more than one transfer deletes (${MAX_FILES}); split it by prefix or --include`);
    }
    return { legs, extraneous };
  }

  private async listSource(): Promise<{ list: SourceList; srcBucket: string }> {
    const { src, input } = this;
    try {
      if (src.kind === 's3') {
        const listed = await this.quick.transferListS3.executeWithOptions({ summary: `list ${src.uri}` }, [
          { region: input.region, uri: src.uri, include: input.include, exclude: input.exclude },
        ]);
        return { list: listed, srcBucket: listed.bucket };
      }
      const scanned = await this.quickEngineFor(src).transferScan.executeWithOptions({ summary: `scan ${pathOf(src)}` }, [
        // The machine that will compress checks it can, before anything is written.
        { path: src.path, include: input.include, exclude: input.exclude, followSymlinks: input.followSymlinks, compress: input.compress },
      ]);
      this.skippedSymlinks = scanned.skippedSymlinks;
      return { list: scanned, srcBucket: '' };
    } catch (err) {
      throw planFailure(err);
    }
  }

  /** What the destination holds that the source does not (never what the transfer adds, nor trainctl's temp files). */
  private async listExtraneous(sourceRels: Set<string>): Promise<Extraneous> {
    const { dst, input, quick } = this;
    const keep = (rel: string) => !sourceRels.has(rel) && !/\.trainctl-partial(\.json|\.decoded)?$/.test(rel);
    try {
      if (dst.kind === 's3') {
        const { bucket, prefix } = parseS3Uri(dst.uri);
        const root = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
        const listed = await quick.transferListS3.executeWithOptions({ summary: `list destination s3://${bucket}/${root}` }, [
          { region: input.region, uri: `s3://${bucket}/${root}`, include: input.include, exclude: input.exclude },
        ]);
        const rels = listed.files.map((f) => f.rel).filter(keep);
        return {
          rels,
          items: rels.map((r) => `s3://${bucket}/${root}${r}`),
          remove: () =>
            quick.transferDeleteObjects.executeWithOptions({ summary: `delete ${rels.length} extraneous objects` }, [
              { region: input.region, bucket, prefix: root, rels },
            ]),
        };
      }
      const engine = this.quickEngineFor(dst);
      const scanned = await engine.transferScan.executeWithOptions({ summary: `scan destination ${dst.path}` }, [
        { path: dst.path, include: input.include, exclude: input.exclude, followSymlinks: false, missingOk: true },
      ]);
      if (scanned.single) throw invalid(`deleteExtraneous needs a destination folder, and ${dst.path} is a file`);
      const rels = scanned.files.map((f) => f.rel).filter(keep);
      return {
        rels,
        items: rels.map((r) => joinPath(dst.path, r)),
        remove: () => engine.transferDeleteFiles.executeWithOptions({ summary: `delete ${rels.length} extraneous files` }, [{ root: dst.path, rels }]),
      };
    } catch (err) {
      throw planFailure(err);
    }
  }

  /** A dry run's report: what would move, and what would be deleted. Nothing was written. */
  dryRunReport(plan: Plan): TransferReport {
    const pairs = plannedPairs(plan.legs);
    const p = this.progress.state;
    p.phase = 'done';
    p.filesTotal = pairs.length;
    p.bytesTotal = pairs.reduce((a, x) => a + x.size, 0);
    return {
      files: pairs.length,
      bytes: 0,
      seconds: 0,
      MiBps: 0,
      skipped: 0,
      verified: 0,
      dryRun: true,
      planned: pairs.slice(0, 1000),
      skippedSymlinks: this.skippedSymlinks,
      ...deletedReport(plan.extraneous),
    };
  }

  /** Every leg: one direct (through s5cmd where it may), or up to staging and down from it. */
  async transferAll(plan: Plan): Promise<void> {
    const { src, dst, input } = this;
    if (plan.legs.length === 1) {
      const jobs = plan.legs[0] ?? [];
      // s5cmd takes plain local ↔ S3 copies; compression and hosts stay with the built-in engine.
      const bulk =
        input.engine !== 'builtin' && jobs.length > 0 && src.kind !== 'host' && dst.kind !== 'host' && !(src.kind === 'local' && input.compress !== 'none');
      if (bulk && (await this.runS5cmd(jobs))) this.engineUsed = 's5cmd';
      else await this.runJobs(jobs, this.engineFor(src.kind === 's3' ? dst : src), 'transferring');
    } else {
      await this.runJobs(plan.legs[0] ?? [], this.engineFor(src), 'staging upload');
      this.progress.results.length = 0;
      await this.runJobs(plan.legs[1] ?? [], this.engineFor(dst), 'staging download');
    }
  }

  /** Deletes the extraneous destination entries, now that every file arrived. */
  async deleteExtraneous(plan: Plan): Promise<void> {
    const { extraneous } = plan;
    if (extraneous && extraneous.rels.length > 0) {
      this.progress.enter('deleting extraneous');
      await extraneous.remove();
      log.info('deleted extraneous destination entries', { count: extraneous.rels.length });
    }
    this.deleted = deletedReport(extraneous).deleted;
  }

  /** One leg with the built-in engine: large files one activity each, small files in batches, `fileConcurrency` lanes. */
  private async runJobs(jobs: Job[], engine: Engine, phase: TransferProgress['phase']): Promise<void> {
    this.progress.startLeg(phase, jobs, true);
    const { src, dst } = this;
    const uploads = { bucket: '', keys: new Set<string>() };
    const downloads = { engine: this.quickEngineFor(phase === 'staging download' || src.kind === 's3' ? dst : src), paths: new Set<string>() };
    this.startedUploads.push(uploads);
    this.startedDownloads.push(downloads);
    const units = batchUnits(jobs, this.partSize ?? DEFAULT_MIN_PART_SIZE);
    const one = async (unit: Job[]) => {
      const label = unitLabel(unit);
      this.progress.running(label, (unit[0] as Job).label);
      const uploadJobs = unit.filter((j): j is UploadJob => j.kind === 'upload');
      const downloadJobs = unit.filter((j): j is DownloadJob => j.kind === 'download');
      for (const j of uploadJobs) {
        uploads.bucket = j.bucket;
        uploads.keys.add(j.key);
      }
      for (const j of downloadJobs) downloads.paths.add(j.path);
      const done = await this.runUnit(engine, label, uploadJobs, downloadJobs);
      for (const j of uploadJobs) uploads.keys.delete(j.key);
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
      path: j.path,
      bucket: j.bucket,
      key: j.key,
      label: j.label,
      compress: input.compress,
      compressAll: input.compressAll,
    }));
    const downloadArgs = downloadJobs.map((j) => ({ ...common, path: j.path, bucket: j.bucket, key: j.key, label: j.label }));
    const batchOf = <T>(files: T[]) => ({ label, files, concurrency: input.fileConcurrency, progressIntervalMs: input.progressIntervalMs });
    const single = uploadJobs.length + downloadJobs.length === 1;
    if (single && uploadArgs[0]) return [await engine.transferUpload.executeWithOptions({ summary: `upload ${label}` }, [uploadArgs[0]])];
    if (single && downloadArgs[0]) return [await engine.transferDownload.executeWithOptions({ summary: `download ${label}` }, [downloadArgs[0]])];
    if (uploadArgs.length > 0) return await engine.transferUploadBatch.executeWithOptions({ summary: `upload ${label}` }, [batchOf(uploadArgs)]);
    return await engine.transferDownloadBatch.executeWithOptions({ summary: `download ${label}` }, [batchOf(downloadArgs)]);
  }

  /**
   * Local ↔ S3 files through s5cmd on the orchestration worker, which looks it up on its PATH.
   * False when engine `auto` found none there: the built-in engine then copies.
   */
  private async runS5cmd(jobs: Job[]): Promise<boolean> {
    const { input } = this;
    this.progress.startLeg('transferring', jobs, false);
    const label = jobs.length === 1 ? (jobs[0]?.label ?? '') : `${jobs.length} files`;
    const uploads = { bucket: '', keys: new Set<string>() };
    const downloads = { engine: this.quick, paths: new Set<string>() };
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
      out = await this.local.transferS5cmd.executeWithOptions({ summary: `s5cmd ${jobs[0]?.kind ?? 'copy'} ${label}` }, [
        {
          region: input.region,
          engine: input.engine === 's5cmd' ? 's5cmd' : 'auto',
          direction: jobs[0]?.kind ?? 'upload',
          files: jobs.map((j) => ({ label: j.label, path: j.path, bucket: j.bucket, key: j.key, size: j.size })),
          partSize: this.partSize,
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
          const n = await this.quick.transferAbortUploads.executeWithOptions({ summary: 'abort unfinished multipart uploads' }, [
            { region: this.input.region, bucket: u.bucket, keys: [...u.keys] },
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

  /** Empties the staging prefix of a local ↔ host transfer, whatever the outcome. */
  async emptyStaging(): Promise<void> {
    const { staging } = this;
    if (!staging || this.legs.length !== 2) return;
    await CancellationScope.nonCancellable(async () => {
      try {
        this.stagingObjectsDeleted = await this.quick.transferDeletePrefix.executeWithOptions(
          { summary: `empty staging s3://${staging.bucket}/${staging.prefix}` },
          [{ region: this.input.region, bucket: staging.bucket, prefix: staging.prefix }],
        );
      } catch (cleanErr) {
        log.warn('could not empty the staging prefix', { bucket: staging.bucket, prefix: staging.prefix, error: String(cleanErr) });
      }
    });
  }

  /** The finished transfer's report (the last leg's files). */
  report(): TransferReport {
    const { results } = this.progress;
    const seconds = (now() - this.progress.started) / 1000;
    const bytes = results.reduce((a, r) => a + r.sent, 0);
    this.progress.state.currentFile = null;
    this.progress.enter('done');
    return {
      files: results.length,
      bytes,
      seconds,
      MiBps: seconds > 0 ? Math.round((bytes / MiB / seconds) * 100) / 100 : 0,
      skipped: results.filter((r) => r.skipped).length,
      verified: results.filter((r) => r.verified).length,
      dryRun: false,
      skippedSymlinks: this.skippedSymlinks,
      ...(this.stagingObjectsDeleted !== undefined ? { stagingObjectsDeleted: this.stagingObjectsDeleted } : {}),
      ...(this.deleted ? { deleted: this.deleted } : {}),
      engine: this.engineUsed,
    };
  }
}

function deletedReport(extraneous: Extraneous | undefined): Pick<TransferReport, 'deleted'> {
  return extraneous ? { deleted: { count: extraneous.rels.length, items: extraneous.items.slice(0, 1000) } } : {};
}
