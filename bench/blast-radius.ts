/**
 * bench:blast-radius — how far a release that makes every upgraded machine unhealthy gets on the
 * benchmark fleet before it is held fleet-wide (issue 13: ≤ 100 machines, each back on its last known
 * good version within 20 minutes of its upgrade; never more than 1,000 on any seed), standard and
 * critical. `--seeds=N` runs N seeds of each; `--machines=N` a smaller fleet.
 */
import { InvariantChecker } from '../src/audit/invariants.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { runSimulation } from '../src/sim/simulator.js';
import { benchScenario, TARGET_MACHINES } from './fleet.js';
import { machineLine, peakRssMiB } from './machine.js';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const seeds = Number(arg('seeds') ?? 1);
const machines = Number(arg('machines') ?? TARGET_MACHINES);

interface Radius { fleet: number; exposed: number; slowestMin: number; haltAfterMin: number; lastBackAfterHaltMin: number; failures: number; violations: number }

function run(critical: boolean, seed: number): Radius {
  const scenario = benchScenario(machines, 0, { failures: { unhealthyAfterUpgrade: 1 }, critical, seed });
  const checker = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  const started = new Map<string, number>();
  let slowest = 0;
  let lastBack = 0;
  let createdAt = 0;
  let halt: Extract<EngineEvent, { type: 'release.halted' }> | null = null;
  runSimulation(scenario, {
    onEvents: (events) => {
      checker.onEvents(events);
      for (const e of events) {
        const t = Date.parse(e.time);
        if (e.type === 'rollout.created' && createdAt === 0) createdAt = t;
        else if (e.type === 'release.halted' && !halt) halt = e;
        else if (e.type === 'instance.upgrade.started' && !started.has(e.machineId)) started.set(e.machineId, t);
        else if (e.type === 'instance.rollback.succeeded') {
          slowest = Math.max(slowest, t - started.get(e.machineId)!);
          lastBack = Math.max(lastBack, t);
        }
      }
    },
  });
  const h = halt as Extract<EngineEvent, { type: 'release.halted' }> | null;
  const haltAt = h ? Date.parse(h.time) : Number.NaN;
  return {
    fleet: scenario.state.fleet.machines.size, exposed: started.size, slowestMin: slowest / 60_000, haltAfterMin: (haltAt - createdAt) / 60_000,
    lastBackAfterHaltMin: (lastBack - haltAt) / 60_000, failures: h?.evidence?.failures ?? 0, violations: checker.finish().length,
  };
}

console.log('bench:blast-radius — a release that makes every upgraded machine unhealthy, on the benchmark fleet');
console.log(`machine: ${machineLine()}`);
let worst = 0;
let bad = false;
for (const critical of [false, true]) {
  for (let seed = 2026; seed < 2026 + seeds; seed++) {
    const t0 = performance.now();
    const r = run(critical, seed);
    worst = Math.max(worst, r.exposed);
    if (Number.isNaN(r.haltAfterMin) || r.violations > 0 || r.slowestMin > 20 || r.exposed > 1000) bad = true;
    console.log(`${critical ? 'critical' : 'standard'} seed ${seed}: ${r.exposed.toLocaleString('en')} machines took it`
      + ` (${(r.exposed / r.fleet * 100).toFixed(4)}% of ${r.fleet.toLocaleString('en')}); held ${r.haltAfterMin.toFixed(1)} min after the rollout`
      + ` was created, after ${r.failures} failures; each back on its last known good version within ${r.slowestMin.toFixed(1)} min of its upgrade,`
      + ` the last ${r.lastBackAfterHaltMin.toFixed(1)} min after the hold; invariants ${r.violations === 0 ? 'all held' : `VIOLATED ×${r.violations}`}`
      + ` (${((performance.now() - t0) / 1000).toFixed(1)} s wall)`);
  }
}
console.log(`worst: ${worst.toLocaleString('en')} machines (target ≤ 100; never more than 1,000); peak RSS ${peakRssMiB().toFixed(0)} MiB`);
if (bad) process.exitCode = 1;
