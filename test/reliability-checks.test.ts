import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareTrees, differingBytes } from '../reliability/checks.js';
import { clean, renderReport, rows, type CampaignInfo } from '../reliability/report.js';
import type { RunOutcome } from '../reliability/types.js';

test('the campaign counts a missing file in full, a changed one by its differing bytes, and an extra one as a leak', { timeout: 10_000 }, () => {
  const want = new Map([
    ['a.bin', Buffer.from('abcdef')],
    ['b.bin', Buffer.from('0123456789')],
    ['c.bin', Buffer.from('same')],
  ]);
  const got = new Map([
    ['b.bin', Buffer.from('01234X678')],
    ['c.bin', Buffer.from('same')],
    ['.a.bin.trainctl-partial', Buffer.from('abc')],
  ]);
  const c = compareTrees(want, got, 'dst');
  assert.equal(c.corruptBytes, 6 + 2, 'a.bin missing (6 bytes) and b.bin one byte changed and one short');
  assert.equal(c.leaked, 1, 'the partial file is a leak');
  assert.equal(c.findings.length, 3);
  assert.equal(differingBytes(Buffer.from('same'), Buffer.from('same')), 0);
});

const outcome = (o: Partial<RunOutcome>): RunOutcome => ({
  family: 'transfer',
  scenario: 'worker-kill',
  run: 1,
  ended: 'completed',
  detail: '',
  duplicates: 0,
  leaked: 0,
  corruptBytes: 0,
  wrongDeletions: 0,
  durationSeconds: 1,
  ...o,
});

test(
  'the report sums each family and scenario, takes recovery p50 and max over the runs a fault struck, and lists every run that is not clean',
  { timeout: 10_000 },
  () => {
    const outcomes = [
      outcome({ run: 1, recoverySeconds: 4 }),
      outcome({ run: 2, recoverySeconds: 10 }),
      outcome({ run: 3, leaked: 1, detail: 'multipart upload U left open' }),
      outcome({ family: 'cleanup', run: 1, ended: 'unexpected', detail: 'Unknown: boom' }),
    ];
    const [transfer, cleanup] = rows(outcomes);
    assert.deepEqual(
      {
        runs: transfer!.runs,
        completed: transfer!.completed,
        leaked: transfer!.leaked,
        struck: transfer!.struck,
        p50: transfer!.recoveryP50,
        max: transfer!.recoveryMax,
      },
      { runs: 3, completed: 3, leaked: 1, struck: 2, p50: 10, max: 10 },
    );
    assert.equal(cleanup!.unexpected, 1);
    assert.deepEqual(
      outcomes.map((o) => clean(o)),
      [true, true, false, false],
    );
    const info: CampaignInfo = {
      date: '2026-01-01T00:00:00.000Z',
      commit: 'abc1234',
      seed: 7,
      runs: 3,
      smoke: false,
      command: 'npm run reliability',
      wallSeconds: 60,
      machine: { cores: 2, cpuModel: 'cpu', memoryGiB: 4, kernel: '6.1', node: 'v24', loadAtStart: [1, 1, 1] },
      scenarios: [],
      families: [],
      failures: [],
      log: [],
    };
    const md = renderReport(outcomes, info);
    assert.match(md, /\| transfer \| worker-kill \| 3 \| 3 \| 0 \| 0 \| 0 \| 1 \| 0 \| 0 \| 2 \| 10\.0 s \| 10\.0 s \|/);
    assert.match(md, /- transfer \/ worker-kill \/ run 3: completed; multipart upload U left open/);
    assert.match(md, /- cleanup \/ worker-kill \/ run 1: unexpected; Unknown: boom/);
    assert.match(md, /Seed: 7/);
    assert.match(md, /Commit: abc1234/);
  },
);
