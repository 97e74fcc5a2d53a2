import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { uniqueName, type TestServices, type RunningWorker } from './helpers/harness.js';

import { startHostWorker } from './helpers/host-worker.js';
import { waitFor as pollUntil } from './helpers/wait.js';
import { dataRequests, emulatorProxy, rangeNumber, succeeded } from './helpers/proxy.js';
import type { FaultProxy, ProxyLogEntry } from '../src/dev/fault-proxy.js';
import { MiB, randomData, tempDir, treeDigests, writeTree, transferSuite, type TransferSuite } from './helpers/transfer.js';

import type { TransferReport, TransferRequest } from '../src/contracts/transfer.js';
import * as transferApi from '../src/api/transfer.js';

let suite: TransferSuite;
let services: TestServices;
let client: Client;
let worker: RunningWorker;
let s3: S3Client;
let bucket: string;

let proxy: FaultProxy;

before(async () => {
  suite = await transferSuite('txhost');
  ({ services, client, worker, s3, bucket } = suite);
  proxy = await emulatorProxy(services.env);
});

/** A host worker whose S3 requests go through the fault proxy, each data request under `keyPrefix` slowed by `latencyMs`. */
async function slowHost(keyPrefix: string, latencyMs: number) {
  await proxy.setRules(['UploadPart', 'PutObject', 'GetObject'].map((op) => ({ op, fault: 'latency' as const, keyPrefix, latencyMs })));
  return startHostWorker(services.env, { extraEnv: { AWS_ENDPOINT_URL: proxy.endpoint } });
}

/** The transfer's result; past `timeoutMs`, a failure showing its pending activities and the host worker's last output. */
async function resultOrExplain(handle: WorkflowHandle, host: { output(): string }, timeoutMs = 180_000): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void handle
        .describe()
        .then((d) =>
          JSON.stringify(
            d.raw.pendingActivities?.map((a) => ({ type: a.activityType?.name, attempt: a.attempt, state: a.state, lastFailure: a.lastFailure?.message })),
          ),
        )
        .catch((err: unknown) => String(err))
        .then((pending) =>
          reject(new Error(`the transfer did not end within ${timeoutMs} ms; pending: ${pending}; host output:\n${host.output().slice(-4_000)}`)),
        );
    }, timeoutMs);
  });
  try {
    return await Promise.race([handle.result(), late]);
  } finally {
    clearTimeout(timer);
  }
}

function runTransfer(request: TransferRequest): Promise<TransferReport> {
  return suite.run(request);
}

async function objectDigest(key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return createHash('sha256')
    .update(await out.Body!.transformToByteArray())
    .digest('hex');
}

async function keysUnder(prefix: string): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key ?? '');
}

const waitFor = (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000) => pollUntil(check, { what, timeoutMs, intervalMs: 50 });

test('local → host goes through an S3 staging prefix that is emptied, and host → S3 and host → local work from the instance root', async () => {
  const host = await startHostWorker(services.env);
  const src = tempDir('host-src');
  writeTree(src, { 'train/a.bin': randomData(200 * 1024), 'train/sub/b.txt': 'bee', 'val/empty': '', 'читать.md': '# hi' });
  const staging = `s3://${bucket}/staging-${uniqueName('s')}`;

  const toHost = await runTransfer({
    source: { kind: 'local', path: src },
    destination: { kind: 'host', hostId: host.hostId, path: 'dataset/' },
    stagingUri: staging,
  });
  assert.equal(toHost.files, 4);
  assert.equal(toHost.verified, 4);
  assert.deepEqual(treeDigests(join(host.root, 'dataset')), treeDigests(src), 'the host root holds the same bytes');
  assert.equal(toHost.stagingObjectsDeleted, 4);
  assert.deepEqual(await keysUnder(staging.slice(`s3://${bucket}/`.length)), [], 'the staging prefix is empty afterwards');

  const prefix = `from-host-${uniqueName('p')}/`;
  const toS3 = await runTransfer({
    source: { kind: 'host', hostId: host.hostId, path: 'dataset' },
    destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
  });
  assert.equal(toS3.files, 4);
  assert.equal(await objectDigest(`${prefix}train/a.bin`), treeDigests(src)['train/a.bin']);
  assert.deepEqual((await keysUnder(prefix)).sort(), ['train/a.bin', 'train/sub/b.txt', 'val/empty', 'читать.md'].map((k) => prefix + k).sort());

  const back = tempDir('host-back');
  const toLocal = await runTransfer({
    source: { kind: 'host', hostId: host.hostId, path: 'dataset' },
    destination: { kind: 'local', path: back },
    stagingUri: staging,
  });
  assert.equal(toLocal.files, 4);
  assert.deepEqual(treeDigests(back), treeDigests(src));

  const escape = await transferApi
    .execute(
      client,
      { source: { kind: 'host', hostId: host.hostId, path: '../' }, destination: { kind: 's3', uri: `s3://${bucket}/x/` } },
      { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer') },
    )
    .then(
      () => undefined,
      (e: unknown) => e as { cause?: { type?: string } },
    );
  assert.equal(escape?.cause?.type, 'InvalidInput', 'a host path outside the root is refused');
});

test('a host worker killed with SIGKILL mid-upload resumes on restart without re-sending finished parts', async (t) => {
  const key = `killed-${uniqueName('k')}/model.bin`;
  const host = await slowHost(key, 300);
  const data = randomData(40 * MiB);
  writeTree(host.root, { 'ckpt/model.bin': data });
  const parts = 8;
  const concurrency = 2;
  const handle = await transferApi.start(
    client,
    {
      source: { kind: 'host', hostId: host.hostId, path: 'ckpt/model.bin' },
      destination: { kind: 's3', uri: `s3://${bucket}/${key}` },
      partSizeMiB: 5,
      concurrency,
      heartbeatTimeoutSeconds: 10,
    },
    { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer-kill') },
  );
  // What S3 stored is read from the proxy's request log, outside the worker.
  const stored = async () => dataRequests(await proxy.log(), key).filter(succeeded);
  await waitFor('half the parts to finish', async () => (await stored()).length >= parts / 2);
  await host.kill('SIGKILL');
  const atKill = await proxy.log();
  const doneBeforeKill = new Set(
    dataRequests(atKill, key)
      .filter(succeeded)
      .map((e) => e.partNumber),
  );
  assert.ok(doneBeforeKill.size >= parts / 2 && doneBeforeKill.size < parts, `killed after ${doneBeforeKill.size} of ${parts} parts`);

  await host.restart();
  const report = (await resultOrExplain(handle, host)) as TransferReport;
  const afterRestart = dataRequests((await proxy.log()).slice(atKill.length), key).map((e) => ({ part: e.partNumber }));
  const remaining = parts - doneBeforeKill.size;
  t.diagnostic(
    `upload: ${doneBeforeKill.size}/${parts} parts done at SIGKILL; UploadPart calls after restart: ${afterRestart.length} (limit ${remaining + concurrency})`,
  );
  assert.ok(afterRestart.length >= 1, 'the restarted worker finished the upload');
  assert.ok(
    afterRestart.length <= remaining + concurrency,
    `UploadPart calls after restart: ${afterRestart.length}, parts remaining: ${remaining}, concurrency: ${concurrency}`,
  );
  assert.deepEqual(
    afterRestart.filter((l) => doneBeforeKill.has(l.part)),
    [],
    'no part finished before the kill was sent again',
  );
  assert.equal(report.files, 1);
  assert.equal(report.verified, 1);
  assert.equal(await objectDigest(key), createHash('sha256').update(data).digest('hex'), 'the object is byte-identical to the source');
});

test('a host replaced after a crash (same volume, no state folder: heartbeat details only) resumes the upload without re-sending a part the server knew of', async (t) => {
  const key = `fresh-${uniqueName('k')}/model.bin`;
  const host = await slowHost(key, 500);
  // 16 parts of half a second each: several heartbeats reach the server before the last part.
  const data = randomData(80 * MiB);
  writeTree(host.root, { 'ckpt/model.bin': data });
  const handle = await transferApi.start(
    client,
    {
      source: { kind: 'host', hostId: host.hostId, path: 'ckpt/model.bin' },
      destination: { kind: 's3', uri: `s3://${bucket}/${key}` },
      partSizeMiB: 5,
      concurrency: 1,
      // The SDK sends a heartbeat at most every 80 % of this: about every 3 s.
      heartbeatTimeoutSeconds: 4,
    },
    { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer-fresh') },
  );
  // What the server holds is all a new machine gets: wait until its checkpoint names the upload and two finished parts.
  let known: { uploadId?: string; parts?: { n: number }[] } = {};
  await waitFor('the server to hold a checkpoint with two parts', async () => {
    const payload = (await handle.describe()).raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
    known = payload ? defaultPayloadConverter.fromPayload(payload) : {};
    return !!known.uploadId && (known.parts?.length ?? 0) >= 2;
  });
  await host.kill('SIGKILL');
  const atKill = await proxy.log();
  const serverParts = new Set((known.parts ?? []).map((p) => p.n));
  const storedBeforeKill = new Set(
    dataRequests(atKill, key)
      .filter(succeeded)
      .map((e) => e.partNumber),
  );
  // The replacement: same host id, the same volume (root), but a new temp folder, so no state file of the old worker.
  const fresh = await startHostWorker(services.env, {
    hostId: host.hostId,
    root: host.root,
    extraEnv: { AWS_ENDPOINT_URL: proxy.endpoint, TMPDIR: tempDir('fresh-tmp') },
  });
  const report = (await resultOrExplain(handle, fresh)) as TransferReport;
  const afterRestart = dataRequests((await proxy.log()).slice(atKill.length), key);
  t.diagnostic(
    `fresh host: the server knew ${serverParts.size} parts, S3 had ${storedBeforeKill.size} at the kill; UploadPart calls after: ${afterRestart.map((e) => e.partNumber).join(',')}`,
  );
  assert.ok(fresh.pid() !== undefined);
  assert.ok(storedBeforeKill.size < 16 && afterRestart.length > 0, 'the kill landed mid-upload and the replacement finished it');
  // ListParts finds every part S3 stored, so none of them is sent again — not only those the heartbeat named.
  assert.deepEqual(
    afterRestart.filter((e) => storedBeforeKill.has(e.partNumber)).map((e) => e.partNumber),
    [],
    'no part stored before the kill was sent again',
  );
  assert.equal(report.verified, 1);
  assert.equal(await objectDigest(key), createHash('sha256').update(data).digest('hex'));
});

test('a host worker killed with SIGKILL mid-download resumes on restart and re-fetches at most concurrency × part size', async (t) => {
  const key = `dl-${uniqueName('k')}/shard.bin`;
  const host = await slowHost(key, 300);
  const src = tempDir('dl-src');
  const data = randomData(40 * MiB);
  writeTree(src, { 'shard.bin': data });
  await runTransfer({ source: { kind: 'local', path: join(src, 'shard.bin') }, destination: { kind: 's3', uri: `s3://${bucket}/${key}` }, partSizeMiB: 5 });
  const ranges = 8;
  const concurrency = 2;
  const handle = await transferApi.start(
    client,
    {
      source: { kind: 's3', uri: `s3://${bucket}/${key}` },
      destination: { kind: 'host', hostId: host.hostId, path: 'in/shard.bin' },
      concurrency,
      heartbeatTimeoutSeconds: 10,
    },
    { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer-kill-dl') },
  );
  // A range counts as delivered when the proxy passed on all its bytes.
  const delivered = (log: ProxyLogEntry[]) => dataRequests(log, key).filter((e) => succeeded(e) && e.bytesOut === 5 * MiB);
  await waitFor('half the ranges to finish', async () => delivered(await proxy.log()).length >= ranges / 2);
  await host.kill('SIGKILL');
  const atKill = await proxy.log();
  const doneBeforeKill = new Set(delivered(atKill).map((e) => rangeNumber(e, 5 * MiB)));
  assert.ok(doneBeforeKill.size < ranges, `killed after ${doneBeforeKill.size} of ${ranges} ranges`);

  await host.restart();
  const report = (await resultOrExplain(handle, host)) as TransferReport;
  const refetched = dataRequests((await proxy.log()).slice(atKill.length), key).filter((e) => doneBeforeKill.has(rangeNumber(e, 5 * MiB)));
  t.diagnostic(
    `download: ${doneBeforeKill.size}/${ranges} ranges done at SIGKILL; finished ranges fetched again: ${refetched.length} (${refetched.length * 5} MiB, limit ${concurrency * 5} MiB)`,
  );
  assert.ok(refetched.length * 5 * MiB <= concurrency * 5 * MiB, `re-fetched ${refetched.length} finished ranges`);
  assert.equal(report.verified, 1);
  assert.equal(
    createHash('sha256')
      .update(readFileSync(join(host.root, 'in', 'shard.bin')))
      .digest('hex'),
    createHash('sha256').update(data).digest('hex'),
  );
  assert.deepEqual(readdirSync(join(host.root, 'in')), ['shard.bin'], 'no temp or checkpoint file is left');
});

test('a host worker killed mid-way through a tree of small files resumes on restart without sending a finished file again', async (t) => {
  const prefix = `tree-${uniqueName('p')}/`;
  const host = await slowHost(prefix, 300);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 16; i++) files[`shards/part-${String(i).padStart(2, '0')}.bin`] = randomData(4096 + i);
  writeTree(host.root, files);
  const handle = await transferApi.start(
    client,
    {
      source: { kind: 'host', hostId: host.hostId, path: 'shards' },
      destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
      fileConcurrency: 2,
      heartbeatTimeoutSeconds: 10,
    },
    { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer-kill-tree') },
  );
  await waitFor('half the files to finish', async () => dataRequests(await proxy.log(), prefix).filter(succeeded).length >= 8);
  await host.kill('SIGKILL');
  const atKill = await proxy.log();
  const doneBeforeKill = new Set(
    dataRequests(atKill, prefix)
      .filter(succeeded)
      .map((e) => e.key),
  );
  assert.ok(doneBeforeKill.size < 16, `killed after ${doneBeforeKill.size} of 16 files`);

  await host.restart();
  const report = (await resultOrExplain(handle, host)) as TransferReport;
  const sentAfter = dataRequests((await proxy.log()).slice(atKill.length), prefix);
  const sentAgain = sentAfter.filter((e) => doneBeforeKill.has(e.key));
  t.diagnostic(
    `tree: ${doneBeforeKill.size}/16 files stored at SIGKILL; files sent after restart: ${sentAfter.length}; stored files sent again: ${sentAgain.length}`,
  );
  // A file stored just before the kill may not have reached the batch's record yet: at most the two in flight go again.
  assert.ok(sentAgain.length <= 2, `stored files sent again: ${sentAgain.map((e) => e.key).join(', ')}`);
  assert.ok(sentAfter.length <= 16 - doneBeforeKill.size + 2, 'at most the unfinished files (and the two in flight) after the restart');
  assert.equal(report.files, 16);
  assert.equal((await keysUnder(prefix)).length, 16);
  for (const [rel, data] of Object.entries(files))
    assert.equal(await objectDigest(prefix + rel.slice('shards/'.length)), createHash('sha256').update(data).digest('hex'), rel);
});
