import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';
import { repoRoot } from '../src/dev/services.js';

const eslint = new ESLint({ cwd: repoRoot });

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

test('workflow code may not import Node built-ins, the AWS SDK, the activity package or activities by value', async () => {
  const code = [
    "import { readFileSync } from 'node:fs';",
    "import { EC2Client } from '@aws-sdk/client-ec2';",
    "import { Context } from '@temporalio/activity';",
    "import { createActivities } from '../activities/index.js';",
    'export const used = [readFileSync, EC2Client, Context, createActivities];',
  ].join('\n');
  const messages = await ruleIds(code, `${repoRoot}/src/workflows/lint-probe.ts`);
  for (const needle of ["'node:fs'", "'@aws-sdk/client-ec2'", "'@temporalio/activity'", "'../activities/index.js'"]) {
    assert.ok(
      messages.some((m) => m.startsWith('no-restricted-imports') && m.includes(needle)),
      `${needle} is refused: ${messages.join(' | ')}`,
    );
  }
});

test('workflow code may import activity types and may not call Math.random', async () => {
  const code = ["import type { Activities } from '../activities/index.js';", 'export type A = Activities;', 'export const r = Math.random();'].join('\n');
  const messages = await ruleIds(code, `${repoRoot}/src/workflows/lint-probe.ts`);
  assert.ok(!messages.some((m) => m.startsWith('no-restricted-imports')), messages.join(' | '));
  assert.ok(
    messages.some((m) => m.startsWith('no-restricted-properties')),
    messages.join(' | '),
  );
});

test('the same imports are allowed in activity code', async () => {
  const code = [
    "import { readFileSync } from 'node:fs';",
    "import { EC2Client } from '@aws-sdk/client-ec2';",
    'export const used = [readFileSync, EC2Client];',
  ].join('\n');
  assert.deepEqual(await ruleIds(code, `${repoRoot}/src/activities/lint-probe.ts`), []);
});

test('a value import cycle fails lint: kinds.ts importing classify.ts, which imports kinds.ts', async () => {
  const code = ["import { classify } from './classify.js';", 'export const used = classify;'].join('\n');
  const messages = await ruleIds(code, `${repoRoot}/src/errors/kinds.ts`);
  assert.ok(
    messages.some((m) => m.startsWith('import-x/no-cycle')),
    `the cycle is refused: ${messages.join(' | ')}`,
  );
});

test('activities may not import workflows, not even a signal definition; they share it through the contracts', async () => {
  const code = ["import { transfer } from '../workflows/index.js';", 'export const used = transfer;'].join('\n');
  const messages = await ruleIds(code, `${repoRoot}/src/activities/lint-probe.ts`);
  assert.ok(
    messages.some((m) => m.startsWith('no-restricted-imports') && m.includes('../workflows/index.js')),
    messages.join(' | '),
  );
});

test('domain modules import neither activities, workflows, the API nor the CLI', async () => {
  const code = [
    "import { createActivities } from '../activities/index.js';",
    "import { transfer } from '../workflows/index.js';",
    "import { connect } from '../api/index.js';",
    "import { run } from '../cli/main.js';",
    'export const used = [createActivities, transfer, connect, run];',
  ].join('\n');
  const messages = await ruleIds(code, `${repoRoot}/src/transfer/lint-probe.ts`);
  for (const needle of ['../activities/index.js', '../workflows/index.js', '../api/index.js', '../cli/main.js']) {
    assert.ok(
      messages.some((m) => m.startsWith('no-restricted-imports') && m.includes(needle)),
      `${needle} is refused: ${messages.join(' | ')}`,
    );
  }
});

test('contracts import only zod, define* from @temporalio/workflow and other contracts', async () => {
  const code = [
    "import { z } from 'zod';",
    "import { defineQuery } from '@temporalio/workflow';",
    "import { readFileSync } from 'node:fs';",
    "import { loadEnv } from '../config.js';",
    'export const used = [z, defineQuery, readFileSync, loadEnv];',
  ].join('\n');
  const messages = (await ruleIds(code, `${repoRoot}/src/contracts/lint-probe.ts`)).filter((m) => m.startsWith('no-restricted-imports'));
  assert.equal(messages.length, 2, messages.join(' | '));
  assert.ok(messages.some((m) => m.includes('node:fs')) && messages.some((m) => m.includes('../config.js')), messages.join(' | '));
});

test('a module the workflow bundle imports, outside src/workflows, is held to the sandbox rules too', async () => {
  const code = ["import { readFileSync } from 'node:fs';", 'export const used = readFileSync;'].join('\n');
  const messages = await ruleIds(code, `${repoRoot}/src/errors/kinds.ts`);
  assert.ok(
    messages.some((m) => m.startsWith('no-restricted-imports') && m.includes('node:fs')),
    messages.join(' | '),
  );
});

test('the whole tree lints clean: no cycle, no back-arrow, no sandbox breach', async () => {
  const results = await eslint.lintFiles(['src', 'test', 'scripts', 'bench', 'examples']);
  const problems = results.flatMap((r) => r.messages.map((m) => `${r.filePath.slice(repoRoot.length + 1)}:${m.line} ${m.ruleId}: ${m.message}`));
  assert.deepEqual(problems, []);
});
