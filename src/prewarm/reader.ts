/**
 * The device reader behind PreWarmedEBS: every block of a device (or a file standing in for one)
 * read once, by a built-in parallel reader or by fio, AWS's own initialisation tool.
 * Temporal-free; `prewarm/device.ts` drives it from a heartbeated watermark.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { childEnv } from '../child-env.js';
import { constants } from 'node:fs';
import { access, open, readFile, stat } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { stopIfCancelled } from './work.js';

/** Size of a regular file, or of a block device (whose stat size is 0) from sysfs. */
export async function sizeOf(path: string): Promise<number> {
  const s = await stat(path);
  if (s.isFile()) return s.size;
  if (s.isBlockDevice()) {
    const sectors = await readFile(`/sys/class/block/${basename(path)}/size`, 'utf8');
    return Number(sectors.trim()) * 512;
  }
  throw new TrainctlError(ErrorKind.InvalidInput, `${path} is neither a file nor a block device`);
}

/**
 * The most memory the reads in flight may hold (issue 10, guard 14): the input allows 64 MiB blocks
 * and 256 reads at once (16 GiB); past this cap fewer reads run at once instead.
 */
export const MAX_READ_BUFFER_BYTES = 256 * 1024 * 1024;

/** How many reads run at once: at most `concurrency`, the block count, and what fits in {@link MAX_READ_BUFFER_BYTES}. */
export function readSlots(concurrency: number, blocks: number, blockSize: number): number {
  return Math.max(1, Math.min(concurrency, blocks, Math.floor(MAX_READ_BUFFER_BYTES / blockSize)));
}

export interface ReadOptions {
  /** Block-aligned offset to start at (a resumed attempt's watermark). */
  start: number;
  /** CRC-32 of the bytes before `start`. */
  crc: number;
  size: number;
  blockSize: number;
  concurrency: number;
  checksum: boolean;
  signal?: AbortSignal | undefined;
  onProgress?: (watermark: number, crc: number) => void;
}

async function readFull(fh: Awaited<ReturnType<typeof open>>, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * Reads every block of `path` from `start` to `size` once, `concurrency` large reads in flight into
 * reused buffers. Blocks are consumed in order (block b's buffer is reused for block b+concurrency
 * only once b is done), so the watermark reported to `onProgress` has every block below it read and
 * the CRC covers exactly those bytes. Stops between blocks once `signal` is aborted, throwing its reason.
 */
export async function readEveryBlock(path: string, o: ReadOptions): Promise<{ bytesRead: number; crc: number }> {
  const fh = await open(path, constants.O_RDONLY);
  const blocks = Math.ceil(Math.max(0, o.size - o.start) / o.blockSize);
  const slots = readSlots(o.concurrency, blocks, o.blockSize);
  const bufs = Array.from({ length: slots }, () => Buffer.allocUnsafe(o.blockSize));
  const pending = new Map<number, Promise<number>>();
  const issue = (b: number) => {
    const offset = o.start + b * o.blockSize;
    const p = readFull(fh, bufs[b % slots]!, Math.min(o.blockSize, o.size - offset), offset);
    // Awaited in order below; this keeps a later block's failure from being an unhandled rejection meanwhile.
    p.catch(() => undefined);
    pending.set(b, p);
  };
  let crc = o.crc;
  let bytesRead = 0;
  try {
    for (let b = 0; b < slots; b++) issue(b);
    for (let b = 0; b < blocks; b++) {
      const got = await pending.get(b)!;
      pending.delete(b);
      const expected = Math.min(o.blockSize, o.size - (o.start + b * o.blockSize));
      if (got !== expected)
        throw new TrainctlError(ErrorKind.Transient, `short read at ${o.start + b * o.blockSize}: ${got} of ${expected} bytes (did ${path} shrink?)`);
      if (o.checksum) crc = crc32(bufs[b % slots]!.subarray(0, got), crc);
      bytesRead += got;
      o.onProgress?.(o.start + b * o.blockSize + got, crc);
      stopIfCancelled(o.signal);
      if (b + slots < blocks) issue(b + slots);
    }
  } finally {
    // Reads still in flight must finish before their file handle closes.
    await Promise.allSettled(pending.values());
    await fh.close();
  }
  return { bytesRead, crc };
}

/** Whether an executable named `name` is on PATH. */
export async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder; try the next.
    }
  }
  return undefined;
}

/**
 * One fio pass over [offset, offset+length): AWS's own initialisation command
 * (`--rw=read --bs=1M --iodepth=32 --ioengine=libaio --direct=1`). fio splits --filename on `:`,
 * so colons are escaped.
 */
export async function fioRead(
  fio: string,
  path: string,
  offset: number,
  length: number,
  blockSize: number,
  iodepth: number,
  signal?: AbortSignal,
): Promise<void> {
  const args = [
    '--name=trainctl-prewarm',
    `--filename=${path.replace(/:/g, '\\:')}`,
    '--rw=read',
    `--bs=${blockSize}`,
    `--iodepth=${iodepth}`,
    '--ioengine=libaio',
    '--direct=1',
    '--readonly',
    `--offset=${offset}`,
    `--size=${length}`,
    '--output-format=terse',
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(fio, args, { env: childEnv(process.env), stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2_000)));
    child.once('error', reject);
    child.once('exit', (code, sig) => {
      if (code === 0) resolve();
      else reject(new TrainctlError(ErrorKind.Transient, `fio exited with ${code ?? sig}: ${stderr.trim()}`));
    });
  });
}
