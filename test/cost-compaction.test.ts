/**
 * The cost tracker's carried state stays bounded (docs/LIMITS.md): fed 100,000 resource
 * lifecycles over two years and compacted at each continue-as-new, its state stays under 1 MB, and
 * every view of cost — totals, by kind, by tag, total and monthly budgets — gives the same figures
 * as a tracker that kept every resource. State carried from an older run is migrated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newTrackerState, type TrackerState } from '../src/cost/state.js';
import { setBudget, startResource, stopResource } from '../src/cost/ledger.js';
import { budgetView, byTagView, summaryView, totals } from '../src/cost/views.js';
import { MAX_TAG_GROUPS, RETENTION_MS, STATE_VERSION, compactState, migrateState } from '../src/cost/compaction.js';

const quiet = { info: () => undefined, warn: () => undefined };
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Two trackers fed the same lifecycles: one compacted at every "continue-as-new", one never. */
function feed(n: number, days: number): { compacted: TrackerState; reference: TrackerState; end: number; maxCarried: number } {
  const t0 = Date.UTC(2025, 0, 3);
  const compacted = newTrackerState('p');
  const reference = newTrackerState('p');
  for (const s of [compacted, reference]) {
    setBudget(s, { name: 'all', limitUsd: 1_000_000, action: 'alert' }, t0);
    setBudget(s, { name: 'team-a', limitUsd: 1_000_000, action: 'alert', tagFilter: { key: 'team', value: 'a' } }, t0);
    setBudget(s, { name: 'monthly-b', limitUsd: 1_000_000, window: 'monthly', action: 'alert', tagFilter: { key: 'team', value: 'b' } }, t0);
    setBudget(s, { name: 'monthly', limitUsd: 1_000_000, window: 'monthly', action: 'alert' }, t0);
  }
  const span = days * DAY;
  // Each resource starts at an even step and runs 1–40 hours (some across a month's end).
  const events: { at: number; start?: Record<string, unknown>; stop?: { id: string; at: number } }[] = [];
  for (let i = 0; i < n; i++) {
    const at = t0 + Math.floor((i * span) / n);
    const id = `vol-${i.toString(16).padStart(8, '0')}`;
    const kind = i % 3 === 0 ? 'instance' : 'volume';
    const start =
      kind === 'instance'
        ? { id, kind, type: 'g5.xlarge', region: 'us-east-1', tags: { team: i % 2 ? 'a' : 'b', run: `run-${i}` }, at }
        : { id, kind, type: 'gp3', sizeGiB: 100 + (i % 7), region: 'us-east-1', tags: { team: i % 2 ? 'a' : 'b', run: `run-${i}` }, at };
    events.push({ at, start });
    const stopAt = at + (1 + (i % 40)) * HOUR;
    events.push({ at: stopAt, stop: { id, at: stopAt } });
  }
  events.sort((a, b) => a.at - b.at);
  let maxCarried = 0;
  let sinceCompaction = 0;
  for (const e of events) {
    for (const s of [compacted, reference]) {
      const outcome = e.start ? startResource(s, e.start, false, e.at, quiet) : stopResource(s, e.stop, e.at);
      assert.equal(outcome, 'accepted', JSON.stringify(outcome));
    }
    // The tracker continues as new every 2,000 messages (its default), compacting first.
    if (++sinceCompaction === 2_000) {
      sinceCompaction = 0;
      compactState(compacted, e.at);
      maxCarried = Math.max(maxCarried, JSON.stringify(compacted).length);
    }
  }
  return { compacted, reference, end: events[events.length - 1]!.at, maxCarried };
}

test('100,000 lifecycles over two years: the carried state stays under 1 MB and every cost view is unchanged by compaction', { timeout: 120_000 }, (t) => {
  const { compacted, reference, end, maxCarried } = feed(100_000, 730);
  const at = end + DAY;
  compactState(compacted, end);
  const carried = JSON.stringify(compacted).length;
  const uncompacted = JSON.stringify(reference).length;
  t.diagnostic(
    `carried state: ${(carried / 1e6).toFixed(2)} MB (largest at a continue-as-new ${(maxCarried / 1e6).toFixed(2)} MB) vs ${(uncompacted / 1e6).toFixed(1)} MB kept whole; ${Object.keys(compacted.resources).length} resources kept, ${compacted.archive?.resources} folded, ${Object.keys(compacted.archive?.byTag ?? {}).length} tag groups`,
  );
  assert.ok(maxCarried < 1_000_000, `carried state reached ${maxCarried} bytes`);
  assert.ok(Object.keys(compacted.archive?.byTag ?? {}).length <= MAX_TAG_GROUPS);
  assert.equal(compacted.archive!.resources + Object.keys(compacted.resources).length, 100_000);

  assert.equal(totals(compacted, at).totalMicroUsd, totals(reference, at).totalMicroUsd);
  // A day after the last message, and at the last message itself.
  for (const [name, when] of [
    ['all', at],
    ['team-a', at],
    ['monthly', at],
    ['monthly-b', at],
    ['monthly', end],
    ['monthly-b', end],
  ] as const)
    assert.equal(
      budgetView(compacted, compacted.budgets[name]!, when).spentMicroUsd,
      budgetView(reference, reference.budgets[name]!, when).spentMicroUsd,
      `budget ${name} at ${new Date(when).toISOString()}`,
    );
  for (const value of ['a', 'b']) assert.equal(byTagView(compacted, 'team', value, at).totalMicroUsd, byTagView(reference, 'team', value, at).totalMicroUsd);
  const [s1, s2] = [summaryView(compacted, { tagKey: 'team' }, at), summaryView(reference, { tagKey: 'team' }, at)];
  for (const kind of ['instance', 'volume'] as const)
    assert.deepEqual(
      [s1.byKind[kind]?.totalMicroUsd, s1.byKind[kind]?.resources],
      [s2.byKind[kind]?.totalMicroUsd, s2.byKind[kind]?.resources],
      `by kind ${kind}`,
    );
  for (const value of ['a', 'b']) assert.equal(s1.byTag?.groups[value]?.totalMicroUsd, s2.byTag?.groups[value]?.totalMicroUsd, `by tag team=${value}`);
});

test('only resources stopped longer ago than the retention window fold; running and recently stopped ones stay whole', () => {
  const { compacted } = feed(200, 30);
  const end = Date.UTC(2025, 1, 1);
  compactState(compacted, end);
  for (const r of Object.values(compacted.resources)) assert.ok(r.stoppedAt === undefined || r.stoppedAt > end - RETENTION_MS, r.id);
});

test('state carried from a run before compaction (no stateVersion) is migrated: same resources, an empty archive', () => {
  const old = newTrackerState('p') as TrackerState & Record<string, unknown>;
  delete old.stateVersion;
  delete old.archive;
  startResource(old, { id: 'vol-old', kind: 'volume', type: 'gp3', sizeGiB: 10, region: 'us-east-1', tags: {} }, false, Date.UTC(2025, 0, 1), quiet);
  const migrated = migrateState(structuredClone(old));
  assert.equal(migrated.stateVersion, STATE_VERSION);
  assert.deepEqual(migrated.archive, { resources: 0, microUsd: 0, byMonth: {}, byKind: {}, byTag: {}, byMonthTag: {}, tagGroupsDropped: 0 });
  assert.deepEqual(migrated.resources, old.resources);
  assert.equal(totals(migrated, Date.UTC(2025, 0, 2)).totalMicroUsd, totals(old, Date.UTC(2025, 0, 2)).totalMicroUsd);
});
