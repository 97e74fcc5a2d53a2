import { closeSync, openSync, writeSync } from 'node:fs';

const MiB = 1024 * 1024;

/**
 * Writes `bytes` of deterministic content to `path`, a stand-in for a block device: one
 * pseudo-random MiB (xorshift32 from `seed`) with each block's index stamped in, so no two blocks
 * are alike and a checksum of the file means something. Written block by block: nothing large
 * sits in memory.
 */
export function writeDeviceFile(path: string, bytes: number, seed = 0x9e3779b9): void {
  const block = Buffer.alloc(MiB);
  let x = seed;
  for (let i = 0; i < MiB; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block.writeUInt32LE(x >>> 0, i);
  }
  const fd = openSync(path, 'w');
  try {
    for (let b = 0; b < bytes / MiB; b++) {
      block.writeUInt32LE(b, 0);
      writeSync(fd, block, 0, MiB, b * MiB);
    }
  } finally {
    closeSync(fd);
  }
}
