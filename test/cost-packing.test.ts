import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countOutcome, newTrackerState, recordUsage, setRate, startResource, stopResource, type TrackerState } from '../src/cost/ledger.js';
import { CARRIED_BYTES_LIMIT, CarriedSize, packResources, unpackResources } from '../src/cost/packing.js';
import { utf8Bytes } from '../src/utf8.js';
import { migrateState } from '../src/cost/compaction.js';
import { totals } from '../src/cost/views.js';

const quiet = { warn() {} };
const now = Date.UTC(2026, 10, 30, 8);
/** Temporal's payload limit: a continue-as-new whose input is larger fails its workflow task forever. */
const PAYLOAD_LIMIT = 2 * 1024 * 1024;

/** The bytes of the state a continue-as-new carries (as the tracker packs it). */
function carriedBytes(state: TrackerState): number {
  return utf8Bytes(JSON.stringify({ ...state, resources: {}, packedResources: packResources(state.resources) }));
}

test(
  'packed resources unpack to exactly what was packed: tags, stops, restarts, unpriced and null-rate segments, overrides, sizes, orphans, usage, order',
  { timeout: 10_000 },
  () => {
    const s = newTrackerState('p');
    startResource(
      s,
      {
        id: 'vol-1',
        kind: 'volume',
        type: 'gp3',
        region: 'eu-west-1',
        sizeGiB: 500,
        iops: 4000,
        throughputMiBps: 250,
        tags: { team: 'a', 'run id': 'r-1' },
        at: now - 5e6,
      },
      false,
      now,
      quiet,
    );
    startResource(s, { id: 'i-2', kind: 'instance', type: 'no-such.type', region: 'us-east-1', tags: {}, at: now - 4e6 }, false, now, quiet);
    startResource(
      s,
      { id: 'i-3', kind: 'instance', type: 'g5.xlarge', region: 'us-east-1', tags: { team: 'b' }, at: now - 3e6, hourlyRate: 1.25 },
      false,
      now,
      quiet,
    );
    stopResource(s, { id: 'i-3', at: now - 2e6 }, now);
    startResource(s, { id: 'i-3', kind: 'instance', type: 'g5.xlarge', region: 'us-east-1', tags: {}, at: now - 1e6 }, false, now, quiet);
    startResource(s, { id: 'i-4', kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: { ünïcode: '✓' }, at: now - 1e6 }, true, now, quiet);
    recordUsage(s, { id: 'i-4', cpuPercent: 33.3, gpuPercent: 0, at: now - 1 }, now);
    recordUsage(s, { id: 'i-4', cpuPercent: 12.7, networkBytes: 9e9 }, now);
    setRate(s, { type: 't3.micro', usdPerHour: 0.02 }, now - 500);
    const before = structuredClone(s.resources);
    const packed = packResources(s.resources);
    const after = unpackResources(JSON.parse(JSON.stringify(packed)));
    assert.deepStrictEqual(after, before);
    assert.deepEqual(Object.keys(after), Object.keys(before), 'in the same order');
    assert.equal(after['i-2']!.segments[0]!.rate, null, 'an unpriced segment stays unpriced');

    // Carried through migrateState, as a new run receives it: every figure is the same.
    const carried = migrateState(JSON.parse(JSON.stringify({ ...s, resources: {}, packedResources: packed })) as TrackerState);
    assert.equal(carried.packedResources, undefined);
    assert.deepStrictEqual(carried.resources, before);
    assert.deepEqual(totals(carried, now), totals(s, now));
    assert.deepStrictEqual(unpackResources(packResources({})), {});
  },
);

test('10,000 running instances carry in well under the payload limit packed (over it whole)', { timeout: 30_000 }, () => {
  const s = newTrackerState('bench');
  for (let i = 0; i < 10_000; i++) {
    startResource(
      s,
      { id: `i-bench${String(i).padStart(6, '0')}`, kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: {}, at: now - i },
      false,
      now,
      quiet,
    );
  }
  const whole = utf8Bytes(JSON.stringify(s));
  const packed = carriedBytes(s);
  console.log(`[packing] 10,000 running instances: ${whole} bytes whole, ${packed} bytes packed (${(packed / 10_000).toFixed(1)} per resource)`);
  assert.ok(whole > PAYLOAD_LIMIT * 0.95, `whole: ${whole}`);
  assert.ok(packed < 700_000, `packed: ${packed}`);
});

/** Starts resources until the tracker refuses one; returns how many it took and the refusal. */
function fill(s: TrackerState, keepRejected: number, resource: (i: number) => object): { accepted: number; refusal: string } {
  const capacity = new CarriedSize(s, keepRejected);
  for (let i = 0; ; i++) {
    const outcome = startResource(s, resource(i), false, now, quiet, capacity);
    if (outcome !== 'accepted') {
      assert.equal(typeof outcome, 'object', `outcome ${String(outcome)}`);
      return { accepted: i, refusal: (outcome as { rejected: string }).rejected };
    }
  }
}

test(
  'a tracker refuses the resource that would take its carried state over the limit, and what it accepted (all stopped, all with usage, every rejected slot full) still fits in one payload',
  { timeout: 120_000 },
  () => {
    const cases: [string, number, (i: number) => object][] = [
      [
        'bench-like instances, no tags',
        50,
        (i) => ({ id: `i-bench${String(i).padStart(6, '0')}`, kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: {}, at: now - i }),
      ],
      [
        'instances with two tags (7 teams, a run per 1,000)',
        50,
        (i) => ({
          id: `i-0${i.toString(16).padStart(16, '0')}`,
          kind: 'instance',
          type: 'g5.xlarge',
          region: 'us-west-2',
          tags: { team: `team-${i % 7}`, run: `run-${Math.floor(i / 1000)}` },
          at: now - i,
        }),
      ],
      [
        'worst case: 256-character ids, 50 unique 128/256-character tags each, keepRejected 1,000',
        1_000,
        (i) => ({
          id: `${'v'.repeat(246)}${String(i).padStart(10, '0')}`,
          kind: 'volume',
          type: 'gp3',
          region: 'us-east-1',
          sizeGiB: 10_000_000,
          iops: 1_000_000,
          throughputMiBps: 100_000,
          tags: Object.fromEntries(
            Array.from({ length: 50 }, (_, k) => [
              `${'k'.repeat(118)}${String(i * 50 + k).padStart(10, '0')}`,
              `${'é'.repeat(246)}${String(i).padStart(10, '0')}`,
            ]),
          ),
          at: now - 3 * 365 * 86_400_000 + i,
        }),
      ],
    ];
    for (const [label, keepRejected, resource] of cases) {
      const s = newTrackerState('full');
      const { accepted, refusal } = fill(s, keepRejected, resource);
      assert.match(refusal, /^the tracker is full: what it carries into its next run would be over 1900000 bytes/);
      // The worst the run can still come to before it continues as new: every resource stopped with usage, a full rejected list.
      const capacity = new CarriedSize(s, keepRejected);
      for (const id of Object.keys(s.resources)) {
        recordUsage(
          s,
          { id, cpuPercent: 12.345678901234, memoryPercent: 98.76543210987, gpuPercent: 55.5555555555, networkBytes: 123456789012, at: now },
          now,
          capacity,
        );
        recordUsage(
          s,
          { id, cpuPercent: 1.2345678901234, memoryPercent: 9.876543210987, gpuPercent: 5.55555555555, networkBytes: 923456789012, at: now },
          now,
          capacity,
        );
        stopResource(s, { id, at: now }, now);
      }
      for (let i = 0; i < keepRejected + 5; i++) {
        countOutcome(s, 'resourceStopped', { rejected: '✗'.repeat(600) }, { id: 'ü'.repeat(300) }, now, keepRejected, quiet);
      }
      const bytes = carriedBytes(s);
      console.log(`[packing] ${label}: ${accepted} resources accepted before the refusal; carried at worst ${bytes} bytes (limit ${CARRIED_BYTES_LIMIT})`);
      assert.ok(bytes < PAYLOAD_LIMIT - 64 * 1024, `${label}: ${bytes} bytes carried`);
      assert.ok(accepted > 0);
      if (label.startsWith('bench')) assert.ok(accepted >= 10_000, `bench-like: ${accepted}`);
    }
  },
);

test(
  'usage for a resource is refused with the same reason once the carried state is full; a resource that already has usage keeps updating it',
  { timeout: 10_000 },
  () => {
    const s = newTrackerState('p');
    startResource(s, { id: 'i-1', kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: {} }, false, now, quiet);
    startResource(s, { id: 'i-2', kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: {} }, false, now, quiet);
    assert.equal(recordUsage(s, { id: 'i-1', cpuPercent: 1 }, now), 'accepted');
    const start = new CarriedSize(s, 50);
    const capacity = new CarriedSize(s, 50, start.used + 10);
    const refused = recordUsage(s, { id: 'i-2', cpuPercent: 1 }, now, capacity);
    assert.match(typeof refused === 'object' ? refused.rejected : '', /the tracker is full/);
    assert.equal(s.resources['i-2']!.usage, undefined, 'nothing recorded');
    assert.equal(recordUsage(s, { id: 'i-1', cpuPercent: 2 }, now, capacity), 'accepted');
    const full = startResource(s, { id: 'i-3', kind: 'instance', type: 't3.micro', region: 'us-east-1', tags: {} }, false, now, quiet, capacity);
    assert.match(typeof full === 'object' ? full.rejected : '', /the tracker is full/);
    assert.equal(s.resources['i-3'], undefined);
  },
);
