/**
 * Keyed paging (`page()` with a key, src/api/arm/context.ts) of a list of 100,000 resources read page by
 * page, as `for await` over the SDKs' list does: CPU time per page request. `--dist DIR` loads page() from
 * another build (e.g. /work/main/dist, which sorted the whole list on every request) to compare the two
 * run at the same time, one per core. Items are plain objects keyed by instance-like names (`ss-12`). A build
 * with `indexedPage` (session 18) pages through a sorted key index, as its routes do; the list is listed (and
 * the route's filter over the fleet run) per page for `page`, as its routes did, and once for `indexedPage`.
 *
 *   node dist/bench/keyed-paging.js [--dist DIR] [--n 100000] [--pages 20]
 */
import os from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cpuSeconds, machineLine } from './machine.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const dist = resolve(arg('dist', resolve(import.meta.dirname, '..')));
const n = Number(arg('n', '100000'));
const pages = Number(arg('pages', '20'));
type Item = { name: string };
type Answer = { value: Item[]; nextLink?: string };
const { page, indexedPage } = await import(pathToFileURL(join(dist, 'src/api/arm/context.js')).href) as {
  page: (ctx: unknown, req: unknown, items: readonly Item[], keyOf: (x: Item) => string) => Answer;
  /** Builds from session 18 on: the routes' paged lists page through the fleet index's sorted keys. */
  indexedPage?: (ctx: unknown, req: unknown, c: unknown, view: (x: Item) => Item) => Answer;
};
const { SortedKeyCache } = await import(pathToFileURL(join(dist, 'src/api/arm/keyed-page.js')).href) as { SortedKeyCache?: new () => unknown };
const ctx = { pageSize: 100, publicUrl: 'https://cp.test', index: { sortedKeys: SortedKeyCache ? new SortedKeyCache() : null } };
// Created in a shuffled order (a list is not kept sorted by name): a fixed permutation.
const items = Array.from({ length: n }, (_, i) => ({ name: `ss-${(i * 7919) % n}` }));
const byName = new Map(items.map((x) => [x.name, x]));
// As a route lists its collection: the whole list is built only when the index does not know its order.
const collection = { name: 'bench', all: () => [...byName.values()], keyOf: (x: Item) => x.name, idOf: (x: Item) => x.name, itemOf: (id: string) => byName.get(id) };
const pageOf = (req: unknown): Answer => (indexedPage ? indexedPage(ctx, req, collection, (x) => x) : page(ctx, req, [...byName.values()], (x) => x.name));
const requestOf = (link: string) => {
  const u = new URL(link);
  return { query: Object.fromEntries(u.searchParams), url: `${u.pathname}${u.search}`, headers: { host: u.host } };
};

console.log(machineLine());
console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} · ${indexedPage ? 'indexedPage()' : 'page()'} from ${dist} · ${n} items, 100 per page`);
let link: string | undefined = 'https://cp.test/list?api-version=1';
let served = 0;
let done = 0;
let first = 0;
const t0 = process.cpuUsage();
for (; done < pages && link !== undefined; done++) {
  const r = pageOf(requestOf(link));
  served += r.value.length;
  link = r.nextLink;
  if (done === 0) first = cpuSeconds(t0); // the index's sort happens here, once per change of the collection
}
const cpu = cpuSeconds(t0);
const rest = done > 1 ? `; the ${done - 1} after it ${(1000 * (cpu - first) / (done - 1)).toFixed(3)} ms CPU per page` : '';
console.log(`${done} pages (${served} items): ${cpu.toFixed(3)} s CPU, ${(1000 * cpu / done).toFixed(2)} ms CPU per page; the first ${(1000 * first).toFixed(1)} ms${rest}`);
