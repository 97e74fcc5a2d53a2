import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, toolPath } from '../src/dev/services.js';

/** Where the replay gate (test/replay.test.ts) reads recorded histories from. */
export const historiesDir = join(repoRoot, 'test', 'fixtures', 'histories');

/**
 * Saves a workflow's history into test/fixtures/histories/FILE as the Temporal CLI prints it (the
 * JSON the Web UI downloads and `Worker.runReplayHistory` reads); `runId` picks one run of the id.
 */
export function saveHistory(address: string, file: string, workflowId: string, runId?: string): void {
  const json = execFileSync(
    toolPath('temporal'),
    ['workflow', 'show', '--address', address, '-w', workflowId, ...(runId ? ['-r', runId] : []), '--output', 'json'],
    { encoding: 'utf8' },
  );
  mkdirSync(historiesDir, { recursive: true });
  writeFileSync(join(historiesDir, file), json.trim() + '\n');
  console.log(`recorded ${file} (${(JSON.parse(json) as { events: unknown[] }).events.length} events)`);
}
