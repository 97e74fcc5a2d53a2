import { ApplicationFailure, CancellationScope, isCancellation, log, proxyActivities, setCurrentDetails, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { HostActivities } from '../activities/host.js';
import type { PrewarmDeviceResult, SyncCacheResult, VerifyManifestResult } from '../activities/prewarm.js';
import { hostTaskQueue } from '../config.js';
import { PrewarmInputSchema, type PrewarmInput, type PrewarmRequest } from '../data-model.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { awsCall, hostBound } from './options.js';

// Recording time with the cost tracker is best-effort: a few attempts, then the run goes on without it.
const costs = proxyActivities<Activities>({ ...awsCall, retry: { ...awsCall.retry, maximumAttempts: 3 } });

export interface PrewarmResult {
  strategy: PrewarmInput['strategy'];
  hostId: string;
  /** Bytes read (PreWarmedEBS), checked (ExistingEBS), in the prefix (LocalCache, DirectS3). */
  bytes: number;
  /** Wall time of the whole run, retries included. */
  seconds: number;
  /** Rate of the work that moved data (the last attempt's reading, the sync's transfer); 0 when none moved. */
  mibPerSecond: number;
  prewarm?: PrewarmDeviceResult;
  cache?: SyncCacheResult;
  verification?: VerifyManifestResult;
  listing?: { objects: number; bytes: number };
}

function hostActivities(input: PrewarmInput) {
  return proxyActivities<HostActivities>({
    ...hostBound,
    taskQueue: hostTaskQueue(input.hostId),
    scheduleToCloseTimeout: `${input.timeoutMinutes} minutes`,
    heartbeatTimeout: `${input.heartbeatTimeoutSeconds} seconds`,
  });
}

/**
 * Prepares a training instance's data for one strategy, on that instance's host worker
 * (`trainctl-host-ID`):
 * - PreWarmedEBS: reads every block of the restored device once (fio or the built-in parallel
 *   reader), resuming from the heartbeated watermark after a crash;
 * - LocalCache: syncs an S3 prefix into a local cache with a manifest (a second run transfers
 *   nothing) and LRU eviction under a capacity;
 * - ExistingEBS: checks the attached volume against the dataset's manifest, failing with
 *   Integrity (or NotFound) when it does not match; no warming;
 * - DirectS3: no warming; lists the prefix from the host to show it is reachable.
 *
 * Returns the measured figures; with `cost`, records the time spent with that project's cost
 * tracker (best-effort). Idempotent: every step is read-only or skips finished work. The
 * host steps progress only while that host is alive (scheduleToClose `timeoutMinutes`). On cancel
 * the running host step stops at its next block or object; nothing needs undoing.
 */
export async function prewarm(request: PrewarmRequest): Promise<PrewarmResult> {
  const parsed = PrewarmInputSchema.safeParse(request);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: `invalid prewarm request: ${describeFailure(parsed.error)}` });
  }
  const input = parsed.data;
  const host = hostActivities(input);
  const started = workflowInfo().runStartTime.getTime();
  const elapsed = () => (new Date().getTime() - started) / 1000;
  const recorded = await recordTime(input, 'start');
  try {
    return await run(input, host, elapsed);
  } finally {
    if (recorded) await CancellationScope.nonCancellable(() => recordTime(input, 'stop'));
  }
}

/**
 * Tells the project's cost tracker when this run started or stopped spending the instance's time
 * (`input.cost`). Best-effort: a failure is logged and never fails the prewarm.
 */
async function recordTime(input: PrewarmInput, what: 'start' | 'stop'): Promise<boolean> {
  if (!input.cost) return false;
  const { project, region, hourlyRate } = input.cost;
  const id = `prewarm:${workflowInfo().workflowId}`;
  try {
    if (what === 'start') {
      await costs.recordResourceStarted.executeWithOptions({ summary: `record ${id} with cost-tracker/${project}` }, [
        { project, resource: { id, kind: 'transfer', type: `prewarm-${input.strategy}`, region, hourlyRate, tags: { host: input.hostId }, at: workflowInfo().runStartTime.getTime() } },
      ]);
    } else {
      await costs.recordResourceStopped.executeWithOptions({ summary: `record ${id} stopped` }, [{ project, stop: { id } }]);
    }
    return true;
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn('could not record prewarm time with the cost tracker', { project, id, error: describeFailure(err) });
    return false;
  }
}

async function run(input: PrewarmInput, host: ReturnType<typeof hostActivities>, elapsed: () => number): Promise<PrewarmResult> {
  let result: PrewarmResult;
  switch (input.strategy) {
    case 'PreWarmedEBS': {
      setCurrentDetails(`Reading every block of \`${input.device}\` on host ${input.hostId}`);
      const r = await host.prewarmDevice.executeWithOptions({ summary: `read every block of ${input.device}` }, [
        { path: input.device, blockSize: input.blockSizeKiB * 1024, concurrency: input.concurrency, fio: input.fio },
      ]);
      result = { strategy: input.strategy, hostId: input.hostId, bytes: r.bytes, seconds: elapsed(), mibPerSecond: r.mibPerSecond, prewarm: r };
      break;
    }
    case 'LocalCache': {
      const { bucket, prefix, region } = input.s3;
      setCurrentDetails(`Syncing s3://${bucket}/${prefix} into \`${input.cacheDir}\` on host ${input.hostId}`);
      const r = await host.syncCache.executeWithOptions({ summary: `sync s3://${bucket}/${prefix} to the cache` }, [
        { region, bucket, prefix, cacheDir: input.cacheDir, concurrency: input.concurrency, ...(input.capacityBytes !== undefined ? { capacityBytes: input.capacityBytes } : {}) },
      ]);
      result = { strategy: input.strategy, hostId: input.hostId, bytes: r.bytes, seconds: elapsed(), mibPerSecond: r.mibPerSecond, cache: r };
      break;
    }
    case 'ExistingEBS': {
      setCurrentDetails(`Checking \`${input.datasetDir}\` against its manifest on host ${input.hostId}`);
      const r = await host.verifyManifest.executeWithOptions({ summary: `verify ${input.datasetDir} (${input.verify})` }, [
        { datasetDir: input.datasetDir, manifest: input.manifest, verify: input.verify },
      ]);
      if (!r.ok) {
        const what = [
          r.missing.length ? `${r.missing.length} missing (${r.missing.slice(0, 3).join(', ')})` : '',
          r.mismatched.length ? `${r.mismatched.length} different (${r.mismatched.slice(0, 3).map((m) => `${m.path}: ${m.reason}`).join('; ')})` : '',
        ].filter(Boolean);
        throw ApplicationFailure.create({
          type: r.mismatched.length ? ErrorKind.Integrity : ErrorKind.NotFound,
          nonRetryable: true,
          message: `${input.datasetDir} does not hold the dataset its manifest lists: ${what.join('; ')}`,
          details: [{ missing: r.missing, mismatched: r.mismatched }],
        });
      }
      result = { strategy: input.strategy, hostId: input.hostId, bytes: r.bytes, seconds: elapsed(), mibPerSecond: 0, verification: r };
      break;
    }
    case 'DirectS3': {
      const { bucket, prefix, region } = input.s3;
      setCurrentDetails(`DirectS3: nothing to warm; checking that host ${input.hostId} reaches s3://${bucket}/${prefix}`);
      const r = await host.listDatasetPrefix.executeWithOptions({ summary: `list s3://${bucket}/${prefix}` }, [{ region, bucket, prefix }]);
      result = { strategy: input.strategy, hostId: input.hostId, bytes: r.bytes, seconds: elapsed(), mibPerSecond: 0, listing: r };
      break;
    }
  }
  const summary = `${result.strategy} on ${result.hostId}: ${result.bytes} bytes in ${result.seconds.toFixed(1)} s${result.mibPerSecond ? ` (${result.mibPerSecond.toFixed(0)} MiB/s)` : ''}`;
  setCurrentDetails(summary);
  upsertMemo({ result: summary });
  log.info('prewarm finished', { strategy: result.strategy, bytes: result.bytes, seconds: result.seconds });
  return result;
}
