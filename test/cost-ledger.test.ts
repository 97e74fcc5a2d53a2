import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MS_PER_HOUR } from '../src/cost-model.js';
import {
  FUTURE_TOLERANCE_MS,
  applyReconcileReport,
  countOutcome,
  newTrackerState,
  recordUsage,
  setBudget,
  setRate,
  startResource,
  stopResource,
  type LedgerLog,
  type TrackerState,
} from '../src/cost/ledger.js';
import { checkBudget, resourceView, summaryView, totals } from '../src/cost/views.js';

// Pure: no Temporal, no server. Times are plain epoch ms.
const T0 = Date.UTC(2026, 10, 10, 12, 0, 0);
const H = MS_PER_HOUR;

function quietLog(): LedgerLog & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (message) => void warnings.push(message) };
}

function started(state: TrackerState, over: Record<string, unknown> = {}, now = T0) {
  return startResource(state, { id: 'i-1', kind: 'instance', type: 'g5.xlarge', region: 'us-east-1', at: T0, ...over }, false, now, quietLog());
}

describe('cost ledger', () => {
  test('a g5.xlarge started and stopped 90 minutes later costs exactly 1.5 h × 1,006,000 µ$', () => {
    const state = newTrackerState('p');
    assert.equal(started(state), 'accepted');
    assert.equal(stopResource(state, { id: 'i-1', at: T0 + 1.5 * H }, T0 + 2 * H), 'accepted');
    const view = resourceView(state.resources['i-1']!, T0 + 10 * H);
    assert.equal(view.costMicroUsd, 1_509_000);
    assert.equal(view.running, false);
    assert.equal(totals(state, T0 + 10 * H).burnMicroUsdPerHour, 0, 'a stopped resource burns nothing');
  });

  test('a repeated start or stop is a duplicate and changes nothing; a stop of an unknown id or before the start is rejected', () => {
    const state = newTrackerState('p');
    started(state);
    assert.equal(started(state), 'duplicate');
    assert.deepEqual(stopResource(state, { id: 'i-nope' }, T0 + H), { rejected: 'stop of an unknown resource id' });
    const early = stopResource(state, { id: 'i-1', at: T0 - 1 }, T0 + H);
    assert.ok(typeof early === 'object' && /before the resource started/.test(early.rejected));
    assert.equal(stopResource(state, { id: 'i-1', at: T0 + H }, T0 + H), 'accepted');
    assert.equal(stopResource(state, { id: 'i-1', at: T0 + 2 * H }, T0 + 2 * H), 'duplicate');
    assert.equal(state.resources['i-1']!.stoppedAt, T0 + H, 'the duplicate stop did not move the stop time');
  });

  test('a start further in the future than the tolerance is rejected; a malformed one is rejected with the field named', () => {
    const state = newTrackerState('p');
    const future = started(state, { at: T0 + FUTURE_TOLERANCE_MS + 1 });
    assert.ok(typeof future === 'object' && /in the future/.test(future.rejected));
    const bad = startResource(state, { id: 'i-2', kind: 'spaceship', type: 'x', region: 'us-east-1' }, false, T0, quietLog());
    assert.ok(typeof bad === 'object' && /kind/.test(bad.rejected), JSON.stringify(bad));
    assert.deepEqual(Object.keys(state.resources), []);
  });

  test('counting outcomes: each message lands in exactly one counter, and only the last keepRejected rejections are listed', () => {
    const state = newTrackerState('p');
    const log = quietLog();
    countOutcome(state, 'resourceStarted', 'accepted', {}, T0, 2, log);
    countOutcome(state, 'resourceStarted', 'duplicate', {}, T0, 2, log);
    for (const n of [1, 2, 3]) countOutcome(state, 'resourceStopped', { rejected: `no ${n}` }, { id: `i-${n}` }, T0, 2, log);
    assert.deepEqual(state.counters, { accepted: 1, duplicates: 1, rejected: 3, updates: 0 });
    assert.deepEqual(
      state.rejected.map((r) => [r.id, r.reason]),
      [
        ['i-2', 'no 2'],
        ['i-3', 'no 3'],
      ],
    );
    assert.equal(log.warnings.length, 3);
  });

  test('a stopped instance started again opens a second segment: the gap between costs nothing', () => {
    const state = newTrackerState('p');
    started(state, { hourlyRate: 2 });
    stopResource(state, { id: 'i-1', at: T0 + H }, T0 + H);
    assert.equal(started(state, { at: T0 + 3 * H, hourlyRate: 2 }, T0 + 3 * H), 'accepted');
    const r = state.resources['i-1']!;
    assert.equal(r.segments.length, 2);
    assert.equal(resourceView(r, T0 + 4 * H).costMicroUsd, 4_000_000, '1 h + 1 h at $2/h, not the 2 h gap');
  });

  test('setRate reprices an unpriced resource for its whole life and a running priced one from now on', () => {
    const state = newTrackerState('p');
    startResource(state, { id: 'i-x', kind: 'instance', type: 'x9.galactic', region: 'us-east-1', at: T0 }, false, T0, quietLog());
    startResource(state, { id: 'i-g', kind: 'instance', type: 'g5.xlarge', region: 'us-east-1', at: T0 }, false, T0, quietLog());
    assert.equal(resourceView(state.resources['i-x']!, T0 + H).pricing, 'unpriced');

    const x = setRate(state, { type: 'x9.galactic', usdPerHour: 3 }, T0 + 2 * H);
    assert.deepEqual(x, { type: 'x9.galactic', microUsdPerHour: 3_000_000, unit: 'resource', affected: 1 });
    assert.equal(resourceView(state.resources['i-x']!, T0 + 4 * H).costMicroUsd, 12_000_000, '4 h at $3/h from its start');

    setRate(state, { type: 'g5.xlarge', usdPerHour: 2 }, T0 + 2 * H);
    const g = resourceView(state.resources['i-g']!, T0 + 4 * H);
    assert.equal(g.costMicroUsd, 2 * 1_006_000 + 2 * 2_000_000, '2 h at the table price, then 2 h at the set rate');
    assert.equal(g.rateSource, 'set-rate');
    assert.equal(state.counters.updates, 2);
  });

  test('a per-GiB rate prices a volume by its size', () => {
    const state = newTrackerState('p');
    setRate(state, { type: 'gp3', usdPerHour: 0.001, unit: 'GiB' }, T0);
    startResource(state, { id: 'vol-1', kind: 'volume', type: 'gp3', sizeGiB: 500, region: 'us-east-1', at: T0 }, false, T0, quietLog());
    assert.equal(resourceView(state.resources['vol-1']!, T0 + H).hourlyMicroUsd, 500_000);
  });

  test('a budget is due once the spend reaches its limit, and otherwise wakes the tracker when the burn rate crosses it', () => {
    const state = newTrackerState('p');
    started(state, { hourlyRate: 10 });
    const view = setBudget(state, { name: 'b', limitUsd: 25 }, T0);
    assert.equal(view.projectedAt, new Date(T0 + 2.5 * H).toISOString());
    const b = state.budgets['b']!;
    const early = checkBudget(state, b, T0 + H);
    assert.deepEqual(early, { due: false, wake: { at: T0 + 2.5 * H, why: 'budget b reaches $25' } });
    const late = checkBudget(state, b, T0 + 2.5 * H);
    assert.deepEqual(late, { due: true, spent: 25_000_000 });
  });

  test('a tag-filtered budget counts only the resources carrying the tag', () => {
    const state = newTrackerState('p');
    started(state, { id: 'i-a', hourlyRate: 1, tags: { team: 'ml' } });
    started(state, { id: 'i-b', hourlyRate: 5, tags: { team: 'web' } });
    const view = setBudget(state, { name: 'ml', limitUsd: 100, tagFilter: { key: 'team', value: 'ml' } }, T0 + 2 * H);
    assert.equal(view.spentMicroUsd, 2_000_000);
    assert.equal(view.burnUsdPerHour, 1);
  });

  test('usage keeps the latest sample and an exponential moving average; usage of an unknown id is rejected', () => {
    const state = newTrackerState('p');
    started(state);
    recordUsage(state, { id: 'i-1', cpuPercent: 100 }, T0);
    recordUsage(state, { id: 'i-1', cpuPercent: 50 }, T0 + 1);
    const u = state.resources['i-1']!.usage!;
    assert.equal(u.samples, 2);
    assert.equal(u.latest.cpuPercent, 50);
    assert.equal(u.average.cpuPercent, 90);
    assert.deepEqual(recordUsage(state, { id: 'i-9', cpuPercent: 1 }, T0), { rejected: 'usage for an unknown resource id' });
  });

  test('a reconciliation report registers orphans as orphans and stops vanished resources at the report time', () => {
    const state = newTrackerState('p');
    started(state, { hourlyRate: 1 });
    const outcome = applyReconcileReport(
      state,
      {
        at: T0 + H,
        regions: ['us-east-1'],
        orphans: [{ id: 'vol-o', kind: 'volume', type: 'gp3', sizeGiB: 10, region: 'us-east-1', at: T0 }],
        vanished: [{ id: 'i-1', state: 'terminated' }],
        checked: 2,
      },
      T0 + 2 * H,
      quietLog(),
    );
    assert.equal(outcome, 'accepted');
    assert.equal(state.resources['vol-o']!.orphan, true);
    assert.equal(state.resources['i-1']!.stoppedAt, T0 + H);
    assert.deepEqual(state.reconciliation, { at: new Date(T0 + H).toISOString(), regions: ['us-east-1'], checked: 2, orphans: ['vol-o'], vanished: ['i-1'] });
    assert.equal(summaryView(state, undefined, T0 + 2 * H).reconciliation?.orphans[0], 'vol-o');
  });
});
