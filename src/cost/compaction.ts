/**
 * Keeps the cost tracker's carried state bounded: resources stopped longer ago than a retention
 * window fold into totals (overall, per UTC month, per kind, per tag, and per month for the tags
 * budgets filter on), and the state carries a `stateVersion` with a migration from older runs.
 * Pure and deterministic: the tracker runs it before it continues as new.
 *
 * @module
 */
import { isUnpriced, monthBounds, resourceMicros, resourceMicrosBetween, type TrackedResource } from '../cost-model.js';
import { unpackResources } from './packing.js';
import type { Archive, TrackerState } from './state.js';

/** The shape of the carried state; older runs' state (no version) is migrated on load. */
export const STATE_VERSION = 2;

/** Stopped resources stay whole this long (a late duplicate signal is still recognised), then fold into totals. */
export const RETENTION_MS = 7 * 24 * 3_600_000;

/** Distinct `key=value` tag groups kept in the archive; beyond it a resource's cost is in the totals, month and kind only. */
export const MAX_TAG_GROUPS = 2_000;

export function emptyArchive(): Archive {
  return { resources: 0, microUsd: 0, byMonth: {}, byKind: {}, byTag: {}, byMonthTag: {}, tagGroupsDropped: 0 };
}

/**
 * Brings state carried from an older run to {@link STATE_VERSION} (version 1 had no archive) and
 * unpacks its resources if they were carried packed. In place; returns it.
 */
export function migrateState(state: TrackerState): TrackerState {
  if (state.packedResources) {
    state.resources = { ...state.resources, ...unpackResources(state.packedResources) };
    delete state.packedResources;
  }
  if ((state.stateVersion ?? 1) < 2) state.archive ??= emptyArchive();
  state.stateVersion = STATE_VERSION;
  return state;
}

const monthKey = (t: number) => new Date(t).toISOString().slice(0, 7);
const tagPair = (k: string, v: string) => `${k}=${v}`;

/**
 * Folds every priced resource stopped before `now - retentionMs` into the archive and drops it
 * from `resources`. Returns how many were folded. Every view of cost (totals, budgets, by kind,
 * by tag) gives the same figures before and after.
 */
export function compactState(state: TrackerState, now: number, retentionMs: number = RETENTION_MS): number {
  migrateState(state);
  const archive = state.archive as Archive;
  const budgetTags = new Set(Object.values(state.budgets).flatMap((b) => (b.tagFilter ? [tagPair(b.tagFilter.key, b.tagFilter.value)] : [])));
  let folded = 0;
  for (const [id, r] of Object.entries(state.resources)) {
    if (r.stoppedAt === undefined || r.stoppedAt > now - retentionMs || isUnpriced(r)) continue;
    fold(archive, r, budgetTags);
    delete state.resources[id];
    folded++;
  }
  return folded;
}

function fold(archive: Archive, r: TrackedResource, budgetTags: Set<string>): void {
  const stop = r.stoppedAt as number;
  const total = resourceMicros(r, stop);
  archive.resources++;
  archive.microUsd += total;
  const kind = (archive.byKind[r.kind] ??= { resources: 0, microUsd: 0 });
  kind.resources++;
  kind.microUsd += total;
  const pairs = Object.entries(r.tags).map(([k, v]) => tagPair(k, v));
  for (const p of pairs) {
    let g = archive.byTag[p];
    if (!g && Object.keys(archive.byTag).length >= MAX_TAG_GROUPS && !budgetTags.has(p)) {
      archive.tagGroupsDropped++;
      continue;
    }
    g ??= archive.byTag[p] = { resources: 0, microUsd: 0 };
    g.resources++;
    g.microUsd += total;
  }
  // Month by month, as a monthly budget counts it.
  for (let m = monthBounds(r.startedAt).start; m < stop; m = monthBounds(m).next) {
    const micros = resourceMicrosBetween(r, m, Math.min(monthBounds(m).next, stop));
    if (micros === 0) continue;
    const key = monthKey(m);
    archive.byMonth[key] = (archive.byMonth[key] ?? 0) + micros;
    for (const p of pairs) if (budgetTags.has(p)) archive.byMonthTag[`${key}|${p}`] = (archive.byMonthTag[`${key}|${p}`] ?? 0) + micros;
  }
}

/** What folded resources add to a budget's spend in the window that contains `t`. */
export function archivedSpend(state: TrackerState, b: { window: 'total' | 'monthly'; tagFilter?: { key: string; value: string } }, t: number): number {
  const a = state.archive;
  if (!a) return 0;
  const pair = b.tagFilter ? tagPair(b.tagFilter.key, b.tagFilter.value) : undefined;
  if (b.window === 'total') return pair ? (a.byTag[pair]?.microUsd ?? 0) : a.microUsd;
  const month = monthKey(monthBounds(t).start);
  return pair ? (a.byMonthTag[`${month}|${pair}`] ?? 0) : (a.byMonth[month] ?? 0);
}
