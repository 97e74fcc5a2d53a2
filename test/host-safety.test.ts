import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startWorker, uniqueName } from './helpers/harness.js';
import { failureOf, tempDir, transferSuite, type TransferSuite } from './helpers/transfer.js';
import { createHostFs } from '../src/activities/host-fs.js';
import { createHostTransferActivities } from '../src/activities/transfer.js';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createWorker, localRootsFrom } from '../src/worker.js';
import { downloadVerified } from '../src/transfer/download.js';
import { parseManifest } from '../src/prewarm/cache-manifest.js';
import { privateDir } from '../src/transfer/private-dir.js';
import { checkpointStore } from '../src/transfer/checkpoint-store.js';
import { childEnv } from '../src/child-env.js';
import { s5cmdEnv } from '../src/transfer/s5cmd.js';
import { startTraining, wait } from '../src/run/training-process.js';
import { TrainctlError } from '../src/errors/kinds.js';

let suite: TransferSuite;
let s3: S3Client;
let bucket: string;

before(async () => {
  suite = await transferSuite('txhost');
  ({ s3, bucket } = suite);
});

const isKind = (kind: string, re?: RegExp) => (e: unknown) => e instanceof TrainctlError && e.kind === kind && (!re || re.test(e.message));

test('guard 10: a download onto a host root that is a device or a file is refused (such a root is only read, e.g. by prewarm)', async () => {
  const dir = tempDir('hs-roots');
  writeFileSync(join(dir, 'file'), 'x');
  const fs = await createHostFs([dir, join(dir, 'file'), '/dev/null']);
  assert.deepEqual(fs.fileRoots, [realpathSync(join(dir, 'file')), '/dev/null']);
  const engine = createHostTransferActivities({ fs, s3: async () => s3 });
  const key = `hs-${uniqueName('root')}.bin`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'overwrite?' }));
  const env = new MockActivityEnvironment();
  for (const path of [join(dir, 'file'), '/dev/null']) {
    const args = { region: 'us-east-1', bucket, key, path, concurrency: 1, sync: false, label: key, progressIntervalMs: 1_000 };
    await assert.rejects(
      env.run(engine.transferDownload, args),
      (e: unknown) => e instanceof Error && /not a folder|not a regular file/.test(e.message) && (e as { type?: string }).type === 'InvalidInput',
      path,
    );
  }
  assert.equal(readFileSync(join(dir, 'file'), 'utf8'), 'x');
  await assert.rejects(createHostFs([join(dir, 'missing')]), isKind('InvalidInput'));
});

test('guard 10: a download never writes through a temp file or sidecar planted as a symlink, and never onto a FIFO', async () => {
  const key = `hs-${uniqueName('obj')}.bin`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'the real bytes' }));
  const dir = tempDir('hs-dl');
  const outside = tempDir('hs-outside');
  writeFileSync(join(outside, 'victim'), 'precious');
  symlinkSync(join(outside, 'victim'), join(dir, '.f.bin.trainctl-partial'));
  await downloadVerified({ s3, bucket, key, path: join(dir, 'f.bin'), label: key, concurrency: 2 }).catch(() => undefined);
  assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'precious', 'nothing was written through the planted link');
  assert.ok(!existsSync(join(dir, 'f.bin')) || !lstatSync(join(dir, 'f.bin')).isSymbolicLink(), 'the destination is never the planted link');

  execFileSync('mkfifo', [join(dir, 'pipe')]);
  await assert.rejects(
    downloadVerified({ s3, bucket, key, path: join(dir, 'pipe'), label: key, concurrency: 1 }),
    isKind('InvalidInput', /not a regular file/),
  );
  assert.ok(statSync(join(dir, 'pipe')).isFIFO());
});

test('guard 10: cache manifest ids are validated like keys, so an edited manifest cannot aim an eviction outside the cache', () => {
  const entry = (id: string) => ({ id, size: 1, sha256: 'a'.repeat(64), etag: '"x"', lastUsed: 1 });
  for (const id of ['../../etc/passwd', 'bucket/../../x', '/etc/passwd', 'bucket//x', 'bucket/./x', 'nobucket', 'bucket/x\\..\\y', 'bucket/a\0b', '']) {
    const { manifest, problem } = parseManifest(JSON.stringify({ version: 1, entries: { [id]: entry(id) } }));
    assert.ok(problem, `manifest with id ${JSON.stringify(id)} is refused`);
    assert.deepEqual(manifest.entries, {});
  }
  const mismatched = parseManifest(JSON.stringify({ version: 1, entries: { 'b/ok': entry('b/../../x') } }));
  assert.ok(mismatched.problem);
  assert.equal(parseManifest(JSON.stringify({ version: 1, entries: { 'b/k/x.bin': entry('b/k/x.bin') } })).problem, undefined);
});

test('guard 11: the orchestration worker refuses a local path outside its roots (even through a symlink), naming the roots', async () => {
  // A worker whose only root is one folder; the "secret" lies in a sibling folder, wherever the
  // repository or the temp folder happen to be.
  const root = realpathSync(tempDir('hs-root'));
  const secretDir = realpathSync(tempDir('hs-secret'));
  const secret = join(secretDir, 'credentials');
  writeFileSync(secret, '[default]\naws_secret_access_key = not-a-real-one\n');
  const worker = await startWorker({ ...suite.services, deps: { localRoots: [root] } });
  symlinkSync(secret, join(root, 'creds.json'));
  symlinkSync(secretDir, join(root, 'secrets'));
  for (const path of [secret, join(root, 'creds.json'), join(root, 'secrets'), `${root}/../${secretDir.split('/').pop()}/credentials`]) {
    const failure = await failureOf(
      suite.run({ source: { kind: 'local', path }, destination: { kind: 's3', uri: `s3://${bucket}/hs-${uniqueName('up')}/` } }, worker.taskQueue),
    );
    assert.equal(failure.type, 'InvalidInput', path);
    assert.match(failure.message, /outside this worker's roots/, path);
    assert.ok(failure.message.includes(root), `the message names the roots: ${failure.message}`);
  }
  await worker.stop();
});

test("guard 11: the worker's roots come from --root, else TRAINCTL_LOCAL_ROOTS, else the folder it started in; a root that is not a folder stops it", async () => {
  const table: [string[] | undefined, Record<string, string>, string[]][] = [
    [undefined, {}, ['/start']],
    [[], { TRAINCTL_LOCAL_ROOTS: '' }, ['/start']],
    [undefined, { TRAINCTL_LOCAL_ROOTS: '/a:/b' }, ['/a', '/b']],
    [['/x'], { TRAINCTL_LOCAL_ROOTS: '/a' }, ['/x']],
    [['/x', '/y'], {}, ['/x', '/y']],
  ];
  for (const [flags, env, want] of table) assert.deepEqual(localRootsFrom(flags, env, '/start'), want, JSON.stringify({ flags, env }));
  const file = join(tempDir('hs-file-root'), 'f');
  writeFileSync(file, 'x');
  await assert.rejects(
    createWorker({ connection: undefined as never, namespace: 'default', taskQueue: 'never', deps: { localRoots: [file] } as never }),
    isKind('InvalidInput', /not a folder/),
  );
});

test('guard 12: state folders are per user, 0700, owner-checked, and a planted link or file at their name is refused', async () => {
  const parent = tempDir('hs-state');
  const uid = process.getuid?.() ?? -1;
  const dir = await privateDir('trainctl-x', parent);
  assert.equal(dir, join(parent, `trainctl-x-${uid}`));
  assert.equal(statSync(dir).mode & 0o777, 0o700);

  mkdirSync(join(parent, `trainctl-wide-${uid}`), { mode: 0o777 });
  chmodSync(join(parent, `trainctl-wide-${uid}`), 0o777);
  await privateDir('trainctl-wide', parent);
  assert.equal(statSync(join(parent, `trainctl-wide-${uid}`)).mode & 0o777, 0o700, 'a folder of ours with a wider mode is narrowed');

  const elsewhere = tempDir('hs-elsewhere');
  symlinkSync(elsewhere, join(parent, `trainctl-link-${uid}`));
  await assert.rejects(privateDir('trainctl-link', parent), isKind('PermissionDenied', /symlink/));
  writeFileSync(join(parent, `trainctl-file-${uid}`), 'x');
  await assert.rejects(privateDir('trainctl-file', parent), isKind('PermissionDenied', /not a folder/));
});

test('guard 12: a checkpoint is never written through a symlink planted at its file name', async () => {
  const parent = tempDir('hs-cp');
  const id = `wf/${uniqueName('act')}/upload/k`;
  const dir = await privateDir('trainctl-transfer-state', parent);
  const victim = join(tempDir('hs-cp-victim'), 'victim');
  writeFileSync(victim, 'precious');
  const file = join(dir, `${createHash('sha256').update(id).digest('hex')}.json`);
  // The record is written beside its name, then renamed over it: a link at the writing name is refused…
  symlinkSync(victim, `${file}.next`);
  const store = checkpointStore<{ n: number }>(id, parent);
  await assert.rejects(store.save({ n: 1 }));
  assert.equal(readFileSync(victim, 'utf8'), 'precious');
  // …and a link at the record's name is neither read nor written through: the rename replaces the link itself.
  rmSync(`${file}.next`, { force: true });
  symlinkSync(victim, file);
  assert.equal(await store.read(), undefined, 'a checkpoint behind a link is not read');
  await store.save({ n: 2 });
  assert.equal(readFileSync(victim, 'utf8'), 'precious');
  assert.equal(lstatSync(file).isSymbolicLink(), false, 'the link was replaced, not followed');
  assert.deepEqual(await store.read(), { n: 2 });
});

test('a checkpoint store whose state folder was removed mid-activity (a temp cleaner) makes it again on its next save', async () => {
  const parent = tempDir('hs-cp-gone');
  const store = checkpointStore<{ n: number }>(`wf/${uniqueName('act')}/batch`, parent);
  await store.save({ n: 1 });
  const dir = await privateDir('trainctl-transfer-state', parent);
  rmSync(dir, { recursive: true });
  await store.save({ n: 2 });
  assert.deepEqual(await store.read(), { n: 2 });
  assert.equal(statSync(dir).mode & 0o777, 0o700, 'made again, closed to others');
  await store.remove();
  assert.deepEqual(readdirSync(dir), [], 'nothing left beside the record either');
});

const SECRETS = {
  TEMPORAL_API_KEY: 'tk-secret',
  TEMPORAL_TLS_KEY_PATH: '/secret/tls.key',
  TEMPORAL_TLS_CERT_PATH: '/secret/tls.crt',
  TEMPORAL_ADDRESS: 'cloud:7233',
  GITHUB_TOKEN: 'gh',
  DB_PASSWORD: 'pw',
  AWS_PROFILE: 'admin',
  NODE_OPTIONS: '--require /tmp/evil.js',
};

test('guard 13: child processes (s5cmd, fio, training) get a minimal environment: never the Temporal API key or TLS key paths', () => {
  const base = { PATH: '/usr/bin', HOME: '/home/u', LANG: 'C.UTF-8', LC_ALL: 'C', ...SECRETS };
  const s5 = s5cmdEnv(base, { accessKeyId: 'AK', secretAccessKey: 'SK' }, 'eu-west-1');
  const plain = childEnv(base);
  for (const env of [s5, plain]) {
    for (const name of Object.keys(SECRETS)) assert.equal(env[name], undefined, `${name} must not reach a child`);
    assert.equal(env.PATH, '/usr/bin');
    assert.equal(env.LC_ALL, 'C');
  }
  assert.deepEqual([s5.AWS_ACCESS_KEY_ID, s5.AWS_SECRET_ACCESS_KEY, s5.AWS_REGION, 'AWS_SESSION_TOKEN' in s5], ['AK', 'SK', 'eu-west-1', false]);
  assert.equal(childEnv(base, { RUN_VAR: 'v' }).RUN_VAR, 'v', 'what the caller hands over on purpose crosses');
});

test("guard 13: the training program starts without the worker's secrets in its environment", async () => {
  const dir = tempDir('hs-train');
  const saved = Object.fromEntries(Object.keys(SECRETS).map((k) => [k, process.env[k]]));
  Object.assign(process.env, SECRETS, { NODE_OPTIONS: '' });
  try {
    const handle = startTraining({
      argv: [process.execPath, '-e', 'console.log("ENV=" + JSON.stringify(Object.keys(process.env)))'],
      cwd: dir,
      env: { DECLARED: 'yes' },
      logFile: join(dir, 'log'),
      stateFile: join(dir, 'state.json'),
    });
    const exit = await wait(handle, { pollMs: 50 });
    assert.equal(exit.code, 0);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const line = readFileSync(join(dir, 'log'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENV='));
  const names = JSON.parse(line?.slice(4) ?? '[]') as string[];
  assert.ok(names.includes('DECLARED'), names.join(','));
  for (const name of Object.keys(SECRETS)) assert.ok(!names.includes(name), `${name} reached the training program`);
});
