import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startWorker, uniqueName, type TestServices, type RunningWorker } from './helpers/harness.js';
import { emulatorProxy } from './helpers/proxy.js';
import { waitFor } from './helpers/wait.js';
import { bytesReadBy } from './helpers/throttle.js';
import { objectMeta } from '../src/transfer/object-meta.js';
import { fileChecksum } from '../src/transfer/checksum.js';
import { awsClientsFor } from '../src/worker.js';
import type { FaultProxy } from '../src/dev/fault-proxy.js';
import { MiB, randomData, tempDir, treeDigests, writeTree, transferSuite, type TransferSuite, failureOf } from './helpers/transfer.js';
import type { TransferReport, TransferRequest } from '../src/contracts/transfer.js';
import * as transferApi from '../src/api/transfer.js';
import { run as runCli } from '../src/cli/main.js';

let suite: TransferSuite;
let services: TestServices;
let client: Client;
let worker: RunningWorker;
let slowWorker: RunningWorker;
let s3: S3Client;
let bucket: string;
let proxy: FaultProxy;

before(async () => {
  suite = await transferSuite('tx');
  ({ services, client, worker, s3, bucket } = suite);
  // A worker whose S3 requests go through the fault proxy, every part and range delayed, so a test
  // can act while a transfer is in the middle; the proxy's log says which were sent.
  proxy = await emulatorProxy(services.env);
  await proxy.setRules(['UploadPart', 'GetObject'].map((op) => ({ op, fault: 'latency' as const, latencyMs: 700 })));
  slowWorker = await startWorker({ ...services, deps: awsClientsFor({ ...services.env, AWS_ENDPOINT_URL: proxy.endpoint }) });
});

/** Parts and ranges the slow worker has asked for so far. */
async function partsStarted(): Promise<number> {
  return (await proxy.log()).filter((e) => e.op === 'UploadPart' || (e.op === 'GetObject' && e.range)).length;
}

function runTransfer(request: TransferRequest, taskQueue = worker.taskQueue): Promise<TransferReport> {
  return suite.run(request, taskQueue);
}

test('a tree with nested folders, empty files, Unicode names and a 5-part file goes Local → S3 → Local byte-identical and verified', async () => {
  const src = tempDir('rt-src');
  const dst = tempDir('rt-dst');
  writeTree(src, {
    'a.txt': 'hello',
    'empty.bin': '',
    'nested/deeper/deepest/config.json': '{"lr":0.001}',
    'nested/also-empty.txt': '',
    'ünïcødé/日本語 ファイル.txt': 'こんにちは',
    'big/weights.bin': randomData(22 * MiB),
  });
  const prefix = `rt-${uniqueName('p')}/`;
  const up = await runTransfer({
    source: { kind: 'local', path: src },
    destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
    partSizeMiB: 5,
    concurrency: 3,
  });
  assert.equal(up.files, 6);
  assert.equal(up.verified, 6);
  assert.equal(up.bytes, 22 * MiB + 5 + 12 + 15);
  const big = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}big/weights.bin`, ChecksumMode: 'ENABLED' }));
  assert.match(big.ETag ?? '', /-5"$/, 'the large file went up as a 5-part multipart upload');
  assert.equal(objectMeta(big).checksum, (await fileChecksum(join(src, 'big/weights.bin'), 5 * MiB)).checksum, "S3's composite SHA-256 is the file's checksum");

  const down = await runTransfer({
    source: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
    destination: { kind: 'local', path: join(dst, 'copy') },
    concurrency: 3,
  });
  assert.equal(down.files, 6);
  assert.equal(down.verified, 6, 'every downloaded file was checked against its upload checksum');
  assert.deepEqual(treeDigests(join(dst, 'copy')), treeDigests(src));
});

test("a file goes up read once: hashed as it is sent, its checksum is S3's own SHA-256 of the object, and a download verifies by it", async () => {
  const src = tempDir('read-once');
  const size = 32 * MiB + 123;
  writeTree(src, { 'w.bin': randomData(size) });
  const prefix = `once-${uniqueName('p')}/`;
  const before = bytesReadBy(process.pid);
  const up = await runTransfer({
    source: { kind: 'local', path: src },
    destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
    partSizeMiB: 5,
    concurrency: 3,
  });
  const read = bytesReadBy(process.pid) - before;
  assert.equal(up.verified, 1);
  // The worker runs in this process: everything it read, the file and its sockets, is counted once.
  assert.ok(read >= size && read < 1.5 * size, `the upload read ${read} bytes for a ${size}-byte file (a hash-first pass would read it twice)`);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}w.bin`, ChecksumMode: 'ENABLED' }));
  assert.equal(head.Metadata?.['trainctl-sha256'], undefined, 'no checksum was known when the upload began');
  assert.equal(objectMeta(head).checksum, (await fileChecksum(join(src, 'w.bin'), 5 * MiB)).checksum);
  const dst = tempDir('read-once-dst');
  const down = await runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, destination: { kind: 'local', path: dst } });
  assert.equal(down.verified, 1, 'verified against the checksum S3 reports');
  assert.deepEqual(treeDigests(dst), treeDigests(src));
});

test('file activities are scheduled with the longTransfer profile: startToClose, scheduleToClose bounding the retries, heartbeat timeout, retry with maximumInterval and the non-retryable kinds', async () => {
  const src = tempDir('profile');
  writeTree(src, { 'one.txt': 'one' });
  const workflowId = uniqueName('transfer');
  await transferApi.execute(
    client,
    {
      source: { kind: 'local', path: join(src, 'one.txt') },
      destination: { kind: 's3', uri: `s3://${bucket}/profile-${uniqueName('p')}/` },
      heartbeatTimeoutSeconds: 9,
    },
    { taskQueue: worker.taskQueue, workflowId },
  );
  const history = await transferApi.handle(client, workflowId).fetchHistory();
  const scheduled = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes).filter((a) => a?.activityType?.name === 'transferUpload');
  assert.equal(scheduled.length, 1);
  const a = scheduled[0]!;
  const seconds = (d: { seconds?: unknown } | null | undefined) => Number(d?.seconds ?? 0);
  assert.equal(seconds(a.startToCloseTimeout), 24 * 3600, 'startToClose from longTransfer');
  assert.equal(seconds(a.heartbeatTimeout), 9, 'the request may shorten the heartbeat timeout');
  assert.equal(seconds(a.retryPolicy?.maximumInterval), 30);
  assert.equal(seconds(a.scheduleToCloseTimeout), 48 * 3600, 'retries are bounded by time: a store away for a day is waited out');
  assert.ok(!a.retryPolicy?.maximumAttempts, 'no attempt count: unclassified failures are bounded by the activity (MAX_UNKNOWN_ATTEMPTS)');
  for (const kind of ['InvalidInput', 'Integrity', 'NotFound', 'PermissionDenied'])
    assert.ok(a.retryPolicy?.nonRetryableErrorTypes?.includes(kind), `${kind} is not retried`);
});

test('a single file goes to an exact key and back to an exact path', async () => {
  const src = tempDir('single');
  writeTree(src, { 'model.pt': 'weights' });
  const key = `single-${uniqueName('k')}/renamed.pt`;
  await runTransfer({ source: { kind: 'local', path: join(src, 'model.pt') }, destination: { kind: 's3', uri: `s3://${bucket}/${key}` } });
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  assert.equal(await got.Body?.transformToString(), 'weights');
  const report = await runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${key}` }, destination: { kind: 'local', path: join(src, 'back.pt') } });
  assert.equal(report.files, 1);
  assert.deepEqual(treeDigests(src)['back.pt'], treeDigests(src)['model.pt']);
});

test('an object changed in S3 after upload fails the download with kind Integrity and leaves no file behind', async () => {
  const src = tempDir('tamper-src');
  const dst = tempDir('tamper-dst');
  writeTree(src, { 'data.bin': randomData(64 * 1024), 'ok.txt': 'fine' });
  const prefix = `tamper-${uniqueName('p')}/`;
  await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` } });
  const key = `${prefix}data.bin`;
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  // Other bytes under the checksum trainctl recorded for the first ones, written into the metadata as an upload that hashes first writes it.
  const Metadata = { ...head.Metadata, 'trainctl-sha256': objectMeta(head).checksum ?? '' };
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomData(64 * 1024), Metadata }));

  const failure = await failureOf(
    runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${key}` }, destination: { kind: 'local', path: join(dst, 'data.bin') } }),
  );
  assert.equal(failure.type, 'Integrity');
  assert.match(failure.message, /data\.bin/, 'the failure names the file');
  assert.deepEqual(readdirSync(dst), [], 'neither the file nor its temp file is left in the destination');
});

test('a key ../../escape.txt in the bucket is refused with InvalidInput before anything is written', async () => {
  const base = tempDir('escape');
  const prefix = `trav-${uniqueName('p')}/`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}good.txt`, Body: 'good' }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}../../escape.txt`, Body: 'evil' }));
  const dst = join(base, 'a', 'b', 'dst');
  const failure = await failureOf(runTransfer({ source: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, destination: { kind: 'local', path: dst } }));
  assert.equal(failure.type, 'InvalidInput');
  assert.match(failure.message, /\.\.\/\.\.\/escape\.txt/);
  assert.deepEqual(treeDigests(base), {}, 'nothing was written, inside or outside the destination');
  assert.equal(existsSync(join(base, 'a', 'escape.txt')), false);
});

test('a second run of the same sync transfers 0 bytes, skips every file, and the CLI says so', async () => {
  const src = tempDir('sync-src');
  const dst = tempDir('sync-dst');
  writeTree(src, { 'x/1.txt': 'one', 'x/2.txt': 'two', empty: '', 'blob.bin': randomData(300 * 1024) });
  const uri = `s3://${bucket}/sync-${uniqueName('p')}/`;
  const first = await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri }, sync: true });
  assert.equal(first.skipped, 0);
  assert.ok(first.bytes > 0);
  const second = await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri }, sync: true });
  assert.deepEqual({ files: second.files, bytes: second.bytes, skipped: second.skipped }, { files: 4, bytes: 0, skipped: 4 });

  const downFirst = await runTransfer({ source: { kind: 's3', uri }, destination: { kind: 'local', path: dst }, sync: true });
  assert.equal(downFirst.skipped, 0);
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  let code: number;
  try {
    code = await runCli(['transfer', uri, dst, '--sync'], {
      ...process.env,
      TRAINCTL_TASK_QUEUE: worker.taskQueue,
      TEMPORAL_ADDRESS: services.env.TEMPORAL_ADDRESS,
      AWS_ENDPOINT_URL: services.env.AWS_ENDPOINT_URL,
    });
  } finally {
    console.log = log;
  }
  assert.equal(code, 0, lines.join('\n'));
  const out = lines.join('\n');
  assert.match(out, /0 B transferred/, out);
  assert.match(out, /4 skipped \(already identical\)/, out);
});

test('a dry run plans the transfer and writes nothing', async () => {
  const src = tempDir('dry');
  writeTree(src, { 'keep.txt': 'k', 'logs/skip.log': 'l', 'sub/also.txt': 'a' });
  const prefix = `dry-${uniqueName('p')}/`;
  const report = await runTransfer({
    source: { kind: 'local', path: src },
    destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
    dryRun: true,
    exclude: ['*.log'],
  });
  assert.equal(report.dryRun, true);
  assert.deepEqual(report.planned?.map((p) => p.to).sort(), [`s3://${bucket}/${prefix}keep.txt`, `s3://${bucket}/${prefix}sub/also.txt`]);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}keep.txt` })).then(
    () => true,
    () => false,
  );
  assert.equal(head, false);
});

test('cancelling mid-upload aborts the multipart upload, and cancelling mid-download leaves no temp file', async () => {
  const src = tempDir('cancel-src');
  const dst = tempDir('cancel-dst');
  // 16 parts of 0.7 s each: long enough for progress to reach the server in a heartbeat (every
  // 80 % of the 3 s heartbeat timeout) and for the cancel to follow while parts still move.
  writeTree(src, { 'big.bin': randomData(76 * MiB) });
  const prefix = `cancel-${uniqueName('p')}/`;
  const before = await partsStarted();
  // A cancel reaches a running activity only in the reply to a heartbeat the worker sends, at most
  // every 80 % of the heartbeat timeout: at 10 s that is 8 s, longer than this whole upload takes.
  const handle = await transferApi.start(
    client,
    {
      source: { kind: 'local', path: src },
      destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
      partSizeMiB: 5,
      concurrency: 1,
      progressIntervalMs: 100,
      heartbeatTimeoutSeconds: 3,
    },
    { taskQueue: slowWorker.taskQueue, workflowId: uniqueName('transfer-cancel') },
  );
  await waitFor(async () => (await partsStarted()) - before >= 2, { what: 'two parts to start', timeoutMs: 30_000, intervalMs: 100 });
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  assert.equal(uploads.Uploads?.length, 1, 'a multipart upload is in progress before the cancel');
  let progress = await transferApi.progress(handle);
  await waitFor(async () => (progress = await transferApi.progress(handle)).bytesDone > 0, {
    what: 'progress from the running upload',
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  assert.equal(progress.phase, 'transferring');
  assert.equal(progress.filesTotal, 1);
  assert.equal(progress.bytesTotal, 76 * MiB);
  assert.equal(progress.currentFile, 'big.bin');
  assert.ok(progress.bytesDone < 76 * MiB);
  // Progress rides on heartbeats: seconds of a running upload, and not one signal in the history.
  const history = await handle.fetchHistory();
  assert.equal((history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length, 0, 'no progress signals');
  await transferApi.cancel(handle);
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
  const left = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  assert.deepEqual(left.Uploads ?? [], [], 'no multipart upload is left behind');

  // The same file, uploaded in full, then a download cancelled half-way.
  await runTransfer({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, partSizeMiB: 5 });
  const mark = await partsStarted();
  const down = await transferApi.start(
    client,
    { source: { kind: 's3', uri: `s3://${bucket}/${prefix}` }, destination: { kind: 'local', path: dst }, concurrency: 1, heartbeatTimeoutSeconds: 3 },
    { taskQueue: slowWorker.taskQueue, workflowId: uniqueName('transfer-cancel') },
  );
  await waitFor(async () => (await partsStarted()) - mark >= 2, { what: 'two ranges to start', timeoutMs: 30_000, intervalMs: 100 });
  assert.ok(
    readdirSync(dst).some((f) => f.endsWith('.trainctl-partial')),
    'the download writes a temp file',
  );
  await transferApi.cancel(down);
  await down.result().catch(() => undefined);
  assert.deepEqual(readdirSync(dst), [], 'no temp file and no partial file are left');
});

test('a source file changed during its upload restarts that file only, and the object holds the new bytes', async () => {
  const src = tempDir('changed');
  writeTree(src, { 'grows.bin': randomData(15 * MiB), 'steady.txt': 'steady' });
  const prefix = `changed-${uniqueName('p')}/`;
  const mark = await partsStarted();
  const handle = await transferApi.start(
    client,
    {
      source: { kind: 'local', path: src },
      destination: { kind: 's3', uri: `s3://${bucket}/${prefix}` },
      partSizeMiB: 5,
      concurrency: 1,
      heartbeatTimeoutSeconds: 10,
    },
    { taskQueue: slowWorker.taskQueue, workflowId: uniqueName('transfer-changed') },
  );
  await waitFor(async () => (await partsStarted()) - mark >= 2, { what: 'the upload to start', timeoutMs: 30_000, intervalMs: 100 });
  appendFileSync(join(src, 'grows.bin'), randomData(1024));
  const report = (await handle.result()) as TransferReport;
  assert.equal(report.files, 2);
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}grows.bin` }));
  const bytes = await got.Body!.transformToByteArray();
  assert.equal(
    createHash('sha256').update(bytes).digest('hex'),
    createHash('sha256')
      .update(readFileSync(join(src, 'grows.bin')))
      .digest('hex'),
    'the object is the file as it is now, not a mix',
  );
  const left = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  assert.deepEqual(left.Uploads ?? [], [], 'the upload of the old version was aborted');
});

test('trainctl transfer --watch draws a progress bar from the progress query and prints the summary', async () => {
  const src = tempDir('watch');
  writeTree(src, { 'w.bin': randomData(16 * MiB) });
  const uri = `s3://${bucket}/watch-${uniqueName('p')}/`;
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const write = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await runCli(['transfer', src, uri, '--watch', '--part-size-mib', '5', '--concurrency', '1'], {
      ...process.env,
      TRAINCTL_TASK_QUEUE: slowWorker.taskQueue,
      TEMPORAL_ADDRESS: services.env.TEMPORAL_ADDRESS,
      AWS_ENDPOINT_URL: services.env.AWS_ENDPOINT_URL,
    });
  } finally {
    console.log = log;
    process.stderr.write = write;
  }
  assert.equal(code, 0, err.join(''));
  const bars = err
    .join('')
    .split(/[\r\n]/)
    .filter((l) => /^\[[#.]{30}\]/.test(l));
  assert.ok(bars.length >= 2, `progress lines: ${JSON.stringify(bars)}`);
  assert.ok(
    bars.some((l) => /w\.bin/.test(l)),
    'the bar names the current file',
  );
  assert.match(out.join('\n'), /1 files, 16\.0 MiB transferred in [\d.]+ s \([\d.]+ MiB\/s\); 0 skipped \(already identical\); 1 verified by checksum/);
});
