import { readFileSync, readdirSync } from 'node:fs';
import { onCleanup } from './harness.js';
import { waitFor } from './wait.js';

/**
 * Bytes process `pid` has read through read(2) and its kin since it started, all threads counted:
 * `rchar` in /proc/PID/io. It counts page-cache hits too, so it measures what a reader asked for,
 * not what the disk served.
 */
export function bytesReadBy(pid: number): number {
  const line = /^rchar:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  if (!line) throw new Error(`no rchar in /proc/${pid}/io`);
  return Number(line[1]);
}

/** Whether every thread of `pid` is stopped (state T in /proc/PID/task/TID/stat). */
function allStopped(pid: number): boolean {
  // The state follows the command name, which is in parentheses and may itself hold spaces.
  const state = (tid: string) => readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
  return readdirSync(`/proc/${pid}/task`).every((tid) => state(tid) === 'T');
}

export interface ReadThrottle {
  /** How often the throttle stopped the process (it never had to if 0), and how often it let it breathe. */
  counts(): { stops: number; breaths: number };
  /**
   * Stops the throttling and the process (SIGSTOP), waits until every thread of it has stopped, and
   * returns the bytes it read since the throttle started: it reads no more until released or killed.
   */
  hold(): Promise<number>;
  /** Ends the throttle and lets the process run (SIGCONT). Safe to call twice, or once the process has gone. */
  release(): void;
}

export interface ThrottleOptions {
  /** The average read rate allowed. */
  bytesPerSecond: number;
  /** What an idle process may save up and then read at once. Default one second's worth. */
  burstBytes?: number;
  /** How often the bytes read are checked; what the process reads in one tick is how far it can overshoot. Default 5 ms. */
  tickMs?: number;
  /** The longest the process is held stopped before it gets a breath. Default 1 s. */
  maxStopMs?: number;
  /** How long a breath lets the process run: enough for a due heartbeat to leave, little to read. Default 2 ms. */
  breathMs?: number;
}

/**
 * Slows a process's reads from outside, with no help from its code: a token bucket filled at
 * `bytesPerSecond` (holding at most `burstBytes`) is drained, every `tickMs`, by the bytes the process
 * has read (/proc/PID/io); the process is stopped (SIGSTOP) while the bucket is empty and goes on
 * (SIGCONT) once it has refilled. Over any stretch of time it reads about `bytesPerSecond` × that
 * time at most, plus one burst and what it reads in a tick or a breath, however long it idled before. A process
 * held stopped for `maxStopMs` gets a breath of `breathMs` (SIGCONT, then SIGSTOP again), so the
 * heartbeats and keep-alives it owes still leave while it stays behind its budget. The process is
 * always continued when the throttle is released or the test file ends.
 */
export function throttleReads(pid: number, opts: ThrottleOptions): ReadThrottle {
  const tickMs = opts.tickMs ?? 5;
  const maxStopMs = opts.maxStopMs ?? 1_000;
  const breathMs = opts.breathMs ?? 2;
  const burstBytes = opts.burstBytes ?? opts.bytesPerSecond;
  const base = bytesReadBy(pid);
  let last = base;
  let lastAt = Date.now();
  let tokens = burstBytes;
  let stoppedAt: number | undefined;
  const counts = { stops: 0, breaths: 0 };
  let ticking = true;
  let released = false;
  let timer: NodeJS.Timeout | undefined;

  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // The process has gone (killed by the test): nothing left to throttle.
      release();
    }
  };
  const tick = () => {
    if (!ticking) return;
    let read: number;
    try {
      read = bytesReadBy(pid);
    } catch {
      release();
      return;
    }
    const now = Date.now();
    tokens = Math.min(burstBytes, tokens + ((now - lastAt) / 1000) * opts.bytesPerSecond) - (read - last);
    last = read;
    lastAt = now;
    const ahead = tokens < 0;
    let next = tickMs;
    if (ahead && stoppedAt === undefined) {
      stoppedAt = now;
      counts.stops++;
      signal('SIGSTOP');
    } else if (stoppedAt !== undefined && !ahead) {
      stoppedAt = undefined;
      signal('SIGCONT');
    } else if (stoppedAt !== undefined && now - stoppedAt >= maxStopMs) {
      // Still ahead: a breath, and the next tick stops it again.
      stoppedAt = undefined;
      counts.breaths++;
      signal('SIGCONT');
      next = breathMs;
    }
    if (ticking) timer = setTimeout(tick, next);
  };
  function release() {
    if (released) return;
    released = true;
    ticking = false;
    clearTimeout(timer);
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Already gone.
    }
  }
  onCleanup(release);
  tick();
  return {
    counts: () => ({ ...counts }),
    hold: async () => {
      ticking = false;
      clearTimeout(timer);
      process.kill(pid, 'SIGSTOP');
      await waitFor(() => allStopped(pid), { what: `every thread of process ${pid} to stop`, timeoutMs: 10_000, intervalMs: 10 });
      last = bytesReadBy(pid);
      return last - base;
    },
    release,
  };
}
