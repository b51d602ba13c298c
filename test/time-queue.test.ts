/** The simulator's bucketed time queue pops in exactly the binary heap's order: by time, then first in first out. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TimeHeap } from '../src/util/heap.js';
import { InstantQueue, TimeQueue } from '../src/util/time-queue.js';

type Op = { push: number } | { pop: true };

test('TimeQueue pops, peeks, orders and lists like TimeHeap under any mix of pushes and pops', () => {
  // Few distinct times so that many items share one, pushes before, at and after the earliest.
  const op: fc.Arbitrary<Op> = fc.oneof(fc.record({ push: fc.integer({ min: 0, max: 12 }) }), fc.constant({ pop: true as const }));
  fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
    const heap = new TimeHeap<{ at: number; n: number }>();
    const queue = new TimeQueue<{ at: number; n: number }>();
    let n = 0;
    let clock = 0;
    for (const o of ops) {
      if ('push' in o) {
        const item = { at: clock + o.push, n: n++ };
        heap.push(item);
        queue.push(item);
      } else {
        const a = heap.pop();
        assert.equal(queue.pop(), a);
        if (a) clock = a.at; // like a simulation: later pushes are at or after the time reached
      }
      assert.equal(queue.size, heap.size);
      assert.equal(queue.peek(), heap.peek());
    }
    assert.deepEqual(queue.ordered(), heap.ordered());
    assert.deepEqual(queue.toArray().map((i) => i.n).sort((x, y) => x - y), heap.toArray().map((i) => i.n).sort((x, y) => x - y));
    for (let a = heap.pop(); a; a = heap.pop()) assert.equal(queue.pop(), a);
    assert.equal(queue.pop(), undefined);
    assert.equal(queue.size, 0);
  }), { numRuns: 500 });
});

test('TimeQueue takes items earlier than everything queued, and times it emptied before', () => {
  const q = new TimeQueue<{ at: number; id: string }>();
  q.push({ at: 10, id: 'a' });
  q.push({ at: 10, id: 'b' });
  assert.equal(q.pop()!.id, 'a');
  q.push({ at: 5, id: 'c' }); // earlier than the partly popped bucket
  q.push({ at: 10, id: 'd' });
  assert.deepEqual([q.pop()!.id, q.pop()!.id, q.pop()!.id], ['c', 'b', 'd']);
  q.push({ at: 10, id: 'e' }); // its bucket was emptied and reused
  assert.equal(q.peek()!.id, 'e');
  assert.equal(q.size, 1);
});

test('TimeQueue keeps the heap order when whole seconds and other times mix: before its first time, fractions, far ones', () => {
  // Times on whole seconds from the first push are keyed apart from any other time; both kinds must meet in one order.
  const base = Date.UTC(2026, 11, 6);
  const time: fc.Arbitrary<number> = fc.oneof(
    fc.integer({ min: -5, max: 12 }).map((s) => base + s * 1000),
    fc.integer({ min: -5, max: 12 }).map((s) => base + s * 1000 + 500),
    fc.integer({ min: 0, max: 12 }).map((s) => base + s * 1000 + 0.25),
    fc.constantFrom(0, 1000, base + 2 ** 31 * 1000, base - 2 ** 40),
  );
  const op: fc.Arbitrary<Op> = fc.oneof(fc.record({ push: time }), fc.constant({ pop: true as const }));
  fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
    const heap = new TimeHeap<{ at: number; n: number }>();
    const queue = new TimeQueue<{ at: number; n: number }>();
    let n = 0;
    for (const o of ops) {
      if ('push' in o) {
        const item = { at: o.push, n: n++ };
        heap.push(item);
        queue.push(item);
      } else assert.equal(queue.pop(), heap.pop());
      assert.equal(queue.peek(), heap.peek());
    }
    assert.deepEqual(queue.ordered(), heap.ordered());
    assert.equal(queue.toArray().length, heap.size);
    for (let a = heap.pop(); a; a = heap.pop()) assert.equal(queue.pop(), a);
    assert.equal(queue.size, 0);
  }), { numRuns: 500 });
});

test('InstantQueue keeps each time beside its item: nextAt, peekItem and orderedAt agree with the pops', () => {
  const q = new InstantQueue<string>();
  assert.equal(q.nextAt(), null);
  q.pushAt(2000, 'b');
  q.pushAt(1000, 'a');
  q.pushAt(2000, 'c');
  q.pushAt(1500.5, 'x');
  assert.deepEqual(q.orderedAt(), [[1000, 'a'], [1500.5, 'x'], [2000, 'b'], [2000, 'c']]);
  const popped: Array<[number, string]> = [];
  while (q.size > 0) {
    const at = q.nextAt()!;
    assert.equal(q.peekItem(), q.orderedAt()[0]![1]);
    popped.push([at, q.pop()!]);
  }
  assert.deepEqual(popped, [[1000, 'a'], [1500.5, 'x'], [2000, 'b'], [2000, 'c']]);
  assert.equal(q.nextAt(), null);
});

type RemovalOp = { push: number } | { pop: true } | { remove: number };

test('TimeQueue.remove takes out exactly that item at once; pops, peeks, sizes and listings go on as if it was never pushed', () => {
  // The engine takes a cancelled timer out of the queue when it is cancelled (issue 13). The model: a list in pop order.
  const op: fc.Arbitrary<RemovalOp> = fc.oneof(
    fc.record({ push: fc.integer({ min: 0, max: 6 }) }),
    fc.constant({ pop: true as const }),
    fc.record({ remove: fc.nat(40) }),
    fc.record({ remove: fc.nat(40) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
    type Item = { at: number; n: number };
    const queue = new TimeQueue<Item>();
    let model: Item[] = [];
    const gone: Item[] = [];
    let n = 0;
    let clock = 0;
    for (const o of ops) {
      if ('push' in o) {
        const item = { at: clock + o.push, n: n++ };
        queue.push(item);
        model.push(item);
        model.sort((x, y) => x.at - y.at || x.n - y.n);
      } else if ('pop' in o) {
        const a = model.shift();
        assert.equal(queue.pop(), a);
        if (a) clock = a.at;
      } else if (model.length > 0) {
        const item = model[o.remove % model.length]!;
        assert.equal(queue.remove(item), true);
        model = model.filter((x) => x !== item);
        gone.push(item);
        assert.equal(queue.remove(item), false); // once only
      } else assert.equal(queue.remove({ at: clock, n: -1 }), false);
      assert.equal(queue.size, model.length);
      assert.equal(queue.peek(), model[0]);
      assert.equal(queue.nextAt(), model[0]?.at ?? null);
    }
    assert.deepEqual(queue.ordered(), model);
    assert.deepEqual(queue.toArray().map((i) => i.n).sort((x, y) => x - y), model.map((i) => i.n).sort((x, y) => x - y));
    for (const g of gone) assert.equal(queue.remove(g), false);
    for (const m of model) assert.equal(queue.pop(), m);
    assert.equal(queue.pop(), undefined);
    assert.equal(queue.size, 0);
  }), { numRuns: 1000 });
});

test('TimeQueue.remove finds an item at the place push returned, and by search when the place is stale or unknown', () => {
  type Item = { at: number; id: string };
  const q = new TimeQueue<Item>();
  const items = ['a', 'b', 'c', 'd'].map((id) => ({ at: 10, id }));
  const places = items.map((i) => q.push(i));
  assert.deepEqual(places, [0, 1, 2, 3]);
  assert.equal(q.remove(items[2]!, places[2]), true);
  assert.equal(q.remove(items[1]!, places[3]), true); // a wrong place: found by search
  assert.equal(q.remove(items[3]!), true); // no place
  assert.equal(q.remove(items[3]!, places[3]), false);
  assert.deepEqual(q.ordered().map((i) => i.id), ['a']);
  assert.equal(q.pop(), items[0]);
  const e = { at: 10, id: 'e' };
  assert.equal(q.push(e), 0); // the emptied bucket went; a new one starts at 0
  assert.equal(q.remove(items[0]!, 0), false); // popped: not found where it was
  assert.equal(q.size, 1);
});

test('TimeQueue keeps its order when whole seconds 4,096 s apart share a slot of its ring of buckets, with removals', () => {
  // Seconds congruent modulo the ring's size (4,096) meet in one slot: one is kept in the ring, the others in the map.
  const base = Date.UTC(2026, 11, 7);
  const time = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 })).map(([lap, s]) => base + (lap * 4096 + s) * 1000);
  const op: fc.Arbitrary<RemovalOp> = fc.oneof(fc.record({ push: time }), fc.record({ push: time }), fc.constant({ pop: true as const }), fc.record({ remove: fc.nat(40) }));
  fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
    type Item = { at: number; n: number };
    const queue = new TimeQueue<Item>();
    let model: Item[] = [];
    let n = 0;
    for (const o of ops) {
      if ('push' in o) {
        queue.push({ at: o.push, n: n++ });
        model.push({ at: o.push, n: n - 1 });
        model.sort((x, y) => x.at - y.at || x.n - y.n);
      } else if ('pop' in o) assert.deepEqual(queue.pop(), model.shift());
      else if (model.length > 0) {
        const item = model[o.remove % model.length]!;
        const queued = queue.ordered().find((i) => i.n === item.n)!;
        assert.equal(queue.remove(queued), true);
        model = model.filter((x) => x !== item);
      }
      assert.equal(queue.size, model.length);
      assert.equal(queue.nextAt(), model[0]?.at ?? null);
    }
    assert.deepEqual(queue.ordered(), model);
    assert.deepEqual(queue.toArray().map((i) => i.n).sort((x, y) => x - y), model.map((i) => i.n).sort((x, y) => x - y));
    for (const m of model) assert.deepEqual(queue.pop(), m);
    assert.equal(queue.size, 0);
  }), { numRuns: 1000 });
});
