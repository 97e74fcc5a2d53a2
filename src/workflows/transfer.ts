import { ApplicationFailure, CancellationScope, continueAsNew, log, patched, workflowInfo } from '@temporalio/workflow';
import {
  TransferInputSchema,
  type DataLocation,
  type TransferEngineKind,
  type TransferInput,
  type TransferReport,
  type TransferRequest,
} from '../contracts/transfer.js';
import { ErrorKind } from '../errors/kinds.js';
import { pathOf, planLegs, plannedPairs, type Job, type SourceList } from '../transfer/legs.js';
import { DEFAULT_MIN_PART_SIZE, MiB, checkRelativeKey, joinPath, parseS3Uri } from '../transfer/plan.js';
import { s3LocationUri, s3PathsOverlap, type S3Location } from '../contracts/common.js';
import { LegRunner, TransferEngines } from './transfer-legs.js';
import { TransferProgressTracker } from './transfer-progress.js';
import { planFailure } from './transfer-failures.js';
import { deleteRefusal } from '../transfer/delete-guard.js';
import { continuationAfter, cutPage, withEarlierPages } from './transfer-pages.js';
import { MAX_UNITS_PER_RUN } from '../transfer/pages.js';

/** What a listing from a worker without pages may return; more is refused (newer workers page it). */
const MAX_FILES = 20_000;

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
 * A tree bigger than a page (`pageFiles`) goes page by page: each run moves one page and continues
 * as new with the next, carrying the totals, so every run's history stays bounded.
 */
export async function transfer(request: TransferRequest): Promise<TransferReport> {
  const input = validate(request);
  const progress = new TransferProgressTracker(now());
  const run = new TransferRun(input, progress);
  let dry: TransferReport | undefined;
  try {
    const plan = await run.plan();
    if (input.dryRun) dry = run.dryRunReport(plan);
    else {
      await run.transferAll(plan);
      await run.deleteExtraneous(plan);
    }
  } catch (err) {
    await run.cleanUp();
    throw err;
  } finally {
    await run.emptyStaging();
  }
  const report = withEarlierPages(dry ?? run.report(), input.continuation, now());
  if (run.next === undefined) return report;
  return await continueAsNew<typeof transfer>({
    ...input,
    continuation: continuationAfter(report, run.next, input.continuation, progress.started, workflowInfo().runId),
  });
}

/** The request, validated inside the workflow too: a start that bypassed the API fails here, kind InvalidInput. */
function validate(request: TransferRequest): TransferInput {
  const parsed = TransferInputSchema.safeParse(request);
  if (!parsed.success) throw invalid(parsed.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; '));
  /**
   * Runs recorded before S3 → S3 and `s3://PROFILE@…` existed failed such inputs right here: they
   * replay as they ran. Deprecate once no history from before it is kept (closed runs included:
   * queries replay them), then remove it.
   */
  const t = parsed.data;
  const s3Uris = [t.source, t.destination].flatMap((l) => (l.kind === 's3' ? [l.uri] : [])).concat(t.stagingUri ?? []);
  const newForm = (t.source.kind === 's3' && t.destination.kind === 's3') || s3Uris.some((u) => parseS3Uri(u).profile !== undefined);
  if (newForm && !patched('s3-profiles')) throw invalid('S3 → S3 transfers and s3://PROFILE@… locations need a newer worker');
  // A continuation skips every path up to its cursor: only this workflow's own continue-as-new may carry one.
  if (t.continuation && t.continuation.fromRunId !== workflowInfo().continuedFromExecutionRunId)
    throw invalid('continuation: set only by the transfer itself for its next page');
  return t;
}

/** Destination entries the (filtered) source lacks, found before anything moves and deleted after every file arrived. */
interface Extraneous {
  rels: string[];
  /** Destination entries listed (what the deletions are a share of). */
  considered: number;
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
  private readonly engines: TransferEngines;
  private readonly runner: LegRunner;
  private readonly staging: S3Location | undefined;
  private legs: Job[][] = [];
  private skippedSymlinks: string[] = [];
  private engineUsed: TransferEngineKind = 'builtin';
  private stagingObjectsDeleted: number | undefined;
  private deleted: TransferReport['deleted'];
  /** Where the next page starts, when this run moves one page of several. */
  next: string | undefined;

  constructor(
    private readonly input: TransferInput,
    private readonly progress: TransferProgressTracker,
  ) {
    this.src = input.source;
    this.dst = input.destination;
    this.engines = new TransferEngines(input.heartbeatTimeoutSeconds);
    // Deleting what the source lacks only makes sense for a mirror: it implies sync.
    this.runner = new LegRunner(input, this.engines, progress, {
      region: input.region,
      partSize: input.partSizeMiB === undefined ? undefined : input.partSizeMiB * MiB,
      concurrency: input.concurrency,
      sync: input.sync || input.deleteExtraneous,
      progressIntervalMs: input.progressIntervalMs,
    });
    const staging = input.stagingUri === undefined ? undefined : parseS3Uri(input.stagingUri);
    this.staging = staging && {
      ...(staging.profile ? { profile: staging.profile } : {}),
      bucket: staging.bucket,
      prefix: joinPath(staging.prefix, `trainctl-staging/${workflowInfo().workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}/`),
    };
  }

  /**
   * Plans every leg before moving a byte: lists (or scans) the source, checks every key, maps files
   * to their legs and, with `deleteExtraneous`, lists what the destination has extra. A bad key or
   * path fails here, with nothing written.
   */
  async plan(): Promise<Plan> {
    const { src, dst, input } = this;
    await this.checkProfiles();
    const listed = await this.listSource();
    const { srcBucket } = listed;
    const maxUnits = this.staging ? MAX_UNITS_PER_RUN / 2 : MAX_UNITS_PER_RUN; // through staging a file is two activities
    const smallLimit = input.partSizeMiB === undefined ? DEFAULT_MIN_PART_SIZE : input.partSizeMiB * MiB;
    const page = cutPage({ ...listed.list, ...(input.continuation ? { after: input.continuation.after } : {}) }, smallLimit, maxUnits);
    const list = page ? { ...listed.list, files: page.files } : listed.list;
    this.next = page?.next;
    if (this.next !== undefined || input.continuation) {
      const split = `≤ pageFiles files and ≤ ${maxUnits} file activities; split it by prefix or --include`;
      if (input.deleteExtraneous) throw invalid(`deleteExtraneous needs the whole tree in one page (${split})`);
      Object.assign(this.progress.state, { page: input.continuation?.page ?? 1, filesInEarlierPages: input.continuation?.files ?? 0 });
    }
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
      /**
       * Refuses a sync whose deletions look like a mistake (an empty filtered source, more than
       * 1,000 entries or half the destination without maxDelete), before anything is written. Runs
       * that started before it deleted without the guard; deprecate the patch once no transfer
       * recorded before it is open (transfers last hours), then remove it.
       */
      if (patched('sync-delete-guards')) {
        const why = deleteRefusal({
          sourceFiles: list.files.length,
          deletions: extraneous.rels.length,
          considered: extraneous.considered,
          maxDelete: input.maxDelete,
        });
        if (why) throw invalid(`deleteExtraneous: ${why}; nothing was deleted`);
      }
    }
    return { legs, extraneous };
  }

  /**
   * When a location names an AWS profile, every worker that will use it resolves the stores first:
   * a missing profile or refused credentials fail here, before anything is listed or written; a
   * host whose profile reaches another endpoint than the orchestration worker's is refused; and an
   * S3 → S3 copy into its own source (same endpoint and bucket, overlapping prefixes) is refused.
   */
  private async checkProfiles(): Promise<void> {
    const { src, dst, input } = this;
    const uris = [src, dst].flatMap((l) => (l.kind === 's3' ? [l.uri] : []));
    if (this.staging && src.kind !== 's3' && dst.kind !== 's3') uris.push(s3LocationUri(this.staging));
    const locs = uris.map((u) => parseS3Uri(u));
    if (!locs.some((l) => l.profile)) return;
    const locations = locs.map((l) => ({ ...(l.profile ? { profile: l.profile } : {}), bucket: l.bucket }));
    const summary = `check the S3 stores of ${[...new Set(locs.flatMap((l) => (l.profile ? [l.profile] : [])))].join(', ')}`;
    try {
      const here = await this.engines.quick.transferCheckStores.executeWithOptions({ summary }, [{ region: input.region, locations }]);
      for (const host of [src, dst].filter((l) => l.kind === 'host')) {
        const there = await this.engines
          .quickEngineFor(host)
          .transferCheckStores.executeWithOptions({ summary: `${summary} on host ${host.hostId}` }, [{ region: input.region, locations }]);
        locs.forEach((l, i) => {
          if (l.profile && there[i] !== here[i])
            throw invalid(
              `AWS profile "${l.profile}" reaches ${there[i] ?? 'AWS'} on host ${host.hostId} but ${here[i] ?? 'AWS'} on the orchestration worker: give both the same profile`,
            );
        });
      }
      const [a, b] = locs;
      if (src.kind === 's3' && dst.kind === 's3' && a && b && here[0] === here[1] && a.bucket === b.bucket && s3PathsOverlap(a.prefix, b.prefix))
        throw invalid(`${dst.uri} is the same store and bucket as ${src.uri}, and one prefix lies inside the other: copy to another prefix or bucket`);
    } catch (err) {
      throw planFailure(err);
    }
  }

  private async listSource(): Promise<{ list: SourceList & { next?: string }; srcBucket: string }> {
    const { src, input } = this;
    const page = { ...(input.continuation ? { after: input.continuation.after } : {}), maxFiles: input.pageFiles };
    try {
      if (src.kind === 's3') {
        const listed = await this.engines.quick.transferListS3.executeWithOptions({ summary: `list ${src.uri}` }, [
          { region: input.region, ...profileOf(src.uri), uri: src.uri, include: input.include, exclude: input.exclude, ...page },
        ]);
        return { list: listed, srcBucket: listed.bucket };
      }
      const scanned = await this.engines.quickEngineFor(src).transferScan.executeWithOptions({ summary: `scan ${pathOf(src)}` }, [
        // The machine that will compress checks it can, before anything is written.
        { path: src.path, include: input.include, exclude: input.exclude, followSymlinks: input.followSymlinks, compress: input.compress, ...page },
      ]);
      this.skippedSymlinks = scanned.skippedSymlinks;
      return { list: scanned, srcBucket: '' };
    } catch (err) {
      throw planFailure(err);
    }
  }

  /** What the destination holds that the source does not (never what the transfer adds, nor trainctl's temp files). */
  private async listExtraneous(sourceRels: Set<string>): Promise<Extraneous> {
    const { dst, input } = this;
    const { quick } = this.engines;
    const keep = (rel: string) => !sourceRels.has(rel) && !/\.trainctl-partial(\.json|\.decoded)?$/.test(rel);
    try {
      if (dst.kind === 's3') {
        const { profile, bucket, prefix } = parseS3Uri(dst.uri);
        const root = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
        const at = s3LocationUri({ profile, bucket, prefix: root });
        const listed = await quick.transferListS3.executeWithOptions({ summary: `list destination ${at}` }, [
          { region: input.region, ...profileOf(dst.uri), uri: at, include: input.include, exclude: input.exclude },
        ]);
        const rels = listed.files.map((f) => f.rel).filter(keep);
        return {
          rels,
          considered: listed.files.length,
          items: rels.map((r) => `${at}${r}`),
          remove: () =>
            quick.transferDeleteObjects.executeWithOptions({ summary: `delete ${rels.length} extraneous objects` }, [
              { region: input.region, ...profileOf(dst.uri), bucket, prefix: root, rels },
            ]),
        };
      }
      const engine = this.engines.quickEngineFor(dst);
      const scanned = await engine.transferScan.executeWithOptions({ summary: `scan destination ${dst.path}` }, [
        { path: dst.path, include: input.include, exclude: input.exclude, followSymlinks: false, missingOk: true, noSymlinkDescent: true },
      ]);
      if (scanned.single) throw invalid(`deleteExtraneous needs a destination folder, and ${dst.path} is a file`);
      const rels = scanned.files.map((f) => f.rel).filter(keep);
      return {
        rels,
        considered: scanned.files.length + scanned.skippedSymlinks.length,
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
        input.engine !== 'builtin' &&
        jobs.length > 0 &&
        src.kind !== 'host' &&
        dst.kind !== 'host' &&
        (src.kind === 'local' || dst.kind === 'local') &&
        !(src.kind === 'local' && input.compress !== 'none');
      if (bulk && (await this.runner.runS5cmd(jobs.filter((j) => j.kind !== 'copy')))) this.engineUsed = 's5cmd';
      else await this.runner.runJobs(jobs, this.engines.engineFor(src.kind === 's3' ? dst : src), 'transferring');
    } else {
      await this.runner.runJobs(plan.legs[0] ?? [], this.engines.engineFor(src), 'staging upload');
      this.progress.results.length = 0;
      await this.runner.runJobs(plan.legs[1] ?? [], this.engines.engineFor(dst), 'staging download');
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

  /** After a cancel or failure, whatever happens to the run: aborts unfinished uploads and removes partial downloads. */
  cleanUp(): Promise<void> {
    return this.runner.cleanUp();
  }

  /** Empties the staging prefix of a local ↔ host transfer, whatever the outcome. */
  async emptyStaging(): Promise<void> {
    const { staging } = this;
    if (!staging || this.legs.length !== 2) return;
    await CancellationScope.nonCancellable(async () => {
      try {
        this.stagingObjectsDeleted = await this.engines.quick.transferDeletePrefix.executeWithOptions({ summary: `empty staging ${s3LocationUri(staging)}` }, [
          { region: this.input.region, ...(staging.profile ? { profile: staging.profile } : {}), bucket: staging.bucket, prefix: staging.prefix },
        ]);
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

/** `{ profile }` when the uri names one (so inputs without profiles stay as they were). */
function profileOf(uri: string): { profile?: string } {
  const { profile } = parseS3Uri(uri);
  return profile ? { profile } : {};
}

function deletedReport(extraneous: Extraneous | undefined): Pick<TransferReport, 'deleted'> {
  return extraneous ? { deleted: { count: extraneous.rels.length, items: extraneous.items.slice(0, 1000), considered: extraneous.considered } } : {};
}
