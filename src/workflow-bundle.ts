/**
 * The orchestration worker's workflow bundle, built by a short-lived child process. Bundling runs
 * webpack, whose memory at its peak (a few hundred MiB) would otherwise stay in the worker's heap
 * for its whole life; built in a child, it goes back to the system when the child exits. The code
 * is the same `bundleWorkflowCode({ workflowsPath })` the Worker would run itself (the tests'
 * prebuilt bundles are made the same way).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv } from './child-env.js';

/** Builds the bundle of `workflowsPath` in a child of this Node (same loader flags), from `packageRoot`. */
export async function bundleInChild(workflowsPath: string, packageRoot: string): Promise<{ code: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'trainctl-bundle-'));
  const out = join(dir, 'workflows.js');
  const script = [
    "import { bundleWorkflowCode } from '@temporalio/worker';",
    "import { writeFileSync } from 'node:fs';",
    `const { code } = await bundleWorkflowCode({ workflowsPath: ${JSON.stringify(workflowsPath)} });`,
    `writeFileSync(${JSON.stringify(out)}, code);`,
  ].join('\n');
  try {
    // The child needs no credential: only the allowlisted variables cross (see child-env.ts).
    const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], {
      cwd: packageRoot,
      env: childEnv(process.env),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`building the workflow bundle failed (exit ${code}): ${stderr.trim()}`);
    return { code: await readFile(out, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
