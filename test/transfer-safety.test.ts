import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { uniqueName } from './helpers/harness.js';
import { failureOf, tempDir, writeTree, transferSuite, type TransferSuite } from './helpers/transfer.js';
import type { TransferRequest } from '../src/contracts/transfer.js';
import { deleteRefusal } from '../src/transfer/delete-guard.js';
import { deleteFilesUnder } from '../src/transfer/prune.js';
import { downloadVerified, objectMeta } from '../src/transfer/download.js';
import { globMatches, MiB } from '../src/transfer/plan.js';
import { TrainctlError } from '../src/errors/kinds.js';
import { uploadFile } from '../src/transfer/upload.js';
import { deleteObjectsUnder } from '../src/transfer/s3-maintenance.js';

let suite: TransferSuite;
let s3: S3Client;
let bucket: string;

before(async () => {
  suite = await transferSuite('txsafe');
  ({ s3, bucket } = suite);
});

async function keysUnder(prefix: string): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key ?? '').sort();
}

async function put(key: string, body: string | Buffer, metadata?: Record<string, string>): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(metadata ? { Metadata: metadata } : {}) }));
}

const guard6Cases: {
  name: string;
  src: Record<string, string>;
  dst: string[];
  include?: string[];
  maxDelete?: number;
  refused: RegExp | false;
  left: number;
}[] = [
  { name: 'an empty source folder', src: {}, dst: ['a', 'b', 'c'], refused: /source is empty/, left: 3 },
  { name: 'a filter that matches nothing', src: { 'a.txt': 'a' }, dst: ['a.txt', 'b.txt'], include: ['*.parquet'], refused: /source is empty/, left: 2 },
  { name: 'more than half the destination', src: { 'a.txt': 'a' }, dst: ['a.txt', 'b.txt', 'c.txt', 'd.txt'], refused: /more than half/, left: 4 },
  { name: 'more than --max-delete', src: { 'a.txt': 'a' }, dst: ['a.txt', 'b.txt', 'c.txt'], maxDelete: 1, refused: /exceed --max-delete 1/, left: 3 },
  { name: 'within --max-delete', src: { 'a.txt': 'a' }, dst: ['a.txt', 'b.txt', 'c.txt', 'd.txt'], maxDelete: 3, refused: false, left: 1 },
  { name: 'half the destination exactly', src: { 'a.txt': 'a', 'b.txt': 'b' }, dst: ['a.txt', 'b.txt', 'c.txt', 'd.txt'], refused: false, left: 2 },
];

for (const c of guard6Cases) {
  test(`guard 6: sync --delete with ${c.name} ${c.refused ? 'is refused (InvalidInput) and deletes nothing' : 'deletes and reports how many entries it considered'}`, async () => {
    const src = tempDir('safe-src');
    writeTree(src, c.src);
    const p = `g6-${uniqueName('p')}/`;
    for (const k of c.dst) await put(`${p}${k}`, 'old');
    const request: TransferRequest = {
      source: { kind: 'local', path: src },
      destination: { kind: 's3', uri: `s3://${bucket}/${p}` },
      deleteExtraneous: true,
      ...(c.include ? { include: c.include } : {}),
      ...(c.maxDelete !== undefined ? { maxDelete: c.maxDelete } : {}),
    };
    if (c.refused) {
      for (const dryRun of [true, false]) {
        const failure = await failureOf(suite.run({ ...request, dryRun }));
        assert.equal(failure.type, 'InvalidInput');
        assert.match(failure.message, c.refused);
        assert.match(failure.message, /nothing was deleted/);
      }
    } else {
      const report = await suite.run(request);
      assert.equal(report.deleted?.considered, c.dst.length, 'the report says how many destination entries were considered');
    }
    assert.equal((await keysUnder(p)).length, c.left);
  });
}

test('guard 6: the default limit is 1,000 deletions and half the destination, whatever the spelling of the numbers', () => {
  const table: [Parameters<typeof deleteRefusal>[0], boolean][] = [
    [{ sourceFiles: 0, deletions: 0, considered: 0 }, true],
    [{ sourceFiles: 0, deletions: 5, considered: 5, maxDelete: 1_000_000 }, true],
    [{ sourceFiles: 10, deletions: 1_001, considered: 100_000 }, true],
    [{ sourceFiles: 10, deletions: 1_000, considered: 100_000 }, false],
    [{ sourceFiles: 10, deletions: 1_001, considered: 100_000, maxDelete: 1_001 }, false],
    [{ sourceFiles: 10, deletions: 51, considered: 100 }, true],
    [{ sourceFiles: 10, deletions: 50, considered: 100 }, false],
    [{ sourceFiles: 10, deletions: 1, considered: 1 }, true],
    [{ sourceFiles: 10, deletions: 0, considered: 0 }, false],
    [{ sourceFiles: 10, deletions: 3, considered: 3, maxDelete: 2 }, true],
  ];
  for (const [input, refused] of table) assert.equal(deleteRefusal(input) !== undefined, refused, JSON.stringify(input));
});

test('guard 7: a sync --delete never descends into a symlinked destination folder, so a file reached through the link survives', async () => {
  const p = `g7-${uniqueName('p')}/`;
  await put(`${p}real/x.txt`, 'x');
  await put(`${p}real/y.txt`, 'y');
  const dst = tempDir('safe-g7');
  writeTree(dst, { 'real/x.txt': 'x', 'real/y.txt': 'y' });
  // `alias/x.txt` is not in the source: listed through the link, deleting it would delete real/x.txt.
  symlinkSync(join(dst, 'real'), join(dst, 'alias'));
  const report = await suite.run({ source: { kind: 's3', uri: `s3://${bucket}/${p}` }, destination: { kind: 'local', path: dst }, deleteExtraneous: true });
  assert.equal(report.deleted?.count, 0, JSON.stringify(report.deleted));
  assert.equal(readFileSync(join(dst, 'real/x.txt'), 'utf8'), 'x');
  assert.equal(readFileSync(join(dst, 'real/y.txt'), 'utf8'), 'y');
});

test('guard 7: deletion acts only on the real path it listed: a folder on the way that is a symlink is refused', async () => {
  const root = tempDir('safe-g7-del');
  writeTree(root, { 'real/x.txt': 'keep', 'real/sub/z.txt': 'keep too' });
  symlinkSync(join(root, 'real'), join(root, 'alias'));
  mkdirSync(join(root, 'deep'));
  symlinkSync(join(root, 'real'), join(root, 'deep', 'link'));
  for (const rel of ['alias/x.txt', 'alias/sub/z.txt', 'deep/link/x.txt']) {
    await assert.rejects(
      deleteFilesUnder(root, root, [rel], () => undefined),
      (e: unknown) => e instanceof TrainctlError && e.kind === 'InvalidInput' && /symlink/.test(e.message),
      rel,
    );
  }
  assert.ok(existsSync(join(root, 'real/x.txt')) && existsSync(join(root, 'real/sub/z.txt')));
});

const sum = (n: number) => `${'a'.repeat(64)}-${n}`;
const guard8Meta: [string, Record<string, string>, number][] = [
  ['a part size of 1 byte', { 'trainctl-part-size': '1', 'trainctl-sha256': sum(1) }, 10],
  ['a part size below 5 MiB', { 'trainctl-part-size': String(5 * MiB - 1) }, 10],
  ['a part size above 5 GiB', { 'trainctl-part-size': String(5 * 1024 * MiB + 1) }, 10],
  ['a negative part size', { 'trainctl-part-size': '-8388608' }, 10],
  ['a fractional part size', { 'trainctl-part-size': '8388608.5' }, 10],
  ['a part size in hex', { 'trainctl-part-size': '0x800000' }, 10],
  [
    'more than 10,000 parts',
    { 'trainctl-part-size': String(5 * MiB), 'trainctl-size': String(5 * MiB * 10_001), 'trainctl-encoding': 'gzip', 'trainctl-sha256': sum(10_001) },
    10,
  ],
  ['an unknown encoding', { 'trainctl-encoding': 'brotli' }, 10],
  ['an encoding without an original size', { 'trainctl-encoding': 'gzip', 'trainctl-sha256': sum(1) }, 10],
  ['an original size larger than S3 allows', { 'trainctl-encoding': 'gzip', 'trainctl-size': String(6 * 1024 * 1024 * MiB) }, 10],
  ['an original size that contradicts the length', { 'trainctl-size': '11' }, 10],
  ['a malformed checksum', { 'trainctl-sha256': 'not-a-checksum' }, 10],
  ['a checksum whose part count contradicts the size', { 'trainctl-sha256': sum(7), 'trainctl-part-size': String(8 * MiB) }, 10],
];

test('guard 8: trainctl metadata outside S3 limits (or inconsistent with the length) is ignored and the object treated as foreign', () => {
  for (const [what, Metadata, ContentLength] of guard8Meta) {
    const meta = objectMeta({ Metadata, ContentLength });
    assert.deepEqual(meta, { encoding: 'none', foreign: true }, what);
  }
  assert.deepEqual(objectMeta({ Metadata: { 'trainctl-sha256': sum(1), 'trainctl-part-size': String(8 * MiB) }, ContentLength: 10 }), {
    checksum: sum(1),
    partSize: 8 * MiB,
    encoding: 'none',
  });
});

test("an object hashed while sending: trainctl's checksum is S3's SHA-256 of it, taken only where the part size says what it can be", () => {
  const part = 8 * MiB;
  const d1 = createHash('sha256').update('one').digest();
  const d2 = createHash('sha256').update('two').digest();
  const composite = createHash('sha256').update(d1).update(d2).digest();
  const Metadata = { 'trainctl-part-size': String(part) };
  const two = part + 5;
  const meta = (ContentLength: number, ChecksumSHA256: string | undefined, ChecksumType?: 'COMPOSITE' | 'FULL_OBJECT', extra: Record<string, string> = {}) =>
    objectMeta({ Metadata: { ...Metadata, ...extra }, ContentLength, ChecksumSHA256, ChecksumType }).checksum;
  // One part: the full-object SHA-256 is the part's digest, and trainctl's checksum is SHA-256 over it.
  assert.equal(meta(10, d1.toString('base64'), 'FULL_OBJECT'), `${createHash('sha256').update(d1).digest('hex')}-1`);
  // Two parts: S3's composite (with its part count, as S3 and versitygw answer, or without it, as moto does).
  assert.equal(meta(two, `${composite.toString('base64')}-2`, 'COMPOSITE'), `${composite.toString('hex')}-2`);
  assert.equal(meta(two, composite.toString('base64')), `${composite.toString('hex')}-2`);
  // What it cannot be is not taken: a composite naming another part count, a full-object SHA-256 of a
  // multipart object, a composite for a one-part object, a malformed value, a compressed object, no part size.
  assert.equal(meta(two, `${composite.toString('base64')}-3`, 'COMPOSITE'), undefined);
  assert.equal(meta(two, composite.toString('base64'), 'FULL_OBJECT'), undefined);
  assert.equal(meta(10, `${d1.toString('base64')}-1`, 'COMPOSITE'), undefined);
  assert.equal(meta(10, 'not base64', 'FULL_OBJECT'), undefined);
  assert.equal(meta(10, d1.toString('base64'), 'FULL_OBJECT', { 'trainctl-encoding': 'gzip', 'trainctl-size': '10' }), undefined);
  assert.equal(objectMeta({ Metadata: {}, ContentLength: 10, ChecksumSHA256: d1.toString('base64') }).checksum, undefined, 'not a trainctl object');
  assert.equal(meta(0, d1.toString('base64'), 'FULL_OBJECT'), undefined, 'an empty object');
  // trainctl's own metadata wins over S3's.
  assert.equal(meta(10, d1.toString('base64'), 'FULL_OBJECT', { 'trainctl-sha256': sum(1) }), sum(1));
});

test('guard 8: a download of an object with hostile metadata (unknown encoding, 1-byte parts) lands its bytes, verified as a foreign object', async () => {
  const p = `g8-${uniqueName('p')}/`;
  await put(`${p}odd.bin`, 'hello world', { 'trainctl-encoding': 'rot13', 'trainctl-part-size': '1' });
  const dst = tempDir('safe-g8');
  const report = await suite.run({ source: { kind: 's3', uri: `s3://${bucket}/${p}` }, destination: { kind: 'local', path: dst } });
  assert.equal(report.files, 1);
  assert.equal(readFileSync(join(dst, 'odd.bin'), 'utf8'), 'hello world');
});

test('guard 8: decompression stops at the recorded original size (Integrity), whatever the bomb expands to', async () => {
  const key = `g8-${uniqueName('bomb')}.txt`;
  const bomb = gzipSync(Buffer.alloc(4 * MiB));
  await put(key, bomb, { 'trainctl-encoding': 'gzip', 'trainctl-size': '10', 'trainctl-sha256': sum(1), 'trainctl-part-size': String(8 * MiB) });
  const dir = tempDir('safe-bomb');
  await assert.rejects(
    downloadVerified({ s3, bucket, key, path: join(dir, 'out.txt'), label: key, concurrency: 1 }),
    (e: unknown) => e instanceof TrainctlError && e.kind === 'Integrity' && /more than the 10 bytes/.test(e.message),
  );
  assert.ok(!existsSync(join(dir, 'out.txt')));
});

test('guard 8: globs are matched in linear time (no pathological pattern blocks a worker), brace sets included', () => {
  const table: [string, string, boolean][] = [
    ['*.log', 'a/b/c.log', true],
    ['logs/*.log', 'logs/x/c.log', false],
    ['logs/**/*.log', 'logs/x/y/c.log', true],
    ['logs/**/*.log', 'logs/c.log', true],
    ['data-?.bin', 'data-1.bin', true],
    ['*.{bin,txt}', 'x/a.txt', true],
    ['*.{bin,txt}', 'a.csv', false],
    ['{train,val}/**', 'val/a/b', true],
    ['{train,val}/**', 'test/a', false],
    ['a{b', 'a{b', true],
    ['a/**/b', 'a/xb', false],
  ];
  for (const [glob, rel, want] of table) assert.equal(globMatches(glob, rel), want, `${glob} ~ ${rel}`);
  const started = Date.now();
  for (const stars of [10, 20, 40]) assert.equal(globMatches(`${'*a'.repeat(stars)}b`, 'a'.repeat(3_000)), false);
  assert.equal(globMatches('**a**a**a**a**a**a**a**a**b', `${'a/'.repeat(1_000)}c`), false);
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  assert.throws(() => globMatches('{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}{q,r}', 'x'), /alternatives/);
});

test('guard 9: resume checks the source identity: a file replaced with the same size and mtime restarts instead of resuming the old upload', async () => {
  const dir = tempDir('safe-g9');
  const path = join(dir, 'big.bin');
  writeTree(dir, { 'big.bin': Buffer.alloc(6 * MiB, 7) });
  const st = statSync(path);
  const key = `g9-${uniqueName('k')}.bin`;
  // What an earlier attempt on the replaced file would have left: same size and mtime, another inode.
  const stale = {
    kind: 'upload',
    key,
    size: st.size,
    mtimeMs: st.mtimeMs,
    ino: st.ino + 1,
    ctimeMs: st.ctimeMs,
    partSize: 5 * MiB,
    checksum: 'x'.repeat(64) + '-2',
    uploadId: 'gone-upload',
    parts: [{ n: 1, etag: '"stale"' }],
  };
  const quiet = { info: () => undefined, warn: () => undefined };
  const result = await uploadFile(
    { region: 'us-east-1', path, bucket, key, partSize: 5 * MiB, concurrency: 2, sync: false, label: 'big.bin', progressIntervalMs: 1_000 },
    { id: uniqueName('scope'), resume: stale, progress: { add: () => undefined, current: () => undefined }, signal: undefined },
    { s3: async () => s3, resolvePath: async (p) => p, step: (_w, fn) => fn(), log: quiet, heartbeatIntervalMs: 60_000 },
  );
  assert.equal(result.resumed, 0, 'nothing of the stale checkpoint was reused');
  assert.equal(result.sent, 6 * MiB);
});

test('guard 9: DeleteObjects per-key errors are read: gone counts as deleted, AccessDenied fails at once, others are retried a bounded number of rounds', async () => {
  type Err = { Key: string; Code: string };
  const table: { name: string; rounds: Err[][]; calls: number; kind?: string }[] = [
    { name: 'NoSuchKey', rounds: [[{ Key: 'p/a', Code: 'NoSuchKey' }]], calls: 1 },
    { name: 'AccessDenied', rounds: [[{ Key: 'p/a', Code: 'AccessDenied' }]], calls: 1, kind: 'PermissionDenied' },
    { name: 'one InternalError', rounds: [[{ Key: 'p/b', Code: 'InternalError' }], []], calls: 2 },
    { name: 'InternalError forever', rounds: Array.from({ length: 10 }, () => [{ Key: 'p/b', Code: 'InternalError' }]), calls: 3, kind: 'Transient' },
  ];
  for (const c of table) {
    const sent: string[][] = [];
    const fake = {
      send: async (cmd: { input: { Delete: { Objects: { Key: string }[] } } }) => {
        sent.push(cmd.input.Delete.Objects.map((o) => o.Key));
        return { Errors: c.rounds[sent.length - 1] ?? [] };
      },
    } as unknown as S3Client;
    const deps = {
      step: <T>(_w: string, fn: () => Promise<T>) => fn(),
      log: { info: () => undefined, warn: () => undefined },
      signal: undefined,
      heartbeat: () => undefined,
    };
    const run = deleteObjectsUnder(fake, { bucket: 'b', prefix: 'p/', rels: ['a', 'b'] }, deps);
    if (c.kind) await assert.rejects(run, (e: unknown) => e instanceof TrainctlError && e.kind === c.kind, c.name);
    else assert.equal(await run, 2, c.name);
    assert.equal(sent.length, c.calls, c.name);
    if (c.calls > 1) assert.deepEqual(sent[1], ['p/b'], `${c.name}: only the failed keys are sent again`);
  }
});

test('guard 9: a retry that finds its multipart upload already completed (the response was lost) checks the object and succeeds instead of failing NoSuchUpload', async () => {
  const dir = tempDir('safe-g9c');
  const path = join(dir, 'big.bin');
  writeTree(dir, { 'big.bin': Buffer.alloc(6 * MiB, 9) });
  const key = `g9c-${uniqueName('k')}.bin`;
  const input = { region: 'us-east-1', path, bucket, key, partSize: 5 * MiB, concurrency: 2, sync: false, label: 'big.bin', progressIntervalMs: 1_000 };
  const quiet = { info: () => undefined, warn: () => undefined };
  const deps = {
    s3: async () => s3,
    resolvePath: async (p: string) => p,
    step: <T>(_w: string, fn: () => Promise<T>) => fn(),
    log: quiet,
    heartbeatIntervalMs: 60_000,
  };
  let last: unknown;
  const progress = { add: () => undefined, current: () => undefined };
  await uploadFile(input, { id: uniqueName('scope'), resume: undefined, heartbeat: (d) => (last = structuredClone(d)), progress, signal: undefined }, deps);
  assert.equal((last as { parts: unknown[] }).parts.length, 2, 'the last heartbeat names both parts of the completed upload');
  const retry = await uploadFile(input, { id: uniqueName('scope'), resume: last, progress, signal: undefined }, deps);
  assert.equal(retry.sent, 0, 'nothing was sent again');
  assert.equal(retry.verified, true);
});
