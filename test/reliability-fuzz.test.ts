import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup, testServices, type TestServices } from './helpers/harness.js';
import { runFuzz } from '../reliability/fuzz.js';
import { runFullDisk } from '../reliability/full-disk.js';
import { TARGETS } from '../reliability/fuzz-inputs.js';
import type { RunOutcome, ScenarioContext } from '../reliability/types.js';

let services: TestServices;

before(async () => {
  services = await testServices();
});

function context(name: string, runs: number, log: (m: string) => void): ScenarioContext {
  const workDir = mkdtempSync(join(tmpdir(), `trainctl-${name}-`));
  onCleanup(() => rmSync(workDir, { recursive: true, force: true }));
  return { runs, seed: 20261130, temporalAddress: services.env.TEMPORAL_ADDRESS, awsEndpoint: services.env.AWS_ENDPOINT_URL ?? '', workDir, log };
}

/** Every outcome reached its result or the documented end, and nothing was duplicated, left behind, corrupted or wrongly deleted. */
function assertClean(outcomes: RunOutcome[]): void {
  const bad = outcomes.filter((o) => o.ended === 'unexpected' || o.duplicates || o.leaked || o.corruptBytes || o.wrongDeletions);
  assert.deepEqual(
    bad.map((o) => `${o.family} #${o.run}: ${o.ended} ${o.detail}`),
    [],
    'every run completed or ended as documented, with no duplicates, leaks, corruption or wrong deletions',
  );
}

test('fuzzed input to every workflow, API start and CLI command is accepted or refused clearly before any side effect', { timeout: 180_000 }, async (t) => {
  const runs = 2;
  const outcomes = await runFuzz(context('fuzz', runs, (m) => t.diagnostic(m)));
  const families = new Set(outcomes.map((o) => o.family));
  for (const target of TARGETS) {
    assert.ok(families.has(target.workflowType), `raw starts of ${target.workflowType} were fuzzed`);
    assert.ok(families.has(`api:${target.workflowType}`), `the API start of ${target.workflowType} was fuzzed`);
  }
  const cli = [...families].filter((f) => f.startsWith('cli:'));
  assert.equal(cli.length, 24, `every CLI command was fuzzed: ${cli.join(', ')}`);
  assert.equal(outcomes.length, runs * (TARGETS.length * 2 + cli.length), 'one outcome per case');
  assert.ok(
    outcomes.filter((o) => o.family === 'provisionVolume').every((o) => o.ended === 'documented' && o.detail.startsWith('InvalidInput')),
    'a raw start with a refused input fails as InvalidInput',
  );
  assertClean(outcomes);
  t.diagnostic(`fuzz: ${outcomes.length} cases, ${outcomes.filter((o) => o.ended === 'completed').length} accepted`);
});

test(
  'a transfer onto a full disk fails as QuotaExceeded naming ENOSPC, leaves the earlier file and no temp file, and completes byte-identical once there is room',
  { timeout: 180_000 },
  async (t) => {
    const outcomes = await runFullDisk(context('full-disk', 2, (m) => t.diagnostic(m)));
    assert.deepEqual(
      outcomes.map((o) => o.family),
      ['transfer:s3→host', 'transfer:s3→local'],
      'one run to a host worker, one to the local root',
    );
    for (const o of outcomes) assert.match(o.detail, /^QuotaExceeded: .*ENOSPC/, `${o.family}: ${o.detail}`);
    assertClean(outcomes);
  },
);
