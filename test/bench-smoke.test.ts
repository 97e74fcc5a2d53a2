import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../src/dev/services.js';
import { onCleanup } from './helpers/harness.js';

interface SmokeResults {
  scale: number;
  reps: number;
  tools: { name: string; version: string | null; notRun?: string }[];
  figures: { label: string; tool: string; variant: string; unit: string; values: number[]; notRun?: string }[];
}

test('the benchmark harness runs a 4 MiB file up and down with s5cmd and trainctl on versitygw and writes md, json and svg', { timeout: 240_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-out-'));
  const data = mkdtempSync(join(tmpdir(), 'bench-smoke-data-'));
  onCleanup(() => rmSync(out, { recursive: true, force: true }));
  onCleanup(() => rmSync(data, { recursive: true, force: true }));
  const args = [
    '--import',
    'tsx',
    join(repoRoot, 'bench', 'run.ts'),
    '--only',
    'a',
    '--scale',
    '0.002',
    '--reps',
    '1',
    '--tools',
    's5cmd,trainctl',
    '--out',
    out,
    '--data-dir',
    data,
  ];
  // The suite's dev server when npm test started one; otherwise the harness starts its own.
  if (process.env.TRAINCTL_TEST_TEMPORAL_ADDRESS) args.push('--temporal', process.env.TRAINCTL_TEST_TEMPORAL_ADDRESS);
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  onCleanup(() => {
    // The harness stops what it starts; this is for a test that timed out with it still running.
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-6000)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `bench/run.ts failed:\n${stderr}`);

  const results = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as SmokeResults;
  assert.equal(results.scale, 0.002);
  assert.equal(results.reps, 1);
  const toolNames = results.tools.map((t) => t.name).sort();
  assert.deepEqual(toolNames, ['s5cmd', 'trainctl'], 'only the tools the smoke run needs are installed and listed');
  for (const t of results.tools) assert.ok(t.version && !t.notRun, `${t.name} has a version: ${JSON.stringify(t)}`);
  for (const label of ['(a) 1 × 4 MiB upload', '(a) 1 × 4 MiB download']) {
    for (const tool of ['s5cmd', 'trainctl']) {
      for (const variant of ['matched', 'defaults']) {
        const f = results.figures.find((x) => x.label === label && x.tool === tool && x.variant === variant);
        assert.ok(f && !f.notRun, `${tool} (${variant}) has a figure for ${label}`);
        assert.equal(f.unit, 'MiB/s');
        assert.equal(f.values.length, 1);
        assert.ok(f.values[0]! > 0, `${tool} (${variant}) ${label}: ${f.values[0]} MiB/s`);
      }
    }
  }
  const md = readFileSync(join(out, 'latest.md'), 'utf8');
  assert.match(md, /REDUCED SCALE 0\.002/);
  assert.match(md, /### \(a\) 1 × 4 MiB upload/);
  assert.match(md, /\| s5cmd \| v2\.3\.0/);
  assert.match(md, /\(leader\)/);
  const svg = readFileSync(join(out, 'latest.svg'), 'utf8');
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<title>s5cmd \(matched\) \(a\) 1 × 4 MiB upload: median [\d.]+ MiB\/s/);
  assert.match(svg, /<title>trainctl \(defaults\) \(a\) 1 × 4 MiB download: median [\d.]+ MiB\/s/);
});
