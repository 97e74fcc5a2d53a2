import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { repoRoot, toolsDir, startMoto, startTemporalDevServer, stopAll } from '../src/dev/services.js';
import { workflowsPath } from '../src/worker.js';
import { ensureVersitygw } from '../src/dev/versitygw.js';

/**
 * `npm test`: starts one Temporal dev server and one moto for the whole suite, bundles the workflow
 * code once, runs every test file with node's test runner (each in its own process), and stops the
 * servers whatever the outcome. Arguments name test files to run instead of all.
 */
function findTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' || e.name === 'helpers' ? [] : findTests(p);
    return e.name.endsWith('.test.ts') ? [relative(repoRoot, p)] : [];
  });
}

/** Per test: generous for a loaded 2-core machine, far below the whole run's limit. */
const PER_TEST_TIMEOUT_MS = 5 * 60_000;
const RUN_TIMEOUT_MS = 40 * 60_000;

async function main(): Promise<number> {
  const started = Date.now();
  const files = process.argv.slice(2).length ? process.argv.slice(2) : findTests(join(repoRoot, 'test')).sort();
  // The benchmark smoke test serves S3 from versitygw: build it (first run only, a few minutes)
  // before the suite starts rather than inside a test's timeout.
  try {
    ensureVersitygw((m) => console.error(m));
  } catch (err) {
    console.error(`[npm test] ${err instanceof Error ? err.message : String(err)}; the benchmark smoke test will fail`);
  }
  const [temporal, moto, bundle] = await Promise.all([
    startTemporalDevServer({}),
    startMoto(),
    bundleWorkflowCode({ workflowsPath, logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } }),
  ]);
  const bundleDir = join(toolsDir, 'cache');
  mkdirSync(bundleDir, { recursive: true });
  const bundlePath = join(bundleDir, `workflow-bundle-${process.pid}.js`);
  writeFileSync(bundlePath, bundle.code);
  console.error(`[npm test] Temporal ${temporal.address} (UI ${temporal.uiUrl}), moto ${moto.endpoint}, ${files.length} test files`);

  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_SESSION_TOKEN']) delete env[k];
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${process.env.TRAINCTL_TEST_CONCURRENCY ?? '3'}`,
      // One hung test fails itself after this long instead of stalling the whole run.
      `--test-timeout=${PER_TEST_TIMEOUT_MS}`,
      ...files,
    ],
    {
      cwd: repoRoot,
      stdio: 'inherit',
      env: {
        ...env,
        TRAINCTL_TEST_TEMPORAL_ADDRESS: temporal.address,
        TRAINCTL_TEST_TEMPORAL_UI: temporal.uiUrl ?? '',
        TRAINCTL_TEST_AWS_ENDPOINT: moto.endpoint,
        TRAINCTL_TEST_BUNDLE: bundlePath,
        // Tests must never reach a real account, whatever the calling shell exports.
        TRAINCTL_AWS: 'emulator',
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_REGION: 'us-east-1',
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: 'default',
      },
    },
  );
  // The whole run stays well inside CI's 90 minutes even if a test process hangs outside any test.
  const deadline = setTimeout(() => {
    console.error(`[npm test] the suite ran past ${RUN_TIMEOUT_MS / 60_000} minutes; stopping it`);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  }, RUN_TIMEOUT_MS);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  clearTimeout(deadline);
  console.error(`[npm test] finished in ${((Date.now() - started) / 1000).toFixed(1)} s; stopping the dev server and moto`);
  return code;
}

main()
  .then(
    (code) => code,
    (err: unknown) => {
      console.error('[npm test] could not run the suite:', err instanceof Error ? err.message : err);
      return 1;
    },
  )
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  });
