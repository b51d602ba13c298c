/**
 * `isoOf` caches the text of the last two instants it formatted (every event of a tick shares one; a
 * batch of re-images alternates it with the notice's end). Whatever the sequence, it must give what
 * `Date.toISOString` gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isoOf } from '../src/engine/clock.js';

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
