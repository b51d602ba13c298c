/**
 * bench:fleet-index — the memory of serve's FleetIndex (src/api/arm/fleet-index.ts) over the benchmark fleet
 * (a million machines by default, `--machines=N` another size): the whole index, and the part its scoped
 * collections take (`scopes`, what `machinesIn`/`setsIn` read: each subscription's and group's VMs, Arc
 * machines and scale sets). Heap is measured after forced collections (run with --expose-gc), three times,
 * and the median printed with the load average; the fleet itself is built first and not counted.
 */
import os from 'node:os';
import { FleetIndex } from '../src/api/arm/fleet-index.js';
import { COLLECTIONS } from '../src/api/arm/fleet-index.js';
import { benchScenario } from './fleet.js';
import { machineLine, median } from './machine.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench:fleet-index does)');
const heap = () => {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
};
const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

const sized = process.argv.find((a) => a.startsWith('--machines='));
const scenario = sized ? benchScenario(Number(sized.slice('--machines='.length)), 0.02, {}, true) : benchScenario();
const state = scenario.state;
const subscriptions = [...new Set([...state.fleet.machines.values()].map((m) => m.placement.subscription))];

/**
 * The scoped collections' share: the index built as usual, less the index built with `enter` (what fills
 * `scopes`) turned off; the two alternate, so both meet the same load. Emptying `scopes` of a built index and
 * measuring what is freed gave 0.2 MiB at a million (12.8 MiB at 200,000): not trusted, not used.
 */
const proto = FleetIndex.prototype as unknown as { enter: (collections: readonly string[], id: string) => void };
const enter = proto.enter;
const totals: number[] = [];
const withoutScopes: number[] = [];
const builds: number[] = [];
let collections = 0;
let entries = 0;
for (let run = 0; run < 3; run++) {
  for (const withScopes of [true, false]) {
    proto.enter = withScopes ? enter : () => {};
    const before = heap();
    const t0 = performance.now();
    let index: FleetIndex | null = new FleetIndex(state, subscriptions);
    if (withScopes) builds.push(performance.now() - t0);
    const size = heap() - before;
    const scopes = (index as unknown as { scopes: Map<string, Set<string>> }).scopes;
    if (withScopes) {
      totals.push(size);
      collections = scopes.size;
      entries = [...scopes.values()].reduce((n, ids) => n + ids.size, 0);
      if (index.machinesIn(COLLECTIONS.vms(subscriptions[0]!)).length === 0) throw new Error('no VMs in the first subscription');
    } else {
      withoutScopes.push(size);
      if (scopes.size !== 0) throw new Error('enter was not turned off');
    }
    index = null;
  }
}
proto.enter = enter;
const scopeParts = totals.map((t, i) => t - withoutScopes[i]!);

const machines = state.fleet.machines.size;
console.log('bench:fleet-index — memory of serve\'s FleetIndex');
console.log(`machine: ${machineLine()}`);
console.log(`load average: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`fleet: ${machines.toLocaleString('en')} machines, ${state.fleet.scaleSets.size} scale sets, ${subscriptions.length} subscriptions`);
console.log(`scoped collections: ${collections.toLocaleString('en')} (subscriptions' and groups' VMs, Arc machines, scale sets) holding ${entries.toLocaleString('en')} ids`);
console.log(`FleetIndex whole: median ${MiB(median(totals))} MiB of 3 (${totals.map(MiB).join(', ')}), ${(median(totals) / machines).toFixed(0)} B per machine`);
console.log(`  of which scopes (machinesIn/setsIn): median ${MiB(median(scopeParts))} MiB (${scopeParts.map(MiB).join(', ')}), ${(median(scopeParts) / entries).toFixed(0)} B per id held`);
console.log(`build (rebuild at start): median ${median(builds).toFixed(0)} ms (${builds.map((b) => b.toFixed(0)).join(', ')})`);
