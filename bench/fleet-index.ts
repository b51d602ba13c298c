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

const totals: number[] = [];
const scopeParts: number[] = [];
const builds: number[] = [];
let collections = 0;
let entries = 0;
for (let run = 0; run < 3; run++) {
  const before = heap();
  const t0 = performance.now();
  let index: FleetIndex | null = new FleetIndex(state, subscriptions);
  builds.push(performance.now() - t0);
  const whole = heap();
  // The scoped collections alone: what is freed when they are emptied.
  const scopes = (index as unknown as { scopes: Map<string, Set<string>> }).scopes;
  collections = scopes.size;
  entries = [...scopes.values()].reduce((n, s) => n + s.size, 0);
  scopes.clear();
  const withoutScopes = heap();
  totals.push(whole - before);
  scopeParts.push(whole - withoutScopes);
  // A read through the index still works (and keeps `index` alive until here).
  if (index.machinesIn(COLLECTIONS.vms(subscriptions[0]!)).length !== 0) throw new Error('scopes were cleared');
  index = null;
}

const machines = state.fleet.machines.size;
console.log('bench:fleet-index — memory of serve\'s FleetIndex');
console.log(`machine: ${machineLine()}`);
console.log(`load average: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`fleet: ${machines.toLocaleString('en')} machines, ${state.fleet.scaleSets.size} scale sets, ${subscriptions.length} subscriptions`);
console.log(`scoped collections: ${collections.toLocaleString('en')} (subscriptions' and groups' VMs, Arc machines, scale sets) holding ${entries.toLocaleString('en')} ids`);
console.log(`FleetIndex whole: median ${MiB(median(totals))} MiB of 3 (${totals.map(MiB).join(', ')}), ${(median(totals) / machines).toFixed(0)} B per machine`);
console.log(`  of which scopes (machinesIn/setsIn): median ${MiB(median(scopeParts))} MiB (${scopeParts.map(MiB).join(', ')}), ${(median(scopeParts) / machines).toFixed(0)} B per machine`);
console.log(`build (rebuild at start): median ${median(builds).toFixed(0)} ms (${builds.map((b) => b.toFixed(0)).join(', ')})`);
