import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../src/dev/services.js';

function run(bin: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'node_modules', bin), ...args], { cwd: repoRoot, encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

test('the whole tree type-checks under strict tsc', () => {
  const r = run('typescript/bin/tsc', ['--noEmit', '-p', 'tsconfig.json']);
  assert.equal(r.code, 0, r.output);
});

test('eslint, including the workflow sandbox rules, reports nothing', () => {
  const r = run('eslint/bin/eslint.js', ['.', '--max-warnings=0']);
  assert.equal(r.code, 0, r.output);
});
