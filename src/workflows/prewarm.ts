import { ApplicationFailure, CancellationScope, isCancellation, log, proxyActivities, setCurrentDetails, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { HostActivities } from '../activities/host.js';
import { s3LocationUri } from '../contracts/common.js';
import { PrewarmInputSchema, type PrewarmInput, type PrewarmMemo, type PrewarmRequest, type PrewarmResult } from '../contracts/prewarm.js';
import { ErrorKind, describeFailure } from '../errors/kinds.js';
import { bestEffort, hostBound, onHost } from './options.js';

const costs = proxyActivities<Activities>(bestEffort);

/** The host worker's activities, on its task queue, bounded by the input's timeouts. */
function hostActivities(input: PrewarmInput) {
  return proxyActivities<HostActivities>(
    onHost(hostBound, input.hostId, {
      scheduleToCloseTimeout: `${input.timeoutMinutes} minutes`,
      heartbeatTimeout: `${input.heartbeatTimeoutSeconds} seconds`,
    }),
  );
}
type Host = ReturnType<typeof hostActivities>;
type ByStrategy<S extends PrewarmInput['strategy']> = Extract<PrewarmInput, { strategy: S }>;

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
    const result = await prepare(input, host, elapsed);
    report(result);
    return result;
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
        {
          project,
          resource: {
            id,
            kind: 'transfer',
            type: `prewarm-${input.strategy}`,
            region,
            hourlyRate,
            tags: { host: input.hostId },
            at: workflowInfo().runStartTime.getTime(),
          },
        },
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

/** The strategy's one host step. */
async function prepare(input: PrewarmInput, host: Host, elapsed: () => number): Promise<PrewarmResult> {
  switch (input.strategy) {
    case 'PreWarmedEBS':
      return readDevice(input, host, elapsed);
    case 'LocalCache':
      return syncCache(input, host, elapsed);
    case 'ExistingEBS':
      return verifyDataset(input, host, elapsed);
    case 'DirectS3':
      return listPrefix(input, host, elapsed);
  }
}

/** PreWarmedEBS: read every block of the device once. */
async function readDevice(input: ByStrategy<'PreWarmedEBS'>, host: Host, elapsed: () => number): Promise<PrewarmResult> {
  setCurrentDetails(`Reading every block of \`${input.device}\` on host ${input.hostId}`);
  const r = await host.prewarmDevice.executeWithOptions({ summary: `read every block of ${input.device}` }, [
    { path: input.device, blockSize: input.blockSizeKiB * 1024, concurrency: input.concurrency, fio: input.fio },
  ]);
  return { strategy: input.strategy, hostId: input.hostId, bytes: r.bytes, seconds: elapsed(), mibPerSecond: r.mibPerSecond, prewarm: r };
}

/** LocalCache: sync the prefix into the host's cache. */
async function syncCache(input: ByStrategy<'LocalCache'>, host: Host, elapsed: () => number): Promise<PrewarmResult> {
  const { bucket, prefix, region, profile } = input.s3;
  const at = s3LocationUri(input.s3);
  setCurrentDetails(`Syncing ${at} into \`${input.cacheDir}\` on host ${input.hostId}`);
  const r = await host.syncCache.executeWithOptions({ summary: `sync ${at} to the cache` }, [
    {
      region,
      ...(profile ? { profile } : {}),
      bucket,
      prefix,
      cacheDir: input.cacheDir,
      concurrency: input.concurrency,
      ...(input.capacityBytes !== undefined ? { capacityBytes: input.capacityBytes } : {}),
    },
  ]);
  return { strategy: input.strategy, hostId: input.hostId, bytes: r.bytes, seconds: elapsed(), mibPerSecond: r.mibPerSecond, cache: r };
}

/** ExistingEBS: check the dataset against its manifest; Integrity (or NotFound) when it does not match. */
async function verifyDataset(input: ByStrategy<'ExistingEBS'>, host: Host, elapsed: () => number): Promise<PrewarmResult> {
  setCurrentDetails(`Checking \`${input.datasetDir}\` against its manifest on host ${input.hostId}`);
  const r = await host.verifyManifest.executeWithOptions({ summary: `verify ${input.datasetDir} (${input.verify})` }, [
    { datasetDir: input.datasetDir, manifest: input.manifest, verify: input.verify },
  ]);
  if (!r.ok) {
    const what = [
      r.missing.length ? `${r.missing.length} missing (${r.missing.slice(0, 3).join(', ')})` : '',
      r.mismatched.length
        ? `${r.mismatched.length} different (${r.mismatched
            .slice(0, 3)
            .map((m) => `${m.path}: ${m.reason}`)
            .join('; ')})`
        : '',
    ].filter(Boolean);
    throw ApplicationFailure.create({
      type: r.mismatched.length ? ErrorKind.Integrity : ErrorKind.NotFound,
      nonRetryable: true,
      message: `${input.datasetDir} does not hold the dataset its manifest lists: ${what.join('; ')}`,
      details: [{ missing: r.missing, mismatched: r.mismatched }],
    });
  }
  return { strategy: input.strategy, hostId: input.hostId, bytes: r.bytes, seconds: elapsed(), mibPerSecond: 0, verification: r };
}

/** DirectS3: nothing to warm; list the prefix from the host to show it is reachable. */
async function listPrefix(input: ByStrategy<'DirectS3'>, host: Host, elapsed: () => number): Promise<PrewarmResult> {
  const { bucket, prefix, region, profile } = input.s3;
  const at = s3LocationUri(input.s3);
  setCurrentDetails(`DirectS3: nothing to warm; checking that host ${input.hostId} reaches ${at}`);
  const r = await host.listDatasetPrefix.executeWithOptions({ summary: `list ${at}` }, [{ region, ...(profile ? { profile } : {}), bucket, prefix }]);
  return { strategy: input.strategy, hostId: input.hostId, bytes: r.bytes, seconds: elapsed(), mibPerSecond: 0, listing: r };
}

/** Puts the run's one-line summary in its current details and memo. */
function report(result: PrewarmResult): void {
  const summary = `${result.strategy} on ${result.hostId}: ${result.bytes} bytes in ${result.seconds.toFixed(1)} s${result.mibPerSecond ? ` (${result.mibPerSecond.toFixed(0)} MiB/s)` : ''}`;
  setCurrentDetails(summary);
  const memo: PrewarmMemo = { result: summary };
  upsertMemo({ ...memo });
  log.info('prewarm finished', { strategy: result.strategy, bytes: result.bytes, seconds: result.seconds });
}
