import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RecommendInputSchema, type RecommendRequest } from '../src/contracts/prewarm.js';
import { FIGURES, formatRecommendation, recommend, s3Throughput } from '../src/recommender.js';

interface Case {
  title: string;
  input: RecommendRequest;
  strategy: string;
  rationale: RegExp[];
}

const cases: Case[] = [
  {
    title: 'a snapshot of millions of small files read for many epochs is best restored and pre-warmed',
    input: {
      datasetGiB: 500,
      fileCount: 5_000_000,
      runs: 2,
      epochsPerRun: 20,
      instanceType: 'g5.12xlarge',
      volumeThroughputMiBps: 1000,
      snapshotExists: true,
      initRateMiBps: 300,
    },
    strategy: 'PreWarmedEBS',
    rationale: [
      /^PreWarmedEBS: for 500 GiB in 5,000,000 files/,
      /reading every block once \(28 min at 300 MiB\/s\)/,
      /runner-up, LocalCache/,
      /Not possible here: ExistingEBS \(no attached volume holds the dataset\)/,
    ],
  },
  {
    title: 'a dataset without a snapshot read for fifty epochs is best synced once into a local cache',
    input: { datasetGiB: 100, meanFileMiB: 0.25, runs: 2, epochsPerRun: 25, instanceType: 'g5.12xlarge', volumeThroughputMiBps: 1000 },
    strategy: 'LocalCache',
    rationale: [
      /^LocalCache: for 100 GiB in 409,600 files \(mean 256 KiB\), read 50 times \(2 runs × 25 epochs\)/,
      /is repaid over 50 epochs/,
      /runner-up, DirectS3/,
      /PreWarmedEBS \(no snapshot of the dataset/,
    ],
  },
  {
    title: 'a dataset already on the attached volume needs only a manifest check',
    input: { datasetGiB: 200, fileCount: 2_000_000, runs: 3, epochsPerRun: 10, instanceType: 'g5.12xlarge', volumeThroughputMiBps: 1000, onVolume: true },
    strategy: 'ExistingEBS',
    rationale: [/^ExistingEBS: /, /already holds the dataset, so a manifest check/, /runner-up, LocalCache/],
  },
  {
    title: 'one pass over large files on a 400 Gbps instance streams straight from S3',
    input: { datasetGiB: 2000, fileCount: 8_000, instanceType: 'p4d.24xlarge' },
    strategy: 'DirectS3',
    rationale: [
      /^DirectS3: .*read 1 time \(1 run × 1 epoch\) on p4d.24xlarge/,
      /needs no preparation and no disk, and with a single pass a copy would not pay for itself/,
    ],
  },
  {
    title: 'a dataset too big for the cache rules LocalCache out even when it would be fastest',
    input: { datasetGiB: 100, meanFileMiB: 0.25, runs: 2, epochsPerRun: 25, instanceType: 'g5.12xlarge', volumeThroughputMiBps: 1000, cacheGiB: 50 },
    strategy: 'DirectS3',
    rationale: [/^DirectS3: /, /LocalCache \(the dataset \(100 GiB\) does not fit the 50 GiB cache\)/],
  },
  {
    title: 'an attached volume slower than S3 streaming loses to DirectS3 even though it holds the data',
    input: { datasetGiB: 200, fileCount: 200_000, runs: 3, epochsPerRun: 10, instanceType: 'g5.xlarge', onVolume: true },
    strategy: 'DirectS3',
    rationale: [/^DirectS3: /, /runner-up, ExistingEBS/],
  },
];

describe('the recommender', () => {
  for (const c of cases) {
    test(c.title, () => {
      const r = recommend(RecommendInputSchema.parse(c.input));
      assert.equal(r.strategy, c.strategy, r.rationale);
      for (const re of c.rationale) assert.match(r.rationale, re);
      assert.deepEqual(
        r.table.map((e) => e.strategy),
        ['PreWarmedEBS', 'LocalCache', 'ExistingEBS', 'DirectS3'],
      );
      const winner = r.table.find((e) => e.strategy === r.strategy)!;
      for (const e of r.table.filter((x) => x.feasible)) assert.ok(winner.totalSeconds <= e.totalSeconds, `${e.strategy} is faster than the winner`);
      for (const e of r.table) {
        assert.ok(e.feasible || (e.reason ?? '').length > 0, `${e.strategy} is infeasible without a reason`);
        assert.ok(e.costUsd !== null && e.costUsd >= 0, `${e.strategy} has no cost`);
      }
    });
  }

  test('every strategy wins at least one of the cases above', () => {
    const winners = new Set(cases.map((c) => recommend(RecommendInputSchema.parse(c.input)).strategy));
    assert.deepEqual([...winners].sort(), ['DirectS3', 'ExistingEBS', 'LocalCache', 'PreWarmedEBS']);
  });

  test('S3 streaming of small objects is bound by first-byte latency, of large ones by the network', () => {
    // 64 KiB objects over 8 connections: latency dominates (8 × 0.0625 MiB / ~31 ms).
    const small = s3Throughput(0.0625, 8, 10_000, 1);
    assert.ok(small > 15 && small < 17, String(small));
    // 1 GiB objects over 1,000 connections on a 10 Gbps link: the link is the limit.
    assert.equal(s3Throughput(1024, 1000, 1192, 1), 1192);
    // Tiny objects with endless connections: the per-prefix GET rate is the limit.
    assert.equal(s3Throughput(0.001, 1e9, 1e9, 2), FIGURES.s3GetsPerSecondPerPrefix * 2 * 0.001);
  });

  test('the printed table marks the winner and ends with the rationale', () => {
    const r = recommend(RecommendInputSchema.parse(cases[0]!.input));
    const text = formatRecommendation(r);
    assert.match(text, /^\* PreWarmedEBS\s+28 min/m);
    assert.match(text, /^ {2}ExistingEBS\s+-\s+-\s+-\s+-\s+not possible: no attached volume holds the dataset$/m);
    assert.ok(text.endsWith(r.rationale));
  });

  test('an unknown instance type needs its bandwidth and vCPUs, and the input needs a file count or mean size', () => {
    assert.throws(() => recommend(RecommendInputSchema.parse({ datasetGiB: 1, fileCount: 1, instanceType: 'x9.huge' })), /x9.huge is not in the table/);
    const r = recommend(RecommendInputSchema.parse({ datasetGiB: 1, fileCount: 1, instanceType: 'x9.huge', networkGbps: 10, ebsGbps: 5, vCpus: 8 }));
    assert.equal(r.basis.vCpus, 8);
    assert.equal(
      r.table.every((e) => e.costUsd === null),
      true,
      'an unpriced instance type has no cost',
    );
    const bad = RecommendInputSchema.safeParse({ datasetGiB: 1, instanceType: 'g5.xlarge', initRateMiBps: 50 });
    assert.equal(bad.success, false);
    const paths = bad.error!.issues.map((i) => i.path.join('.')).sort();
    assert.deepEqual(paths, ['fileCount', 'initRateMiBps', 'initRateMiBps']);
  });
});
