import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Client } from '@temporalio/client';
import { awsClientsFor } from '../src/worker.js';
import { startFaultProxy, operationOf, type FaultProxy } from '../src/dev/fault-proxy.js';
import type { ProvisionVolumeRequest } from '../src/contracts/volume.js';
import type { TransferRequest } from '../src/contracts/transfer.js';
import { onCleanup, testServices, testClient, startWorker, uniqueName, ec2For, type TestServices, type RunningWorker } from './helpers/harness.js';
import { volumeJanitor, volumesNamed } from './helpers/volumes.js';
import { MiB, tempDir, testBucket, writeTree } from './helpers/transfer.js';
import { createS3Client } from '../src/aws/clients.js';

let services: TestServices;
let client: Client;
let ec2: EC2Client;
let s3: S3Client;
let proxy: FaultProxy;
let worker: RunningWorker;
let track: (name: string) => string;

before(async () => {
  services = await testServices();
  client = await testClient(services.env);
  ec2 = ec2For(services.env);
  s3 = createS3Client(services.env);
  track = volumeJanitor(ec2);
  proxy = await startFaultProxy(services.env.AWS_ENDPOINT_URL!);
  onCleanup(() => proxy.stop());
  // Every AWS call of this worker goes through the proxy, with one SDK attempt: Temporal retries.
  const viaProxy = { ...services.env, AWS_ENDPOINT_URL: proxy.endpoint };
  worker = await startWorker({ ...services, deps: { ...awsClientsFor(viaProxy, { maxAttempts: 1 }), throttleBackoff: { baseMs: 100, maxMs: 1_000 } } });
});

test('the proxy names S3 and EC2 operations the way the request log reports them', () => {
  const u = (s: string) => new URL(s, 'http://x');
  assert.equal(operationOf('PUT', u('/b/k/x.bin?partNumber=3&uploadId=u'), undefined).op, 'UploadPart');
  assert.equal(operationOf('POST', u('/b/k?uploads'), undefined).op, 'CreateMultipartUpload');
  assert.equal(operationOf('POST', u('/b/k?uploadId=u'), undefined).op, 'CompleteMultipartUpload');
  assert.equal(operationOf('GET', u('/b/k?uploadId=u'), undefined).op, 'ListParts');
  assert.equal(operationOf('GET', u('/b?list-type=2'), undefined).op, 'ListObjects');
  assert.deepEqual(operationOf('GET', u('/b/dir/a%20b.txt'), undefined), { op: 'GetObject', bucket: 'b', key: 'dir/a b.txt' });
  assert.equal(operationOf('POST', u('/'), new URLSearchParams('Action=CreateVolume&Size=8')).op, 'CreateVolume');
});

test('a CreateVolume whose response is lost after EC2 made the volume leaves exactly one volume, and the retry reports it', async () => {
  const name = track(uniqueName('lost-response'));
  await proxy.setRules([{ op: 'CreateVolume', fault: 'lostResponse', times: 1 }]);
  await proxy.clearLog();
  const request: ProvisionVolumeRequest = { name, region: 'us-east-1', sizeGiB: 8, availabilityZone: 'us-east-1a' };
  const result = (await client.workflow.execute('provisionVolume', {
    taskQueue: worker.taskQueue,
    workflowId: `volume/us-east-1/${name}`,
    args: [request],
  })) as {
    volumeId: string;
    created: boolean;
  };
  await proxy.setRules([]);
  const creates = (await proxy.log()).filter((e) => e.op === 'CreateVolume');
  assert.equal(creates[0]?.fault, 'lostResponse', 'the first CreateVolume reached the emulator and its reply was dropped');
  assert.equal(creates.length, 1, 'the retry found the volume by its run tag instead of creating another');
  const volumes = await volumesNamed(ec2, name);
  assert.deepEqual(
    volumes.map((v) => v.VolumeId),
    [result.volumeId],
    'exactly one volume carries the name, and it is the one the run reports',
  );
  assert.equal(result.created, true);
});

test('an upload through 503 SlowDown on some parts and a connection reset on another completes byte-identical', async () => {
  const bucket = await testBucket(s3, 'fp');
  const src = tempDir('fp-src');
  const data = randomBytes(12 * MiB);
  writeTree(src, { 'model.bin': data });
  await proxy.setRules([
    { op: 'UploadPart', fault: 'error', status: 503, code: 'SlowDown', after: 0, times: 2 },
    { op: 'UploadPart', fault: 'reset', after: 0, times: 1 },
  ]);
  await proxy.clearLog();
  const key = `fp-${uniqueName('k')}/model.bin`;
  const request: TransferRequest = {
    source: { kind: 'local', path: `${src}/model.bin` },
    destination: { kind: 's3', uri: `s3://${bucket}/${key}` },
    partSizeMiB: 5,
    concurrency: 1,
  };
  await client.workflow.execute('transfer', { taskQueue: worker.taskQueue, workflowId: uniqueName('transfer-fp'), args: [request] });
  await proxy.setRules([]);
  const parts = (await proxy.log()).filter((e) => e.op === 'UploadPart');
  assert.equal(parts.filter((e) => e.fault === 'error').length, 2, 'two parts were throttled');
  assert.equal(parts.filter((e) => e.fault === 'reset').length, 1, 'one part lost its connection');
  const delivered = new Set(parts.filter((e) => e.status === 200).map((e) => e.partNumber));
  assert.deepEqual([...delivered].sort(), [1, 2, 3], 'every part reached the server');
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  assert.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(data).digest('hex'));
});
