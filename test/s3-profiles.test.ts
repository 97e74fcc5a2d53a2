/**
 * Another S3-compatible store as a first-class location: versitygw (a real S3 server that checks
 * credentials) reached by AWS profile (`s3://PROFILE@BUCKET/KEY`), next to moto in the same
 * transfers. The profiles live in a shared config and credentials file of this test only.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { ZodError } from 'zod';
import { onCleanup, startWorker, testClient, testServices, uniqueName, type RunningWorker, type TestServices } from './helpers/harness.js';
import { MiB, failureOf, tempDir, testBucket, treeDigests, writeTree } from './helpers/transfer.js';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process.js';
import { waitUntil } from './helpers/run-evidence.js';
import { startVersitygw, type VersityGw } from '../src/dev/versitygw.js';
import { startFaultProxy, type FaultProxy } from '../src/dev/fault-proxy.js';
import { createS3Client } from '../src/aws/clients.js';
import { checkProfileReach, loadProfile } from '../src/aws/profiles.js';
import { loadEnv, type Env } from '../src/config.js';
import * as transferApi from '../src/api/transfer.js';
import * as cleanupApi from '../src/api/cleanup.js';
import type { TransferRequest } from '../src/contracts/transfer.js';
import { ErrorKind } from '../src/errors/kinds.js';
import { objectMeta } from '../src/transfer/object-meta.js';
import { fileChecksum } from '../src/transfer/checksum.js';

const accessKey = `AKTEST${randomBytes(6).toString('hex').toUpperCase()}`;
const secretKey = randomBytes(24).toString('base64url');

let services: TestServices;
let client: Client;
let env: Env;
let gw: VersityGw;
let proxy: FaultProxy;
let lab: S3Client;
let moto: S3Client;
let worker: RunningWorker;
let labBucket: string;
let motoBucket: string;
let configDir: string;
let gwData: string;
const workflowIds: string[] = [];

/** A shared config with the lab store under several names: direct, through the fault proxy, with a wrong secret, and one reaching AWS itself. */
function writeProfiles(dir: string): { configFile: string; credentialsFile: string } {
  const configFile = join(dir, 'config');
  const credentialsFile = join(dir, 'credentials');
  const store = (name: string, endpoint: string) => `[profile ${name}]\nregion = us-east-1\nendpoint_url = ${endpoint}\ns3 =\n    addressing_style = path\n`;
  writeFileSync(
    configFile,
    [
      store('lab', gw.endpoint),
      store('labslow', proxy.endpoint),
      store('badlab', gw.endpoint),
      store('motoalias', services.env.AWS_ENDPOINT_URL!),
      '[profile awsreal]\nregion = us-east-1\n',
    ].join('\n'),
    { mode: 0o600 },
  );
  const creds = (name: string, secret: string) => `[${name}]\naws_access_key_id = ${accessKey}\naws_secret_access_key = ${secret}\n`;
  writeFileSync(
    credentialsFile,
    [creds('lab', secretKey), creds('labslow', secretKey), creds('badlab', `${secretKey}x`), creds('motoalias', 'testing'), creds('awsreal', secretKey)].join(
      '\n',
    ),
    { mode: 0o600 },
  );
  return { configFile, credentialsFile };
}

before(async () => {
  services = await testServices();
  client = await testClient(services.env);
  gwData = tempDir('vgw-data');
  gw = await startVersitygw({ dataDir: gwData, accessKey, secretKey });
  onCleanup(() => gw.stop());
  proxy = await startFaultProxy(gw.endpoint);
  onCleanup(() => proxy.stop());
  configDir = tempDir('aws-config');
  const files = writeProfiles(configDir);
  env = loadEnv({
    TEMPORAL_ADDRESS: services.env.TEMPORAL_ADDRESS,
    AWS_ENDPOINT_URL: services.env.AWS_ENDPOINT_URL,
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: files.configFile,
    AWS_SHARED_CREDENTIALS_FILE: files.credentialsFile,
  });
  worker = await startWorker({ env, bundlePath: services.bundlePath });
  lab = new S3Client({ region: 'us-east-1', endpoint: gw.endpoint, forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
  onCleanup(() => lab.destroy());
  labBucket = uniqueName('lab').toLowerCase();
  await lab.send(new CreateBucketCommand({ Bucket: labBucket }));
  moto = createS3Client(services.env);
  motoBucket = await testBucket(moto, 'prof');
});

async function run(request: TransferRequest, taskQueue = worker.taskQueue) {
  const workflowId = uniqueName('transfer');
  workflowIds.push(workflowId);
  return transferApi.execute(client, request, { taskQueue, workflowId });
}

async function body(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/**
 * Kills the worker once versitygw has stored two parts (the proxy's log says), restarts it, and
 * checks from that log that no stored part was sent again and all ten arrived.
 */
async function killAfterTwoParts(w: WorkerProcess, handle: transferApi.StartedTransferHandle) {
  const partsDone = async () => (await proxy.log()).filter((e) => e.op === 'UploadPart' && e.status === 200).map((e) => e.partNumber);
  await waitUntil(async () => ((await partsDone()).length >= 2 ? true : undefined), 120_000, 'two parts stored on versitygw');
  await w.kill('SIGKILL');
  const before = await partsDone();
  await w.restart();
  const report = await handle.result();
  const after = (await partsDone()).slice(before.length);
  for (const n of before) assert.ok(!after.includes(n), `part ${n} was stored before the kill and not sent again (after: ${after.join(',')})`);
  assert.equal(new Set([...before, ...after]).size, 10, 'all ten parts stored');
  return { before, report };
}

test('a profile is read as the AWS CLI reads it; a missing one, or one that would reach AWS from an emulator worker, is refused by name', async () => {
  const files = { configFile: join(configDir, 'config'), credentialsFile: join(configDir, 'credentials') };
  const p = await loadProfile('lab', files);
  assert.deepEqual([p.region, p.endpoint, p.forcePathStyle, p.checksums], ['us-east-1', gw.endpoint, true, 'sha256']);
  await assert.rejects(loadProfile('nosuchprofile', files), (e: Error) => e.message.includes('AWS profile "nosuchprofile" is not in'));
  const real = await loadProfile('awsreal', files);
  assert.throws(() => checkProfileReach(real, 'emulator'), /AWS profile "awsreal" would reach AWS itself .*TRAINCTL_AWS=real/);
  assert.doesNotThrow(() => checkProfileReach(real, 'real'));
  assert.doesNotThrow(() => checkProfileReach(p, 'emulator'));
});

test('a folder goes to versitygw by profile and comes back byte-identical, verified', { timeout: 180_000 }, async () => {
  const src = tempDir('prof-src');
  writeTree(src, { 'big.bin': randomBytes(12 * MiB), 'small/a.txt': 'alpha\n', 'small/b.json': '{"b":1}\n', 'empty.dat': '' });
  const up = await run({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://lab@${labBucket}/round/` }, partSizeMiB: 5 });
  assert.equal(up.files, 4);
  assert.equal(up.verified, 4);
  const listed = await lab.send(new ListObjectsV2Command({ Bucket: labBucket, Prefix: 'round/' }));
  assert.deepEqual((listed.Contents ?? []).map((o) => o.Key).sort(), ['round/big.bin', 'round/empty.dat', 'round/small/a.txt', 'round/small/b.json']);
  assert.deepEqual(await body(lab, labBucket, 'round/small/a.txt'), Buffer.from('alpha\n'), 'the object is on versitygw itself');
  const back = tempDir('prof-back');
  const down = await run({ source: { kind: 's3', uri: `s3://lab@${labBucket}/round/` }, destination: { kind: 'local', path: `${back}/` } });
  assert.equal(down.verified, 4);
  assert.deepEqual(treeDigests(back), treeDigests(src));
});

test(
  "a file goes to versitygw hashed while sending: its checksum is the store's SHA-256 of it, and bytes that rot on the store's disk fail the download with Integrity",
  { timeout: 180_000 },
  async () => {
    const src = tempDir('prof-rot');
    writeTree(src, { 'w.bin': randomBytes(11 * MiB), 'small.bin': randomBytes(300_000) });
    await run({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://lab@${labBucket}/rot/` }, partSizeMiB: 5 });
    for (const [key, parts] of [
      ['w.bin', 3],
      ['small.bin', 1],
    ] as const) {
      const head = await lab.send(new HeadObjectCommand({ Bucket: labBucket, Key: `rot/${key}`, ChecksumMode: 'ENABLED' }));
      assert.equal(head.Metadata?.['trainctl-sha256'], undefined, `${key}: no checksum was known when the upload began`);
      assert.equal(head.ChecksumType, parts > 1 ? 'COMPOSITE' : 'FULL_OBJECT');
      assert.equal(objectMeta(head).checksum, (await fileChecksum(join(src, key), 5 * MiB)).checksum, `${key}: S3's SHA-256 is trainctl's checksum`);
    }
    // One byte flipped in each object's file under versitygw's POSIX backend: the store still reports the old SHA-256.
    for (const key of ['w.bin', 'small.bin']) {
      const onDisk = join(gwData, labBucket, 'rot', key);
      const bytes = readFileSync(onDisk);
      const at = bytes.length >> 1;
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
      writeFileSync(onDisk, bytes);
    }
    for (const key of ['w.bin', 'small.bin']) {
      const dst = tempDir('prof-rot-dst');
      const failure = await failureOf(
        run({ source: { kind: 's3', uri: `s3://lab@${labBucket}/rot/${key}` }, destination: { kind: 'local', path: join(dst, key) } }),
      );
      assert.equal(failure.type, 'Integrity', `${key}: ${failure.message}`);
      assert.ok(failure.message.includes(key), failure.message);
      assert.deepEqual(readdirSync(dst), [], `${key}: nothing is left in the destination`);
    }
  },
);

test(
  'a store that reports no SHA-256 of what it keeps: the upload finds out on reading back, sends the file again with its checksum in the metadata, and hashes first from then on',
  { timeout: 180_000 },
  async () => {
    const src = tempDir('prof-nosum');
    writeTree(src, { 'a/w.bin': randomBytes(11 * MiB), 'b/next.bin': randomBytes(6 * MiB) });
    const sentBytes = async () => (await proxy.log()).filter((e) => e.op === 'UploadPart' || e.op === 'PutObject').reduce((n, e) => n + e.bytesIn, 0);
    await proxy.setRules([{ op: 'HeadObject', fault: 'dropChecksums' }]);
    try {
      await proxy.clearLog();
      const first = await run({
        source: { kind: 'local', path: join(src, 'a') },
        destination: { kind: 's3', uri: `s3://labslow@${labBucket}/nosum/a/` },
        partSizeMiB: 5,
      });
      assert.equal(first.verified, 1);
      assert.ok((await sentBytes()) > 2 * 11 * MiB, 'hashed while sending, then sent again once the read-back showed no checksum');
      await proxy.clearLog();
      const next = await run({
        source: { kind: 'local', path: join(src, 'b') },
        destination: { kind: 's3', uri: `s3://labslow@${labBucket}/nosum/b/` },
        partSizeMiB: 5,
      });
      assert.equal(next.verified, 1);
      assert.equal(await sentBytes(), 6 * MiB, 'the next file was hashed first and sent once, with no trailing checksum');
    } finally {
      await proxy.setRules([]);
    }
    for (const key of ['a/w.bin', 'b/next.bin']) {
      const head = await lab.send(new HeadObjectCommand({ Bucket: labBucket, Key: `nosum/${key}` }));
      assert.equal(head.Metadata?.['trainctl-sha256'], (await fileChecksum(join(src, key), 5 * MiB)).checksum, `${key}: the checksum is in the metadata`);
    }
  },
);

test('moto → versitygw → moto: S3 to S3 across endpoints, byte-identical, trainctl checksums carried and checked', { timeout: 240_000 }, async () => {
  const src = tempDir('prof-x');
  const text = Buffer.from('epoch,loss\n'.repeat(200_000));
  writeTree(src, { 'shard-0.bin': randomBytes(11 * MiB), 'notes/readme.md': '# data\n', 'log.csv': text });
  await run({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://${motoBucket}/x/` }, partSizeMiB: 5, compress: 'gzip' });
  // A foreign object (no trainctl metadata) goes too: its bytes are checked by size and the store's part checksums.
  const foreign = randomBytes(300_000);
  await moto.send(new PutObjectCommand({ Bucket: motoBucket, Key: 'x/foreign.bin', Body: foreign }));

  const there = await run({ source: { kind: 's3', uri: `s3://${motoBucket}/x/` }, destination: { kind: 's3', uri: `s3://lab@${labBucket}/copy/` } });
  assert.equal(there.files, 4);
  assert.equal(there.verified, 3, 'the three trainctl objects are verified by their checksum; the foreign one is not claimed verified');
  for (const key of ['shard-0.bin', 'log.csv', 'notes/readme.md']) {
    const a = await moto.send(new HeadObjectCommand({ Bucket: motoBucket, Key: `x/${key}`, ChecksumMode: 'ENABLED' }));
    const b = await lab.send(new HeadObjectCommand({ Bucket: labBucket, Key: `copy/${key}` }));
    // The source's checksum may be S3's own SHA-256 of it (hashed while sending); the copy records it in its metadata.
    assert.match(b.Metadata?.['trainctl-sha256'] ?? '', /^[0-9a-f]{64}-\d+$/, `${key}: checksum recorded`);
    assert.equal(b.Metadata?.['trainctl-sha256'], objectMeta(a).checksum, `${key}: checksum carried over`);
    assert.deepEqual(await body(lab, labBucket, `copy/${key}`), await body(moto, motoBucket, `x/${key}`), `${key}: same bytes`);
  }
  assert.equal((await lab.send(new HeadObjectCommand({ Bucket: labBucket, Key: 'copy/log.csv' }))).Metadata?.['trainctl-encoding'], 'gzip');
  assert.deepEqual(await body(lab, labBucket, 'copy/foreign.bin'), foreign);

  const again = await run({
    source: { kind: 's3', uri: `s3://lab@${labBucket}/copy/` },
    destination: { kind: 's3', uri: `s3://${motoBucket}/back/` },
    sync: true,
  });
  assert.equal(again.files, 4);
  const back = tempDir('prof-x-back');
  await run({ source: { kind: 's3', uri: `s3://${motoBucket}/back/` }, destination: { kind: 'local', path: `${back}/` } });
  const expected = treeDigests(src);
  const got = treeDigests(back);
  assert.deepEqual({ ...got, 'foreign.bin': undefined }, { ...expected, 'foreign.bin': undefined });
  assert.deepEqual(readFileSync(join(back, 'foreign.bin')), foreign);

  const resync = await run({
    source: { kind: 's3', uri: `s3://lab@${labBucket}/copy/` },
    destination: { kind: 's3', uri: `s3://${motoBucket}/back/` },
    sync: true,
  });
  assert.equal(resync.skipped, 3, 'a second sync skips the objects whose trainctl checksum matches');
});

test('an upload to versitygw whose worker is killed mid-file resumes on a new worker without re-sending a finished part', { timeout: 300_000 }, async () => {
  const src = tempDir('prof-kill');
  writeTree(src, { 'big.bin': randomBytes(50 * MiB) });
  const key = `kill/${uniqueName('big')}.bin`;
  const taskQueue = uniqueName('prof-kill');
  const extraEnv = {
    TRAINCTL_TASK_QUEUE: taskQueue,
    TRAINCTL_LOCAL_ROOTS: src,
    AWS_CONFIG_FILE: env.AWS_CONFIG_FILE!,
    AWS_SHARED_CREDENTIALS_FILE: env.AWS_SHARED_CREDENTIALS_FILE!,
  };
  const w = await startWorkerProcess(services.env, { name: 'profile worker', extraEnv });
  // Parts go through the fault proxy slowly (10 parts, a second each), so the kill lands with most of them still to send.
  await proxy.setRules([{ op: 'UploadPart', fault: 'latency', latencyMs: 1_000 }]);
  onCleanup(() => proxy.setRules([]));
  await proxy.clearLog();
  const workflowId = uniqueName('transfer');
  workflowIds.push(workflowId);
  const handle = await transferApi.start(
    client,
    {
      source: { kind: 'local', path: join(src, 'big.bin') },
      destination: { kind: 's3', uri: `s3://labslow@${labBucket}/${key}` },
      partSizeMiB: 5,
      concurrency: 1,
      heartbeatTimeoutSeconds: 10,
    },
    { taskQueue, workflowId },
  );
  const { before, report } = await killAfterTwoParts(w, handle);
  assert.equal(report.verified, 1);
  assert.ok(report.bytes <= 50 * MiB - before.length * 5 * MiB, `only the unfinished parts crossed the wire after the kill (${report.bytes} bytes)`);
  const stored = await lab.send(new HeadObjectCommand({ Bucket: labBucket, Key: key }));
  assert.equal(stored.ContentLength, 50 * MiB);
  await proxy.setRules([]);
});

test(
  'an S3 → S3 copy (moto → versitygw) whose worker is killed mid-object resumes on a new worker without re-sending a finished part',
  { timeout: 300_000 },
  async () => {
    const src = tempDir('prof-copy-kill');
    writeTree(src, { 'big.bin': randomBytes(50 * MiB) });
    await run({ source: { kind: 'local', path: join(src, 'big.bin') }, destination: { kind: 's3', uri: `s3://${motoBucket}/ck/big.bin` }, partSizeMiB: 5 });
    const key = `copykill/${uniqueName('big')}.bin`;
    const taskQueue = uniqueName('prof-copy-kill');
    const extraEnv = { TRAINCTL_TASK_QUEUE: taskQueue, AWS_CONFIG_FILE: env.AWS_CONFIG_FILE!, AWS_SHARED_CREDENTIALS_FILE: env.AWS_SHARED_CREDENTIALS_FILE! };
    const w = await startWorkerProcess(services.env, { name: 'copy worker', extraEnv });
    await proxy.setRules([{ op: 'UploadPart', fault: 'latency', latencyMs: 1_000 }]);
    onCleanup(() => proxy.setRules([]));
    await proxy.clearLog();
    const workflowId = uniqueName('transfer');
    workflowIds.push(workflowId);
    const handle = await transferApi.start(
      client,
      {
        source: { kind: 's3', uri: `s3://${motoBucket}/ck/big.bin` },
        destination: { kind: 's3', uri: `s3://labslow@${labBucket}/${key}` },
        concurrency: 1,
        heartbeatTimeoutSeconds: 10,
      },
      { taskQueue, workflowId },
    );
    const { report } = await killAfterTwoParts(w, handle);
    assert.equal(report.verified, 1, "the bytes read gave the source's trainctl checksum");
    const a = await moto.send(new HeadObjectCommand({ Bucket: motoBucket, Key: 'ck/big.bin', ChecksumMode: 'ENABLED' }));
    const b = await lab.send(new HeadObjectCommand({ Bucket: labBucket, Key: key }));
    assert.match(b.Metadata?.['trainctl-sha256'] ?? '', /^[0-9a-f]{64}-\d+$/);
    assert.equal(b.Metadata?.['trainctl-sha256'], objectMeta(a).checksum);
    assert.deepEqual(await body(lab, labBucket, key), readFileSync(join(src, 'big.bin')));
    await proxy.setRules([]);
  },
);

test(
  'S3 → S3 into its own source is refused by store, not by name: a profile that reaches the same endpoint and bucket counts',
  { timeout: 60_000 },
  async () => {
    const refused = await failureOf(
      run({ source: { kind: 's3', uri: `s3://${motoBucket}/x/` }, destination: { kind: 's3', uri: `s3://motoalias@${motoBucket}/x/again/` } }),
    );
    assert.equal(refused.type, ErrorKind.InvalidInput);
    assert.match(refused.message, /same store and bucket/);
  },
);

test(
  'a wrong secret fails at once with PermissionDenied naming the profile; an unknown profile is refused before anything is listed',
  { timeout: 120_000 },
  async () => {
    const src = tempDir('prof-bad');
    writeTree(src, { 'a.txt': 'a\n' });
    const bad = await failureOf(run({ source: { kind: 'local', path: src }, destination: { kind: 's3', uri: `s3://badlab@${labBucket}/bad/` } }));
    assert.equal(bad.type, ErrorKind.PermissionDenied);
    assert.match(bad.message, /refused the credentials of AWS profile "badlab" for bucket/);
    const attempts = (await client.workflow.getHandle(workflowIds[workflowIds.length - 1]!).fetchHistory()).events?.flatMap((e) =>
      e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : [],
    );
    assert.deepEqual(attempts, [1], 'one attempt of the store check, no retry loop');
    const none = await failureOf(run({ source: { kind: 's3', uri: 's3://nosuchprofile@b-k/k' }, destination: { kind: 'local', path: `${src}/out/` } }));
    assert.equal(none.type, ErrorKind.InvalidInput);
    assert.match(none.message, /AWS profile "nosuchprofile" is not in this worker's shared config/);
    await assert.rejects(
      transferApi.start(
        client,
        { source: { kind: 's3', uri: 's3://bad profile@b-k/k' }, destination: { kind: 'local', path: src } },
        { taskQueue: worker.taskQueue },
      ),
      (e: unknown) => e instanceof ZodError && e.issues.some((i) => i.path.join('.') === 'source.uri' && i.message.includes('s3://PROFILE@BUCKET')),
    );
  },
);

test(
  'cleanup deletes a prefix and aborts an upload on versitygw named by profile, after approval of a plan that shows them',
  { timeout: 120_000 },
  async () => {
    await lab.send(new PutObjectCommand({ Bucket: labBucket, Key: 'old/a.bin', Body: 'aa' }));
    await lab.send(new PutObjectCommand({ Bucket: labBucket, Key: 'keep/b.bin', Body: 'b' }));
    const upload = await lab.send(new CreateMultipartUploadCommand({ Bucket: labBucket, Key: 'stale/x.bin' }));
    const uploadId = `s3://lab@${labBucket}/stale/x.bin#${upload.UploadId}`;
    const workflowId = uniqueName('cleanup');
    workflowIds.push(workflowId);
    const handle = await cleanupApi.startCleanup(
      client,
      { region: 'us-east-1', selector: { kinds: ['multipart-upload', 's3-prefix'], ids: [`s3://lab@${labBucket}/old`, uploadId] }, dryRun: false },
      { taskQueue: worker.taskQueue, workflowId },
    );
    const plan = await cleanupApi.awaitPlan(handle);
    assert.ok(plan, 'a plan awaiting approval');
    const prefix = plan.resources.find((r) => r.kind === 's3-prefix');
    assert.equal(prefix?.id, `s3://lab@${labBucket}/old/`);
    assert.deepEqual(prefix?.objects, { count: 1, bytes: 2, sample: ['old/a.bin'] });
    assert.ok(plan.resources.some((r) => r.id === uploadId));
    await cleanupApi.approve(handle, plan.hash);
    const result = await handle.result();
    assert.deepEqual([...result.report.deleted].sort(), [`s3://lab@${labBucket}/old/`, uploadId].sort());
    const left = (await lab.send(new ListObjectsV2Command({ Bucket: labBucket, Prefix: 'old/' }))).Contents ?? [];
    assert.equal(left.length, 0);
    assert.equal((await lab.send(new HeadObjectCommand({ Bucket: labBucket, Key: 'keep/b.bin' }))).ContentLength, 1, 'nothing outside the prefix');
    const uploads = await lab.send(new ListMultipartUploadsCommand({ Bucket: labBucket, Prefix: 'stale/' }));
    assert.deepEqual(uploads.Uploads ?? [], []);
  },
);

test('no credential of any profile appears in the histories of these transfers', { timeout: 60_000 }, async () => {
  assert.ok(workflowIds.length >= 7, `histories to read: ${workflowIds.length}`);
  let naming = 0;
  for (const id of workflowIds) {
    const history = await client.workflow.getHandle(id).fetchHistory();
    const text = historyText(history);
    if (/lab(slow)?@/.test(text)) naming += 1;
    assert.ok(!text.includes(secretKey), `${id}: no secret key`);
    assert.ok(!text.includes(accessKey), `${id}: no access key id`);
  }
  assert.ok(naming >= 5, `the profile's name (never its credentials) is what the histories carry: ${naming}`);
});

/** Every string and every payload's bytes (as UTF-8) in a history, joined. */
function historyText(value: unknown): string {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string') out.push(v);
    else if (v instanceof Uint8Array) out.push(Buffer.from(v).toString('utf8'));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(value);
  return out.join('\n');
}
