import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { MiB, randomData, tempDir, transferSuite, writeTree, type TransferSuite } from './helpers/transfer.js';
import { ec2For, uniqueName } from './helpers/harness.js';
import { volumeJanitor, volumesNamed } from './helpers/volumes.js';
import { runProcess } from './helpers/cli.js';

let suite: TransferSuite;

before(async () => {
  suite = await transferSuite('ex');
});

/** Runs `npx tsx examples/FILE ARGS` as a user would: its own process, only the documented environment. */
const runExample = (file: string, args: string[], env: Record<string, string>) => runProcess('npx', ['tsx', join('examples', file), ...args], env, 150_000);

test(
  'examples/client.ts provisions a volume, uploads with live progress, reads the cost and cancels a second transfer — run with npx tsx',
  { timeout: 180_000 },
  async () => {
    const { services, worker, s3, bucket } = suite;
    const track = volumeJanitor(ec2For(services.env));
    const name = track(uniqueName('example-vol'));
    const folder = tempDir('example-src');
    // Big enough that the second transfer is still running when the example cancels it.
    writeTree(folder, { 'a.txt': 'hello', 'nested/b.bin': randomData(200 * MiB) });
    const project = uniqueName('exproj');
    const r = await runExample('client.ts', ['--bucket', bucket, '--folder', folder, '--project', project, '--name', name], {
      TEMPORAL_ADDRESS: services.env.TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE: services.env.TEMPORAL_NAMESPACE,
      TRAINCTL_TASK_QUEUE: worker.taskQueue,
    });
    assert.equal(r.code, 0, `exit 0:\n${r.stdout}\n${r.stderr}`);
    const volumes = await volumesNamed(ec2For(services.env), name);
    assert.equal(volumes.length, 1);
    assert.match(r.stdout, new RegExp(`volume ${volumes[0]!.VolumeId} created`));
    assert.match(r.stdout, /progress: \w+/, 'a progress line from the progress query');
    assert.match(r.stdout, /uploaded 2 files, \d+ bytes .* \(2 verified\)/);
    assert.match(r.stdout, new RegExp(`project ${project}: 1 resources running`));
    assert.match(r.stdout, /second transfer cancelled: transfer\//);
    const uploaded = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'example/upload/' }));
    assert.equal(uploaded.KeyCount, 2);
    const left = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'example/cancelled/' }));
    assert.deepEqual(left.Uploads ?? [], [], 'the cancelled transfer left no multipart upload');
    assert.doesNotMatch(r.stderr, /NodeVersionSupportWarning/);
  },
);
