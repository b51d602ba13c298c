/**
 * Keyed paging without sorting the list (src/api/arm/keyed-page.ts): the same pages as sorting the whole
 * list and slicing after the key; a walk through random creations and deletions serves every resource
 * present throughout exactly once, in name order (a saved continuationToken is such a walk); views are
 * built for the served items only. (Moved here from api-sdk-patterns.test.ts, and widened.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { FastifyRequest } from 'fastify';
import type { ArmContext } from '../src/api/arm/context.js';
import { compareKeys, indexedPage, page } from '../src/api/arm/context.js';
import { pageAfter, SortedKeyCache } from '../src/api/arm/keyed-page.js';

const name = fc.stringMatching(/^[a-zA-Z]{0,3}[0-9]{0,4}[a-z]?$/).filter((n) => n !== ''); // resource names are never empty

function requestOf(link: string): FastifyRequest {
  const u = new URL(link);
  return { query: Object.fromEntries(u.searchParams), url: `${u.pathname}${u.search}`, headers: { host: u.host } } as unknown as FastifyRequest;
}

test('pageAfter gives what sorting the whole list and slicing after the key gives', () => {
  fc.assert(fc.property(fc.uniqueArray(name, { maxLength: 60 }), fc.option(name), fc.integer({ min: 1, max: 9 }), (keys, after, size) => {
    const sorted = [...keys].sort(compareKeys).filter((k) => after === null || compareKeys(k, after) > 0);
    const got = pageAfter(keys, (k) => k, after, size);
    assert.deepEqual(got.value, sorted.slice(0, size));
    assert.equal(got.more, sorted.length > size);
  }), { seed: 4242, numRuns: 2000 });
});

test('keyed pages through random creations and deletions: every resource present throughout, exactly once, in name order; views of the page only', () => {
  const change = fc.record({ add: fc.array(name, { maxLength: 20 }), remove: fc.array(fc.nat(500), { maxLength: 20 }) });
  fc.assert(fc.property(fc.uniqueArray(name, { maxLength: 400, selector: (n) => n.toLowerCase() }), fc.integer({ min: 1, max: 50 }), fc.array(change, { maxLength: 40 }), (start, size, changes) => {
    const ctx = { pageSize: size, publicUrl: 'https://cp.test' } as unknown as ArmContext;
    let items = start.map((n) => ({ n }));
    const removed = new Set<string>();
    const served: string[] = [];
    let views = 0;
    let link: string | undefined = 'https://cp.test/list?api-version=1';
    for (let i = 0; link !== undefined; i++) {
      assert.ok(i < 2000, 'the walk ends');
      const r: { value: string[]; nextLink?: string } = page(ctx, requestOf(link), items, (x) => x.n, (x) => (views++, x.n.toLowerCase()));
      assert.ok(r.value.length <= size);
      served.push(...r.value);
      link = r.nextLink;
      const c = changes[i];
      if (!c) continue;
      for (const idx of c.remove) {
        const gone = items[idx % Math.max(items.length, 1)];
        if (gone === undefined) continue;
        removed.add(gone.n.toLowerCase());
        items = items.filter((x) => x !== gone);
      }
      for (const n of c.add) if (!items.some((x) => x.n.toLowerCase() === n.toLowerCase())) items.push({ n });
    }
    assert.equal(views, served.length, 'a view is built for each item served, no more');
    assert.equal(new Set(served).size, served.length, 'no resource served twice');
    for (const n of start) if (!removed.has(n.toLowerCase())) assert.ok(served.includes(n.toLowerCase()), `${n} existed throughout and was served`);
    assert.deepEqual(served, [...served].sort(compareKeys), 'served in name order');
  }), { seed: 1207, numRuns: 200 });
});

test('keys order digit runs by value and letters without case', () => {
  assert.deepEqual(['10', '9', '0', '1'].sort(compareKeys), ['0', '1', '9', '10']);
  assert.deepEqual(['ss10', 'SS2', 'ss1', 'a'].sort(compareKeys), ['a', 'ss1', 'SS2', 'ss10']);
  assert.deepEqual(['a01', 'a1', 'a001'].sort(compareKeys), ['a001', 'a01', 'a1'], 'leading zeros aside, then by the keys themselves');
});

test('an offset $skiptoken on a keyed list still pages the sorted list; a token this server did not issue is refused', () => {
  const ctx = { pageSize: 2, publicUrl: 'https://cp.test' } as unknown as ArmContext;
  const items = ['ss10', 'ss2', 'SS1', 'a'];
  assert.deepEqual(page(ctx, requestOf('https://cp.test/l?$skiptoken=2'), items, (x) => x).value, ['ss2', 'ss10']);
  assert.throws(() => page(ctx, requestOf('https://cp.test/l?$skiptoken=zz'), items, (x) => x), /not a \$skiptoken this server issued/);
});

test('indexedPage (a sorted key index, binary search per page) answers as page does through random creations and deletions', () => {
  const change = fc.record({ add: fc.array(name, { maxLength: 20 }), remove: fc.array(fc.nat(500), { maxLength: 20 }) });
  fc.assert(fc.property(fc.uniqueArray(name, { maxLength: 300, selector: (n) => n.toLowerCase() }), fc.integer({ min: 1, max: 50 }), fc.array(change, { maxLength: 30 }), (start, size, changes) => {
    const cache = new SortedKeyCache();
    const ctx = { pageSize: size, publicUrl: 'https://cp.test', index: { sortedKeys: cache } } as unknown as ArmContext;
    const items = new Map(start.map((n, i) => [`id${i}`, { id: `id${i}`, n }]));
    let next = start.length;
    let listed = 0;
    const collection = {
      name: 'list', all: () => (listed++, [...items.values()]), keyOf: (x: { n: string }) => x.n, idOf: (x: { id: string }) => x.id,
      itemOf: (id: string) => items.get(id),
    };
    let link: string | undefined = 'https://cp.test/list?api-version=1';
    for (let i = 0; link !== undefined; i++) {
      assert.ok(i < 2000, 'the walk ends');
      const want: { value: string[]; nextLink?: string } = page(ctx, requestOf(link), [...items.values()], (x) => x.n, (x) => x.n);
      const got: { value: string[]; nextLink?: string } = indexedPage(ctx, requestOf(link), collection, (x) => x.n);
      assert.deepEqual(got, want);
      link = got.nextLink;
      const c = changes[i];
      if (!c) continue;
      const ids = [...items.keys()];
      for (const idx of c.remove) {
        const gone = ids[idx % Math.max(ids.length, 1)];
        if (gone !== undefined) items.delete(gone);
      }
      for (const n of c.add) {
        if ([...items.values()].some((x) => x.n.toLowerCase() === n.toLowerCase())) continue;
        const id = `id${next++}`;
        items.set(id, { id, n });
      }
      cache.invalidate(); // as the fleet index does when a machine or set comes or goes
    }
    assert.ok(listed <= changes.length + 1, 'the collection is listed once per change, not once per page');
  }), { numRuns: 150 });
});

test('indexedPage takes an offset $skiptoken as page does, and refuses garbage', () => {
  const ctx = { pageSize: 2, publicUrl: 'https://cp.test', index: { sortedKeys: new SortedKeyCache() } } as unknown as ArmContext;
  const items = ['b', 'a', 'c'].map((n) => ({ id: n, n }));
  const collection = { name: 'l', all: () => items, keyOf: (x: { n: string }) => x.n, idOf: (x: { id: string }) => x.id, itemOf: (id: string) => items.find((x) => x.id === id) };
  assert.deepEqual(indexedPage(ctx, requestOf('https://cp.test/l?$skiptoken=1'), collection, (x) => x.n).value, ['b', 'c']);
  assert.throws(() => indexedPage(ctx, requestOf('https://cp.test/l?$skiptoken=garbage'), collection, (x) => x.n), /\$skiptoken/);
});
