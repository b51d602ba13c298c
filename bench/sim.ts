/**
 * bench:sim — an 8-week standard rollout of one extension over a million machines across 60 regions
 * with zones, update domains, scale sets of up to 1,000 instances and Arc machines, 2% failures
 * (target ≤ 30 s wall, ≤ 1 GiB peak memory, one core). The event log is checked against the safety
 * invariants as it streams by, and the rollout must complete within the 8-week bound (R40).
 */
import { InvariantChecker } from '../src/audit/invariants.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { SummaryCollector } from '../src/report/summary.js';
import { runSimulation } from '../src/sim/simulator.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { benchScenario } from './fleet.js';
import { cpuSeconds, machineLine, peakRssMiB, queueRatioLines } from './machine.js';

const check = !process.argv.includes('--no-check');
const storeArg = process.argv.find((a) => a.startsWith('--store=sqlite:'));
const t0 = performance.now();
const scenario = benchScenario();
const buildMs = performance.now() - t0;
// With --store=sqlite:FILE the run commits every tick to a new SQLite file (the fleet import is not timed here).
const store = storeArg ? SqliteStore.open(storeArg.slice('--store=sqlite:'.length), { mode: 'new' }) : undefined;
store?.importState(scenario.state);
const summary = new SummaryCollector(86_400_000);
const checker = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
// A 2% release must never be held fleet-wide by its own evidence (docs/engine.md, "A release judged fleet-wide").
const halts: string[] = [];
const c1 = process.cpuUsage();
const t1 = performance.now();
const result = runSimulation(scenario, {
  ...(store ? { store } : {}),
  onEvents: (events) => {
    summary.onEvents(events);
    for (const e of events) if (e.type === 'release.halted') halts.push(e.reason);
    if (check) checker.onEvents(events);
  },
});
const simMs = performance.now() - t1;
const simCpuS = cpuSeconds(c1);
store?.close();
const violations = checker.finish();
const [r] = summary.result();
if (!r) throw new Error('no rollout started');
const days = r.endedAt ? (Date.parse(r.endedAt) - Date.parse(r.createdAt)) / 86_400_000 : Number.NaN;

console.log(`bench:sim — 8-week standard rollout over the benchmark fleet, ${store ? `SQLite store ${store.file}` : 'in-memory store'}`);
console.log(`machine: ${machineLine()}`);
console.log(`fleet: ${scenario.state.fleet.machines.size.toLocaleString('en')} machines, ${scenario.state.fleet.regions.size} regions (built in ${(buildMs / 1000).toFixed(1)} s, not counted)`);
console.log(`rollout: ${r.status} after ${days.toFixed(1)} simulated days (bound 56); ${r.upgraded.toLocaleString('en')} upgraded, ${r.rolledBack.toLocaleString('en')} rolled back, ${r.failed} failed, ${r.retried.toLocaleString('en')} retries, ${r.batches.toLocaleString('en')} batches, ${r.phases.length} phases`);
console.log(`release: ${halts.length === 0 ? 'never held' : `HELD: ${halts[0]}`}`);
console.log(`events: ${summary.events.toLocaleString('en')} in ${result.ticks.toLocaleString('en')} ticks; invariants ${check ? (violations.length === 0 ? 'all held' : `VIOLATED ×${violations.length}: ${violations[0]}`) : 'not checked'}`);
console.log(`wall: ${(simMs / 1000).toFixed(1)} s (target ≤ 30 s) · ${Math.round(summary.events / (simMs / 1000)).toLocaleString('en')} events/s`);
console.log(`peak RSS: ${peakRssMiB().toFixed(0)} MiB (target ≤ 1024, whole process including the fleet)`);
for (const line of queueRatioLines(summary.events, simMs, simCpuS)) console.log(line);

if (violations.length > 0 || halts.length > 0 || r.status !== 'completed' || !(days <= 56)) process.exitCode = 1;
