import { Context, log } from '@temporalio/activity';
import type { PrefixListing, PrewarmDeviceResult, SyncCacheResult, VerifyManifestResult } from '../contracts/prewarm.js';
import { prewarmDevice, type PrewarmDeviceArgs } from '../prewarm/device.js';
import { syncCache, type SyncCacheArgs } from '../prewarm/cache.js';
import { listPrefix } from '../prewarm/listing.js';
import { verifyDataset, type VerifyDatasetArgs } from '../prewarm/verify.js';
import type { WorkContext } from '../prewarm/work.js';
import { abortSignal, step } from './aws-call.js';
import { endpointUrl } from '../transfer/s5cmd.js';
import type { HostDeps } from './host-fs.js';

/** The running activity's context as the Temporal-free engines see it: steps, heartbeats, cancellation, logs. */
function workContext(deps: HostDeps): WorkContext {
  const ctx = Context.current();
  return {
    step,
    resolve: (path) => deps.fs.resolve(path),
    signal: ctx.cancellationSignal,
    heartbeat: (details) => ctx.heartbeat(details),
    previous: ctx.info.heartbeatDetails,
    attempt: ctx.info.attempt,
    info: (message, attributes) => log.info(message, attributes),
    warn: (message, attributes) => log.warn(message, attributes),
  };
}

/**
 * The host's data activities: read every block of a device (PreWarmedEBS), check a dataset against
 * its manifest (ExistingEBS), sync an S3 prefix into a local cache (LocalCache), list a prefix
 * (DirectS3). Every path goes through the host's root confinement. The work itself is in
 * `src/prewarm/`; these are its Temporal glue.
 */
export function createPrewarmActivities(deps: HostDeps) {
  return {
    /**
     * Reads every block of a device (or file) once so that a volume restored from a snapshot runs
     * at full speed: `concurrency` parallel reads of `blockSize`, with fio (`--direct=1`) when
     * `fio: 'auto'` and fio is on PATH, else the built-in reader. Heartbeats the watermark below
     * which every block is read; a retry resumes from it (not from zero) when the path, size and
     * block size match. Read-only and idempotent. On cancel it stops between blocks.
     */
    async prewarmDevice(args: PrewarmDeviceArgs): Promise<PrewarmDeviceResult> {
      return prewarmDevice(args, workContext(deps));
    },

    /**
     * Checks that `datasetDir` holds what its manifest lists: every file present with its size, and
     * with `verify: 'checksum'` its SHA-256. Read-only; a retry resumes at the file it heartbeated.
     * Reports problems rather than failing, so the workflow decides.
     */
    async verifyManifest(args: VerifyDatasetArgs): Promise<VerifyManifestResult> {
      return step(`verify ${args.datasetDir} against ${args.manifest}`, () => verifyDataset(args, workContext(deps)));
    },

    /**
     * Syncs `s3://bucket/prefix` into `cacheDir` (as `cacheDir/BUCKET/KEY`), with a manifest of
     * id, size, SHA-256, ETag and last use: objects whose size and ETag match their entry (and whose
     * file is present) are not fetched again, so a second sync transfers nothing. With a capacity,
     * least-recently-used entries of other prefixes are evicted first; a prefix larger than the
     * capacity fails with QuotaExceeded before anything is fetched. Each object goes through the
     * transfer engine's verified download (`downloadVerified`): a trainctl-uploaded object must match
     * its recorded checksum (kind Integrity otherwise, and nothing is left in the cache). Idempotent:
     * a retry re-lists and skips what an earlier attempt finished. Cancel stops between objects.
     */
    async syncCache(args: SyncCacheArgs): Promise<SyncCacheResult> {
      return step(`sync s3://${args.bucket}/${args.prefix} into ${args.cacheDir}`, async () => syncCache(await deps.s3(args), args, workContext(deps)));
    },

    /** DirectS3 needs no warming: lists the prefix from the host to show the instance reaches it. Read-only. */
    async listDatasetPrefix(args: { region: string; profile?: string; bucket: string; prefix: string }): Promise<PrefixListing> {
      const s3 = await step(`S3 client for ${args.profile ? `profile ${args.profile}` : 'the default profile'}`, () => deps.s3(args));
      const listing = await step(`list s3://${args.bucket}/${args.prefix}`, async () => listPrefix(s3, args.bucket, args.prefix, abortSignal()));
      const endpoint = args.profile ? endpointUrl(await s3.config.endpoint?.()) : undefined;
      return {
        objects: listing.length,
        bytes: listing.reduce((s, o) => s + o.size, 0),
        ...(endpoint ? { endpoint } : {}),
        ...(args.profile ? { region: await s3.config.region() } : {}),
        ...(args.profile ? { addressingStyle: s3.config.forcePathStyle ? ('path' as const) : ('auto' as const) } : {}),
      };
    },
  };
}

export type PrewarmActivities = ReturnType<typeof createPrewarmActivities>;
