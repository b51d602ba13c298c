/**
 * `isoOf` caches the text of the last two instants it formatted (every event of a tick shares one; a
 * batch of re-images alternates it with the notice's end). Whatever the sequence, it must give what
 * `Date.toISOString` gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIso, isoOf } from '../src/engine/clock.js';

test('isoOf equals Date.toISOString for any sequence of instants, repeated, alternating or new', () => {
  // A few instants drawn again and again exercise both cached entries and their replacement.
  const instant = fc.integer({ min: 0, max: 4_102_444_800_000 });
  fc.assert(fc.property(fc.array(instant, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 200 }), (pool, picks) => {
    for (const p of picks) {
      const ms = pool[p % pool.length]!;
      assert.equal(isoOf(ms), new Date(ms).toISOString());
    }
  }), { seed: 20261206, numRuns: 300 });
});

test('formatIso equals Date.toISOString along runs of instants, as a simulation moves through days', () => {
  // A start anywhere from year -2000 to 12000 (six-digit years included), then steps of up to a few hours,
  // some fractional: the kept day is used, left at midnight, and passed over for what it cannot write.
  const start = fc.integer({ min: -125_000_000_000_000, max: 316_000_000_000_000 });
  const step = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 4 * 3_600_000 }), fc.double({ min: 0, max: 5000, noNaN: true }), fc.integer({ min: -86_400_000, max: 0 }));
  fc.assert(fc.property(start, fc.array(step, { maxLength: 60 }), (t0, steps) => {
    let ms = t0;
    assert.equal(formatIso(ms), new Date(ms).toISOString());
    for (const d of steps) {
      ms += d;
      assert.equal(formatIso(ms), new Date(ms).toISOString(), `at ${ms}`);
    }
  }), { numRuns: 500 });
});

test('formatIso at the edges of a day and of the formats it keeps', () => {
  for (const ms of [0, -1, 86_399_999, 86_400_000, 951_782_400_000, 253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_000, -62_167_219_200_001, 1.5, 1_767_571_200_000]) {
    assert.equal(formatIso(ms), new Date(ms).toISOString(), `at ${ms}`);
    assert.equal(formatIso(ms + 1), new Date(ms + 1).toISOString(), `at ${ms + 1}`);
  }
  assert.throws(() => formatIso(Number.NaN), RangeError);
});
