/**
 * The built-in read-every-block reader next to fio on the same file, same run (not part of npm test).
 *
 *   npx tsx bench/prewarm-vs-fio.ts [--size-mib 1024] [--dir /var/tmp] [--block-kib 1024] [--depth 32]
 *
 * Between runs the page cache is dropped (`echo 3 > /proc/sys/vm/drop_caches`, needs root); when
 * that is not allowed the script says so, and the buffered figures are then page-cache figures.
 * fio runs twice: with --direct=1 (AWS's initialisation command, bypassing the page cache) and
 * buffered (--direct=0, like the built-in reader, which reads through the page cache).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readEveryBlock } from '../src/prewarm/reader.js';
import { writeDeviceFile } from '../test/helpers/device.js';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    dir: { type: 'string', default: '/var/tmp' },
    'block-kib': { type: 'string', default: '1024' },
    depth: { type: 'string', default: '32' },
  },
});
const MiB = 1024 * 1024;
const size = Number(values['size-mib']) * MiB;
const blockSize = Number(values['block-kib']) * 1024;
const depth = Number(values.depth);

function dropCaches(): boolean {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

function fio(path: string, direct: boolean): { mibps: number; wallMibps: number } {
  const t0 = performance.now();
  const r = spawnSync(
    'fio',
    [
      '--name=bench',
      `--filename=${path}`,
      '--rw=read',
      `--bs=${blockSize}`,
      `--iodepth=${depth}`,
      '--ioengine=libaio',
      `--direct=${direct ? 1 : 0}`,
      '--readonly',
      '--output-format=json',
    ],
    { encoding: 'utf8' },
  );
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`fio failed: ${r.stderr}`);
  const job = (JSON.parse(r.stdout) as { jobs: { read: { bw_bytes: number; io_bytes: number } }[] }).jobs[0]!;
  if (job.read.io_bytes !== size) throw new Error(`fio read ${job.read.io_bytes} bytes, not ${size}`);
  return { mibps: job.read.bw_bytes / MiB, wallMibps: size / MiB / wall };
}

async function builtin(path: string, checksum: boolean): Promise<number> {
  const t0 = performance.now();
  const r = await readEveryBlock(path, { start: 0, crc: 0, size, blockSize, concurrency: depth, checksum });
  if (r.bytesRead !== size) throw new Error(`read ${r.bytesRead} bytes, not ${size}`);
  return size / MiB / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const fioVersion = spawnSync('fio', ['--version'], { encoding: 'utf8' });
  if (fioVersion.status !== 0) throw new Error('fio is not on PATH (Debian: apt-get install -y fio)');
  const dir = mkdtempSync(join(values.dir, 'trainctl-bench-'));
  const path = join(dir, 'device.img');
  try {
    writeDeviceFile(path, size, 0x2545f491);
    const rows: [string, string][] = [];
    const dropped = dropCaches();
    rows.push([`built-in reader, ${depth} × ${blockSize / 1024} KiB, buffered, CRC-32 on`, `${(await builtin(path, true)).toFixed(0)} MiB/s`]);
    dropCaches();
    rows.push([`built-in reader, ${depth} × ${blockSize / 1024} KiB, buffered, CRC-32 off`, `${(await builtin(path, false)).toFixed(0)} MiB/s`]);
    dropCaches();
    const d = fio(path, true);
    rows.push([
      `fio ${fioVersion.stdout.trim()} --direct=1 --iodepth=${depth} --bs=${blockSize / 1024}k libaio`,
      `${d.mibps.toFixed(0)} MiB/s (wall ${d.wallMibps.toFixed(0)})`,
    ]);
    dropCaches();
    const b = fio(path, false);
    rows.push([
      `fio ${fioVersion.stdout.trim()} --direct=0 --iodepth=${depth} --bs=${blockSize / 1024}k libaio`,
      `${b.mibps.toFixed(0)} MiB/s (wall ${b.wallMibps.toFixed(0)})`,
    ]);
    console.log(
      `file: ${path}, ${size / MiB} MiB; page cache dropped between runs: ${dropped ? 'yes' : 'NO (not permitted): buffered figures may come from the page cache'}`,
    );
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
