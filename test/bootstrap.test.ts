import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../src/dev/services.js';

test('without a usable Python the first run stops with one clear message saying what to install', () => {
  const tools = mkdtempSync(join(tmpdir(), 'trainctl-tools-'));
  const bin = mkdtempSync(join(tmpdir(), 'trainctl-bin-'));
  try {
    // A PATH with node and npm but no python: what a machine without Python looks like.
    mkdirSync(join(bin, 'b'));
    symlinkSync(process.execPath, join(bin, 'b', 'node'));
    const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'bootstrap.mjs'), 'test'], {
      cwd: repoRoot,
      env: { PATH: join(bin, 'b'), HOME: process.env.HOME, TRAINCTL_TOOLS_DIR: tools, TRAINCTL_PYTHON: '/nonexistent/python3' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Python 3\.9\+ with the venv module is needed/);
    assert.match(r.stderr, /apt-get install python3 python3-venv python3-pip/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    rmSync(tools, { recursive: true, force: true });
    rmSync(bin, { recursive: true, force: true });
  }
});
