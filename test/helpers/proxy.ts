import { onCleanup } from './harness.js';
import { startFaultProxy, type FaultProxy, type ProxyLogEntry } from '../../src/dev/fault-proxy.js';
import type { Env } from '../../src/config.js';

/**
 * A fault proxy in front of this suite's emulator, stopped when the test file ends: workers pointed
 * at it are slowed or faulted per rule, and its request log is how tests see, from outside the
 * code under test, which parts and ranges were sent, and when.
 */
export async function emulatorProxy(env: Env): Promise<FaultProxy> {
  const proxy = await startFaultProxy(env.AWS_ENDPOINT_URL!);
  onCleanup(() => proxy.stop());
  return proxy;
}

/** The log's data requests (UploadPart, PutObject, ranged GetObject) for keys under `keyPrefix`. */
export function dataRequests(log: ProxyLogEntry[], keyPrefix: string): ProxyLogEntry[] {
  return log.filter((e) => (e.key ?? '').startsWith(keyPrefix) && (e.op === 'UploadPart' || e.op === 'PutObject' || (e.op === 'GetObject' && e.range)));
}

/** The range number of a ranged GET (1-based) for ranges of `rangeSize` bytes. */
export function rangeNumber(e: ProxyLogEntry, rangeSize: number): number {
  const start = Number(/^bytes=(\d+)-/.exec(e.range ?? '')?.[1] ?? NaN);
  return Math.floor(start / rangeSize) + 1;
}

/** Whether the server answered 2xx (the request was carried out and its reply delivered). */
export function succeeded(e: ProxyLogEntry): boolean {
  return e.status >= 200 && e.status < 300;
}
