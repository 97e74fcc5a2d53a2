import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB, checkRelativeKey, destinationKey, destinationPath, globMatches, partCount, planPartSize, selected, tempPathFor } from '../src/transfer/plan.js';
import { compositeChecksum, fileChecksum } from '../src/transfer/checksum.js';
import { TransferInputSchema } from '../src/contracts/transfer.js';
import { parseLocation } from '../src/transfer/location.js';
import { summarize } from '../src/transfer/report.js';

test('part sizes are at least 8 MiB, whole MiB, and never more than 10,000 parts', () => {
  assert.equal(planPartSize(0), 8 * MiB);
  assert.equal(planPartSize(1024 * MiB), 8 * MiB);
  const fiveTiB = 5 * 1024 * 1024 * MiB;
  const p = planPartSize(fiveTiB);
  assert.ok(partCount(fiveTiB, p) <= 10_000);
  assert.equal(p % MiB, 0);
  assert.equal(planPartSize(100 * MiB, 16 * MiB), 16 * MiB);
  assert.throws(() => planPartSize(100 * MiB, 4 * MiB), /between 5 MiB and 5 GiB/);
  assert.throws(() => planPartSize(100_000 * MiB, 5 * MiB), /more than 10000 parts/);
});

test('keys with .., absolute paths, backslashes, NUL or empty segments are refused as InvalidInput', () => {
  for (const bad of ['../../escape.txt', 'a/../../b', '/etc/passwd', 'a\\b', 'a\0b', 'a//b', './a', '', 'C:/x']) {
    assert.throws(
      () => checkRelativeKey(bad),
      (e: Error & { kind?: string }) => e.kind === 'InvalidInput',
      JSON.stringify(bad),
    );
  }
  for (const good of ['a.txt', 'nested/deeper/x.json', 'ünïcødé/日本語 ファイル.txt', '..hidden', 'a..b/c']) checkRelativeKey(good);
});

test('globs: * stays in a folder, ** crosses folders, a glob without / matches names anywhere', () => {
  assert.ok(globMatches('*.log', 'a/b/c.log'));
  assert.ok(!globMatches('logs/*.log', 'logs/x/c.log'));
  assert.ok(globMatches('logs/**/*.log', 'logs/x/y/c.log'));
  assert.ok(globMatches('logs/**/*.log', 'logs/c.log'));
  assert.ok(globMatches('data-?.bin', 'data-1.bin'));
  assert.ok(selected('a.bin', ['*.bin'], []));
  assert.ok(!selected('a.txt', ['*.bin'], []));
  assert.ok(!selected('tmp/a.bin', [], ['tmp/**']));
});

test('a single file lands at the exact key or path, or under it by name when it ends with /', () => {
  assert.equal(destinationKey('p/model.pt', 'm.pt', true), 'p/model.pt');
  assert.equal(destinationKey('p/', 'm.pt', true), 'p/m.pt');
  assert.equal(destinationKey('', 'm.pt', true), 'm.pt');
  assert.equal(destinationKey('p', 'a/b', false), 'p/a/b');
  assert.equal(destinationPath('/d/', 'm.pt', true), '/d/m.pt');
  assert.equal(destinationPath('/d/x.pt', 'm.pt', true), '/d/x.pt');
  assert.equal(tempPathFor('/d/x.pt'), '/d/.x.pt.trainctl-partial');
});

test('the file checksum is the composite of per-part SHA-256 digests, streamed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainctl-ck-'));
  try {
    const data = Buffer.alloc(5 * MiB + 7, 3);
    writeFileSync(join(dir, 'f'), data);
    const { checksum, parts } = await fileChecksum(join(dir, 'f'), 5 * MiB);
    const expected = [data.subarray(0, 5 * MiB), data.subarray(5 * MiB)].map((b) => createHash('sha256').update(b).digest());
    assert.deepEqual(parts, expected);
    assert.equal(checksum, compositeChecksum(expected));
    assert.match(checksum, /-2$/);
    writeFileSync(join(dir, 'empty'), '');
    assert.equal((await fileChecksum(join(dir, 'empty'), 5 * MiB)).checksum, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855-0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('transfer input: unsupported directions and local ↔ host without staging are refused', () => {
  const bad = TransferInputSchema.safeParse({ source: { kind: 'host', hostId: 'h1', path: 'a' }, destination: { kind: 'host', hostId: 'h2', path: 'b' } });
  assert.equal(bad.success, false);
  // S3 → S3 goes (across buckets, prefixes, profiles), but never into itself.
  const s3s3 = (a: string, b: string) => TransferInputSchema.safeParse({ source: { kind: 's3', uri: a }, destination: { kind: 's3', uri: b } });
  assert.equal(s3s3('s3://bkt/a/', 's3://bkt/b/').success, true);
  assert.equal(s3s3('s3://bkt/a/', 's3://lab@bkt/a/').success, true);
  assert.match(JSON.stringify(s3s3('s3://bkt/a/', 's3://bkt/a/sub/').error?.issues), /lies inside the source/);
  assert.match(JSON.stringify(s3s3('s3://bkt/a', 's3://bkt/a/sub/').error?.issues), /lies inside the source/, 'a prefix without / is the folder');
  assert.match(JSON.stringify(s3s3('s3://bkt/', 's3://bkt/x/').error?.issues), /lies inside the source/, 'the whole bucket holds every prefix');
  assert.equal(s3s3('s3://bkt/a.bin', 's3://bkt/a.bin.copy').success, true, 'a sibling name is not inside');
  assert.equal(s3s3('s3://bkt/a/', 's3://bkt2/a/').success, true);
  assert.equal(
    TransferInputSchema.safeParse({ source: { kind: 's3', uri: 's3://no space@bkt/a' }, destination: { kind: 'local', path: '/x' } }).success,
    false,
  );
  const noStaging = TransferInputSchema.safeParse({ source: { kind: 'local', path: '/x' }, destination: { kind: 'host', hostId: 'h1', path: 'd' } });
  assert.equal(noStaging.success, false);
  assert.match(JSON.stringify(noStaging.error?.issues), /staging/);
  assert.equal(TransferInputSchema.safeParse({ source: { kind: 'local', path: '/x' }, destination: { kind: 's3', uri: 's3://bkt/p/' } }).success, true);
});

test('the CLI reads ./dir, s3://… and host:ID:/path locations and says when nothing had to move', () => {
  assert.deepEqual(parseLocation('./data/', '/work'), { kind: 'local', path: '/work/data/' });
  assert.deepEqual(parseLocation('s3://bkt/p'), { kind: 's3', uri: 's3://bkt/p' });
  assert.deepEqual(parseLocation('s3://lab@bkt/p'), { kind: 's3', uri: 's3://lab@bkt/p' });
  assert.deepEqual(parseLocation('host:i-0abc:/mnt/data'), { kind: 'host', hostId: 'i-0abc', path: '/mnt/data' });
  const text = summarize({ files: 3, bytes: 0, seconds: 0.4, MiBps: 0, skipped: 3, verified: 3, dryRun: false, skippedSymlinks: [] });
  assert.match(text, /0 B transferred/);
  assert.match(text, /nothing to transfer/);
});
