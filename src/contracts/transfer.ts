/**
 * Contract of the transfer family: the `transfer` workflow's type name and ids, its input schema,
 * its report and progress views, and the progress signal and query.
 *
 * @module
 */
import { z } from 'zod';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { RegionSchema, parseS3Location, s3PathsOverlap, s3UriSchema } from './common.js';
import { HostIdSchema } from './host.js';

/** Workflow type of a transfer. */
export const TransferWorkflowType = 'transfer';

/** `transfer/TOKEN`: a transfer is not a resource, so each run gets a fresh token (the CLI's: 8 hex digits). */
export function transferWorkflowId(token: string): string {
  return `transfer/${token}`;
}

/** Where a transfer reads or writes: this machine, S3, or a training instance through its host worker. */
export const DataLocationSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('local'),
    path: z
      .string()
      .min(1, 'must not be empty')
      .refine((p) => p.startsWith('/'), 'must be an absolute path'),
  }),
  z.object({ kind: z.literal('s3'), uri: s3UriSchema() }),
  z.object({ kind: z.literal('host'), hostId: HostIdSchema, path: z.string().min(1, 'must not be empty') }),
]);
export type DataLocation = z.infer<typeof DataLocationSchema>;

/** Who copies local ↔ S3 files: trainctl's own engine or an s5cmd child process. */
export const TransferEngineKind = {
  Builtin: 'builtin',
  S5cmd: 's5cmd',
} as const;
export type TransferEngineKind = (typeof TransferEngineKind)[keyof typeof TransferEngineKind];

/** The most files one run of a transfer lists and moves; a bigger tree goes page by page. */
export const MAX_PAGE_FILES = 20_000;

/**
 * Where a paged transfer goes on, and what the pages before moved. Set by the workflow when it
 * continues-as-new after a page; a caller never sets it.
 */
export const TransferContinuationSchema = z.object({
  /** The run that continued as new with this: only it can name it (a start, a cron or a retry run cannot). */
  fromRunId: z.string().min(1),
  /** The last file (relative path) of the page before: the next page lists what comes after it. */
  after: z.string().min(1),
  /** This run's page (the first is 1). */
  page: z.number().int().min(2),
  /** When the first page started (workflow time, ms): the report's seconds count from it. */
  startedMs: z.number(),
  files: z.number().int().min(0),
  bytes: z.number().min(0),
  skipped: z.number().int().min(0),
  verified: z.number().int().min(0),
  stagingObjectsDeleted: z.number().int().min(0).optional(),
  skippedSymlinks: z.array(z.string()).max(1000),
  planned: z
    .array(z.object({ from: z.string(), to: z.string(), size: z.number() }))
    .max(1000)
    .optional(),
});
export type TransferContinuation = z.infer<typeof TransferContinuationSchema>;

export const TransferInputSchema = z
  .object({
    source: DataLocationSchema,
    destination: DataLocationSchema,
    region: RegionSchema.default('us-east-1'),
    include: z.array(z.string().min(1)).max(100).default([]),
    exclude: z.array(z.string().min(1)).max(100).default([]),
    /** Skip files already identical at the destination (same size and checksum). */
    sync: z.boolean().default(false),
    /** Plan and report what would be transferred; write nothing. */
    dryRun: z.boolean().default(false),
    /** Parts (or ranges) of one file in flight at once. */
    concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64').default(4),
    /** Files in flight at once. */
    fileConcurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64').default(4),
    /** Part size in MiB; planned from each file's size (≥ 8 MiB, ≤ 10,000 parts) when absent. */
    partSizeMiB: z.number().int('must be a whole number').min(5, 'must be at least 5 (S3 minimum)').max(5120, 'must be at most 5120').optional(),
    /** An S3 prefix for local ↔ host transfers, which go through S3; emptied afterwards. */
    stagingUri: s3UriSchema().optional(),
    followSymlinks: z.boolean().default(false),
    /** How soon a dead worker is noticed (its file activity then resumes elsewhere from its checkpoint). */
    heartbeatTimeoutSeconds: z.number().int().min(2).max(600).default(15),
    /**
     * Kept for old callers; no longer used. A running file's bytes ride on its activity's heartbeats
     * (read by `api.transfer.progress`), so progress adds no event to the history.
     */
    progressIntervalMs: z.number().int().min(100).max(60_000).default(2_000),
    /** Delete destination files/objects that the (filtered) source does not have; implies sync; honours dryRun. */
    deleteExtraneous: z.boolean().default(false),
    /**
     * With `deleteExtraneous`: how many deletions are allowed. Without it a sync deletes at most
     * 1,000 entries and at most half of the destination's; beyond that it refuses (InvalidInput).
     */
    maxDelete: z.number().int('must be a whole number').min(0, 'must be at least 0').max(1_000_000, 'must be at most 1,000,000').optional(),
    /** Compress text-like files on their way to S3 (zstd only where node:zlib has it); undone on download. */
    compress: z.enum(['none', 'gzip', 'zstd']).default('none'),
    /** Compress every file, not only text-like ones (by extension). */
    compressAll: z.boolean().default(false),
    /**
     * Who copies local ↔ S3 files: trainctl's engine, `s5cmd` (required on the worker's PATH), or
     * `auto` (s5cmd when the worker has it). trainctl verifies the result either way.
     */
    engine: z.enum(['builtin', 's5cmd', 'auto']).default('builtin'),
    /**
     * Files per page: a tree with more is moved page by page, each page one run of the workflow
     * (continue-as-new), so a run's history stays bounded whatever the tree's size. A run also
     * stops its page at 2,000 file activities (large files and batches).
     */
    pageFiles: z
      .number()
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .max(MAX_PAGE_FILES, `must be at most ${MAX_PAGE_FILES}`)
      .default(MAX_PAGE_FILES),
    /** Internal: set by the workflow when it continues with the next page. */
    continuation: TransferContinuationSchema.optional(),
  })
  .superRefine((t, ctx) => {
    const pair = `${t.source.kind}->${t.destination.kind}`;
    if (!['local->s3', 's3->local', 'host->s3', 's3->host', 'local->host', 'host->local', 's3->s3'].includes(pair)) {
      ctx.addIssue({
        code: 'custom',
        path: ['destination'],
        message: `${t.source.kind} → ${t.destination.kind} is not a supported direction (one end must be S3, or local ↔ host)`,
      });
    }
    if (t.source.kind === 's3' && t.destination.kind === 's3') {
      const a = parseS3Location(t.source.uri);
      const b = parseS3Location(t.destination.uri);
      if (a && b && a.profile === b.profile && a.bucket === b.bucket && s3PathsOverlap(a.prefix, b.prefix))
        ctx.addIssue({
          code: 'custom',
          path: ['destination'],
          message: 'lies inside the source, or the source inside it: copy to another prefix, bucket or profile',
        });
      if (t.compress !== 'none') ctx.addIssue({ code: 'custom', path: ['compress'], message: 'S3 → S3 copies objects as they are stored: drop compress' });
      if (t.engine === 's5cmd') ctx.addIssue({ code: 'custom', path: ['engine'], message: 'S3 → S3 is copied by the built-in engine: drop --engine s5cmd' });
    }
    if ((pair === 'local->host' || pair === 'host->local') && t.stagingUri === undefined) {
      ctx.addIssue({ code: 'custom', path: ['stagingUri'], message: 'local ↔ host transfers go through S3: give a staging s3:// prefix' });
    }
  });
/** What callers pass (defaults may be omitted). */
export type TransferRequest = z.input<typeof TransferInputSchema>;
/** The validated, defaulted input the workflow works on. */
export type TransferInput = z.output<typeof TransferInputSchema>;

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
  /** Labels of the file activities running now (their bytes are not in `bytesDone` until they finish). */
  running?: string[];
  /**
   * A paged transfer (a tree bigger than a page): the page this run moves (from 1). The other
   * counters are this page's; `filesInEarlierPages` are the files the pages before it moved.
   */
  page?: number;
  filesInEarlierPages?: number;
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
   * deleted after every file arrived — or, in a dry run, that would be (first 1000 named);
   * `considered`: the destination entries listed (the base of the deletion limit).
   */
  deleted?: { count: number; items: string[]; considered?: number };
  /** Who copied the files: trainctl's engine or s5cmd (then verified by trainctl). Absent in a dry run. */
  engine?: TransferEngineKind;
}

/** What a running file activity tells its workflow: the bytes moved so far under the workflow's label. */
export interface TransferProgressUpdate {
  label: string;
  bytes: number;
  current?: string;
}

/** Sent by file activities of workers before 2026-11-30 (progress now rides on heartbeats); still handled for their runs. */
export const transferProgressSignal = defineSignal<[TransferProgressUpdate]>('transferProgress');

/** Where a running transfer is: phase, files and bytes done, rate and ETA. */
export const transferProgressQuery = defineQuery<TransferProgress>('progress');
