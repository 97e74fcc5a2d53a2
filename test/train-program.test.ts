import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../src/dev/services.js';
import { onCleanup } from './helpers/harness.js';

const TRAIN = join(repoRoot, 'examples', 'train', 'train.py');
let dir: string;

interface Run {
  code: number | null;
  stdout: string;
}

/** Runs train.py; `until` (if given) is awaited once stdout matches it, then SIGTERM is sent. */
function runTrain(args: string[], env: Record<string, string>, stopWhen?: RegExp): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [TRAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    onCleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let signalled = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stopWhen && !signalled && stopWhen.test(stdout)) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout }));
  });
}

function envFor(name: string): Record<string, string> {
  return {
    TRAINCTL_DATA_DIR: join(dir, 'data'),
    TRAINCTL_CHECKPOINT_DIR: join(dir, name, 'ckpt'),
    TRAINCTL_OUTPUT_DIR: join(dir, name, 'out'),
  };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trainctl-train-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'data', 'shard-1'), { recursive: true });
  for (let i = 0; i < 5; i++) {
    const bytes = Buffer.alloc(4096 + i * 777);
    for (let j = 0; j < bytes.length; j++) bytes[j] = (j * 31 + i * 7) & 0xff;
    writeFileSync(join(dir, 'data', i % 2 ? 'shard-1' : '.', `part-${i}.bin`), bytes);
  }
});

test(
  'a run stopped by SIGTERM checkpoints the step it was at, and resuming from it ends in the same state as a straight run',
  { timeout: 120_000 },
  async () => {
    const args = ['--steps', '60', '--checkpoint-every', '10'];
    const straight = await runTrain(args, envFor('straight'));
    assert.equal(straight.code, 0, straight.stdout);
    const expected = JSON.parse(readFileSync(join(dir, 'straight', 'out', 'model.json'), 'utf8')) as { steps: number; state: string };
    assert.equal(expected.steps, 60);

    const env = envFor('stopped');
    const first = await runTrain([...args, '--step-seconds', '0.05'], env, /step 25\/60/);
    assert.equal(first.code, 0, first.stdout);
    const at = Number(/received SIGTERM at step (\d+)/.exec(first.stdout)?.[1]);
    assert.ok(at >= 25 && at < 60, `stopped at step ${at}:\n${first.stdout}`);
    const ckpt = JSON.parse(readFileSync(join(env.TRAINCTL_CHECKPOINT_DIR!, `ckpt-${String(at).padStart(8, '0')}.json`), 'utf8')) as { step: number };
    assert.equal(ckpt.step, at);
    assert.equal(existsSync(join(env.TRAINCTL_OUTPUT_DIR!, 'model.json')), false, 'a stopped run writes no model');

    const resumed = await runTrain(args, { ...env, TRAINCTL_RESUME_FROM: env.TRAINCTL_CHECKPOINT_DIR! });
    assert.equal(resumed.code, 0, resumed.stdout);
    assert.match(resumed.stdout, new RegExp(`resumed from .* at step ${at}\\b`));
    assert.doesNotMatch(resumed.stdout, new RegExp(`^step ${at}/`, 'm'), 'the checkpointed step is not run twice');
    const model = JSON.parse(readFileSync(join(env.TRAINCTL_OUTPUT_DIR!, 'model.json'), 'utf8')) as unknown;
    assert.deepEqual(model, expected);
  },
);

test('--fail-at STEP exits with code 7 at that step', { timeout: 60_000 }, async () => {
  const run = await runTrain(['--steps', '30', '--checkpoint-every', '10', '--fail-at', '15'], envFor('fail'));
  assert.equal(run.code, 7, run.stdout);
  assert.match(run.stdout, /step 14\/30/);
  assert.doesNotMatch(run.stdout, /step 15\/30/);
});

test('a missing dataset folder exits with code 3 and bad arguments with code 2', { timeout: 60_000 }, async () => {
  const missing = await runTrain(['--steps', '5'], { ...envFor('missing'), TRAINCTL_DATA_DIR: join(dir, 'no-such-folder') });
  assert.equal(missing.code, 3, missing.stdout);
  const bad = await runTrain(['--steps', '0'], envFor('bad'));
  assert.equal(bad.code, 2, bad.stdout);
});
