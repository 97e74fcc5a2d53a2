import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZodError } from 'zod';
import { repoRoot } from '../src/dev/services.js';
import { RunFileError, readRunFile, validateRun } from '../src/run/run-file.js';
import { runCli } from './helpers/cli.js';
import { onCleanup } from './helpers/harness.js';

const example = readFileSync(join(repoRoot, 'examples', 'run.yaml'), 'utf8');

/** The field paths a bad run file is refused for. */
function refusedFields(overrides: string[], text = example): string[] {
  try {
    validateRun(readRunFile(text, overrides));
  } catch (err) {
    if (err instanceof ZodError)
      return err.issues.map((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : [i.path.join('.')])).flat();
    if (err instanceof RunFileError) return [`file: ${err.message}`];
    throw err;
  }
  return [];
}

test('the example run file is valid as shipped', () => {
  assert.deepEqual(refusedFields([]), []);
  const input = validateRun(readRunFile(example));
  assert.deepEqual(input.training.command.slice(0, 2), ['python3', 'train.py']);
  assert.equal(input.teardown.volume, 'delete');
});

const BAD: { title: string; set: string[]; field: string; message?: RegExp }[] = [
  { title: 'an unknown top-level field', set: ['bogus=1'], field: 'bogus' },
  { title: 'an unknown nested field', set: ['training.epoch=3'], field: 'training.epoch' },
  { title: 'a negative volume size', set: ['volume.sizeGiB=-5'], field: 'volume.sizeGiB' },
  { title: 'a zero checkpoint interval', set: ['training.checkpointEverySeconds=0'], field: 'training.checkpointEverySeconds' },
  { title: 'an availability zone outside the region', set: ['availabilityZone=us-west-2a'], field: 'availabilityZone', message: /not in region us-east-1/ },
  { title: 'a command given as one shell string', set: ['training.command=python3 train.py --epochs 3'], field: 'training.command', message: /argv array/ },
  { title: 'an empty command', set: ['training.command=[]'], field: 'training.command' },
  {
    title: 'a secret-looking variable name',
    set: ['training.env.AWS_SECRET_ACCESS_KEY=abc'],
    field: 'training.env.AWS_SECRET_ACCESS_KEY',
    message: /looks like a secret/,
  },
  {
    title: 'a secret-looking value (an AWS access key id)',
    set: ['training.env.DATA_KEY_ID=AKIAABCDEFGHIJKLMNOP'],
    field: 'training.env.DATA_KEY_ID',
    message: /looks like a secret/,
  },
  {
    title: 'a GitHub token as a value',
    set: ['training.env.REPO=ghp_abcdefghijklmnopqrstuvwxyz0123456789'],
    field: 'training.env.REPO',
    message: /looks like a secret/,
  },
  { title: 'a variable trainctl sets itself', set: ['training.env.TRAINCTL_DATA_DIR=/x'], field: 'training.env.TRAINCTL_DATA_DIR' },
  { title: 'a workdir that climbs out of the root', set: ['training.workdir=../etc'], field: 'training.workdir' },
  { title: 'a checkpoint URI without a trailing slash', set: ['training.checkpointUri=s3://b/ckpt'], field: 'training.checkpointUri' },
  { title: 'an instance type that is not one', set: ['instance.type=huge'], field: 'instance.type' },
  { title: 'a teardown policy that does not exist', set: ['teardown.volume=shred'], field: 'teardown.volume' },
];

for (const c of BAD) {
  test(`a run file with ${c.title} is refused naming ${c.field}`, () => {
    let err: unknown;
    try {
      validateRun(readRunFile(example, c.set));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ZodError, `refused: ${String(err)}`);
    const fields = refusedFields(c.set);
    assert.ok(
      fields.some((f) => f === c.field || f.startsWith(`${c.field}.`)),
      `named ${c.field}: ${fields.join(', ')}`,
    );
    if (c.message)
      assert.ok(
        err.issues.some((i) => c.message!.test(i.message)),
        err.issues.map((i) => i.message).join(' | '),
      );
  });
}

test('text that is not YAML, or not a mapping, is refused as a file error', () => {
  assert.match(refusedFields([], 'name: [unclosed')[0] ?? '', /^file: the run file is not valid YAML/);
  assert.match(refusedFields([], '- a\n- b\n')[0] ?? '', /^file: the run file must be a mapping/);
  assert.throws(() => readRunFile(example, ['__proto__.x=1']), RunFileError);
});

test('run start refuses each bad file with exit 2 naming the field, before contacting Temporal or AWS', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainctl-runfile-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const cases: [string, string[], string][] = [
    ['unknown field', ['bogus=1'], 'bogus'],
    ['negative size', ['volume.sizeGiB=-5'], 'volume.sizeGiB'],
    ['AZ outside region', ['availabilityZone=eu-west-1a'], 'availabilityZone'],
    ['shell string', ['training.command=python3 train.py'], 'training.command'],
    ['secret env', ['training.env.API_TOKEN=x'], 'training.env.API_TOKEN'],
  ];
  const file = join(dir, 'run.yaml');
  writeFileSync(file, example);
  // Temporal and AWS point at a closed port: a start that got past validation would fail differently.
  const env = { TEMPORAL_ADDRESS: '127.0.0.1:1', AWS_ENDPOINT_URL: 'http://127.0.0.1:1' };
  const results = await Promise.all(cases.map(([, set]) => runCli(['run', 'start', '-f', file, ...set.flatMap((s) => ['--set', s])], env)));
  results.forEach((r, i) => {
    const [what, , field] = cases[i]!;
    assert.equal(r.code, 2, `${what}: exit 2 (${r.stderr})`);
    assert.match(r.stderr, new RegExp(`invalid run start; nothing was done:\\n  ${field.replace(/\./g, '\\.')}: `), `${what}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /cannot reach Temporal|\n\s+at /, `${what}: refused before any connection, no stack`);
  });
});
