import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { CreateMultipartUploadCommand, GetObjectCommand, ListMultipartUploadsCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { awsClientsFor } from '../src/worker.js';
import { createS3Client } from '../src/aws/clients.js';
import type { FaultProxy } from '../src/dev/fault-proxy.js';
import * as transferApi from '../src/api/transfer.js';
import { startWorker, testClient, testServices, uniqueName, type RunningWorker, type TestServices } from './helpers/harness.js';
import { emulatorProxy } from './helpers/proxy.js';
import { waitFor } from './helpers/wait.js';
import { MiB, tempDir, testBucket, writeTree } from './helpers/transfer.js';

let services: TestServices;
let client: Client;
let s3: S3Client;
let proxy: FaultProxy;
let worker: RunningWorker;
let bucket: string;

before(async () => {
  services = await testServices();
  client = await testClient(services.env);
  s3 = createS3Client(services.env);
  bucket = await testBucket(s3, 'orphan');
  proxy = await emulatorProxy(services.env);
  // One SDK attempt per call, through the proxy: the lost reply reaches trainctl, and Temporal retries.
  const viaProxy = { ...services.env, AWS_ENDPOINT_URL: proxy.endpoint };
  worker = await startWorker({ ...services, deps: { ...awsClientsFor(viaProxy, { maxAttempts: 1 }), throttleBackoff: { baseMs: 100, maxMs: 1_000 } } });
});

async function openUploads(prefix: string): Promise<{ key: string; uploadId: string }[]> {
  const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (res.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}

test(
  'a multipart upload whose CreateMultipartUpload reply was lost leaves no upload open once the file is complete, and uploads of the key by other writers (older, or holding parts) are left alone',
  { timeout: 120_000 },
  async () => {
    const src = tempDir('orphan-src');
    const data = randomBytes(11 * MiB);
    writeTree(src, { 'model.bin': data });
    const key = `${uniqueName('orphan')}/model.bin`;
    // Someone else's upload of the same key, started before this transfer: not the transfer's to abort.
    const foreign = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    // Parts are slowed so that another writer can start an upload of the key while this one runs.
    await proxy.setRules([
      { op: 'CreateMultipartUpload', fault: 'lostResponse', times: 1 },
      { op: 'UploadPart', fault: 'latency', latencyMs: 3_000 },
    ]);
    await proxy.clearLog();
    const handle = await transferApi.start(
      client,
      { source: { kind: 'local', path: `${src}/model.bin` }, destination: { kind: 's3', uri: `s3://${bucket}/${key}` }, partSizeMiB: 5, concurrency: 1 },
      { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer-orphan') },
    );
    await waitFor(async () => (await proxy.log()).some((e) => e.op === 'UploadPart'), { what: "the transfer's first part", timeoutMs: 60_000 });
    // Another writer's upload of the same key, begun during the transfer and holding a part: never the transfer's to abort.
    const during = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: during.UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }));
    await handle.result();
    await proxy.setRules([]);
    const creates = (await proxy.log()).filter((e) => e.op === 'CreateMultipartUpload');
    assert.equal(creates[0]?.fault, 'lostResponse', 'the first CreateMultipartUpload reached the emulator and its reply was dropped');
    assert.equal(creates.length, 2, 'the retry started a second upload');
    assert.deepEqual(
      (await openUploads(key)).sort((a, b) => a.uploadId.localeCompare(b.uploadId)),
      [
        { key, uploadId: foreign.UploadId! },
        { key, uploadId: during.UploadId! },
      ].sort((a, b) => a.uploadId.localeCompare(b.uploadId)),
      'the upload whose reply was lost was aborted; the one begun before the transfer, and the one holding another writer’s part, are still open',
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assert.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(data).digest('hex'));
  },
);
