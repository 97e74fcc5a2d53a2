import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { HOURS_PER_MONTH, PRICED_REGIONS, PRICING_SOURCE, knownInstanceTypes, microsToUsd, quote } from '../src/pricing.js';
import { MS_PER_HOUR, idiv, resourceMicros, segmentMicros, type TrackedResource } from '../src/cost-model.js';
import { MAX_USD_PER_HOUR } from '../src/contracts/cost.js';

describe('pricing table', () => {
  test('the table names its source and date', () => {
    assert.match(PRICING_SOURCE.url, /aws\.amazon\.com\/ec2\/pricing/);
    assert.match(PRICING_SOURCE.asOf, /^\d{4}-\d{2}$/);
  });

  test('every required instance family has a few priced sizes in us-east-1 and us-west-2, and all but trn1 in eu-west-1', () => {
    for (const region of PRICED_REGIONS) {
      const types = knownInstanceTypes(region);
      for (const family of ['g4dn', 'g5', 'g6', 'p3', 'p4d', 'p5', 'trn1', 't3', 'm5', 'c5']) {
        const sizes = types.filter((t) => t.startsWith(`${family}.`));
        if (family === 'trn1' && region === 'eu-west-1') {
          assert.equal(sizes.length, 0, 'trn1 is not offered in eu-west-1');
          continue;
        }
        assert.ok(sizes.length >= (family === 'p4d' || family === 'p5' ? 1 : 2), `${family} in ${region}: ${sizes.join(', ')}`);
        for (const t of sizes) {
          const q = quote({ kind: 'instance', type: t, region });
          assert.ok(q.priced && q.microUsdPerHour > 0, `${t} in ${region} is priced above $0`);
        }
      }
    }
  });

  test('g5.xlarge in us-east-1 is $1.006 per hour, exactly 1,006,000 µ$', () => {
    assert.deepEqual(quote({ kind: 'instance', type: 'g5.xlarge', region: 'us-east-1' }), {
      priced: true,
      microUsdPerHour: 1_006_000,
      basis: 'g5.xlarge on-demand $1.006/h in us-east-1',
    });
  });

  test('an unknown instance type, an unknown region and a transfer are unpriced with a reason, never $0', () => {
    for (const spec of [
      { kind: 'instance', type: 'x9.galactic', region: 'us-east-1' },
      { kind: 'instance', type: 'g5.xlarge', region: 'ap-south-2' },
      { kind: 'transfer', type: 'ebs-to-s3', region: 'us-east-1' },
      { kind: 'volume', type: 'gp3', region: 'us-east-1' },
    ] as const) {
      const q = quote(spec);
      assert.equal(q.priced, false, JSON.stringify(spec));
      assert.ok(!q.priced && q.reason.length > 0);
    }
  });

  test('EBS volumes are priced per GB-month over 730 hours, with gp3 IOPS and throughput above the baseline extra', () => {
    const gp3 = quote({ kind: 'volume', type: 'gp3', region: 'us-east-1', sizeGiB: 730 });
    assert.ok(gp3.priced);
    assert.equal(gp3.microUsdPerHour, 80_000, '730 GiB × $0.08 / 730 h = $0.08/h');
    const fast = quote({ kind: 'volume', type: 'gp3', region: 'us-east-1', sizeGiB: 730, iops: 4_000, throughputMiBps: 250 });
    assert.ok(fast.priced);
    // + 1,000 IOPS × $0.005 + 125 MiB/s × $0.04 per month = $10/month over 730 h
    assert.equal(fast.microUsdPerHour, 80_000 + Math.round(10_000_000 / HOURS_PER_MONTH));
    const io2 = quote({ kind: 'volume', type: 'io2', region: 'us-east-1', sizeGiB: 100, iops: 40_000 });
    assert.ok(io2.priced);
    const io2Monthly = 100 * 0.125 + 32_000 * 0.065 + 8_000 * 0.0455;
    assert.equal(io2.microUsdPerHour, Math.round((io2Monthly * 1e6) / HOURS_PER_MONTH), 'io2 IOPS are tiered');
    for (const type of ['gp2', 'io1', 'st1', 'sc1']) {
      const q = quote({ kind: 'volume', type, region: 'eu-west-1', sizeGiB: 500, iops: 1_000 });
      assert.ok(q.priced && q.microUsdPerHour > 0, type);
    }
    const euGp3 = quote({ kind: 'volume', type: 'gp3', region: 'eu-west-1', sizeGiB: 100 });
    assert.ok(euGp3.priced && gp3.priced && euGp3.microUsdPerHour > 100 * (gp3.microUsdPerHour / 730), 'Ireland costs more than Virginia');
  });

  test('snapshots and S3 Standard are priced per GB-month', () => {
    const snap = quote({ kind: 'snapshot', type: 'standard', region: 'us-west-2', sizeGiB: 730 });
    const s3 = quote({ kind: 's3-storage', type: 'standard', region: 'us-west-2', sizeGiB: 730 });
    assert.ok(snap.priced && s3.priced);
    assert.equal(snap.microUsdPerHour, 50_000);
    assert.equal(s3.microUsdPerHour, 23_000);
  });
});

describe('cost arithmetic', () => {
  test('integer division is exact where floating point division would round up', () => {
    const b = MS_PER_HOUR;
    for (const q of [1, 7, 2_499_999_999]) {
      assert.equal(idiv(q * b - 1, b), q - 1);
      assert.equal(idiv(q * b, b), q);
    }
  });

  test('a segment costs exactly floor(rate × ms / 3,600,000) µ$, as BigInt arithmetic computes it, even at the highest rate over years', () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const maxRate = MAX_USD_PER_HOUR * 1_000_000;
    for (let i = 0; i < 20_000; i++) {
      const rate = i % 10 === 0 ? maxRate : rnd(maxRate) + 1;
      const ms = i % 7 === 0 ? 3 * 365 * 24 * MS_PER_HOUR + rnd(MS_PER_HOUR) : rnd(2_000_000_000);
      const expected = Number((BigInt(rate) * BigInt(ms)) / BigInt(MS_PER_HOUR));
      assert.equal(segmentMicros(rate, ms), expected, `rate ${rate} ms ${ms}`);
    }
  });

  test('a resource stopped after a rate change costs the sum of its segments, and nothing after its stop', () => {
    const r: TrackedResource = {
      id: 'i-1',
      kind: 'instance',
      type: 'g5.xlarge',
      region: 'us-east-1',
      tags: {},
      startedAt: 0,
      stoppedAt: 3 * MS_PER_HOUR,
      rateSource: 'set-rate',
      segments: [
        { from: 0, to: MS_PER_HOUR, rate: 1_006_000 },
        { from: MS_PER_HOUR, to: 3 * MS_PER_HOUR, rate: 500_000 },
      ],
    };
    assert.equal(resourceMicros(r, 10 * MS_PER_HOUR), 1_006_000 + 1_000_000);
    assert.equal(microsToUsd(resourceMicros(r, 10 * MS_PER_HOUR)), 2.01);
  });
});
