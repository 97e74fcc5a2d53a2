import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../src/dev/services.js';
import { attach, processStartTime, startTraining, stop, tailLog, wait, TrainingAlreadyRunningError, type TrainingHandle } from '../src/run/training-process.js';
import { onCleanup } from './helpers/harness.js';
import { waitFor as pollUntil } from './helpers/wait.js';

const run = promisify(execFile);
let dir: string;
let n = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trainctl-proc-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
});

const waitFor = (what: string, check: () => boolean, timeoutMs = 20_000) => pollUntil(check, { what, timeoutMs, intervalMs: 50 });

/** Starts `node -e program ...args` as a training command, killed (group) when the file ends. */
function startNode(program: string, args: string[] = [], env: Record<string, string> = {}) {
  const name = `job-${++n}`;
  const files = { stateFile: join(dir, name, 'state.json'), logFile: join(dir, name, 'train.log') };
  const handle = startTraining({ argv: [process.execPath, '-e', program, '--', ...args], cwd: dir, env, ...files });
  onCleanup(() => {
    if (processStartTime(handle.pid) === handle.startTime) process.kill(-handle.pid, 'SIGKILL');
  });
  return { handle, ...files };
}

/** Runs `code` (an async function body given `m`, the module) in a fresh Node process, as a restarted worker would. */
async function inFreshProcess(body: string): Promise<unknown> {
  const moduleUrl = new URL(`file://${join(repoRoot, 'src', 'run', 'training-process.ts')}`).href;
  const script = `const m = await import(${JSON.stringify(moduleUrl)}); const r = await (async () => { ${body} })(); console.log(JSON.stringify(r));`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null');
}

/** Processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const UNTIL_GO = `
const fs = require('node:fs');
const [go, code] = process.argv.slice(1);
console.log('training started');
const t = setInterval(() => { if (fs.existsSync(go)) { clearInterval(t); console.log('done'); process.exit(Number(code)); } }, 50);
`;

for (const code of [0, 3]) {
  test(
    `a restarted worker re-attaches to the running process without starting a second one, and reads its exit code ${code}`,
    { timeout: 120_000 },
    async () => {
      const go = join(dir, `go-${code}`);
      const { handle, stateFile, logFile } = startNode(UNTIL_GO, [go, String(code)]);
      await waitFor('the first log line', () => tailLog(logFile, 5).includes('training started'));

      const attached = (await inFreshProcess(`return m.attach(${JSON.stringify(stateFile)});`)) as { status: string; handle: TrainingHandle };
      assert.equal(attached.status, 'running');
      assert.equal(attached.handle.pid, handle.pid);
      assert.equal(attached.handle.startTime, handle.startTime);
      assert.throws(
        () => startTraining({ argv: [process.execPath, '-e', UNTIL_GO, '--', go, '0'], cwd: dir, stateFile, logFile }),
        TrainingAlreadyRunningError,
      );
      assert.equal(processesWith(go).length, 2, 'one wrapper and one command, not a second copy');

      const waitingMarker = join(dir, `waiting-${code}`);
      const waiting = inFreshProcess(
        `const a = m.attach(${JSON.stringify(stateFile)}); (await import('node:fs')).writeFileSync(${JSON.stringify(waitingMarker)}, a.status); return await m.wait(a.handle, { pollMs: 50 });`,
      );
      // The command ends only once the fresh process has attached and is waiting.
      await waitFor('the fresh process to attach', () => existsSync(waitingMarker));
      assert.equal(readFileSync(waitingMarker, 'utf8'), 'running');
      writeFileSync(go, '');
      assert.deepEqual(await waiting, { code, signal: null });
      assert.deepEqual(attach(stateFile), { status: 'exited', exit: { code, signal: null }, state: JSON.parse(readFileSync(stateFile, 'utf8')) });
    },
  );
}

test('stop() sends SIGTERM to the command, whose handler runs, and reports its exit', { timeout: 60_000 }, async () => {
  const marker = join(dir, 'sigterm-handled');
  const program = `
const fs = require('node:fs');
process.on('SIGTERM', () => { fs.writeFileSync(process.argv[1], 'yes'); console.log('checkpointed'); process.exit(0); });
console.log('ready');
setInterval(() => {}, 1000);
`;
  const { handle, logFile } = startNode(program, [marker]);
  await waitFor('ready', () => tailLog(logFile, 5).includes('ready'));
  const status = await stop(handle, { graceMs: 20_000 });
  assert.deepEqual(status, { code: 0, signal: null });
  assert.equal(readFileSync(marker, 'utf8'), 'yes');
  assert.ok(tailLog(logFile, 5).includes('checkpointed'));
  assert.equal(processStartTime(handle.pid), undefined);
});

test('stop() SIGKILLs a command that ignores SIGTERM once the grace period is over', { timeout: 60_000 }, async () => {
  const program = `process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('ready'); setInterval(() => {}, 1000);`;
  const { handle, logFile, stateFile } = startNode(program);
  await waitFor('ready', () => tailLog(logFile, 5).includes('ready'));
  const started = Date.now();
  const status = await stop(handle, { graceMs: 1500 });
  assert.ok(Date.now() - started >= 1500, 'waited for the grace period');
  assert.equal(status.signal, 'SIGKILL');
  await waitFor('the SIGTERM line', () => tailLog(logFile, 5).includes('ignoring SIGTERM'));
  assert.equal(processStartTime(handle.pid), undefined);
  assert.deepEqual(attach(stateFile).status, 'exited');
});

test('a state file whose pid now belongs to another process (other start time) is reported gone', () => {
  const stateFile = join(dir, 'stale', 'state.json');
  const real = processStartTime(process.pid);
  assert.ok(real);
  const state = {
    version: 1,
    pid: process.pid,
    startTime: String(Number(real) + 12345),
    argv: ['x'],
    cwd: dir,
    logFile: join(dir, 'stale', 'log'),
    exitFile: `${stateFile}.exit`,
    startedAt: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'stale-state.json'), JSON.stringify(state));
  const result = attach(join(dir, 'stale-state.json'));
  assert.equal(result.status, 'gone');
  assert.equal(attach(join(dir, 'no-such-state.json')).status, 'gone');
});

test('the command sees only PATH/HOME/LANG and the variables given, never a secret of the parent environment', { timeout: 60_000 }, async () => {
  process.env.TEMPORAL_API_KEY = 'secret';
  process.env.AWS_SECRET_ACCESS_KEY = 'secret';
  onCleanup(() => {
    delete process.env.TEMPORAL_API_KEY;
    delete process.env.AWS_SECRET_ACCESS_KEY;
  });
  const out = join(dir, 'env.json');
  const { handle } = startNode(`require('node:fs').writeFileSync(process.argv[1], JSON.stringify(process.env));`, [out], { TRAINCTL_DATA_DIR: '/data' });
  assert.deepEqual(await wait(handle, { pollMs: 50 }), { code: 0, signal: null });
  const seen = JSON.parse(readFileSync(out, 'utf8')) as Record<string, string>;
  assert.equal(seen.TEMPORAL_API_KEY, undefined);
  assert.equal(seen.AWS_SECRET_ACCESS_KEY, undefined);
  assert.equal(seen.TRAINCTL_DATA_DIR, '/data');
  assert.equal(seen.PATH, process.env.PATH);
  const allowed = new Set(['PATH', 'HOME', 'LANG', 'TRAINCTL_DATA_DIR']);
  // Node itself may add a few of its own (none of the parent's).
  assert.deepEqual(
    Object.keys(seen).filter((k) => !allowed.has(k) && k in process.env && k !== 'PWD'),
    [],
  );
});

test('arguments with spaces, quotes, ; and $( ) reach the command literally, without a shell', { timeout: 60_000 }, async () => {
  const out = join(dir, 'argv.json');
  const pwned = join(dir, 'pwned');
  const args = ['a b', `"q'`, `; touch ${pwned}`, `$(touch ${pwned})`, '`id`', '*'];
  const { handle } = startNode(`require('node:fs').writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)));`, [out, ...args]);
  assert.deepEqual(await wait(handle, { pollMs: 50 }), { code: 0, signal: null });
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), args);
  assert.equal(existsSync(pwned), false);
});

test('a command that cannot be started ends with code 127 and the reason', { timeout: 60_000 }, async () => {
  const stateFile = join(dir, 'enoent', 'state.json');
  const handle = startTraining({ argv: [join(dir, 'no-such-program')], cwd: dir, stateFile, logFile: join(dir, 'enoent', 'log') });
  const status = await wait(handle, { pollMs: 50 });
  assert.equal(status.code, 127);
  assert.equal(status.error, 'ENOENT');
});

test('tailLog returns the last lines, reading a bounded number of bytes', () => {
  const file = join(dir, 'tail.log');
  writeFileSync(file, Array.from({ length: 10_000 }, (_, i) => `line ${i}`).join('\n') + '\n');
  assert.deepEqual(tailLog(file, 3), ['line 9997', 'line 9998', 'line 9999']);
  const bounded = tailLog(file, 100_000, 100);
  assert.ok(bounded.length < 20 && bounded.at(-1) === 'line 9999' && /^line \d+$/.test(bounded[0] ?? ''));
  assert.deepEqual(tailLog(join(dir, 'missing.log'), 3), []);
});
