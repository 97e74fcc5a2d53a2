/**
 * Writes a benchmark's results as `latest.json`, `latest.md` (a table per workload with each
 * figure's min / median / max and its ratio to the leader) and `latest.svg` (grouped bars of the
 * median throughput by workload and tool, drawn by hand: no plotting dependency).
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Figure {
  workload: string;
  /** What is measured, e.g. "(a) 1 × 2048 MiB upload". Figures with the same label are compared. */
  label: string;
  tool: string;
  variant: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Exact flags or settings the tool ran with. */
  flags?: string;
  values: number[];
  /** Set when the tool could not run: shown instead of a figure. */
  notRun?: string;
}

export interface Results {
  title: string;
  date: string;
  finished: string;
  scale: number;
  reps: number;
  workloads: string[];
  machine: { cores: number; cpu: string; memoryGiB: number; kernel: string; node: string; dataDir: string };
  server: string;
  tools: { name: string; version: string | null; source: string; notRun?: string }[];
  matched: Record<string, number>;
  sizes: Record<string, number>;
  notes: string[];
  figures: Figure[];
}

export interface Stats {
  min: number;
  median: number;
  max: number;
  n: number;
}

export function stats(values: number[]): Stats | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s[s.length - 1]!, n: s.length };
}

/** Each figure with its stats and its ratio to the leader of its label (median ÷ leader's median). */
export function summarise(figures: Figure[]): (Figure & { stats?: Stats; ratio?: number; leader?: boolean })[] {
  const byLabel = new Map<string, Figure[]>();
  for (const f of figures) byLabel.set(f.label, [...(byLabel.get(f.label) ?? []), f]);
  return figures.map((f) => {
    const st = stats(f.values);
    if (!st || f.notRun) return { ...f, ...(st ? { stats: st } : {}) };
    const peers = (byLabel.get(f.label) ?? []).map((p) => stats(p.values)?.median).filter((m): m is number => m !== undefined && !Number.isNaN(m));
    const best = f.better === 'higher' ? Math.max(...peers) : Math.min(...peers);
    return { ...f, stats: st, ratio: best === 0 ? (st.median === 0 ? 1 : Infinity) : st.median / best, leader: st.median === best };
  });
}

const cell = (s: string) => s.replace(/\|/g, '\\|');
const fmt = (v: number) => (Number.isNaN(v) ? '–' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

export function markdown(r: Results): string {
  const out: string[] = [];
  out.push(`# ${r.title}${r.scale !== 1 ? ` — REDUCED SCALE ${r.scale} (sizes × ${r.scale}; not the full benchmark)` : ''}`, '');
  out.push(`- date: ${r.date} (finished ${r.finished})`);
  out.push(`- scale: ${r.scale}; repetitions: ${r.reps}; workloads: ${r.workloads.join(', ')}`);
  out.push(
    `- machine: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB memory, ${r.machine.kernel}, Node ${r.machine.node}; data on ${r.machine.dataDir}`,
  );
  out.push(`- server: ${r.server}`);
  out.push(
    `- matched settings (where a tool has the knob): ${Object.entries(r.matched)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  );
  out.push(
    `- sizes: ${Object.entries(r.sizes)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
    '',
  );
  out.push('## Tools', '', '| tool | version | from |', '|---|---|---|');
  for (const t of r.tools) out.push(`| ${t.name} | ${t.notRun ? `not run: ${t.notRun}` : (t.version ?? '?')} | ${t.source} |`);
  out.push('');
  if (r.notes.length) out.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  out.push(
    '## Figures',
    '',
    'ratio = this median ÷ the best median of the same row group (for throughput, 1.00 is the leader and lower is slower; for times, sizes and latencies, 1.00 is the leader and higher is worse).',
    '',
  );
  const rows = summarise(r.figures);
  const labels = [...new Set(rows.map((f) => f.label))];
  for (const label of labels) {
    const group = rows.filter((f) => f.label === label);
    out.push(`### ${label}`, '', `| tool | variant | median | min | max | n | unit | ratio to leader | flags |`, '|---|---|---|---|---|---|---|---|---|');
    for (const f of group) {
      if (f.notRun || !f.stats) {
        out.push(`| ${f.tool} | ${f.variant} | not run: ${cell(f.notRun ?? 'no measurement')} | | | | ${f.unit} | | ${cell(f.flags ?? '')} |`);
        continue;
      }
      const ratio = f.ratio === undefined ? '' : `${fmt(f.ratio)}${f.leader ? ' (leader)' : ''}`;
      out.push(
        `| ${f.tool} | ${f.variant} | ${fmt(f.stats.median)} | ${fmt(f.stats.min)} | ${fmt(f.stats.max)} | ${f.stats.n} | ${f.unit} | ${ratio} | ${cell(f.flags ?? '')} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

const PALETTE: Record<string, string> = {
  s5cmd: '#1f77b4',
  'aws-cli': '#ff7f0e',
  rclone: '#2ca02c',
  trainctl: '#d62728',
  'trainctl (host worker)': '#9467bd',
  fio: '#8c564b',
};
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Grouped bars: one group per throughput label, one bar per tool and variant (defaults paler). */
export function svg(r: Results): string {
  const rows = summarise(r.figures).filter((f) => f.unit === 'MiB/s' && f.stats && !f.notRun);
  const labels = [...new Set(rows.map((f) => f.label))];
  const series = [...new Set(rows.map((f) => `${f.tool}|${f.variant}`))];
  const barW = 14;
  const gap = 28;
  const groupW = (n: number) => n * barW + gap;
  const left = 70;
  const top = 50;
  const plotH = 300;
  const counts = labels.map((l) => rows.filter((f) => f.label === l).length);
  const width = Math.max(600, left + counts.reduce((s, n) => s + groupW(n), 0) + 20);
  const legendRows = Math.ceil(series.length / 3);
  const height = top + plotH + 130 + legendRows * 18;
  const max = Math.max(1, ...rows.map((f) => f.stats!.max));
  const niceMax = (() => {
    const p = 10 ** Math.floor(Math.log10(max));
    return Math.ceil(max / p) * p;
  })();
  const y = (v: number) => top + plotH - (v / niceMax) * plotH;
  const colour = (key: string) => {
    const [tool, variant] = key.split('|');
    return { fill: PALETTE[tool!] ?? '#7f7f7f', opacity: variant === 'defaults' || variant === 'buffered' ? 0.45 : 1 };
  };
  const el: string[] = [];
  el.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  el.push(`<rect width="100%" height="100%" fill="white"/>`);
  el.push(
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(`Median throughput (MiB/s), whiskers min–max — ${r.server.split(' (')[0]}, ${r.reps} rep(s)${r.scale !== 1 ? `, REDUCED SCALE ${r.scale}` : ''}`)}</text>`,
  );
  el.push(`<text x="${left}" y="36" fill="#555">${esc(`${r.date} · ${r.machine.cores} cores · ${r.machine.kernel} · Node ${r.machine.node}`)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (niceMax / 5) * i;
    el.push(`<line x1="${left}" x2="${width - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    el.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  let x = left + gap / 2;
  labels.forEach((label, gi) => {
    const group = rows.filter((f) => f.label === label);
    group.forEach((f, i) => {
      const c = colour(`${f.tool}|${f.variant}`);
      const bx = x + i * barW;
      el.push(
        `<rect x="${bx}" y="${y(f.stats!.median)}" width="${barW - 2}" height="${top + plotH - y(f.stats!.median)}" fill="${c.fill}" fill-opacity="${c.opacity}"><title>${esc(`${f.tool} (${f.variant}) ${label}: median ${fmt(f.stats!.median)} MiB/s, min ${fmt(f.stats!.min)}, max ${fmt(f.stats!.max)}`)}</title></rect>`,
      );
      if (f.stats!.n > 1)
        el.push(`<line x1="${bx + (barW - 2) / 2}" x2="${bx + (barW - 2) / 2}" y1="${y(f.stats!.min)}" y2="${y(f.stats!.max)}" stroke="black"/>`);
    });
    const cx = x + (counts[gi]! * barW) / 2;
    el.push(`<text x="${cx}" y="${top + plotH + 14}" text-anchor="end" transform="rotate(-25 ${cx} ${top + plotH + 14})">${esc(label)}</text>`);
    x += groupW(counts[gi]!);
  });
  el.push(`<line x1="${left}" x2="${width - 10}" y1="${top + plotH}" y2="${top + plotH}" stroke="black"/>`);
  series.forEach((key, i) => {
    const c = colour(key);
    const lx = left + (i % 3) * 220;
    const ly = top + plotH + 110 + Math.floor(i / 3) * 18;
    el.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${c.fill}" fill-opacity="${c.opacity}"/>`);
    el.push(`<text x="${lx + 16}" y="${ly}">${esc(key.replace('|', ' — '))}</text>`);
  });
  el.push('</svg>');
  return el.join('\n');
}

export function writeResults(dir: string, r: Results): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'latest.json'), `${JSON.stringify({ ...r, summary: summarise(r.figures).map(({ values: _v, ...f }) => f) }, null, 2)}\n`);
  writeFileSync(join(dir, 'latest.md'), `${markdown(r)}\n`);
  writeFileSync(join(dir, 'latest.svg'), `${svg(r)}\n`);
}
