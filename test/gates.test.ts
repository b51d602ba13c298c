/**
 * Table tests of the pure gate verdicts in src/engine/rollouts/gates.ts: the figure each gate observes, the
 * limit it compares against, and where exactly it flips (R20, R23, R24: "more than" the limit holds;
 * R10: the phase gate; R10/R11/R13/R14: batch admission).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { LockView } from '../src/engine/rollouts/gates.js';
import {
  above, admissionBlocker, phaseGate, postBatchHealthGate, preBatchHealthGate, upgradedHealthGate,
} from '../src/engine/rollouts/gates.js';

/** [unhealthy, setSize, limit%, pass, observed%] */
type Row = [number, number, number, boolean, number];

/**
 * Checks a share gate at its edge for every whole of 1..1000 and every limit from `minLimit` to 100:
 * the largest count that is not more than the limit must pass, the next count must not.
 */
function boundaryMistakes(pass: (part: number, whole: number, limit: number) => boolean, minLimit: number): string[] {
  const wrong: string[] = [];
  for (let whole = 1; whole <= 1000; whole++) {
    for (let limit = minLimit; limit <= 100; limit++) {
      const within = Math.floor((limit * whole) / 100);
      if (!pass(within, whole, limit)) wrong.push(`${within} of ${whole} at limit ${limit}% should pass`);
      if (within + 1 <= whole && pass(within + 1, whole, limit)) wrong.push(`${within + 1} of ${whole} at limit ${limit}% should not pass`);
    }
  }
  return wrong;
}

const SHARE_ROWS: Row[] = [
  [0, 10, 20, true, 0],
  [1, 10, 20, true, 10],
  [2, 10, 20, true, 20], // exactly at the limit: not "more than", the batch may start
  [3, 10, 20, false, 30],
  [10, 10, 20, false, 100],
  [20, 100, 20, true, 20],
  [21, 100, 20, false, 21],
  [1, 3, 33, false, 33.33], // 33.33% > 33%
  [1, 3, 34, true, 33.33],
  [1, 1, 100, true, 100],
  [0, 0, 20, true, 0], // an empty set has nothing unhealthy
  [1, 7, 14, false, 14.29],
  [1, 7, 15, true, 14.29],
];

describe('preBatchHealthGate', () => {
  for (const [unhealthy, size, limit, pass, observed] of SHARE_ROWS) {
    test(`R20: ${unhealthy} of ${size} unhealthy with limit ${limit}% ${pass ? 'lets the batch start' : 'holds the batch'} (observed ${observed}%)`, () => {
      const v = preBatchHealthGate(unhealthy, size, limit);
      assert.equal(v.pass, pass);
      assert.equal(v.observed, observed);
      assert.equal(v.limit, limit);
      assert.equal(v.gate, 'maxUnhealthyInstancePercent');
      assert.equal(v.rule, 'R20');
      assert.match(v.reason, new RegExp(`^${unhealthy} of ${size} instances`));
      assert.ok(v.reason.includes(`limit ${limit}%`), v.reason);
    });
  }

  test('R20: the default limit of 20% holds a 30-instance set at 7 unhealthy, not at 6', () => {
    assert.equal(preBatchHealthGate(6, 30, 20).pass, true);
    assert.equal(preBatchHealthGate(7, 30, 20).pass, false);
    assert.equal(preBatchHealthGate(7, 30, 20).observed, 23.33);
  });

  test('R20: at every set size up to 1000 and every limit, the largest count within the limit passes and one more holds', () => {
    const wrong = boundaryMistakes((u, n, l) => preBatchHealthGate(u, n, l).pass, 1);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} boundary mistakes, e.g. ${wrong.slice(0, 5).join('; ')}`);
  });

  test('R20: the verdict fails exactly when the unhealthy share is more than the limit (random sets)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, noNaN: true }), (size, limit, f) => {
        const unhealthy = Math.min(size, Math.floor(f * (size + 1)));
        return preBatchHealthGate(unhealthy, size, limit).pass === !(unhealthy * 100 > limit * size);
      }),
      { numRuns: 5_000, seed: 20 },
    );
  });

  test('R20: 67 of 203 instances (33.005%) is more than a 33% limit and holds the batch', () => {
    // 67/203 = 33.0049...%; rounding the observed share to two decimals must not turn it into 33.00 and a pass.
    const v = preBatchHealthGate(67, 203, 33);
    assert.equal(v.pass, false, `observed ${v.observed}: ${v.reason}`);
  });
});

describe('postBatchHealthGate', () => {
  for (const [unhealthy, size, limit, pass, observed] of SHARE_ROWS) {
    test(`R24: ${unhealthy} of ${size} unhealthy at the end of a batch with limit ${limit}% ${pass ? 'lets the set go on' : 'stops the set'}`, () => {
      const v = postBatchHealthGate(unhealthy, size, limit);
      assert.equal(v.pass, pass);
      assert.equal(v.observed, observed);
      assert.equal(v.limit, limit);
      assert.equal(v.gate, 'maxUnhealthyInstancePercent');
      assert.equal(v.rule, 'R24');
    });
  }
});

describe('upgradedHealthGate', () => {
  /** [unhealthy upgraded, upgraded, limit%, pass, observed%] */
  const rows: Row[] = [
    [0, 0, 20, true, 0], // nothing upgraded yet: nothing to judge
    [0, 5, 20, true, 0],
    [1, 5, 20, true, 20], // exactly at the limit goes on
    [2, 5, 20, false, 40],
    [3, 10, 20, false, 30],
    [2, 10, 20, true, 20],
    [2, 2, 20, false, 100],
    [1, 1, 0, false, 100], // limit 0: any unhealthy upgraded instance stops the set
    [0, 1, 0, true, 0],
    [1, 1000, 0, false, 0.1],
    [5, 5, 100, true, 100],
  ];
  for (const [bad, upgraded, limit, pass, observed] of rows) {
    test(`R23: ${bad} of ${upgraded} upgraded instances unhealthy with limit ${limit}% ${pass ? 'goes on' : 'stops the set'}`, () => {
      const v = upgradedHealthGate(bad, upgraded, limit);
      assert.equal(v.pass, pass);
      assert.equal(v.observed, observed);
      assert.equal(v.limit, limit);
      assert.equal(v.gate, 'maxUnhealthyUpgradedInstancePercent');
      assert.equal(v.rule, 'R23');
      assert.match(v.reason, new RegExp(`^${bad} of ${upgraded} upgraded instances`));
    });
  }

  test('R23: at every upgraded count up to 1000 and every limit, the largest count within the limit goes on and one more stops', () => {
    const wrong = boundaryMistakes((u, n, l) => upgradedHealthGate(u, n, l).pass, 0);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} boundary mistakes, e.g. ${wrong.slice(0, 5).join('; ')}`);
  });
});

describe('above: the shortcut the engine asks before building a share verdict', () => {
  // The engine builds a verdict (and its reason text) only when `above` says the share is over the limit:
  // that is exact only if each share gate fails exactly then.
  test('R20, R23, R24: each share gate fails exactly when the share is above the limit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 100 }), (part, whole, limit) => {
        const over = above(part, whole, limit);
        assert.equal(preBatchHealthGate(part, whole, limit).pass, !over);
        assert.equal(postBatchHealthGate(part, whole, limit).pass, !over);
        assert.equal(upgradedHealthGate(part, whole, limit).pass, !over);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('phaseGate', () => {
  // A phase fails only when its failure share is confidently (90% Wilson lower bound) above the limit.
  const rows: Row[] = [
    [0, 0, 20, true, 0],
    [0, 12, 20, true, 0],
    [1, 5, 20, true, 20],
    [2, 5, 20, true, 40], // lower bound 15.3%: two of five could be bad luck
    [3, 3, 20, false, 100], // lower bound 64.6%: a bad release
    [4, 17, 20, true, 23.53], // lower bound 13.1%
    [40, 100, 20, false, 40], // lower bound 33.9%
    [24, 100, 20, true, 24], // lower bound 18.9%
    [6, 6, 100, true, 100],
    [1, 10, 0, false, 10],
  ];
  for (const [bad, upgraded, limit, pass, observed] of rows) {
    test(`R10: a phase with ${bad} of ${upgraded} failed instances and limit ${limit}% ${pass ? 'completes' : 'fails'}`, () => {
      const v = phaseGate(bad, upgraded, limit);
      assert.equal(v.pass, pass);
      assert.equal(v.observed, observed);
      assert.equal(v.limit, limit);
      assert.equal(v.gate, 'maxPhaseFailurePercent');
      assert.equal(v.rule, 'R10');
    });
  }
});

describe('admissionBlocker', () => {
  const view = (zones: Array<[string, number]>, pairInflight = 0, setInflight = 0): LockView => ({
    regionInflightByZone: new Map(zones),
    pairInflight,
    setInflight,
  });
  const rows: Array<[string, string, LockView, RegExp | null]> = [
    ['R10: nothing in flight admits the batch', '1', view([]), null],
    ['R10: a batch in the geo-paired region holds the batch', '1', view([], 1), /geo-paired/],
    ['R10: the geo-pair is checked before zones and sets', '1', view([['2', 1]], 1, 1), /geo-paired/],
    ['R11: a batch in another zone of the region holds the batch', '1', view([['2', 1]]), /zone 2/],
    ['R11: a zone whose batches finished (count 0) does not hold the batch', '1', view([['2', 0]]), null],
    ['R11: batches in the same zone do not hold the batch', '1', view([['1', 3]]), null],
    ['R14: another batch of the same set in flight holds the batch', '1', view([['1', 1]], 0, 1), /same set|set is in flight/],
    ['R11: the zone lock is checked before the set lock', '1', view([['3', 1]], 0, 1), /zone 3/],
  ];
  for (const [name, zone, v, expected] of rows) {
    test(name, () => {
      const blocker = admissionBlocker(zone, v);
      if (expected === null) assert.equal(blocker, null);
      else {
        assert.notEqual(blocker, null);
        assert.match(blocker!, expected);
      }
    });
  }
});
