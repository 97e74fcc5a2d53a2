/**
 * What `npm run reliability` records for every run of every scenario, checked independently of the
 * code under test (against the emulator, the fault proxy's log and the files). Every scenario module
 * returns these; `reliability/report.ts` turns them into docs/RELIABILITY.md.
 */
export type Scenario = 'worker-kill' | 'server-restart' | 'fault-mix' | 'full-disk' | 'fuzz' | 'scale-out';

export interface RunOutcome {
  /** The workflow family or command exercised: 'transfer', 'provisionVolume', 'cleanup', 'trainingRun', 'prewarm', 'costTracker', 'cli:…'. */
  family: string;
  scenario: Scenario;
  /** 1-based index within (family, scenario). */
  run: number;
  /** completed: reached its result. documented: ended the way the docs say it ends under this fault (e.g. InvalidInput for fuzz, a clear disk-full failure), named in `detail`. unexpected: anything else. */
  ended: 'completed' | 'documented' | 'unexpected';
  /** How it ended, in a line: the failure kind and message for `documented` / `unexpected`. */
  detail: string;
  /** Resources made twice (volumes with one idempotency key, objects uploaded twice where once was asked, …). */
  duplicates: number;
  /** Resources, multipart uploads, temp files or processes left behind after the run ended. */
  leaked: number;
  /** Bytes that differ from the source after a run that says it completed. */
  corruptBytes: number;
  /** Things deleted that the run was not asked to delete. */
  wrongDeletions: number;
  /** From the injected fault to the run making progress again (seconds), where a fault was injected. */
  recoverySeconds?: number;
  durationSeconds: number;
}

/** A scenario module's entry: runs `runs` runs (each checked on its own) and returns their outcomes. */
export interface ScenarioContext {
  runs: number;
  /** Deterministic randomness for kill points, delays and fuzz seeds; the seed is printed in the report. */
  seed: number;
  /** Temporal frontend (HOST:PORT) and the emulator endpoint the scenario may use, when the harness started them. */
  temporalAddress: string;
  awsEndpoint: string;
  /** A scratch folder of this scenario (removed by the harness afterwards). */
  workDir: string;
  log(message: string): void;
  /** The smoke version (`--smoke`): fewer faults, smaller data. Added for the scenarios of reliability/run.ts. */
  smoke?: boolean;
  /** `--families`: the families a scenario runs (name prefixes); all when absent. */
  families?: readonly string[];
}
