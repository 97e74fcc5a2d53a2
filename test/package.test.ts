import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../src/dev/services.js';
import { testServices } from './helpers/harness.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (never throws on a non-zero exit), as a user types it in `cwd`. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 5 * 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: err && !stderr ? String(err) : stderr });
    });
  });
}

/**
 * Starts the installed `trainctl-worker`, waits for it to poll (it has bundled the compiled
 * workflows by then), stops it with SIGTERM, and returns its output and exit code.
 */
function workerPollsAndStops(bin: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let stopping = false;
    const killer = setTimeout(() => child.kill('SIGKILL'), 3 * 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!stopping && /trainctl worker polling /.test(stderr)) {
        stopping = true;
        child.kill('SIGTERM');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

const show = (r: Run) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

const CLIENT_SCRIPT = `
import { connect } from 'trainctl';
const client = await connect();
try {
  const info = await client.workflowService.getSystemInfo({});
  const ns = await client.workflowService.describeNamespace({ namespace: client.options.namespace });
  const { count } = await client.workflow.count();
  console.log(JSON.stringify({
    resolved: import.meta.resolve('trainctl'),
    serverVersion: info.serverVersion,
    namespace: ns.namespaceInfo?.name,
    count: Number(count),
  }));
} finally {
  await client.connection.close();
}
`;

// Type-checked against the package's declarations: a wrong call must be an error, so they are real.
const TYPED_SCRIPT = `
import { connect } from 'trainctl';
import type { Client } from '@temporalio/client';
const client: Client = await connect({ TEMPORAL_ADDRESS: 'localhost:7233' });
// @ts-expect-error connect takes the environment as a record of strings
await connect(42);
await client.connection.close();
`;

test(
  'npm pack gives a tarball that installs into an empty project, whose trainctl --help and trainctl-worker run compiled JS, and whose API reaches the dev server',
  { timeout: 12 * 60_000 },
  async () => {
    const { env: services } = await testServices();
    const dir = mkdtempSync(join(tmpdir(), 'trainctl-package-'));
    try {
      // `npm pack` builds dist/ first (the prepack script).
      const pack = await run('npm', ['pack', '--json', '--pack-destination', dir], repoRoot);
      assert.equal(pack.code, 0, show(pack));
      const packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
      const files = packed[0]!.files.map((f) => f.path);
      assert.ok(files.includes('dist/client.js') && files.includes('dist/client.d.ts') && files.includes('dist/cli/main.js'), files.join('\n'));
      assert.ok(files.includes('bin/trainctl.mjs'));
      assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'no TypeScript sources or tests in the package');

      const app = join(dir, 'app');
      mkdirSync(app);
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'trainctl-user', private: true, type: 'module' }));
      const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed[0]!.filename)], app);
      assert.equal(install.code, 0, show(install));
      assert.equal(existsSync(join(app, 'node_modules', 'tsx')), false, 'tsx is not installed with the package');
      assert.equal(existsSync(join(app, 'node_modules', 'typescript')), false, 'typescript is not installed with the package');

      // No environment at all: --help needs none.
      const help = await run('npx', ['--no', '--', 'trainctl', '--help'], app, { PATH: process.env.PATH, HOME: process.env.HOME });
      assert.equal(help.code, 0, show(help));
      assert.match(help.stdout, /^usage: trainctl <command> \[options\]$/m);

      writeFileSync(join(app, 'check.mjs'), CLIENT_SCRIPT);
      const apiEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: services.TEMPORAL_ADDRESS,
        TEMPORAL_NAMESPACE: services.TEMPORAL_NAMESPACE,
        AWS_ENDPOINT_URL: services.AWS_ENDPOINT_URL ?? '',
        AWS_REGION: services.AWS_REGION,
      };
      const api = await run(process.execPath, ['check.mjs'], app, apiEnv, 60_000);
      assert.equal(api.code, 0, show(api));
      const result = JSON.parse(api.stdout) as { resolved: string; serverVersion: string; namespace: string; count: number };
      assert.match(result.resolved, /\/node_modules\/trainctl\/dist\/client\.js$/);
      assert.match(result.serverVersion, /^\d+\.\d+/);
      assert.equal(result.namespace, services.TEMPORAL_NAMESPACE);
      assert.ok(Number.isInteger(result.count) && result.count >= 0, api.stdout);

      const queue = `package-test-${randomUUID()}`;
      const worker = await workerPollsAndStops(join(app, 'node_modules', '.bin', 'trainctl-worker'), app, { ...apiEnv, TRAINCTL_TASK_QUEUE: queue });
      assert.match(worker.stderr, new RegExp(`trainctl worker polling ${queue} \\(local roots: [^)]+\\) on ${services.TEMPORAL_ADDRESS}`), show(worker));
      assert.equal(worker.code, 0, `the worker stops cleanly on SIGTERM:\n${show(worker)}`);

      writeFileSync(join(app, 'typed.ts'), TYPED_SCRIPT);
      const tsconfig = {
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, skipLibCheck: true, noEmit: true, types: [] },
        files: ['typed.ts'],
      };
      writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig));
      const tsc = await run(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app);
      assert.equal(tsc.code, 0, `the package's types resolve and check:\n${show(tsc)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
