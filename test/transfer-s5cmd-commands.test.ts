import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MiB } from '../src/transfer/plan.js';
import {
  S5cmdOutput,
  checkDownloaded,
  checkUploaded,
  commonDir,
  downloadCommand,
  endpointUrl,
  s5cmdArgs,
  s5cmdEnv,
  uploadCommand,
} from '../src/transfer/s5cmd.js';

test('s5cmd command lines quote paths with backslash escapes, carry the checksum as metadata, and refuse a line break', () => {
  const up = uploadCommand({ path: '/data/a "b"\\c.bin', bucket: 'bk', key: 'p/a.bin', partSize: 16 * MiB, checksum: 'abc-2' }, 4);
  assert.equal(
    up,
    'cp --raw -c 4 -p 16 --metadata "trainctl-sha256=abc-2" --metadata "trainctl-part-size=16777216" "/data/a \\"b\\"\\\\c.bin" "s3://bk/p/a.bin"',
  );
  assert.equal(downloadCommand({ bucket: 'bk', key: 'k', temp: '/t/0' }, 2, 8), 'cp --raw -c 2 -p 8 "s3://bk/k" "/t/0"');
  assert.throws(
    () => downloadCommand({ bucket: 'bk', key: 'a\nb', temp: '/t/0' }, 2, 8),
    (e: Error & { kind?: string }) => e.kind === 'InvalidInput',
  );
});

test('s5cmd gets the endpoint as a flag and the credentials only through its environment', () => {
  const url = endpointUrl({ protocol: 'http:', hostname: '127.0.0.1', port: 5000, path: '/' });
  assert.equal(url, 'http://127.0.0.1:5000');
  assert.equal(endpointUrl(undefined), undefined);
  assert.deepEqual(s5cmdArgs(url, 3, '/tmp/c.txt'), ['--endpoint-url', 'http://127.0.0.1:5000', '--json', '--numworkers', '3', 'run', '/tmp/c.txt']);
  assert.deepEqual(s5cmdArgs(undefined, 1, 'f'), ['--json', '--numworkers', '1', 'run', 'f']);
  const env = s5cmdEnv({ AWS_SESSION_TOKEN: 'stale', HOME: '/h' }, { accessKeyId: 'AK', secretAccessKey: 'SK' }, 'eu-west-1');
  assert.deepEqual(env, { HOME: '/h', AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK', AWS_REGION: 'eu-west-1' });
});

test('s5cmd --json output split across chunks counts finished bytes, and a failed exit names the first failures and the stderr tail', () => {
  const done: number[] = [];
  const out = new S5cmdOutput((n) => done.push(n));
  out.stdout('{"success":true,"object":{"size":5}}\n{"success":tr');
  out.stdout('ue,"object":{"size":7}}\n{"error":"access denied","source":"/a"}\nnot json\n');
  out.stderr('line one\nline two\n');
  assert.deepEqual(done, [5, 7]);
  assert.equal(out.why(), '/a: access denied; not json; line one line two');
  assert.equal(new S5cmdOutput(() => {}).why(), 'no message');
});

test('the download temp folder goes in the deepest folder holding every destination', () => {
  assert.equal(commonDir(['/d/x/a.bin', '/d/x/y/b.bin', '/d/x/z/c.bin']), '/d/x');
  assert.equal(commonDir(['/a/f', '/b/g']), '/');
});

test('an upload whose stored object differs in size, ETag or checksum, or is gone, fails with kind Integrity', () => {
  const p = { f: { label: 'a.bin', bucket: 'bk', key: 'a.bin' }, size: 3, etags: ['e1', 'e2-1'], checksum: 'c-1' };
  const head = { ContentLength: 3, ETag: '"e1"', Metadata: { 'trainctl-sha256': 'c-1' }, $metadata: {} };
  assert.doesNotThrow(() => checkUploaded(p, head));
  const integrity = (e: Error & { kind?: string }) => e.kind === 'Integrity' && e.message.startsWith('a.bin: ');
  assert.throws(() => checkUploaded(p, undefined), integrity);
  assert.throws(() => checkUploaded(p, { ...head, ContentLength: 4 }), integrity);
  assert.throws(() => checkUploaded(p, { ...head, ETag: '"other"' }), integrity);
  assert.throws(() => checkUploaded(p, { ...head, Metadata: { 'trainctl-sha256': 'c-2' } }), integrity);
  assert.doesNotThrow(() => checkUploaded(p, { ...head, ETag: '"kms"', ServerSideEncryption: 'aws:kms' }));
});

test('a download is checked by trainctl checksum, else by a plain-MD5 ETag, else by size', () => {
  const f = { label: 'a.bin', bucket: 'bk', key: 'a.bin' };
  const d = { checksum: 'c-1', md5: 'm', size: 3 };
  assert.doesNotThrow(() => checkDownloaded({ f, size: 3, meta: { checksum: 'c-1' }, md5: 'x' }, d));
  assert.throws(() => checkDownloaded({ f, size: 3, meta: { checksum: 'c-2' }, md5: 'm' }, d), /recorded c-2/);
  assert.throws(() => checkDownloaded({ f, size: 3, meta: {}, md5: 'x' }, d), /ETag says x/);
  assert.doesNotThrow(() => checkDownloaded({ f, size: 3, meta: {}, md5: undefined }, d));
  assert.throws(() => checkDownloaded({ f, size: 4, meta: {}, md5: undefined }, d), /HeadObject said 4/);
});
