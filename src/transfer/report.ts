/**
 * How a transfer's progress and report read to a person: a progress bar line and a summary.
 *
 * @module
 */
import type { TransferProgress, TransferReport } from '../contracts/transfer.js';

/** Bytes in the largest binary unit that keeps the number at least 1 (`16.0 MiB`). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** One progress bar line: `[####....]  40% transferring: 1/3 files …`. */
export function progressLine(p: TransferProgress): string {
  const width = 30;
  const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : p.filesTotal > 0 ? p.filesDone / p.filesTotal : 0;
  const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
  const eta = p.etaSeconds === null ? '' : ` ETA ${p.etaSeconds}s`;
  return `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.phase}: ${p.filesDone}/${p.filesTotal} files ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)} ${formatBytes(p.bytesPerSecond)}/s${eta}${p.currentFile ? ` ${p.currentFile}` : ''}`;
}

/** One line (or a few) a person reads after a transfer. */
export function summarize(r: TransferReport): string {
  if (r.dryRun) {
    const lines = [`dry run: ${r.files} files would be transferred (${formatBytes((r.planned ?? []).reduce((a, p) => a + p.size, 0))}); nothing was written`];
    for (const p of (r.planned ?? []).slice(0, 20)) lines.push(`  ${p.from} -> ${p.to} (${formatBytes(p.size)})`);
    if (r.deleted) {
      lines.push(`dry run: ${r.deleted.count} extraneous destination files would be deleted${considered(r.deleted)}`);
      for (const d of r.deleted.items.slice(0, 20)) lines.push(`  delete ${d}`);
    }
    return lines.join('\n');
  }
  const lines = [
    `${r.files} files, ${formatBytes(r.bytes)} transferred in ${r.seconds.toFixed(1)} s (${r.MiBps} MiB/s); ${r.skipped} skipped (already identical); ${r.verified} verified by checksum`,
  ];
  if (r.files > 0 && r.skipped === r.files) lines.push('nothing to transfer: every file is already identical at the destination');
  if (r.skippedSymlinks.length > 0) lines.push(`${r.skippedSymlinks.length} symlinks leaving the source were not followed (--follow-symlinks follows them)`);
  if (r.deleted) {
    lines.push(`${r.deleted.count} extraneous destination files deleted${considered(r.deleted)}`);
    for (const d of r.deleted.items.slice(0, 20)) lines.push(`  deleted ${d}`);
  }
  if (r.stagingObjectsDeleted !== undefined) lines.push(`staging: ${r.stagingObjectsDeleted} objects removed`);
  if (r.engine === 's5cmd') lines.push('copied by s5cmd, verified by trainctl');
  return lines.join('\n');
}

function considered(d: { considered?: number }): string {
  return d.considered === undefined ? '' : ` (of ${d.considered} destination entries considered)`;
}
