/**
 * docs/RELIABILITY.md: the table (family × scenario), every exception by run, the machine, the
 * date, the commit, the seed and the wall time.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RunOutcome } from './types.js';

export interface CampaignInfo {
  date: string;
  commit: string;
  seed: number;
  runs: number;
  smoke: boolean;
  command: string;
  wallSeconds: number;
  machine: { cores: number; cpuModel: string; memoryGiB: number; kernel: string; node: string; loadAtStart: number[] };
  /** Scenario → what it does and which families it covers. */
  scenarios: { name: string; what: string; families: string[] }[];
  /** Family → what a run does and what is checked. */
  families: { name: string; what: string }[];
  /** Scenarios that could not run to the end, with why. */
  failures: string[];
  /** Notable lines of the campaign's log (faults injected, restarts). */
  log: string[];
}

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const secs = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(1)} s`);

export interface Row {
  family: string;
  scenario: string;
  runs: number;
  completed: number;
  documented: number;
  unexpected: number;
  duplicates: number;
  leaked: number;
  corruptBytes: number;
  wrongDeletions: number;
  /** Runs a fault struck while they were open (those have a recovery time). */
  struck: number;
  recoveryP50?: number;
  recoveryMax?: number;
}

export function rows(outcomes: readonly RunOutcome[]): Row[] {
  const groups = new Map<string, RunOutcome[]>();
  for (const o of outcomes) {
    const k = `${o.scenario}\u0000${o.family}`;
    groups.set(k, [...(groups.get(k) ?? []), o]);
  }
  return [...groups.values()].map((g) => {
    const rec = g.flatMap((o) => (o.recoverySeconds !== undefined ? [o.recoverySeconds] : [])).sort((a, b) => a - b);
    const sum = (f: (o: RunOutcome) => number) => g.reduce((n, o) => n + f(o), 0);
    const p50 = percentile(rec, 0.5);
    return {
      family: g[0]!.family,
      scenario: g[0]!.scenario,
      runs: g.length,
      completed: g.filter((o) => o.ended === 'completed').length,
      documented: g.filter((o) => o.ended === 'documented').length,
      unexpected: g.filter((o) => o.ended === 'unexpected').length,
      duplicates: sum((o) => o.duplicates),
      leaked: sum((o) => o.leaked),
      corruptBytes: sum((o) => o.corruptBytes),
      wrongDeletions: sum((o) => o.wrongDeletions),
      struck: rec.length,
      ...(p50 !== undefined ? { recoveryP50: p50, recoveryMax: rec[rec.length - 1]! } : {}),
    };
  });
}

/** Whether a run is clean: it ended as completed or documented, with every counter at 0. */
export function clean(o: RunOutcome): boolean {
  return o.ended !== 'unexpected' && o.duplicates === 0 && o.leaked === 0 && o.corruptBytes === 0 && o.wrongDeletions === 0;
}

export function renderReport(outcomes: readonly RunOutcome[], info: CampaignInfo): string {
  const table = rows(outcomes);
  const exceptions = outcomes.filter((o) => !clean(o));
  const m = info.machine;
  const lines = [
    `# Reliability campaign${info.smoke ? ' (smoke)' : ''}`,
    '',
    `Written by \`npm run reliability\` (reliability/run.ts). Every run is checked on its own against the emulator (moto) and the files, never by asking trainctl: objects and their bytes, multipart uploads still open, volumes per Name tag, fixture volumes that must or must not survive, SHA-256 of what arrived and of the sources afterwards.`,
    '',
    `- Date: ${info.date}`,
    `- Commit: ${info.commit}`,
    `- Command: \`${info.command}\``,
    `- Seed: ${info.seed} (kill points, delays, run start offsets and the proxy's fault draws replay from it; the data itself is random)`,
    `- Runs per family and scenario: ${info.runs}`,
    `- Wall time: ${(info.wallSeconds / 60).toFixed(1)} min`,
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB memory, Linux ${m.kernel}, Node ${m.node}; load average at start ${m.loadAtStart.map((l) => l.toFixed(2)).join(' / ')}`,
    '',
    '## Results',
    '',
    `Totals: ${outcomes.length} runs, ${outcomes.filter((o) => o.ended === 'completed').length} completed, ${outcomes.filter((o) => o.ended === 'documented').length} ended as documented, ${outcomes.filter((o) => o.ended === 'unexpected').length} unexpected; ${sumOf(outcomes, 'duplicates')} duplicates, ${sumOf(outcomes, 'leaked')} leaked, ${sumOf(outcomes, 'corruptBytes')} corrupt bytes, ${sumOf(outcomes, 'wrongDeletions')} wrong deletions.`,
    '',
    '| family | scenario | runs | completed | documented | unexpected | duplicates | leaked | corrupt bytes | wrong deletions | struck | recovery p50 | recovery max |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...table.map(
      (r) =>
        `| ${r.family} | ${r.scenario} | ${r.runs} | ${r.completed} | ${r.documented} | ${r.unexpected} | ${r.duplicates} | ${r.leaked} | ${r.corruptBytes} | ${r.wrongDeletions} | ${r.struck} | ${secs(r.recoveryP50)} | ${secs(r.recoveryMax)} |`,
    ),
    '',
    'Struck: runs open (by their workflow history) while a fault that can touch their family lasted (from the SIGKILL or server stop until the process was back; for the fault mix, a 0.25 s interval of the proxy log with a fault in it, which the run must span). The drivers strike whenever a run is open that no fault has struck yet, so struck below runs means a run began and ended between two faults. Recovery: for each such run, the time from the fault (or the run’s start, if later) to the next event in the run’s history that only a live worker writes (a workflow task or an activity completed, or the run’s end); the worst over the faults that struck it. It includes the restart delay and a restarted worker’s start (it bundles the workflow code), and a killed activity’s heartbeat timeout.',
    '',
    '## Exceptions',
    '',
    ...(exceptions.length === 0 && info.failures.length === 0
      ? ['None: every run completed or ended as documented, with 0 duplicates, 0 leaked, 0 corrupt bytes and 0 wrong deletions.']
      : [
          ...info.failures.map((f) => `- scenario failed: ${f}`),
          ...exceptions.map((o) => `- ${o.family} / ${o.scenario} / run ${o.run}: ${o.ended}; ${o.detail.slice(0, 600)}`),
        ]),
    '',
    '## Scenarios and the families they cover',
    '',
    ...info.scenarios.map((s) => `- **${s.name}** (${s.families.join(', ')}): ${s.what}`),
    '',
    '## Families and what each run is checked for',
    '',
    ...info.families.map((f) => `- **${f.name}**: ${f.what}`),
    '',
    ...(info.log.length ? ['## Campaign log (faults and restarts)', '', '```', ...info.log, '```', ''] : []),
  ];
  return lines.join('\n');
}

function sumOf(outcomes: readonly RunOutcome[], key: 'duplicates' | 'leaked' | 'corruptBytes' | 'wrongDeletions'): number {
  return outcomes.reduce((n, o) => n + o[key], 0);
}

export function writeReport(file: string, outcomes: readonly RunOutcome[], info: CampaignInfo): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, renderReport(outcomes, info));
}
