/**
 * Scenario (c): every AWS request of the orchestration worker and the host worker goes through the
 * latency of the other scenarios (reliability/slow-aws.ts) and then the fault proxy
 * (src/dev/fault-proxy.ts), which answers 10 % of them with throttling (S3 503 SlowDown, EC2 503
 * RequestLimitExceeded), resets 2 % before forwarding, answers 1 % with 500 InternalError, and
 * loses 1 % of the replies after the emulator acted. The SDK makes one attempt (AWS_MAX_ATTEMPTS=1)
 * so every fault reaches trainctl's own retry and idempotency logic rather than the SDK's.
 */
import type { FaultProxy, FaultRule, ProxyLogEntry } from '../src/dev/fault-proxy.js';
import { startFaultProxy } from '../src/dev/fault-proxy.js';
import type { RunOutcome, ScenarioContext } from './types.js';
import { runBatch, seededRandom, sleep, type Fault, type InFlight } from './campaign.js';
import { selectFamilies } from './families.js';
import { stage, type Hosts } from './stage.js';
import { campaignWorker } from './workers.js';
import { slowAws } from './slow-aws.js';

/** Every EC2 action trainctl's activities call (a superset is harmless: a rule only matches its op). */
const EC2_OPS = [
  'CreateVolume',
  'DescribeVolumes',
  'DeleteVolume',
  'AttachVolume',
  'DetachVolume',
  'CreateTags',
  'DeleteTags',
  'DescribeTags',
  'DescribeInstances',
  'RunInstances',
  'StopInstances',
  'TerminateInstances',
  'CreateSnapshot',
  'DescribeSnapshots',
  'DeleteSnapshot',
  'DescribeSpotPriceHistory',
  'DescribeImages',
] as const;

/**
 * The mix as rules. The proxy tries rules in order and each matching rule draws its own chance, so
 * later rates are conditional on the earlier ones not firing: 10 %, 2 %, 1 %, 1 % of all requests.
 */
export function faultMix(bucket: string): FaultRule[] {
  const shares = { throttle: 0.1, reset: 0.02 / 0.9, error: 0.01 / 0.88, lost: 0.01 / 0.87 };
  const s3: FaultRule[] = [
    { op: '*', bucket, fault: 'error', status: 503, code: 'SlowDown', rate: shares.throttle },
    { op: '*', bucket, fault: 'reset', rate: shares.reset },
    { op: '*', bucket, fault: 'error', status: 500, code: 'InternalError', rate: shares.error },
    { op: '*', bucket, fault: 'lostResponse', rate: shares.lost },
  ];
  const ec2: FaultRule[] = EC2_OPS.flatMap((op): FaultRule[] => [
    { op, fault: 'error', status: 503, code: 'RequestLimitExceeded', rate: shares.throttle },
    { op, fault: 'reset', rate: shares.reset },
    { op, fault: 'error', status: 500, code: 'InternalError', rate: shares.error },
    { op, fault: 'lostResponse', rate: shares.lost },
  ]);
  return [...s3, ...ec2];
}

/** What the proxy did, for the log: requests seen and faults by kind. */
export function faultSummary(log: ProxyLogEntry[]): string {
  const by = new Map<string, number>();
  for (const e of log) {
    if (!e.fault) continue;
    const what = e.fault === 'error' ? `HTTP ${e.status}` : e.fault;
    by.set(what, (by.get(what) ?? 0) + 1);
  }
  return `${log.length} requests, ${[...by].map(([k, n]) => `${n} ${k}`).join(', ') || 'no faults'}`;
}

/** How often the driver reads the proxy's log: a fault is dated to the interval between two reads. */
const POLL_MS = 250;

/**
 * The fault mix injects faults on its own; this reads the proxy's log every {@link POLL_MS} while runs
 * are open and returns, for each interval in which the proxy injected at least one fault, that
 * interval as a fault reaching the families that make AWS requests: a run open for all of it was in
 * flight when a fault of the mix landed (not necessarily on its own request).
 */
async function faultsSeen(runs: InFlight, proxy: FaultProxy, reaches: readonly string[]): Promise<Fault[]> {
  const seen: Fault[] = [];
  let read = 0;
  let since = Date.now();
  while (runs.pending()) {
    await sleep(POLL_MS);
    const log = await proxy.log();
    const now = Date.now();
    if (log.slice(read).some((e) => e.fault !== undefined)) seen.push({ at: since, until: now, reaches, somewhere: true });
    read = log.length;
    since = now;
  }
  return seen;
}

export async function runFaultMix(sc: ScenarioContext): Promise<RunOutcome[]> {
  const st = await stage(sc, 'fault-mix', sc.temporalAddress);
  const proxy = await startFaultProxy(sc.awsEndpoint);
  // Slowed in front of the mix, as in the other scenarios: runs last long enough to span a read of the log.
  const slow = await slowAws(proxy.endpoint);
  const worker = campaignWorker({
    name: 'fault-mix-orchestration',
    temporalAddress: sc.temporalAddress,
    awsEndpoint: slow.endpoint,
    taskQueue: st.ctx.taskQueue,
    roots: [st.ctx.workDir],
    extraEnv: { AWS_MAX_ATTEMPTS: '1' },
  });
  const families = selectFamilies(sc.families);
  let hosts: Hosts | undefined;
  try {
    await worker.start();
    hosts = await st.startHosts(families, slow.endpoint, { AWS_MAX_ATTEMPTS: '1' });
    await proxy.setRules(faultMix(st.ctx.bucket), sc.seed);
    await proxy.clearLog();
    const outcomes = await runBatch({
      scenario: 'fault-mix',
      families,
      runs: sc.runs,
      ctx: st.ctx,
      random: seededRandom(sc.seed ^ 0xfa17),
      spreadMs: sc.smoke ? 4_000 : 20_000,
      deadlineMs: sc.smoke ? 150_000 : 900_000,
      log: sc.log,
      drive: (runs) =>
        faultsSeen(
          runs,
          proxy,
          families.filter((f) => !f.awsFree).map((f) => f.name),
        ),
    });
    sc.log(`fault-mix: the proxy saw ${faultSummary(await proxy.log())}`);
    return outcomes;
  } finally {
    await proxy.setRules([]).catch(() => undefined);
    await Promise.all([worker.stop(), hosts?.stop()]);
    await slow.stop();
    await proxy.stop();
    await st.close();
  }
}
