import { setCurrentDetails, setHandler } from '@temporalio/workflow';
import { transferProgressQuery, transferProgressSignal, type TransferProgress } from '../contracts/transfer.js';
import type { FileResult } from '../transfer/types.js';
import { MiB } from '../transfer/plan.js';

const now = () => new Date().getTime();

/**
 * A transfer's progress as the `progress` query answers it and the Web UI's current details show
 * it: files and bytes of the running leg (finished files plus what running activities signalled),
 * rate and ETA in workflow time. Registers the query and signal handlers when constructed.
 */
export class TransferProgressTracker {
  readonly state: TransferProgress = {
    phase: 'planning',
    filesDone: 0,
    filesTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
    currentFile: null,
    skipped: 0,
  };
  /** Every finished file of the current leg (the report counts the last leg's). */
  readonly results: FileResult[] = [];
  private legStarted: number;
  private lastUpdate: number;
  private finishedBytes = 0;
  private readonly inFlight = new Map<string, number>();

  constructor(readonly started: number = now()) {
    this.legStarted = started;
    this.lastUpdate = started;
    setHandler(transferProgressQuery, () => ({ ...this.state, running: [...this.inFlight.keys()] }));
    setHandler(transferProgressSignal, ({ label, bytes, current }) => {
      if (!this.inFlight.has(label)) return;
      this.inFlight.set(label, bytes);
      this.state.currentFile = current ?? label;
      this.lastUpdate = now();
      this.refresh();
    });
  }

  private refresh(): void {
    const p = this.state;
    p.bytesDone = this.finishedBytes + [...this.inFlight.values()].reduce((a, b) => a + b, 0);
    const elapsed = (this.lastUpdate - this.legStarted) / 1000;
    p.bytesPerSecond = elapsed > 0 ? Math.round(p.bytesDone / elapsed) : 0;
    const left = p.bytesTotal - p.bytesDone;
    p.etaSeconds = p.bytesPerSecond > 0 ? Math.round(left / p.bytesPerSecond) : null;
  }

  /** Shows the state in the Web UI's current details. */
  describe(): void {
    const p = this.state;
    setCurrentDetails(
      `**${p.phase}**: ${p.filesDone}/${p.filesTotal} files, ${(p.bytesDone / MiB).toFixed(1)}/${(p.bytesTotal / MiB).toFixed(1)} MiB` +
        (p.currentFile ? `\n\ncurrent: ${p.currentFile}` : ''),
    );
  }

  /** Enters a phase without counters (planning, deleting, cleaning up, done). */
  enter(phase: TransferProgress['phase']): void {
    this.state.phase = phase;
    this.describe();
  }

  /** Starts a leg of `jobs`: counters reset, totals from the jobs. `resetSkipped` as the built-in engine does. */
  startLeg(phase: TransferProgress['phase'], jobs: { size: number }[], resetSkipped: boolean): void {
    const p = this.state;
    p.phase = phase;
    p.filesDone = 0;
    p.filesTotal = jobs.length;
    p.bytesTotal = jobs.reduce((a, j) => a + j.size, 0);
    if (resetSkipped) p.skipped = 0;
    this.finishedBytes = 0;
    this.inFlight.clear();
    this.legStarted = this.lastUpdate = now();
    this.refresh();
    this.describe();
  }

  /** An activity under `label` started: its signals count from now. */
  running(label: string, currentFile?: string): void {
    this.inFlight.set(label, 0);
    if (currentFile !== undefined) this.state.currentFile = currentFile;
  }

  /** The activity under `label` ended (finished or not): its signalled bytes stop counting. */
  ended(label: string): void {
    this.inFlight.delete(label);
  }

  /** Counts finished files (by either engine) into the progress and the report. */
  finished(done: FileResult[]): void {
    for (const r of done) {
      this.finishedBytes += r.size;
      this.state.filesDone++;
      if (r.skipped) this.state.skipped++;
      this.results.push(r);
    }
    this.lastUpdate = now();
    this.refresh();
    this.describe();
  }
}
