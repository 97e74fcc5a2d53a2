import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { compressor, decompressor, encodingAvailable } from '../src/transfer/compress.js';
import { createS3Client } from '../src/aws/clients.js';
import { testServices } from './helpers/harness.js';

const major = (version: string) => Number(/^v?(\d+)/.exec(version)?.[1]);

test('the suite runs on Node 22 or newer (npm test brings Node 24 where the machine has an older one)', () => {
  assert.ok(major(process.version) >= 22, `running on ${process.version} (${process.execPath})`);
});

test("a `node` started by name from the suite is the same Node, not the machine's older one", () => {
  const r = spawnSync('node', ['-p', 'process.version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), process.version);
});

test('zstd is available and a zstd stream round-trips', async () => {
  assert.equal(encodingAvailable('zstd'), true, `node:zlib of ${process.version} has zstd`);
  const data = Buffer.from('trainctl '.repeat(10_000));
  const packed = await buffer(Readable.from([data]).pipe(compressor('zstd')));
  assert.ok(packed.length < data.length / 10, `compressed ${data.length} bytes to ${packed.length}`);
  assert.deepEqual(await buffer(Readable.from([packed]).pipe(decompressor('zstd'))), data);
});

test('an AWS SDK call emits no NodeVersionSupportWarning', async () => {
  const { env } = await testServices();
  delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const s3 = createS3Client(env);
    await s3.send(new ListBucketsCommand({}));
    s3.destroy();
    // process.emitWarning delivers on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(
    warnings.filter((w) => w.includes('NodeVersionSupportWarning')),
    [],
  );
});
