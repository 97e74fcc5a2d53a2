import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { uniqueName, type TestServices, type RunningWorker } from './helpers/harness.js';

import { startHostWorker } from './helpers/host-worker.js';
import { tempDir, treeDigests, writeTree, transferSuite, type TransferSuite } from './helpers/transfer.js';

import type { TransferReport, TransferRequest } from '../src/contracts/transfer.js';
import * as transferApi from '../src/api/transfer.js';
import { run as runCli } from '../src/cli/main.js';

let suite: TransferSuite;
let services: TestServices;
let client: Client;
let worker: RunningWorker;
let s3: S3Client;
let bucket: string;

before(async () => {
  suite = await transferSuite('txdel');
  ({ services, client, worker, s3, bucket } = suite);
});

function runTransfer(request: TransferRequest): Promise<TransferReport> {
  return suite.run(request);
}

async function allKeys(): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (page.Contents ?? []).map((o) => o.Key ?? '').sort();
}

async function put(key: string, body: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

test('deleteExtraneous to S3: a dry run lists the extraneous objects and deletes nothing; a real run deletes exactly them, never outside the prefix or what the filters exclude', async () => {
  const src = tempDir('del-src');
  writeTree(src, { 'a.txt': 'new a', 'sub/b.txt': 'bee', 'skip.log': 'not sent' });
  const p = `del-${uniqueName('p')}`;
  // Already there: a stale copy of a source file, two extraneous objects, one the filter excludes,
  // and neighbours outside the prefix whose keys start with the same characters.
  for (const k of [`${p}/a.txt`, `${p}/stale.txt`, `${p}/sub/old/deep.bin`, `${p}/old.log`, `${p}-other/x.txt`, `${p}.txt`]) await put(k, 'old');
  const before = await allKeys();
  const request: TransferRequest = {
    source: { kind: 'local', path: src },
    destination: { kind: 's3', uri: `s3://${bucket}/${p}` },
    exclude: ['*.log'],
    deleteExtraneous: true,
    // 2 of the 3 entries: more than half, allowed explicitly (guard 6).
    maxDelete: 2,
  };

  const dry = await runTransfer({ ...request, dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.deepEqual(dry.deleted?.items.slice().sort(), [`s3://${bucket}/${p}/stale.txt`, `s3://${bucket}/${p}/sub/old/deep.bin`]);
  assert.equal(dry.deleted?.count, 2);
  assert.deepEqual(await allKeys(), before, 'a dry run deletes (and writes) nothing');

  const real = await runTransfer(request);
  assert.equal(real.dryRun, false);
  assert.equal(real.deleted?.count, 2);
  assert.deepEqual(real.deleted?.items.slice().sort(), dry.deleted?.items.slice().sort(), 'the real run deletes what the dry run listed');
  assert.deepEqual(await allKeys(), [`${p}-other/x.txt`, `${p}.txt`, `${p}/a.txt`, `${p}/old.log`, `${p}/sub/b.txt`].sort());

  const again = await runTransfer(request);
  assert.deepEqual(
    { deleted: again.deleted?.count, bytes: again.bytes, skipped: again.skipped },
    { deleted: 0, bytes: 0, skipped: 2 },
    'deleteExtraneous has sync semantics',
  );

  const single = await transferApi
    .execute(client, { ...request, source: { kind: 'local', path: join(src, 'a.txt') } }, { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer') })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(single instanceof WorkflowFailedError && single.cause instanceof ApplicationFailure, String(single));
  assert.equal(single.cause.type, 'InvalidInput', 'a single-file source has no extraneous siblings to delete');
});

test('deleteExtraneous to a local folder: the CLI --delete --dry-run lists the extra files, a real run deletes only them and leaves outside files and symlink targets alone', async () => {
  const p = `dl-${uniqueName('p')}/`;
  for (const k of ['keep.txt', 'nested/keep2.txt']) await put(`${p}${k}`, `v-${k}`);
  const base = tempDir('del-local');
  const dst = join(base, 'dst');
  writeTree(base, { 'outside.txt': 'precious', 'dst/keep.txt': 'stale', 'dst/extra.txt': 'x', 'dst/nested/extra2.bin': 'y', 'dst/gone/deeper/z.txt': 'z' });
  symlinkSync(join(base, 'outside.txt'), join(dst, 'link-out.txt'));
  const uri = `s3://${bucket}/${p}`;

  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  let code: number;
  try {
    code = await runCli(['transfer', uri, dst, '--delete', '--max-delete', '3', '--dry-run'], {
      ...process.env,
      TRAINCTL_TASK_QUEUE: worker.taskQueue,
      TEMPORAL_ADDRESS: services.env.TEMPORAL_ADDRESS,
      AWS_ENDPOINT_URL: services.env.AWS_ENDPOINT_URL,
    });
  } finally {
    console.log = log;
  }
  const out = lines.join('\n');
  assert.equal(code, 0, out);
  assert.match(out, /3 extraneous destination files would be deleted/, out);
  assert.match(out, /delete .*dst\/nested\/extra2\.bin/, out);
  assert.equal(readFileSync(join(dst, 'extra.txt'), 'utf8'), 'x', 'the dry run deleted nothing');

  const real = await runTransfer({ source: { kind: 's3', uri }, destination: { kind: 'local', path: dst }, deleteExtraneous: true, maxDelete: 3 });
  assert.deepEqual(
    real.deleted?.items.slice().sort(),
    ['extra.txt', 'gone/deeper/z.txt', 'nested/extra2.bin'].map((r) => join(dst, r)),
  );
  const left = treeDigests(dst);
  assert.deepEqual(Object.keys(left).sort(), ['keep.txt', 'link-out.txt', 'nested/keep2.txt']);
  assert.equal(readFileSync(join(dst, 'keep.txt'), 'utf8'), 'v-keep.txt', 'the stale copy was replaced');
  assert.equal(readFileSync(join(base, 'outside.txt'), 'utf8'), 'precious', 'the file outside the destination (and symlink target) is untouched');
});

test('deleteExtraneous to a training instance deletes the extra files under the destination on the host', async () => {
  const host = await startHostWorker(services.env);
  const p = `dh-${uniqueName('p')}/`;
  await put(`${p}train/a.txt`, 'a');
  writeTree(host.root, { 'data/train/a.txt': 'old', 'data/train/b.txt': 'extra', 'data/val/c.txt': 'extra', 'other/d.txt': 'outside the destination' });

  const dry = await runTransfer({
    source: { kind: 's3', uri: `s3://${bucket}/${p}` },
    destination: { kind: 'host', hostId: host.hostId, path: 'data' },
    deleteExtraneous: true,
    maxDelete: 2,
    dryRun: true,
  });
  assert.deepEqual(dry.deleted?.items.slice().sort(), ['data/train/b.txt', 'data/val/c.txt']);
  assert.ok(existsSync(join(host.root, 'data/train/b.txt')), 'the dry run deleted nothing');

  const real = await runTransfer({
    source: { kind: 's3', uri: `s3://${bucket}/${p}` },
    destination: { kind: 'host', hostId: host.hostId, path: 'data' },
    deleteExtraneous: true,
    maxDelete: 2,
  });
  assert.equal(real.deleted?.count, 2);
  assert.deepEqual(Object.keys(treeDigests(join(host.root, 'data'))), ['train/a.txt']);
  assert.equal(readFileSync(join(host.root, 'data/train/a.txt'), 'utf8'), 'a');
  assert.equal(readFileSync(join(host.root, 'other/d.txt'), 'utf8'), 'outside the destination');
});
