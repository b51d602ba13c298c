/** Property tests of the R12 cross-region spread: the verdict that keeps a subscription's standalone machines apart. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { subscriptionSpreadBlocker } from '../src/engine/rollouts/gates.js';

const sizes = fc.integer({ min: 1, max: 60 }).chain((total) =>
  fc.record({ total: fc.constant(total), inflight: fc.integer({ min: 0, max: total - 1 }), batch: fc.integer({ min: 1, max: total }) }));

test('R12: an admitted batch never puts all of a subscription\'s standalone machines of a phase in flight, unless it starts alone', () => {
  fc.assert(fc.property(sizes, ({ total, inflight, batch }) => {
    const admitted = subscriptionSpreadBlocker(inflight, batch, total) === null;
    if (admitted && total > 1 && inflight > 0) assert.ok(inflight + batch < total);
  }));
});

test('R12: the spread never holds a batch when nothing of the subscription is in flight (no deadlock), nor a lone machine', () => {
  fc.assert(fc.property(sizes, ({ total, batch }) => {
    assert.equal(subscriptionSpreadBlocker(0, batch, total), null);
    assert.equal(subscriptionSpreadBlocker(0, 1, 1), null);
  }));
});
