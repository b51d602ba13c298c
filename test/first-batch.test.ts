/**
 * R40 under holds, R14: a small set whose full batch tolerates no failure under R23 starts with a smaller
 * batch when R23's own arithmetic says that lowers the chance of a stop (`firstBatchSize`, planner/units.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { EngineEvent } from '../src/model/events.js';
import { PRIOR_FAILURE_RATE, stopProbability } from '../src/planner/bound.js';
import { firstBatchSize } from '../src/planner/units.js';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';

/** The batch sizes a unit runs: update domains in turn, cut into batches of `maxBatch`, the first of `first`. */
function sizes(udSizes: number[], maxBatch: number, first: number): number[] {
  const out: number[] = [];
  for (const n of udSizes) {
    for (let left = n; left > 0;) {
      const b = Math.min(left, out.length === 0 ? first : maxBatch);
      out.push(b);
      left -= b;
    }
  }
  return out;
}

const chance = (s: number[], limit: number) => stopProbability(s.slice(0, 20), PRIOR_FAILURE_RATE, limit);

test('R40 R23: a 20-instance set in one update domain (batches of 4 at 20%) starts with one instance, and its chance of an R23 stop falls', () => {
  assert.equal(firstBatchSize([20], 4, 20), 1);
  const before = chance(sizes([20], 4, 4), 20);
  const after = chance(sizes([20], 4, 1), 20);
  // One failure in the first four stops the set (1 of 4 is above 20%); after 1 then 4, one failure in 5 does not.
  assert.ok(before - after > 0.05, `stop chance ${before.toFixed(3)} → ${after.toFixed(3)}`);
});

test('R14 R40: sets whose full batch already tolerates a failure, or whose update domains already cut the batches, keep their batches', () => {
  assert.equal(firstBatchSize([200], 40, 20), 40, 'a batch of 40 tolerates 8 failures');
  assert.equal(firstBatchSize([10], 2, 50), 2, 'at 50% a batch of 2 tolerates one failure');
  assert.equal(firstBatchSize([4, 4, 4, 4, 4], 4, 20), 4, 'update domains of 4: a smaller first batch would not reach 5 instances before the next domain');
  assert.equal(firstBatchSize([1, 1, 1], 1, 20), 1);
  assert.equal(firstBatchSize([30], 1, 20), 1, 'batches of one cannot be smaller');
});

test('R14 R40: over random sets, the first batch is between one and the maximum, never raises the stop chance, and costs at most one batch', () => {
  fc.assert(fc.property(
    fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 10 }),
    fc.integer({ min: 1, max: 12 }),
    fc.constantFrom(0, 10, 20, 25, 33, 50, 100),
    (uds, maxBatch, limit) => {
      const f = firstBatchSize(uds, maxBatch, limit);
      assert.ok(f >= 1 && f <= maxBatch, `first batch ${f} of at most ${maxBatch}`);
      if (f === maxBatch) return;
      // Only where a full batch tolerates no failure, and only for a real gain.
      assert.equal(Math.floor((limit * maxBatch) / 100), 0);
      assert.ok(chance(sizes(uds, maxBatch, f), limit) <= chance(sizes(uds, maxBatch, maxBatch), limit) - 0.01);
      assert.ok(sizes(uds, maxBatch, f).length <= sizes(uds, maxBatch, maxBatch).length + 1);
    },
  ), { numRuns: 500 });
});

function scenario(updateDomains: number): Record<string, unknown> {
  return {
    name: 'first-batch',
    start: '2026-01-05T00:00:00Z',
    seed: 7,
    horizon: 'P8W',
    regions: [{ name: 'eastus', pair: 'westus', zones: [] }, { name: 'westus', pair: 'eastus', zones: [] }],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: { scaleSets: ['eastus', 'westus'].map((region) => ({ name: `ss-${region}`, region, subscription: 'prod', capacity: 20, updateDomains, extensions: ['agent'] })) },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
  };
}

function batchesOf(updateDomains: number): Array<Extract<EngineEvent, { type: 'batch.started' }>> {
  const store = new MemoryStore();
  runSimulation(compileScenario(scenario(updateDomains), 'first-batch'), { store });
  return store.events().filter((e): e is Extract<EngineEvent, { type: 'batch.started' }> => e.type === 'batch.started' && e.scope.region === 'eastus');
}

test('R40 R14: a rollout runs a 20-instance set of one update domain as 1, then batches of 4, and says why; with 5 update domains of 4 it runs batches of 4', () => {
  const one = batchesOf(1);
  assert.deepEqual(one.map((b) => b.instances.length), [1, 4, 4, 4, 4, 3]);
  assert.match(one[0]!.reason, /a smaller first batch, since a full one would tolerate no failure under R23 \(R40\)/);
  assert.doesNotMatch(one[1]!.reason, /smaller first batch/);
  const five = batchesOf(5);
  assert.deepEqual(five.map((b) => b.instances.length), [4, 4, 4, 4, 4]);
  assert.doesNotMatch(five[0]!.reason, /smaller first batch/);
});
