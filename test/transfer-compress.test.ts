import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { uniqueName, type TestServices, type RunningWorker } from './helpers/harness.js';

import { startHostWorker } from './helpers/host-worker.js';
import { dataRequests, emulatorProxy, succeeded } from './helpers/proxy.js';
import { waitUntil } from './helpers/run-evidence.js';
import { MiB, randomData, tempDir, treeDigests, writeTree, transferSuite, type TransferSuite } from './helpers/transfer.js';

import type { TransferReport, TransferRequest } from '../src/contracts/transfer.js';
import * as transferApi from '../src/api/transfer.js';
import { encodingAvailable, encodingFor } from '../src/transfer/compress.js';

let suite: TransferSuite;
let services: TestServices;
let client: Client;
let worker: RunningWorker;
let s3: S3Client;
let bucket: string;

before(async () => {
  suite = await transferSuite('txgz');
  ({ services, client, worker, s3, bucket } = suite);
});

function runTransfer(request: TransferRequest): Promise<TransferReport> {
  return suite.run(request);
}

const head = (key: string) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));

test('only text-like files are compressed unless forced', () => {
  assert.equal(encodingFor('train.CSV', 'gzip', false), 'gzip');
  assert.equal(encodingFor('shard-00.jsonl', 'gzip', false), 'gzip');
  assert.equal(encodingFor('weights.safetensors', 'gzip', false), 'none');
  assert.equal(encodingFor('weights.safetensors', 'gzip', true), 'gzip');
  assert.equal(encodingFor('train.csv', 'none', true), 'none');
});

test('a gzip round trip Local → S3 → Local is byte-identical and verified; stored text objects are smaller and carry trainctl-encoding', async () => {
  const src = tempDir('gz-src');
  // Hex text compresses to about half: a 12 MiB file still needs a 2-part upload at 5 MiB parts.
  const bigText = randomBytes(6 * MiB).toString('hex');
  writeTree(src, {
    'data/train.csv': 'id,label\n' + Array.from({ length: 20_000 }, (_, i) => `${i},${i % 7}`).join('\n'),
    'data/big.jsonl': bigText,
    'notes.txt': '',
    'weights.bin': randomData(256 * 1024),
  });
  const prefix = `gz-${uniqueName('p')}/`;
  const up = await runTransfer({
    source: { kind: 'local', path: src },
    destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
    compress: 'gzip',
    partSizeMiB: 5,
  });
  assert.equal(up.files, 4);
  assert.equal(up.verified, 4);

  const csv = await head(`${prefix}data/train.csv`);
  assert.equal(csv.Metadata?.['trainctl-encoding'], 'gzip');
  const csvSize = Buffer.byteLength('id,label\n' + Array.from({ length: 20_000 }, (_, i) => `${i},${i % 7}`).join('\n'));
  assert.equal(csv.Metadata?.['trainctl-size'], String(csvSize));
  assert.ok((csv.ContentLength ?? Infinity) < csvSize / 2, `stored ${csv.ContentLength} bytes for ${csvSize}`);
  const big = await head(`${prefix}data/big.jsonl`);
  assert.equal(big.Metadata?.['trainctl-encoding'], 'gzip');
  assert.ok((big.ContentLength ?? Infinity) < bigText.length, 'the large text file is stored compressed');
  assert.match(big.ETag ?? '', /-2"$/, 'its compressed body went up in 2 parts');
  assert.equal((await head(`${prefix}notes.txt`)).Metadata?.['trainctl-encoding'], 'gzip', 'an empty text file round-trips compressed too');
  const bin = await head(`${prefix}weights.bin`);
  assert.equal(bin.Metadata?.['trainctl-encoding'], undefined, 'a non-text file is stored as it is');
  assert.equal(bin.ContentLength, 256 * 1024);

  const dst = tempDir('gz-dst');
  const down = await runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, destination: { kind: 'local', path: dst } });
  assert.equal(down.verified, 4, 'every file was checked against the checksum of its original bytes');
  assert.deepEqual(treeDigests(dst), treeDigests(src));

  const again = await runTransfer({
    source: { kind: 'local', path: src },
    destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
    compress: 'gzip',
    partSizeMiB: 5,
    sync: true,
  });
  assert.deepEqual({ bytes: again.bytes, skipped: again.skipped }, { bytes: 0, skipped: 4 }, 'a sync of compressed objects skips identical files');
  const downAgain = await runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, destination: { kind: 'local', path: dst }, sync: true });
  assert.deepEqual({ bytes: downAgain.bytes, skipped: downAgain.skipped }, { bytes: 0, skipped: 4 }, 'and so does a sync download');
});

test('compressAll compresses a binary file too, and it comes back byte-identical', async () => {
  const src = tempDir('gzall-src');
  writeTree(src, { 'zeros.bin': Buffer.alloc(1024 * 1024) });
  const prefix = `gzall-${uniqueName('p')}/`;
  await runTransfer({
    source: { kind: 'local', path: src },
    destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
    compress: 'gzip',
    compressAll: true,
  });
  const h = await head(`${prefix}zeros.bin`);
  assert.equal(h.Metadata?.['trainctl-encoding'], 'gzip');
  assert.ok((h.ContentLength ?? Infinity) < 64 * 1024);
  const dst = tempDir('gzall-dst');
  await runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${prefix}zeros.bin` }, destination: { kind: 'local', path: join(dst, 'zeros.bin') } });
  assert.deepEqual(treeDigests(dst), treeDigests(src));
});

test('zstd round-trips where node:zlib has it, and elsewhere is refused with InvalidInput saying so before anything is written', async () => {
  const src = tempDir('zstd-src');
  writeTree(src, { 'a.txt': 'aaaa'.repeat(1000) });
  const prefix = `zstd-${uniqueName('p')}/`;
  if (encodingAvailable('zstd')) {
    await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, compress: 'zstd' });
    const h = await head(`${prefix}a.txt`);
    assert.equal(h.Metadata?.['trainctl-encoding'], 'zstd');
    const dst = tempDir('zstd-dst');
    await runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, destination: { kind: 'local', path: dst } });
    assert.deepEqual(treeDigests(dst), treeDigests(src));
    return;
  }
  const err = await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, compress: 'zstd' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
  assert.equal(err.cause.type, 'InvalidInput');
  assert.match(err.cause.message, /zstd.*node:zlib/);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  assert.equal(listed.KeyCount ?? 0, 0, 'nothing was uploaded');
});

test('a compressed multipart upload killed with SIGKILL resumes on restart without re-sending finished parts, and decodes byte-identical', async (t) => {
  const key = `gz-killed-${uniqueName('k')}/shard.txt`;
  // The host's S3 requests go through the fault proxy, every part of this key slowed down.
  const proxy = await emulatorProxy(services.env);
  await proxy.setRules([{ op: 'UploadPart', fault: 'latency', keyPrefix: key, latencyMs: 300 }]);
  const host = await startHostWorker(services.env, { extraEnv: { AWS_ENDPOINT_URL: proxy.endpoint } });
  // 40 MiB of hex text gzips to about 22 MiB: 5 parts of 5 MiB.
  const text = randomBytes(20 * MiB).toString('hex');
  writeTree(host.root, { 'corpus/shard.txt': text });
  const handle = await transferApi.start(
    client,
    {
      source: { kind: 'host', hostId: host.hostId, path: 'corpus/shard.txt' },
      destination: { kind: 's3', uri: `s3://${bucket}/${key}` },
      compress: 'gzip',
      partSizeMiB: 5,
      concurrency: 1,
      heartbeatTimeoutSeconds: 10,
    },
    { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer-gz-kill') },
  );
  // Compressing 40 MiB comes first and takes a while on a loaded machine: wait for what S3 stored, however long.
  await waitUntil(async () => (dataRequests(await proxy.log(), key).filter(succeeded).length >= 2 ? true : undefined), 240_000, '2 parts stored');
  await host.kill('SIGKILL');
  const atKill = await proxy.log();
  const doneBeforeKill = new Set(
    dataRequests(atKill, key)
      .filter(succeeded)
      .map((e) => e.partNumber),
  );
  await host.restart();
  await handle.result();
  const h = await head(key);
  const parts = Number(/-(\d+)"$/.exec(h.ETag ?? '')?.[1]);
  const afterRestart = dataRequests((await proxy.log()).slice(atKill.length), key).map((e) => ({ part: e.partNumber }));
  t.diagnostic(`gzip upload: ${doneBeforeKill.size}/${parts} parts done at SIGKILL; UploadPart calls after restart: ${afterRestart.length}`);
  assert.ok(parts >= 4, `the compressed body went up in ${parts} parts`);
  assert.equal(h.Metadata?.['trainctl-encoding'], 'gzip');
  assert.deepEqual(
    afterRestart.filter((l) => doneBeforeKill.has(l.part)),
    [],
    'no part finished before the kill was sent again',
  );
  assert.ok(afterRestart.length <= parts - doneBeforeKill.size + 1, `UploadPart calls after restart: ${afterRestart.length}`);

  const dst = tempDir('gz-kill-dst');
  await runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${key}` }, destination: { kind: 'local', path: join(dst, 'shard.txt') } });
  assert.equal(
    createHash('sha256')
      .update(readFileSync(join(dst, 'shard.txt')))
      .digest('hex'),
    createHash('sha256').update(text).digest('hex'),
  );
});
