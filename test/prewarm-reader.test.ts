import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHostFs } from '../src/activities/host-fs.js';
import { createPrewarmActivities } from '../src/activities/prewarm.js';
import type { PrewarmDeviceResult } from '../src/contracts/prewarm.js';
import type { PrewarmCheckpoint } from '../src/prewarm/device.js';
import { readEveryBlock } from '../src/prewarm/reader.js';

const KiB = 1024;
const BLOCK = 64 * KiB;
let dir: string;
let data: Buffer;
let path: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trainctl-reader-'));
  // Not a whole number of blocks: the last read is short.
  data = randomBytes(10 * BLOCK + 1234);
  path = join(dir, 'dev.img');
  writeFileSync(path, data);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

test('the reader covers every byte of a file that is not a whole number of blocks, in order, whatever the concurrency', async () => {
  for (const concurrency of [1, 3, 32]) {
    const marks: number[] = [];
    const r = await readEveryBlock(path, {
      start: 0,
      crc: 0,
      size: data.length,
      blockSize: BLOCK,
      concurrency,
      checksum: true,
      onProgress: (w) => marks.push(w),
    });
    assert.equal(r.bytesRead, data.length);
    assert.equal(hex(r.crc), hex(crc32(data)), `concurrency ${concurrency}`);
    assert.deepEqual(marks, [...Array.from({ length: 10 }, (_, i) => (i + 1) * BLOCK), data.length], 'the watermark only moves forward, block by block');
  }
});

test('reading from a watermark with the CRC of the bytes below it gives the CRC of the whole file', async () => {
  const start = 4 * BLOCK;
  const r = await readEveryBlock(path, { start, crc: crc32(data.subarray(0, start)), size: data.length, blockSize: BLOCK, concurrency: 4, checksum: true });
  assert.equal(r.bytesRead, data.length - start);
  assert.equal(hex(r.crc), hex(crc32(data)));
});

test('an empty file is read in no time and a file shorter than its stated size fails with a short read', async () => {
  const empty = join(dir, 'empty.img');
  writeFileSync(empty, '');
  assert.deepEqual(await readEveryBlock(empty, { start: 0, crc: 0, size: 0, blockSize: BLOCK, concurrency: 8, checksum: true }), { bytesRead: 0, crc: 0 });
  await assert.rejects(readEveryBlock(path, { start: 0, crc: 0, size: data.length + BLOCK, blockSize: BLOCK, concurrency: 8, checksum: true }), /short read/);
});

test('prewarmDevice resumes from a matching heartbeat checkpoint and starts over when the device changed', async () => {
  const acts = createPrewarmActivities({ hostId: 'h', fs: await createHostFs([dir]), s3: () => assert.fail('no S3 here') });
  const args = { path: 'dev.img', blockSize: BLOCK, concurrency: 4, fio: 'never' as const };
  const real = await (await createHostFs([dir])).resolve('dev.img');
  const checkpoint: PrewarmCheckpoint = {
    path: real,
    size: data.length,
    blockSize: BLOCK,
    method: 'builtin',
    watermark: 6 * BLOCK,
    crc: crc32(data.subarray(0, 6 * BLOCK)),
  };
  const resumed = (await new MockActivityEnvironment({ heartbeatDetails: checkpoint, attempt: 2 }).run(acts.prewarmDevice, args)) as PrewarmDeviceResult;
  assert.equal(resumed.resumedFrom, 6 * BLOCK);
  assert.equal(resumed.bytesReadThisAttempt, data.length - 6 * BLOCK);
  assert.equal(resumed.attempt, 2);
  assert.equal(resumed.checksum?.value, hex(crc32(data)));
  const stale = (await new MockActivityEnvironment({ heartbeatDetails: { ...checkpoint, size: data.length - 1 }, attempt: 2 }).run(
    acts.prewarmDevice,
    args,
  )) as PrewarmDeviceResult;
  assert.equal(stale.resumedFrom, 0);
  assert.equal(stale.bytesReadThisAttempt, data.length);
});

const fioOnPath = spawnSync('fio', ['--version']).status === 0;

test('fio auto reads the device with fio (--direct=1) where fio is on PATH, and with the built-in reader where it is not', async () => {
  const acts = createPrewarmActivities({ hostId: 'h', fs: await createHostFs([dir]), s3: () => assert.fail('no S3 here') });
  const heartbeats: PrewarmCheckpoint[] = [];
  const env = new MockActivityEnvironment();
  env.on('heartbeat', (d: PrewarmCheckpoint) => heartbeats.push(d));
  // Not a whole number of sectors: fio's direct reads take the aligned part, the tail is read normally.
  const r = (await env.run(acts.prewarmDevice, { path: 'dev.img', blockSize: BLOCK, concurrency: 8, fio: 'auto' as const })) as PrewarmDeviceResult;
  if (!fioOnPath) {
    assert.equal(r.method, 'builtin');
    assert.equal(r.bytes, data.length);
    assert.equal(r.checksum?.value, hex(crc32(data)), 'the fallback reads every byte and checksums it');
    return;
  }
  assert.equal(r.method, 'fio');
  assert.equal(r.bytes, data.length);
  assert.equal(r.bytesReadThisAttempt, data.length);
  assert.equal(r.checksum, undefined, 'fio reads leave no checksum');
  assert.deepEqual(
    heartbeats.map((h) => h.watermark).filter((w, i, all) => all.indexOf(w) === i),
    [0, data.length - (data.length % 4096), data.length],
  );
});
