/**
 * PreWarmedEBS: read every block of a restored device once, resuming from the watermark an
 * earlier attempt heartbeated. Temporal-free: progress and cancellation come through a
 * {@link WorkContext}.
 *
 * @module
 */
import type { PrewarmDeviceResult } from '../contracts/prewarm.js';
import { fioRead, onPath, readEveryBlock, readSlots, sizeOf } from './reader.js';
import { MiB, type WorkContext } from './work.js';

/** What a prewarmDevice attempt heartbeats: every block below `watermark` has been read. */
export interface PrewarmCheckpoint {
  path: string;
  size: number;
  blockSize: number;
  method: 'builtin' | 'fio';
  watermark: number;
  /** CRC-32 of bytes [0, watermark), in order (built-in reader only). */
  crc: number;
}

export interface PrewarmDeviceArgs {
  path: string;
  blockSize: number;
  concurrency: number;
  fio: 'auto' | 'never';
}

/** The earlier attempt's checkpoint when it is of this very device, size, block size and method. */
function resumable(prev: PrewarmCheckpoint | undefined, want: Omit<PrewarmCheckpoint, 'watermark' | 'crc'>): PrewarmCheckpoint | undefined {
  if (!prev) return undefined;
  const same = prev.path === want.path && prev.size === want.size && prev.blockSize === want.blockSize && prev.method === want.method;
  return same && prev.watermark >= 0 && prev.watermark <= want.size ? prev : undefined;
}

/** Reads [checkpoint.watermark, size) with fio in chunks of about 256 MiB, heartbeating each. */
async function readWithFio(fio: string, args: PrewarmDeviceArgs, start: PrewarmCheckpoint, w: WorkContext): Promise<void> {
  const { path, size } = start;
  let checkpoint = start;
  const chunk = Math.max(args.blockSize, Math.floor((256 * MiB) / args.blockSize) * args.blockSize);
  // Direct I/O reads whole sectors: a file stand-in's unaligned tail is read the ordinary way.
  const alignedEnd = size - (size % 4096);
  const keepAlive = setInterval(() => w.heartbeat(checkpoint), 1_000);
  try {
    for (let offset = start.watermark; offset < alignedEnd; offset += chunk) {
      await fioRead(
        fio,
        path,
        offset,
        Math.min(chunk, alignedEnd - offset),
        args.blockSize,
        readSlots(args.concurrency, Number.MAX_SAFE_INTEGER, args.blockSize),
        w.signal,
      );
      checkpoint = { ...checkpoint, watermark: Math.min(alignedEnd, offset + chunk) };
      w.heartbeat(checkpoint);
    }
    const tail = Math.max(start.watermark, alignedEnd);
    if (tail < size) {
      await readEveryBlock(path, { start: tail, crc: 0, size, blockSize: args.blockSize, concurrency: 1, checksum: false });
      checkpoint = { ...checkpoint, watermark: size };
      w.heartbeat(checkpoint);
    }
  } finally {
    clearInterval(keepAlive);
  }
}

/** Reads [checkpoint.watermark, size) with the built-in reader, heartbeating every block; returns the CRC of all bytes. */
async function readBuiltin(args: PrewarmDeviceArgs, start: PrewarmCheckpoint, w: WorkContext): Promise<number> {
  let checkpoint = start;
  const r = await readEveryBlock(start.path, {
    start: start.watermark,
    crc: start.crc,
    size: start.size,
    blockSize: args.blockSize,
    concurrency: args.concurrency,
    checksum: true,
    signal: w.signal,
    onProgress: (watermark, crc) => {
      checkpoint = { ...checkpoint, watermark, crc };
      w.heartbeat(checkpoint);
    },
  });
  return r.crc;
}

/**
 * Reads every block of `args.path` once: with fio (`--direct=1`) when `fio: 'auto'` and fio is on
 * PATH, else with the built-in reader. Resumes from the heartbeated watermark when the path, size,
 * block size and method match; starts over otherwise.
 */
export async function prewarmDevice(args: PrewarmDeviceArgs, w: WorkContext): Promise<PrewarmDeviceResult> {
  const path = await w.step(`resolve ${args.path}`, () => w.resolve(args.path));
  const size = await w.step(`size of ${path}`, () => sizeOf(path));
  const fio = args.fio === 'auto' ? await onPath('fio') : undefined;
  const method = fio ? 'fio' : 'builtin';
  const prev = w.previous as PrewarmCheckpoint | undefined;
  const resume = resumable(prev, { path, size, blockSize: args.blockSize, method });
  if (prev && !resume) w.warn('checkpoint does not match the device; reading from the start', { path, size });
  const start = resume?.watermark ?? 0;
  const checkpoint: PrewarmCheckpoint = { path, size, blockSize: args.blockSize, method, watermark: start, crc: resume?.crc ?? 0 };
  w.heartbeat(checkpoint);
  w.info('prewarming', { path, size, method, resumedFrom: start, attempt: w.attempt });
  const t0 = performance.now();
  let crc = checkpoint.crc;
  await w.step(`read every block of ${path}`, async () => {
    if (fio) await readWithFio(fio, args, checkpoint, w);
    else crc = await readBuiltin(args, checkpoint, w);
  });
  const seconds = (performance.now() - t0) / 1000;
  const bytesReadThisAttempt = size - start;
  const result: PrewarmDeviceResult = {
    path,
    method,
    bytes: size,
    resumedFrom: start,
    bytesReadThisAttempt,
    attempt: w.attempt,
    seconds,
    mibPerSecond: seconds > 0 ? bytesReadThisAttempt / MiB / seconds : 0,
    blockSize: args.blockSize,
    concurrency: args.concurrency,
    ...(method === 'builtin' ? { checksum: { algorithm: 'crc32' as const, value: (crc >>> 0).toString(16).padStart(8, '0') } } : {}),
  };
  w.info('prewarmed', { path, bytes: size, seconds, mibPerSecond: result.mibPerSecond });
  return result;
}
