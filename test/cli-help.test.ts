import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { onCleanup } from './helpers/harness.js';

/** Every help screen, and the commands that need nothing but the machine they run on. */
const OFFLINE: { args: string[]; expect: RegExp }[] = [
  { args: ['--help'], expect: /^trainctl — durable orchestration/m },
  { args: ['volume', '--help'], expect: /usage: trainctl volume create/ },
  { args: ['volume', 'create', '--help'], expect: /usage: trainctl volume create/ },
  { args: ['transfer', '--help'], expect: /usage: trainctl transfer SRC DST/ },
  { args: ['cost', '--help'], expect: /usage: trainctl cost show/ },
  { args: ['cost', 'budget', 'set', '--help'], expect: /usage: trainctl cost show/ },
  { args: ['cleanup', '--help'], expect: /usage: trainctl cleanup plan/ },
  { args: ['cleanup', 'apply', '--help'], expect: /usage: trainctl cleanup plan/ },
  { args: ['data', '--help'], expect: /usage: trainctl data recommend/ },
  { args: ['data', 'recommend', '--help'], expect: /usage: trainctl data recommend/ },
  { args: ['data', 'loader', '--help'], expect: /usage: trainctl data recommend/ },
  { args: ['run', '--help'], expect: /usage: trainctl run start -f RUN\.yaml/ },
  { args: ['run', 'start', '--help'], expect: /exit codes: 0 done/ },
  { args: ['data', 'recommend', '--dataset-gib', '500', '--files', '1000000', '--instance-type', 'p4d.24xlarge'], expect: /^\* DirectS3 /m },
];

test('with no environment at all, every --help and the offline data commands succeed', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainctl-help-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const loader = join(dir, 'train_data.py');
  OFFLINE.push({ args: ['data', 'loader', '--strategy', 'LocalCache', '--path', '/data', '--out', loader], expect: /wrote .*train_data\.py/ });
  // Only PATH and HOME: no TEMPORAL_*, no AWS_* — as on a laptop that has never seen trainctl.
  const results = await Promise.all(OFFLINE.map((c) => runCli(c.args, {})));
  results.forEach((r, i) => {
    const c = OFFLINE[i]!;
    assert.equal(r.code, 0, `trainctl ${c.args.join(' ')} exits 0:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, c.expect, `trainctl ${c.args.join(' ')}`);
    assert.doesNotMatch(r.stderr, /invalid environment|AWS_ENDPOINT_URL/, `trainctl ${c.args.join(' ')} asks for no AWS settings`);
  });
  assert.match(readFileSync(loader, 'utf8'), /def make_loader/, 'the loader module was written');
});
