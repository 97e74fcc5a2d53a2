import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Connection } from '@temporalio/client';
import { ZodError } from 'zod';
import { runCli, cliEnv } from './helpers/cli.js';
import { testServices, uniqueName } from './helpers/harness.js';
import * as costApi from '../src/api/cost.js';

// Inputs the reliability fuzzer (reliability/fuzz.ts) found refused unclearly, or after a side effect.
// Nothing listens on this address: a command that reached for the server would fail, not exit 2.
const OFFLINE = { TEMPORAL_ADDRESS: '127.0.0.1:1', AWS_REGION: 'us-east-1', TRAINCTL_AWS: 'emulator' };

const CASES: { args: string[]; names: RegExp }[] = [
  { args: ['cleanup', 'plan', '--tag', 'team=a', '--bogus'], names: /Unknown option '--bogus'/ },
  { args: ['transfer', '--concurrency', '-5', 's3://bucket/data/', '/tmp/x/'], names: /'--concurrency'/ },
  { args: ['transfer', '--exclude', '', 's3://bucket/data/', '/tmp/x/'], names: /--exclude: / },
  { args: ['volume', 'cancel', '--name', 'v1', '--region', 'nowhere'], names: /--region.*: must be an AWS region/ },
  { args: ['cost', 'budget', 'set', '--project', 'p1'], names: /--limit-usd: / },
  { args: ['cost', 'reconcile', 'now', '--project', 'p1', '--regions', 'nowhere'], names: /--regions: must be an AWS region/ },
  { args: ['cost', 'reconcile', 'schedule', '--project', 'p1', '--every', 'null'], names: /--every: must be an interval/ },
  { args: ['cost', 'false', '--project', 'p1'], names: /unknown cost command "false"/ },
  { args: ['run', 'status', 'J!BZUF'], names: /run status: NAME "J!BZUF" may contain letters/ },
  { args: ['cleanup', 'apply', '--tag', 'team=a'], names: /cleanup apply needs --yes when not run on a terminal.*nothing was started/ },
];

test('malformed command lines exit 2 with a message naming the flag or word, before contacting the server', { timeout: 180_000 }, async () => {
  const results = await Promise.all(CASES.map((c) => runCli(c.args, OFFLINE)));
  for (const [i, r] of results.entries()) {
    const c = CASES[i]!;
    const what = `trainctl ${c.args.join(' ')}`;
    assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr.split(/\n\s*\n/)[0] ?? '', c.names, `${what}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at |\(Unknown\)|Failed to start Workflow/, `${what}: no stack trace, no opaque kind`);
  }
});

test('approving or rejecting a cleanup run that does not exist fails as NotFound, not Unknown', { timeout: 120_000 }, async () => {
  const { env } = await testServices();
  const r = await runCli(['cleanup', 'reject', '--workflow-id', uniqueName('cleanup/none')], cliEnv(env, uniqueName('q')));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cleanup reject failed \(NotFound\): workflow not found/);
});

test('the API refuses a cost tracker option the workflow would refuse, naming it, before contacting the server', { timeout: 30_000 }, async () => {
  const connection = Connection.lazy({ address: '127.0.0.1:1' });
  const client = new Client({ connection });
  try {
    await assert.rejects(
      costApi.startTracker(client, 'p1', { taskQueue: 'q', keepRejected: 0 }),
      (err: unknown) => err instanceof ZodError && err.issues.some((i) => i.path.join('.') === 'keepRejected'),
    );
    await assert.rejects(
      costApi.startTracker(client, '', { taskQueue: 'q' }),
      (err: unknown) => err instanceof ZodError && err.issues.some((i) => i.path.join('.') === 'project'),
    );
  } finally {
    await connection.close();
  }
});
