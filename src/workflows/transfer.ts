import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
  type ActivityInterfaceFor,
} from '@temporalio/workflow';
import type { TransferActivities, TransferEngine, FileResult } from '../activities/transfer.js';
import type { S5cmdActivities, TransferEngineKind } from '../activities/transfer-s5cmd.js';
import { TransferInputSchema, hostTaskQueue, type DataLocation, type TransferRequest } from '../config.js';
import { ErrorKind } from '../errors/kinds.js';
import { DEFAULT_MIN_PART_SIZE, MiB, PROGRESS_SIGNAL, checkRelativeKey, destinationKey, destinationPath, joinPath, parseS3Uri } from '../transfer/plan.js';
import { longTransfer } from './options.js';

/** What the `progress` query answers while a transfer runs. */
export interface TransferProgress {
  phase: 'planning' | 'transferring' | 'staging upload' | 'staging download' | 'deleting extraneous' | 'cleaning up' | 'done';
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Bytes per second since the transfer phase started (workflow time). */
  bytesPerSecond: number;
  etaSeconds: number | null;
  currentFile: string | null;
  skipped: number;
}

/** The summary a finished transfer returns. */
export interface TransferReport {
  files: number;
  /** Bytes that crossed the wire (a resumed or skipped file counts only what was sent). */
  bytes: number;
  seconds: number;
  MiBps: number;
  skipped: number;
  /** Files whose bytes were checked against trainctl's checksum. */
  verified: number;
  dryRun: boolean;
  /** In a dry run: what would be transferred (first 1000). */
  planned?: { from: string; to: string; size: number }[];
  skippedSymlinks: string[];
  stagingObjectsDeleted?: number;
  /**
   * With `deleteExtraneous`: destination files or objects the (filtered) source does not have,
   * deleted after every file arrived — or, in a dry run, that would be (first 1000 named).
   */
  deleted?: { count: number; items: string[] };
  /** Who copied the files: trainctl's engine or s5cmd (then verified by trainctl). Absent in a dry run. */
  engine?: TransferEngineKind;
}

export const transferProgressQuery = defineQuery<TransferProgress>('progress');
export const transferProgressSignal = defineSignal<[{ label: string; bytes: number; current?: string }]>(PROGRESS_SIGNAL);

/** One run's file list travels in its history; bigger trees are split by prefix or --include. */
const MAX_FILES = 20_000;
/** Files no bigger than a part go in batches: one activity (and a handful of events) per batch. */
const BATCH_FILES = 100;
const BATCH_BYTES = 64 * MiB;

type Engine = ActivityInterfaceFor<TransferEngine>;

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message });
}

const now = () => new Date().getTime();

interface UploadJob {
  kind: 'upload';
  label: string;
  path: string;
  bucket: string;
  key: string;
  size: number;
}
interface DownloadJob {
  kind: 'download';
  label: string;
  bucket: string;
  key: string;
  path: string;
  size: number;
}
type Job = UploadJob | DownloadJob;

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
  const parsed = TransferInputSchema.safeParse(request);
  if (!parsed.success) throw invalid(parsed.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; '));
  const input = parsed.data;

  const started = now();
  const progress: TransferProgress = { phase: 'planning', filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0, bytesPerSecond: 0, etaSeconds: null, currentFile: null, skipped: 0 };
  let legStarted = started;
  let finishedBytes = 0;
  const inFlight = new Map<string, number>();
  let lastUpdate = started;

  const refresh = () => {
    progress.bytesDone = finishedBytes + [...inFlight.values()].reduce((a, b) => a + b, 0);
    const elapsed = (lastUpdate - legStarted) / 1000;
    progress.bytesPerSecond = elapsed > 0 ? Math.round(progress.bytesDone / elapsed) : 0;
    const left = progress.bytesTotal - progress.bytesDone;
    progress.etaSeconds = progress.bytesPerSecond > 0 ? Math.round(left / progress.bytesPerSecond) : null;
  };
  setHandler(transferProgressQuery, () => ({ ...progress }));
  setHandler(transferProgressSignal, ({ label, bytes, current }) => {
    if (!inFlight.has(label)) return;
    inFlight.set(label, bytes);
    progress.currentFile = current ?? label;
    lastUpdate = now();
    refresh();
  });
  const describe = () =>
    setCurrentDetails(
      `**${progress.phase}**: ${progress.filesDone}/${progress.filesTotal} files, ${(progress.bytesDone / MiB).toFixed(1)}/${(progress.bytesTotal / MiB).toFixed(1)} MiB` +
        (progress.currentFile ? `\n\ncurrent: ${progress.currentFile}` : ''),
    );

  const heartbeatTimeout = `${input.heartbeatTimeoutSeconds} seconds`;
  const { retry } = longTransfer;
  const local = proxyActivities<TransferActivities & S5cmdActivities>({ ...longTransfer, heartbeatTimeout, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
  const quick = proxyActivities<TransferActivities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '1 minute', retry: { ...retry, maximumAttempts: 10 } });
  const engineFor = (loc: DataLocation): Engine =>
    loc.kind === 'host'
      ? proxyActivities<TransferEngine>({
          taskQueue: hostTaskQueue(loc.hostId),
          // Work on a host progresses only while that host is alive: bound the whole thing, retries included.
          scheduleToCloseTimeout: longTransfer.startToCloseTimeout,
          heartbeatTimeout,
          retry,
          cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        })
      : local;

  // Listing a host's folder or removing temp files there: a host that is not up fails this soon.
  const hostQuick = (hostId: string) =>
    proxyActivities<TransferEngine>({ taskQueue: hostTaskQueue(hostId), scheduleToCloseTimeout: '10 minutes', heartbeatTimeout, retry: { ...retry, maximumAttempts: 10 } });
  const quickEngineFor = (loc: DataLocation): Engine => (loc.kind === 'host' ? hostQuick(loc.hostId) : quick);
  const pathOf = (loc: DataLocation) => (loc.kind === 's3' ? loc.uri : loc.path);
  const partSize = input.partSizeMiB === undefined ? undefined : input.partSizeMiB * MiB;
  // Deleting what the source lacks only makes sense for a mirror: it implies sync.
  const common = { region: input.region, partSize, concurrency: input.concurrency, sync: input.sync || input.deleteExtraneous, progressIntervalMs: input.progressIntervalMs };

  // Sweeps after a cancel or failure: uploads whose activity could not abort them, partial downloads.
  const startedUploads: { bucket: string; keys: Set<string> }[] = [];
  const startedDownloads: { engine: Engine; paths: Set<string> }[] = [];

  const results: FileResult[] = [];
  /** Counts finished files (by either engine) into the progress and the report. */
  const finished = (done: FileResult[]) => {
    for (const r of done) {
      finishedBytes += r.size;
      progress.filesDone++;
      if (r.skipped) progress.skipped++;
      results.push(r);
    }
    lastUpdate = now();
    refresh();
    describe();
  };
  let skippedSymlinks: string[] = [];

  async function runJobs(jobs: Job[], engine: Engine, phase: TransferProgress['phase']): Promise<void> {
    progress.phase = phase;
    progress.filesDone = 0;
    progress.filesTotal = jobs.length;
    progress.bytesTotal = jobs.reduce((a, j) => a + j.size, 0);
    progress.skipped = 0;
    finishedBytes = 0;
    inFlight.clear();
    legStarted = lastUpdate = now();
    refresh();
    describe();
    const uploads = { bucket: '', keys: new Set<string>() };
    const downloads = { engine: quickEngineFor(phase === 'staging download' || src.kind === 's3' ? dst : src), paths: new Set<string>() };
    startedUploads.push(uploads);
    startedDownloads.push(downloads);

    // Large files: one activity each, resumable part by part. Small files: batches.
    const smallLimit = partSize ?? DEFAULT_MIN_PART_SIZE;
    const units: Job[][] = jobs.filter((j) => j.size > smallLimit).map((j) => [j]);
    let batch: Job[] = [];
    let batchBytes = 0;
    for (const j of jobs.filter((j) => j.size <= smallLimit)) {
      if (batch.length >= BATCH_FILES || batchBytes + j.size > BATCH_BYTES) {
        units.push(batch);
        batch = [];
        batchBytes = 0;
      }
      batch.push(j);
      batchBytes += j.size;
    }
    if (batch.length > 0) units.push(batch);

    const one = async (unit: Job[]) => {
      const first = unit[0] as Job;
      const label = unit.length === 1 ? first.label : `${unit.length} files from ${first.label}`;
      inFlight.set(label, 0);
      progress.currentFile = first.label;
      const uploadJobs = unit.filter((j): j is UploadJob => j.kind === 'upload');
      const downloadJobs = unit.filter((j): j is DownloadJob => j.kind === 'download');
      for (const j of uploadJobs) {
        uploads.bucket = j.bucket;
        uploads.keys.add(j.key);
      }
      for (const j of downloadJobs) downloads.paths.add(j.path);
      const uploadArgs = uploadJobs.map((j) => ({ ...common, path: j.path, bucket: j.bucket, key: j.key, label: j.label, compress: input.compress, compressAll: input.compressAll }));
      const downloadArgs = downloadJobs.map((j) => ({ ...common, path: j.path, bucket: j.bucket, key: j.key, label: j.label }));
      const batchOf = <T>(files: T[]) => ({ label, files, concurrency: input.fileConcurrency, progressIntervalMs: input.progressIntervalMs });
      let done: FileResult[];
      if (unit.length === 1 && uploadArgs[0]) done = [await engine.transferUpload.executeWithOptions({ summary: `upload ${label}` }, [uploadArgs[0]])];
      else if (unit.length === 1 && downloadArgs[0]) done = [await engine.transferDownload.executeWithOptions({ summary: `download ${label}` }, [downloadArgs[0]])];
      else if (uploadArgs.length > 0) done = await engine.transferUploadBatch.executeWithOptions({ summary: `upload ${label}` }, [batchOf(uploadArgs)]);
      else done = await engine.transferDownloadBatch.executeWithOptions({ summary: `download ${label}` }, [batchOf(downloadArgs)]);
      for (const j of uploadJobs) uploads.keys.delete(j.key);
      for (const j of downloadJobs) downloads.paths.delete(j.path);
      inFlight.delete(label);
      finished(done);
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
    await Promise.all(Array.from({ length: Math.max(1, Math.min(input.fileConcurrency, units.length)) }, lane));
    if (failure !== undefined) throw failure;
  }

  /**
   * Local ↔ S3 files through s5cmd on the orchestration worker, which looks it up on its PATH.
   * False when engine `auto` found none there: the built-in engine then copies.
   */
  async function runS5cmd(jobs: Job[]): Promise<boolean> {
    progress.phase = 'transferring';
    progress.filesDone = 0;
    progress.filesTotal = jobs.length;
    progress.bytesTotal = jobs.reduce((a, j) => a + j.size, 0);
    finishedBytes = 0;
    inFlight.clear();
    legStarted = lastUpdate = now();
    refresh();
    describe();
    const label = jobs.length === 1 ? (jobs[0]?.label ?? '') : `${jobs.length} files`;
    const uploads = { bucket: '', keys: new Set<string>() };
    const downloads = { engine: quick, paths: new Set<string>() };
    for (const j of jobs) {
      if (j.kind === 'upload') {
        uploads.bucket = j.bucket;
        uploads.keys.add(j.key);
      } else downloads.paths.add(j.path);
    }
    startedUploads.push(uploads);
    startedDownloads.push(downloads);
    inFlight.set(label, 0);
    let out: Awaited<ReturnType<S5cmdActivities['transferS5cmd']>>;
    try {
      out = await local.transferS5cmd.executeWithOptions({ summary: `s5cmd ${jobs[0]?.kind ?? 'copy'} ${label}` }, [
        {
          region: input.region,
          engine: input.engine === 's5cmd' ? 's5cmd' : 'auto',
          direction: jobs[0]?.kind ?? 'upload',
          files: jobs.map((j) => ({ label: j.label, path: j.path, bucket: j.bucket, key: j.key, size: j.size })),
          partSize,
          concurrency: input.concurrency,
          fileConcurrency: input.fileConcurrency,
          sync: common.sync,
          label,
          progressIntervalMs: input.progressIntervalMs,
        },
      ]);
    } catch (err) {
      throw fileFailure(jobs, err);
    }
    uploads.keys.clear();
    downloads.paths.clear();
    inFlight.delete(label);
    if (out.engine !== 's5cmd') return false;
    finished(out.files);
    return true;
  }

  const src = input.source;
  const dst = input.destination;
  let engineUsed: TransferEngineKind = 'builtin';
  const staging = input.stagingUri === undefined ? undefined : parseS3Uri(input.stagingUri);
  const stagingPrefix = staging ? joinPath(staging.prefix, `trainctl-staging/${workflowInfo().workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}/`) : undefined;
  let stagingObjectsDeleted: number | undefined;
  let deleted: TransferReport['deleted'];
  const planned: Job[][] = [];

  try {
    // Plan every leg before moving a byte: a bad key or path fails here, with nothing written.
    let sourceList: { single: boolean; files: { rel: string; size: number; key?: string }[] };
    let srcBucket = '';
    try {
      if (src.kind === 's3') {
        const listed = await quick.transferListS3.executeWithOptions({ summary: `list ${src.uri}` }, [{ region: input.region, uri: src.uri, include: input.include, exclude: input.exclude }]);
        srcBucket = listed.bucket;
        sourceList = listed;
      } else {
        const scanned = await quickEngineFor(src).transferScan.executeWithOptions({ summary: `scan ${pathOf(src)}` }, [
          // The machine that will compress checks it can, before anything is written.
          { path: src.path, include: input.include, exclude: input.exclude, followSymlinks: input.followSymlinks, compress: input.compress },
        ]);
        skippedSymlinks = scanned.skippedSymlinks;
        sourceList = scanned;
      }
    } catch (err) {
      throw planFailure(err);
    }
    if (sourceList.files.length > MAX_FILES) throw invalid(`${sourceList.files.length} files is more than one transfer handles (${MAX_FILES}); split it by prefix or --include`);
    for (const f of sourceList.files) {
      try {
        checkRelativeKey(f.rel);
      } catch (err) {
        throw invalid(err instanceof Error ? err.message : String(err));
      }
    }
    const { single, files } = sourceList;
    const srcPath = (rel: string) => (single ? pathOf(src) : joinPath(pathOf(src), rel));

    if (src.kind !== 's3' && dst.kind === 's3') {
      const { bucket, prefix } = parseS3Uri(dst.uri);
      planned.push(files.map((f) => ({ kind: 'upload', label: f.rel, path: srcPath(f.rel), bucket, key: destinationKey(prefix, f.rel, single), size: f.size })));
    } else if (src.kind === 's3' && dst.kind !== 's3') {
      planned.push(files.map((f) => ({ kind: 'download', label: f.rel, bucket: srcBucket, key: f.key ?? '', path: destinationPath(dst.path, f.rel, single), size: f.size })));
    } else if (staging && stagingPrefix && dst.kind !== 's3') {
      planned.push(files.map((f) => ({ kind: 'upload', label: f.rel, path: srcPath(f.rel), bucket: staging.bucket, key: joinPath(stagingPrefix, f.rel), size: f.size })));
      planned.push(files.map((f) => ({ kind: 'download', label: f.rel, bucket: staging.bucket, key: joinPath(stagingPrefix, f.rel), path: destinationPath(dst.path, f.rel, single), size: f.size })));
    } else {
      throw invalid(`${src.kind} → ${dst.kind} is not supported`);
    }

    // Extraneous destination entries are found before anything moves (what the transfer adds is
    // never among them) and deleted only after every file arrived.
    let extraneous: { rels: string[]; items: string[]; remove: () => Promise<number> } | undefined;
    if (input.deleteExtraneous) {
      if (single) throw invalid('deleteExtraneous needs a folder (or prefix) source: a single file has no extraneous siblings to delete');
      const sourceRels = new Set(files.map((f) => f.rel));
      const keep = (rel: string) => !sourceRels.has(rel) && !/\.trainctl-partial(\.json|\.decoded)?$/.test(rel);
      try {
        if (dst.kind === 's3') {
          const { bucket, prefix } = parseS3Uri(dst.uri);
          const root = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
          const listed = await quick.transferListS3.executeWithOptions({ summary: `list destination s3://${bucket}/${root}` }, [
            { region: input.region, uri: `s3://${bucket}/${root}`, include: input.include, exclude: input.exclude },
          ]);
          const rels = listed.files.map((f) => f.rel).filter(keep);
          extraneous = {
            rels,
            items: rels.map((r) => `s3://${bucket}/${root}${r}`),
            remove: () => quick.transferDeleteObjects.executeWithOptions({ summary: `delete ${rels.length} extraneous objects` }, [{ region: input.region, bucket, prefix: root, rels }]),
          };
        } else {
          const engine = quickEngineFor(dst);
          const scanned = await engine.transferScan.executeWithOptions({ summary: `scan destination ${dst.path}` }, [
            { path: dst.path, include: input.include, exclude: input.exclude, followSymlinks: false, missingOk: true },
          ]);
          if (scanned.single) throw invalid(`deleteExtraneous needs a destination folder, and ${dst.path} is a file`);
          const rels = scanned.files.map((f) => f.rel).filter(keep);
          extraneous = {
            rels,
            items: rels.map((r) => joinPath(dst.path, r)),
            remove: () => engine.transferDeleteFiles.executeWithOptions({ summary: `delete ${rels.length} extraneous files` }, [{ root: dst.path, rels }]),
          };
        }
      } catch (err) {
        throw planFailure(err);
      }
      if (extraneous.rels.length > MAX_FILES) throw invalid(`${extraneous.rels.length} extraneous files is more than one transfer deletes (${MAX_FILES}); split it by prefix or --include`);
    }
    const deletedReport = () => (extraneous ? { deleted: { count: extraneous.rels.length, items: extraneous.items.slice(0, 1000) } } : {});

    if (input.dryRun) {
      const first = planned[0] ?? [];
      const last = planned[planned.length - 1] ?? [];
      const pairs = first.map((j, i) => {
        const end = last[i] ?? j;
        return { from: j.kind === 'upload' ? j.path : `s3://${j.bucket}/${j.key}`, to: end.kind === 'download' ? end.path : `s3://${end.bucket}/${end.key}`, size: j.size };
      });
      progress.phase = 'done';
      progress.filesTotal = pairs.length;
      progress.bytesTotal = pairs.reduce((a, p) => a + p.size, 0);
      return { files: pairs.length, bytes: 0, seconds: 0, MiBps: 0, skipped: 0, verified: 0, dryRun: true, planned: pairs.slice(0, 1000), skippedSymlinks, ...deletedReport() };
    }

    if (planned.length === 1) {
      const jobs = planned[0] ?? [];
      // s5cmd takes plain local ↔ S3 copies; compression and hosts stay with the built-in engine.
      const bulk = input.engine !== 'builtin' && jobs.length > 0 && src.kind !== 'host' && dst.kind !== 'host' && !(src.kind === 'local' && input.compress !== 'none');
      if (bulk && (await runS5cmd(jobs))) engineUsed = 's5cmd';
      else await runJobs(jobs, engineFor(src.kind === 's3' ? dst : src), 'transferring');
    } else {
      await runJobs(planned[0] ?? [], engineFor(src), 'staging upload');
      results.length = 0;
      await runJobs(planned[1] ?? [], engineFor(dst), 'staging download');
    }
    if (extraneous && extraneous.rels.length > 0) {
      progress.phase = 'deleting extraneous';
      describe();
      await extraneous.remove();
      log.info('deleted extraneous destination entries', { count: extraneous.rels.length });
    }
    deleted = deletedReport().deleted;
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      progress.phase = 'cleaning up';
      describe();
      for (const u of startedUploads) {
        if (u.keys.size === 0) continue;
        try {
          const n = await quick.transferAbortUploads.executeWithOptions({ summary: 'abort unfinished multipart uploads' }, [{ region: input.region, bucket: u.bucket, keys: [...u.keys] }]);
          if (n > 0) log.info('aborted multipart uploads left by the transfer', { count: n });
        } catch (sweepErr) {
          log.warn('could not abort unfinished uploads', { error: String(sweepErr) });
        }
      }
      for (const d of startedDownloads) {
        if (d.paths.size === 0) continue;
        try {
          await d.engine.transferRemoveTemp.executeWithOptions({ summary: 'remove partial downloads' }, [{ paths: [...d.paths] }]);
        } catch (sweepErr) {
          log.warn('could not remove partial downloads', { error: String(sweepErr) });
        }
      }
    });
    throw err;
  } finally {
    if (staging && stagingPrefix && planned.length === 2) {
      await CancellationScope.nonCancellable(async () => {
        try {
          stagingObjectsDeleted = await quick.transferDeletePrefix.executeWithOptions({ summary: `empty staging s3://${staging.bucket}/${stagingPrefix}` }, [
            { region: input.region, bucket: staging.bucket, prefix: stagingPrefix },
          ]);
        } catch (cleanErr) {
          log.warn('could not empty the staging prefix', { bucket: staging.bucket, prefix: stagingPrefix, error: String(cleanErr) });
        }
      });
    }
  }

  const seconds = (now() - started) / 1000;
  const bytes = results.reduce((a, r) => a + r.sent, 0);
  progress.phase = 'done';
  progress.currentFile = null;
  describe();
  return {
    files: results.length,
    bytes,
    seconds,
    MiBps: seconds > 0 ? Math.round((bytes / MiB / seconds) * 100) / 100 : 0,
    skipped: results.filter((r) => r.skipped).length,
    verified: results.filter((r) => r.verified).length,
    dryRun: false,
    skippedSymlinks,
    ...(stagingObjectsDeleted !== undefined ? { stagingObjectsDeleted } : {}),
    ...(deleted ? { deleted } : {}),
    engine: engineUsed,
  };
}

/** A planning step's failure as the workflow's own, keeping its kind (InvalidInput for a bad key). */
function planFailure(err: unknown): unknown {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    return ApplicationFailure.create({ type: err.cause.type ?? ErrorKind.Unknown, nonRetryable: true, message: `planning failed: ${err.cause.message}`, cause: err });
  }
  return err;
}

/** The file's failure, keeping its kind, with the file named; cancellation passes through. */
function fileFailure(unit: Job[], err: unknown): unknown {
  const job = unit[0] as Job;
  if (isCancellation(err)) return err;
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    const cause = err.cause;
    return ApplicationFailure.create({
      type: cause.type ?? ErrorKind.Unknown,
      nonRetryable: true,
      // The activity's message already says which file and what it was doing.
      message: cause.message,
      cause: err,
      details: [{ kind: cause.type, ...(unit.length === 1 ? { file: job.label } : { batch: `${unit.length} files from ${job.label}` }) }],
    });
  }
  if (err instanceof ActivityFailure) {
    return ApplicationFailure.create({ type: ErrorKind.Unknown, nonRetryable: true, message: `${job.kind} of ${unit.length === 1 ? job.label : `${unit.length} files from ${job.label}`} failed: ${err.cause?.message ?? err.message}`, cause: err });
  }
  return err;
}
