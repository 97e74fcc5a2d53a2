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
    assert.ok(messages.some((m) => m.startsWith('no-restricted-imports') && m.includes(needle)), `${needle} is refused: ${messages.join(' | ')}`);
  }
});

test('workflow code may import activity types and may not call Math.random', async () => {
  const code = ["import type { Activities } from '../activities/index.js';", 'export type A = Activities;', 'export const r = Math.random();'].join('\n');
  const messages = await ruleIds(code, `${repoRoot}/src/workflows/lint-probe.ts`);
  assert.ok(!messages.some((m) => m.startsWith('no-restricted-imports')), messages.join(' | '));
  assert.ok(messages.some((m) => m.startsWith('no-restricted-properties')), messages.join(' | '));
});

test('the same imports are allowed in activity code', async () => {
  const code = ["import { readFileSync } from 'node:fs';", "import { EC2Client } from '@aws-sdk/client-ec2';", 'export const used = [readFileSync, EC2Client];'].join('\n');
  assert.deepEqual(await ruleIds(code, `${repoRoot}/src/activities/lint-probe.ts`), []);
});
