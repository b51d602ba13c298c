/** A scenario's `share` picks: hashing ids by their shared prefixes gives exactly `hashUnit`, for any ids, salts and order of calls. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IdHashes } from '../src/sim/id-hashes.js';
import { hashUnit } from '../src/sim/random.js';

// Ids from a small alphabet share prefixes often (as generated machine names do), and some are prefixes of others.
const id = fc.array(fc.constantFrom('v', 'm', '-', '0', '1', '2', 'é', '\u{1F600}'), { maxLength: 12 }).map((cs) => cs.join(''));

test('IdHashes.unit equals hashUnit for every id and salt, whichever ids are skipped or revisited', () => {
  fc.assert(fc.property(fc.array(id, { minLength: 1, maxLength: 40 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: -3, max: 3 })), { maxLength: 80 }), fc.integer(),
    (ids, calls, seed) => {
      const hashes = new IdHashes(ids);
      for (const [pick, saltStep] of calls) {
        const j = pick % ids.length;
        const salt = seed + saltStep;
        assert.equal(hashes.unit(j, salt), hashUnit(ids[j]!, salt), `id ${j} "${ids[j]}" with salt ${salt}`);
      }
    }), { numRuns: 300 });
});

test('IdHashes.unit over a fleet in order, one salt per event, as select calls it', () => {
  const ids = Array.from({ length: 3000 }, (_, i) => `vm-region${String(i % 7).padStart(2, '0')}-${i}`).sort();
  ids.push('vm', 'vm-region00-1-extra', '', 'x'.repeat(40));
  const hashes = new IdHashes(ids);
  for (const salt of [0, 1, 17, 2 ** 31, -5, 4_000_000_123]) {
    for (let j = 0; j < ids.length; j += 1 + (salt & 3)) assert.equal(hashes.unit(j, salt), hashUnit(ids[j]!, salt), `${ids[j]} salt ${salt}`);
  }
});
