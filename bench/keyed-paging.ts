/**
 * Keyed paging (`page()` with a key, src/api/arm/context.ts) of a list of 100,000 resources read page by
 * page, as `for await` over the SDKs' list does: CPU time per page request. `--dist DIR` loads page() from
 * another build (e.g. /work/main/dist, which sorted the whole list on every request) to compare the two
 * run at the same time, one per core. Items are plain objects keyed by instance-like names (`ss-12`).
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
const { page } = await import(pathToFileURL(join(dist, 'src/api/arm/context.js')).href) as {
  page: (ctx: unknown, req: unknown, items: readonly unknown[], keyOf: (x: { name: string }) => string) => { value: Array<{ name: string }>; nextLink?: string };
};
const ctx = { pageSize: 100, publicUrl: 'https://cp.test' };
// Created in a shuffled order (a list is not kept sorted by name): a fixed permutation.
const items = Array.from({ length: n }, (_, i) => ({ name: `ss-${(i * 7919) % n}` }));
const requestOf = (link: string) => {
  const u = new URL(link);
  return { query: Object.fromEntries(u.searchParams), url: `${u.pathname}${u.search}`, headers: { host: u.host } };
};

console.log(machineLine());
console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} · page() from ${dist} · ${n} items, 100 per page`);
let link: string | undefined = 'https://cp.test/list?api-version=1';
let served = 0;
const t0 = process.cpuUsage();
let done = 0;
for (; done < pages && link !== undefined; done++) {
  const r = page(ctx, requestOf(link), items, (x) => x.name);
  served += r.value.length;
  link = r.nextLink;
}
const cpu = cpuSeconds(t0);
console.log(`${done} pages (${served} items): ${cpu.toFixed(3)} s CPU, ${(1000 * cpu / done).toFixed(2)} ms CPU per page`);
