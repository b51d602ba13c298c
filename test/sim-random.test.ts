/** The simulator's latency draws: the parameters kept between draws give exactly the draws computed afresh. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Random, sampleLatencyMs } from '../src/sim/random.js';

/** The log-normal draw written out, as it was before its parameters were kept. */
function direct(rng: Random, l: { medianSeconds: number; p95Seconds: number }): number {
  const mu = Math.log(Math.max(l.medianSeconds, 0.001));
  const sigma = Math.max(0, (Math.log(Math.max(l.p95Seconds, l.medianSeconds)) - mu) / 1.6449);
  return Math.exp(mu + sigma * rng.normal()) * 1000;
}

test('sampleLatencyMs draws the same as the formula for any mix of latencies, also ones changed in place', () => {
  const latency = fc.record({ medianSeconds: fc.double({ min: 0, max: 1000, noNaN: true }), p95Seconds: fc.double({ min: 0, max: 5000, noNaN: true }) });
  fc.assert(fc.property(fc.array(latency, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 60 }), fc.integer(), (ls, picks, seed) => {
    const a = new Random(seed);
    const b = new Random(seed);
    for (const [i, pick] of picks.entries()) {
      const l = ls[pick % ls.length]!;
      assert.equal(sampleLatencyMs(a, l), direct(b, l));
      if (i % 7 === 6) l.p95Seconds += 1; // changed in place: its parameters are computed again
    }
  }), { numRuns: 300 });
});
