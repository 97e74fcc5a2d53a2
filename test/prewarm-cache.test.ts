import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { testServices, testClient, startWorker, uniqueName, onCleanup, type TestServices, type RunningWorker } from './helpers/harness.js';
import { startHostWorker, type HostWorkerProcess } from './helpers/host-worker.js';
import { createS3Client } from '../src/aws/clients.js';
import { MANIFEST_FILE, CacheManifestSchema, planEviction, type CacheManifest } from '../src/prewarm/cache-manifest.js';
import type { PrewarmRequest, PrewarmResult } from '../src/contracts/prewarm.js';
import * as prewarmApi from '../src/api/prewarm.js';
import { objectMeta } from '../src/transfer/object-meta.js';

const KiB = 1024;
const OBJ = 64 * KiB;

let services: TestServices;
let client: Client;
let worker: RunningWorker;
let host: HostWorkerProcess;
let s3: S3Client;
let bucket: string;
const content = new Map<string, Buffer>();

async function put(key: string, body: Buffer): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  content.set(key, body);
}

before(async () => {
  services = await testServices();
  client = await testClient(services.env);
  worker = await startWorker(services);
  host = await startHostWorker(services.env);
  s3 = createS3Client(services.env);
  bucket = uniqueName('prewarm-cache').toLowerCase();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  onCleanup(async () => {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  });
  for (const p of ['p1', 'p2']) for (const n of ['a', 'b', 'c']) await put(`ds/${p}/${n}.bin`, randomBytes(OBJ));
  await put('ds/p1/nested/d.bin', randomBytes(OBJ));
});

async function run(request: PrewarmRequest): Promise<PrewarmResult> {
  return prewarmApi.execute(client, request, { taskQueue: worker.taskQueue, workflowId: uniqueName('prewarm') });
}

async function failure(request: PrewarmRequest): Promise<ApplicationFailure> {
  const err = await prewarmApi.execute(client, request, { taskQueue: worker.taskQueue, workflowId: uniqueName('prewarm') }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, String(err));
  const cause = err.cause instanceof ActivityFailure ? err.cause.cause : err.cause;
  assert.ok(cause instanceof ApplicationFailure, String(cause));
  return cause;
}

/** Bytes of the cached objects on disk (the manifest and temp folder aside). */
function diskBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && !e.name.startsWith('.')) total += statSync(join(e.parentPath, e.name)).size;
  }
  return total;
}

function manifestOf(cacheDir: string): CacheManifest {
  return CacheManifestSchema.parse(JSON.parse(readFileSync(join(host.root, cacheDir, MANIFEST_FILE), 'utf8')));
}

const cacheRequest = (cacheDir: string, prefix: string, capacityBytes?: number): PrewarmRequest => ({
  strategy: 'LocalCache',
  hostId: host.hostId,
  s3: { bucket, prefix, region: 'us-east-1' },
  cacheDir,
  ...(capacityBytes !== undefined ? { capacityBytes } : {}),
  // A failure that retried would show as a timeout here rather than a hung suite.
  timeoutMinutes: 2,
});

test('LocalCache transfers a prefix once, verified, and a second run transfers 0 bytes', async () => {
  const cacheDir = uniqueName('cache');
  const first = (await run(cacheRequest(cacheDir, 'ds/p1/'))).cache!;
  assert.equal(first.objects, 4);
  assert.equal(first.objectsTransferred, 4);
  assert.equal(first.bytesTransferred, 4 * OBJ);
  assert.equal(first.hits, 0);
  for (const key of ['ds/p1/a.bin', 'ds/p1/b.bin', 'ds/p1/c.bin', 'ds/p1/nested/d.bin']) {
    assert.deepEqual(readFileSync(join(host.root, cacheDir, bucket, key)), content.get(key), key);
  }
  const m = manifestOf(cacheDir);
  assert.equal(m.entries[`${bucket}/ds/p1/a.bin`]?.sha256, createHash('sha256').update(content.get('ds/p1/a.bin')!).digest('hex'));
  assert.equal(first.localPath.endsWith(join(cacheDir, bucket, 'ds', 'p1')), true, first.localPath);

  const second = (await run(cacheRequest(cacheDir, 'ds/p1/'))).cache!;
  assert.equal(second.bytesTransferred, 0);
  assert.equal(second.objectsTransferred, 0);
  assert.equal(second.hits, 4);

  // A changed object (new ETag) is fetched again, and only it.
  await put('ds/p1/b.bin', randomBytes(OBJ));
  const third = (await run(cacheRequest(cacheDir, 'ds/p1/'))).cache!;
  assert.equal(third.objectsTransferred, 1);
  assert.equal(third.bytesTransferred, OBJ);
  assert.deepEqual(readFileSync(join(host.root, cacheDir, bucket, 'ds/p1/b.bin')), content.get('ds/p1/b.bin'));
});

test('LocalCache goes through the transfer engine: a trainctl-uploaded object whose bytes were changed is refused with Integrity and not cached', async () => {
  const src = mkdtempSync(join(tmpdir(), 'trainctl-cache-tamper-'));
  onCleanup(() => rmSync(src, { recursive: true, force: true }));
  writeFileSync(join(src, 'good.bin'), randomBytes(OBJ));
  writeFileSync(join(src, 'bad.bin'), randomBytes(OBJ));
  const prefix = `tamper-${uniqueName('p')}/`;
  await client.workflow.execute('transfer', {
    taskQueue: worker.taskQueue,
    workflowId: uniqueName('transfer'),
    args: [{ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` } }],
  });
  const key = `${prefix}bad.bin`;
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  assert.match(objectMeta(head).checksum ?? '', /^[0-9a-f]{64}-1$/, "the transfer recorded its checksum (S3's SHA-256 of the object)");
  // Other bytes under the checksum recorded for the first ones (in the metadata, as an upload that hashes first records it): the
  // new ETag is the new bytes' MD5, so only trainctl's checksum can tell.
  const Metadata = { ...head.Metadata, 'trainctl-sha256': objectMeta(head).checksum ?? '' };
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomBytes(OBJ), Metadata }));

  const cacheDir = uniqueName('cache');
  const f = await failure(cacheRequest(cacheDir, prefix));
  assert.equal(f.type, 'Integrity');
  assert.match(f.message, /bad\.bin/, 'the failure names the object');
  assert.equal(existsSync(join(host.root, cacheDir, bucket, key)), false, 'the tampered object is not in the cache');
  const leftovers = readdirSync(join(host.root, cacheDir), { recursive: true })
    .map(String)
    .filter((n) => n.includes('trainctl-partial'));
  assert.deepEqual(leftovers, [], 'no temp file is left behind');
  assert.equal(manifestOf(cacheDir).entries[`${bucket}/${key}`], undefined, 'the manifest does not list it');
});

test('LocalCache evicts the least recently used prefix to stay under its capacity', async () => {
  const cacheDir = uniqueName('cache');
  const capacity = 5 * OBJ;
  await run(cacheRequest(cacheDir, 'ds/p1/', capacity));
  const r = (await run(cacheRequest(cacheDir, 'ds/p2/', capacity))).cache!;
  assert.equal(r.objectsTransferred, 3);
  assert.equal(r.evicted.length, 2, JSON.stringify(r.evicted));
  assert.ok(
    r.evicted.every((e) => e.id.startsWith(`${bucket}/ds/p1/`)),
    'only the older prefix is evicted',
  );
  assert.ok(r.cacheBytes <= capacity, `cache holds ${r.cacheBytes} > ${capacity}`);
  assert.ok(diskBytes(join(host.root, cacheDir)) <= capacity, 'the files on disk stay under the capacity too');
  assert.equal(Object.keys(manifestOf(cacheDir).entries).length, 5);
  // p2 is now the most recent: syncing it again evicts nothing and transfers nothing.
  const again = (await run(cacheRequest(cacheDir, 'ds/p2/', capacity))).cache!;
  assert.equal(again.bytesTransferred, 0);
  assert.equal(again.evicted.length, 0);
});

test('LocalCache refuses a prefix larger than the cache with QuotaExceeded before transferring anything', async () => {
  const cacheDir = uniqueName('cache');
  const f = await failure(cacheRequest(cacheDir, 'ds/p1/', 2 * OBJ));
  assert.equal(f.type, 'QuotaExceeded');
  assert.match(f.message, /more than the cache's capacity/);
  assert.equal(diskBytes(join(host.root, cacheDir)), 0);
});

test('LRU eviction picks the entries used longest ago, whatever their prefix, and keeps the ones being synced', () => {
  const entry = (id: string, lastUsed: number) => ({ id, size: 10, sha256: '0'.repeat(64), etag: '"e"', lastUsed });
  const m: CacheManifest = {
    version: 1,
    entries: Object.fromEntries([entry('b/x/1', 5), entry('b/y/1', 1), entry('b/x/2', 3), entry('b/z/1', 9)].map((e) => [e.id, e])),
  };
  const plan = planEviction(
    m,
    [
      { id: 'b/z/1', size: 10, etag: '"e"' },
      { id: 'b/new', size: 10, etag: '"e"' },
    ],
    30,
  );
  assert.deepEqual(
    plan.evict.map((e) => e.id),
    ['b/y/1', 'b/x/2'],
  );
  assert.equal(plan.fits, true);
  assert.equal(planEviction(m, [{ id: 'b/big', size: 31, etag: '' }], 30).fits, false);
});

test('ExistingEBS accepts a volume that matches its manifest and fails with Integrity or NotFound when it does not', async () => {
  const dir = uniqueName('dataset');
  const files = ['train/0001.bin', 'train/0002.bin', 'val/0001.bin'];
  const manifest = { files: [] as { path: string; size: number; sha256: string }[] };
  for (const f of files) {
    const body = randomBytes(4 * KiB);
    mkdirSync(join(host.root, dir, f, '..'), { recursive: true });
    writeFileSync(join(host.root, dir, f), body);
    manifest.files.push({ path: f, size: body.length, sha256: createHash('sha256').update(body).digest('hex') });
  }
  writeFileSync(join(host.root, dir, 'manifest.json'), JSON.stringify(manifest));
  const request: PrewarmRequest = { strategy: 'ExistingEBS', hostId: host.hostId, datasetDir: dir, verify: 'checksum', timeoutMinutes: 2 };
  const ok = await run(request);
  assert.equal(ok.verification?.ok, true);
  assert.equal(ok.verification?.files, 3);
  assert.equal(ok.bytes, 12 * KiB);

  writeFileSync(join(host.root, dir, 'train/0002.bin'), randomBytes(4 * KiB));
  const corrupt = await failure(request);
  assert.equal(corrupt.type, 'Integrity');
  assert.match(corrupt.message, /train\/0002.bin: sha256/);
  // A size-only check does not read the contents, so the same volume passes it.
  assert.equal((await run({ ...request, verify: 'size' })).verification?.ok, true);

  writeFileSync(join(host.root, dir, 'manifest.json'), JSON.stringify({ files: [...manifest.files.slice(0, 1), { path: 'train/9999.bin', size: 1 }] }));
  const missing = await failure({ ...request, verify: 'size' });
  assert.equal(missing.type, 'NotFound');
  assert.match(missing.message, /1 missing \(train\/9999.bin\)/);
});

test('DirectS3 warms nothing and shows the host reaches the prefix', async () => {
  const r = await run({ strategy: 'DirectS3', hostId: host.hostId, s3: { bucket, prefix: 'ds/p2/', region: 'us-east-1' }, timeoutMinutes: 2 });
  assert.deepEqual(r.listing, { objects: 3, bytes: 3 * OBJ });
  assert.equal(r.mibPerSecond, 0);
});
