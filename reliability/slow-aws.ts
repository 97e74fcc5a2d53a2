/**
 * The AWS the crash scenarios (worker kill, server restart, scale-out) run against: the emulator
 * behind the fault proxy with a fixed latency on every request, as a distant region would add.
 * moto answers in milliseconds, so without it a transfer or a volume is over in a fraction of a
 * second and a crash or restart mostly misses it; with it each run lasts seconds, its activities
 * are waiting on requests when the fault lands, and the drivers can strike every run.
 */
import { startFaultProxy, type FaultProxy } from '../src/dev/fault-proxy.js';

/** Added to every request of the workers (fixtures and checks go straight to the emulator). */
export const LATENCY_MS = 1_000;

/** A fault proxy in front of `awsEndpoint` that delays every request by {@link LATENCY_MS}; the caller stops it. */
export async function slowAws(awsEndpoint: string): Promise<FaultProxy> {
  const proxy = await startFaultProxy(awsEndpoint);
  try {
    await proxy.setRules([{ op: '*', fault: 'latency', latencyMs: LATENCY_MS }]);
  } catch (err) {
    await proxy.stop();
    throw err;
  }
  return proxy;
}
