/**
 * versitygw (Apache-2.0), a real S3 server with a POSIX backend that checks credentials: the
 * "other S3-compatible store" of the tests and the server the benchmarks measure against. Built
 * from the Go module proxy into `.tools/go/bin` on first use (about three minutes), then reused.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, freePort, startProcess, toolsDir, type ManagedProcess } from './services.js';

export const VERSITYGW_VERSION = 'v1.8.0';
const MODULE = `github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}`;
const goBin = join(toolsDir, 'go', 'bin');

/** The versitygw binary, built with `go install` the first time; throws saying what to install when Go is missing. */
export function ensureVersitygw(log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): string {
  const bin = join(goBin, 'versitygw');
  // `go install` stamps no version into the binary, so a file beside it records what was built.
  const stamp = `${bin}.version`;
  if (existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === MODULE) return bin;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0) {
    throw new Error(
      `versitygw ${VERSITYGW_VERSION} is built from source with Go, and \`go\` is not on PATH: install Go ≥ 1.24 (Debian: apt-get install golang-go), then run again`,
    );
  }
  mkdirSync(goBin, { recursive: true });
  log(`[trainctl setup] building versitygw ${VERSITYGW_VERSION} into ${goBin} (first use only, a few minutes) ...`);
  const r = spawnSync('go', ['install', MODULE], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, GOBIN: goBin, GOFLAGS: '-buildvcs=false' },
  });
  if (r.status !== 0 || !existsSync(bin)) throw new Error(`go install ${MODULE} failed (exit ${r.status}); see the output above`);
  writeFileSync(stamp, `${MODULE}\n`);
  return bin;
}

export interface VersityGw extends ManagedProcess {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly accessKey: string;
}

/**
 * Starts versitygw on a free loopback port over `dataDir` (each top-level folder is a bucket).
 * The root credentials reach it by environment, never on its command line (where `ps` shows them).
 * `keepAlive` turns on its `--keep-alive`: without it versitygw answers every request with
 * `Connection: close`, so each request costs a new TCP connection, which S3 itself does not.
 */
export async function startVersitygw(opts: {
  dataDir: string;
  accessKey: string;
  secretKey: string;
  region?: string;
  keepAlive?: boolean;
}): Promise<VersityGw> {
  const bin = ensureVersitygw();
  mkdirSync(opts.dataDir, { recursive: true });
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    ROOT_ACCESS_KEY_ID: opts.accessKey,
    ROOT_SECRET_ACCESS_KEY: opts.secretKey,
    VGW_REGION: opts.region ?? 'us-east-1',
  };
  const proc = startProcess(
    'versitygw',
    bin,
    ['--port', `127.0.0.1:${port}`, '--quiet', ...(opts.keepAlive ? ['--keep-alive'] : []), 'posix', opts.dataDir],
    env,
  );
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!alive(proc.pid)) throw new Error(`versitygw exited during start; see ${proc.logFile}`);
    try {
      // Any HTTP answer (403 for an unsigned request) means it is serving.
      await fetch(endpoint, { signal: AbortSignal.timeout(2_000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        await proc.stop();
        throw new Error(`versitygw did not answer on ${endpoint} in time; see ${proc.logFile}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { ...proc, stop: proc.stop, endpoint, accessKey: opts.accessKey };
}
