/**
 * bench:bound — the "bound under holds" fleet (R40 with R23 and R70): a critical release on eight
 * regions of five 3–4 instance scale sets, half under weekend-only windows and half every two days, with
 * 12% of upgrades turning unhealthy. Over seeds 1–10 it prints when the last eligible machine was first
 * reached, how long the canary phase took, the R23 stops, whether the release verdict halted it, and what
 * the plan expected (its timeline and its outlook with the holds counted).
 *
 *   npm run build && node dist/bench/bound-holds.js
 */
import { runSimulation } from '../src/sim/simulator.js';
import { compileScenario } from '../src/sim/scenario.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { boundScenario } from '../test/helpers/bound-fleet.js';
import { machineLine } from './machine.js';

const DAY = 86_400_000;
const days = (ms: number) => Math.round((ms / DAY) * 100) / 100;

console.log(machineLine());
const rows: Array<{ last: number; halted: boolean }> = [];
for (let seed = 1; seed <= 10; seed++) {
  const sets = Array.from({ length: 8 }, (_, i) => Array.from({ length: 5 }, (_, k) => 3 + ((i + k) % 2)));
  const store = new MemoryStore();
  const res = runSimulation(compileScenario(boundScenario({ seed, regions: 8, sets, windows: [1, 0], failure: 0.12 }), 'bench-bound'), { store });
  const events = store.events();
  const r = [...res.engine.state.rollouts.values()][0]!;
  const first = new Map<string, number>();
  for (const e of events) if (e.type === 'instance.upgrade.started' && !first.has(e.machineId)) first.set(e.machineId, Date.parse(e.time));
  const last = days(Math.max(...first.values()) - r.createdAtMs);
  const canary = events.find((e) => e.type === 'phase.completed' && e.phase === 0);
  const halted = events.some((e) => e.type === 'release.halted');
  const stops = events.filter((e) => e.type === 'gate.breached' && e.rule === 'R23').length;
  const shortened = events.filter((e) => e.type === 'gate.breached' && /instead of the retry interval/.test(e.reason)).length;
  const o = r.plan.estimate.outlook;
  rows.push({ last, halted });
  console.log([
    `seed ${seed}`, `last first reach ${last} d`, `canary ${canary ? days(Date.parse(canary.time) - r.createdAtMs) : '-'} d`,
    `R23 stops ${stops} (${shortened} shortened)`, halted ? 'HALTED' : 'not halted',
    `plan ${days(r.plan.estimate.totalMs)} d`, `outlook ${o ? days(o.projectedEndMs - r.plan.estimate.startMs) : '-'} d`, r.plan.estimate.fitsBound ? 'fits' : 'does not fit',
  ].join(' · '));
}
const ran = rows.filter((x) => !x.halted);
console.log(`not halted: ${ran.length}; over 21 days: ${ran.filter((x) => x.last > 21).length}; worst ${Math.max(...ran.map((x) => x.last))} d`);
