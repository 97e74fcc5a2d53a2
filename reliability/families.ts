/**
 * The workflow families the campaign exercises, in the order the report lists them. `--families`
 * selects among them by name (a prefix is enough: `transfer` selects both directions).
 */
import type { Family } from './campaign.js';
import { transferDownload, transferToHost, transferUpload } from './families-transfer.js';
import { cleanup, provisionVolume } from './families-ec2.js';
import { costTracker } from './families-cost.js';
import { trainingRun } from './families-run.js';

export const FAMILIES: readonly Family[] = [transferUpload, transferDownload, transferToHost, provisionVolume, cleanup, trainingRun, costTracker];

/** The families a scenario runs: all of them, or those whose names start with one of `names`. */
export function selectFamilies(names: readonly string[] | undefined): Family[] {
  if (!names || names.length === 0) return [...FAMILIES];
  const chosen = FAMILIES.filter((f) => names.some((n) => f.name.toLowerCase().startsWith(n.toLowerCase())));
  if (chosen.length === 0) throw new Error(`--families ${names.join(',')} selects none of: ${FAMILIES.map((f) => f.name).join('; ')}`);
  return chosen;
}

/** Whether any of `families` runs activities on a host worker (so the scenario must start one). */
export function needsHost(families: readonly Family[]): boolean {
  return families.includes(transferToHost);
}
