/**
 * R40 with R23 and R11 on a zonal scale set: an R23 stop stops all of the set and its zones go one after another,
 * so the set's next zones wait behind a stop of its first. The stop's length (`r23StopMs`) counts them; the rollout's
 * outlook (`boundRisk`, GET /phasewise/rollouts `boundAtRisk`) and the plan's (`estimate.outlook`, `phasewise plan`)
 * count them by the same rule (`stopHolds`, through `stopChain` in the engine).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvariantChecker } from '../src/audit/invariants.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { stopChain } from '../src/engine/rollouts/bound-pressure.js';
import { boundRisk } from '../src/engine/rollouts/bound-risk.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { DAY, HOUR, stepLooking } from './helpers/bound-fleet.js';

/** One region of three zones, one 30-instance set spread over them (10% batches, R23 at 5%), a critical release failing 8%, bound 6 days. */
function zonalSet(seed: number): Record<string, unknown> {
  return {
    name: 'zonal-bound', start: '2026-01-05T00:00:00Z', seed, horizon: 'P10W',
    regions: [{ name: 'r0', zones: ['1', '2', '3'] }],
    catalog: [{ publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: {
      scaleSets: [{
        name: 'ss0', region: 'r0', subscription: 's', capacity: 30, zones: ['1', '2', '3'], extensions: ['agent'],
        upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { maxBatchInstancePercent: 10, maxUnhealthyInstancePercent: 100, maxUnhealthyUpgradedInstancePercent: 5 } },
      }],
    },
    profiles: { critical: { bound: 'P6D' } },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', critical: true } }],
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.08 } } },
  };
}

test('R40 R23 R11: the outlook counts a zonal set\'s next zones behind an R23 stop, as the stop\'s length does: no shortened stop comes unannounced', () => {
  let shortenedStops = 0;
  for (const seed of [1, 2, 3, 4]) {
    const sim = new Simulation(compileScenario(zonalSet(seed), 'zonal-bound'));
    let firstShortened: number | null = null;
    const firstReach = new Map<string, number>();
    sim.engine.onEvents((batch) => {
      for (const e of batch) {
        if (e.type === 'gate.breached' && e.rule === 'R23' && /instead of the retry interval/.test(e.reason)) {
          shortenedStops++;
          firstShortened ??= Date.parse(e.time);
        }
        if (e.type === 'instance.upgrade.started' && !firstReach.has(e.machineId)) firstReach.set(e.machineId, Date.parse(e.time));
      }
    });
    let warned: { at: number; reason: string } | null = null;
    let chained = false;
    stepLooking(sim, 6 * HOUR, (now) => {
      for (const r of sim.engine.state.rollouts.values()) {
        if (r.status !== 'running') continue;
        // What the engine would count for a stop of the set's first zone now: its next two zones, while they wait.
        const first = [...r.units.values()].find((u) => u.wave === 0);
        if (first && !first.passDone && stopChain(r, first, false).zones.length === 2) chained = true;
        const o = boundRisk(sim.engine.state, r, now)!;
        if (o.atRisk && warned === null) warned = { at: now, reason: o.reason };
      }
    });
    const rollout = [...sim.engine.state.rollouts.values()][0]!;
    assert.equal(rollout.status, 'completed', `seed ${seed}`);
    assert.equal(firstReach.size, 30, `seed ${seed}`);
    assert.ok(Math.max(...firstReach.values()) - rollout.createdAtMs <= 6 * DAY, `seed ${seed}: R40 missed`);
    assert.ok(chained, `seed ${seed}: the set's first zone never had its next zones waiting behind it`);
    // Before: the outlook placed zones 2 and 3 as if a stop of zone 1 did not hold them, and never said at risk,
    // while the engine shortened the stops for them (seeds 1–4, 6 days bound, 1 to 3 shortened stops each).
    assert.ok(firstShortened !== null, `seed ${seed}: no shortened stop, the scenario no longer presses the bound`);
    const w = warned as { at: number; reason: string } | null;
    assert.ok(w !== null && w.at <= firstShortened, `seed ${seed}: stop shortened at ${new Date(firstShortened).toISOString()}, never announced at risk before`);
    assert.match(w.reason, /only if R23 stops are shortened.*the set's next 2 zones behind them \(R11\)/, `seed ${seed}: ${w.reason}`);
  }
  assert.ok(shortenedStops >= 4);
});

test('R40 R23 R11: the plan\'s outlook counts a zonal set\'s next zones behind an R23 stop of its first zone, as the engine does', () => {
  const sim = new Simulation(compileScenario(zonalSet(1), 'zonal-bound'));
  while (sim.engine.state.rollouts.size === 0 && sim.step());
  const rollout = [...sim.engine.state.rollouts.values()][0]!;
  const o = rollout.plan.estimate.outlook!;
  // Before: "first reached after 3.1 days (bound 6 days), in unit ro-1/r0/3/ss0 after an R23 stop", each zone's stop
  // holding that zone alone, and `fitsBound` true, while the engine shortened its stops (test above).
  assert.equal(o.atRisk, true, o.reason);
  assert.match(o.reason, /only if R23 stops are shortened, in unit \S+\/1\/ss0 after an R23 stop/);
  assert.equal(rollout.plan.estimate.fitsBound, false);
});

/** Random zonal fleets under a pressed bound: regions in geo-pairs with two or three zones, sets spread over them or not, windows or none. */
const zonalFleetArb = fc.record({
  pairs: fc.integer({ min: 1, max: 2 }),
  zones: fc.constantFrom(2, 3),
  sets: fc.array(fc.record({
    region: fc.nat(), capacity: fc.constantFrom(3, 12, 30, 60, 100), zonal: fc.boolean(), batch: fc.constantFrom(5, 10, 20), limit: fc.constantFrom(0, 5, 20), window: fc.integer({ min: -2, max: 1 }),
  }), { minLength: 1, maxLength: 5 }),
  failure: fc.constantFrom(0.02, 0.05, 0.08, 0.12),
  bound: fc.constantFrom('P6D', 'P10D', 'P14D'),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
});

const ZONAL_WINDOWS = [
  { name: 'every2', startDateTime: '2026-01-04 20:00', duration: '06:00', timeZone: 'UTC', recurEvery: '2Days', emergencyBypass: false },
  { name: 'nightly', startDateTime: '2026-01-04 01:00', duration: '05:00', timeZone: 'UTC', recurEvery: 'Day', emergencyBypass: false },
];

test('R40 R11 R23 R10: random zonal fleets under a pressed bound reach every machine within it or say so before it passes, and keep the invariants', () => {
  let stops = 0;
  let zonal = 0;
  fc.assert(fc.property(zonalFleetArb, (g) => {
    const regions = Array.from({ length: g.pairs * 2 }, (_, i) => ({ name: `r${i}`, pair: `r${i ^ 1}`, zones: ['1', '2', '3'].slice(0, g.zones) }));
    const sets = g.sets.map((s, i) => ({
      name: `ss${i}`, region: regions[s.region % regions.length]!.name, subscription: 's', capacity: s.capacity, extensions: ['agent'],
      ...(s.zonal ? { zones: regions[0]!.zones } : {}),
      upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { maxBatchInstancePercent: s.batch, maxUnhealthyInstancePercent: 100, maxUnhealthyUpgradedInstancePercent: s.limit } },
    }));
    zonal += g.sets.filter((s) => s.zonal).length;
    const assignments = g.sets.flatMap((s, i) => (s.window < 0 ? [] : [{ configuration: ZONAL_WINDOWS[s.window]!.name, scaleSet: `ss${i}` }]));
    const raw = {
      ...zonalSet(g.seed), regions, fleet: { scaleSets: sets }, horizon: 'P20W',
      profiles: { critical: { bound: g.bound } }, maintenance: { configurations: ZONAL_WINDOWS, assignments },
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: g.failure } } },
    };
    const scenario = compileScenario(raw, 'zonal-fleet');
    const invariants = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
    const sim = new Simulation(scenario, { onEvents: (events) => invariants.onEvents(events) });
    const firstReach = new Map<string, number>();
    let halted = false;
    sim.engine.onEvents((batch) => {
      for (const e of batch) {
        if (e.type === 'instance.upgrade.started' && !firstReach.has(e.machineId)) firstReach.set(e.machineId, Date.parse(e.time));
        if (e.type === 'gate.breached' && e.rule === 'R23') stops++;
        if (e.type === 'release.halted') halted = true;
      }
    });
    let warned = false;
    stepLooking(sim, 6 * HOUR, (now) => {
      for (const r of sim.engine.state.rollouts.values()) {
        const o = r.status === 'running' ? boundRisk(sim.engine.state, r, now) : null;
        if (o?.atRisk && now < o.boundEndMs) warned = true;
      }
    });
    assert.deepEqual(invariants.finish(), []);
    const rollout = [...sim.engine.state.rollouts.values()][0]!;
    const deadline = rollout.createdAtMs + rollout.plan.profile.boundMs;
    const late = [...firstReach.values()].filter((t) => t > deadline).length;
    const unreached = !halted && rollout.status === 'completed' && firstReach.size < rollout.plan.machines;
    const announced = warned || rollout.plan.estimate.outlook?.atRisk === true;
    assert.ok(!(late > 0 || unreached) || announced, `${late} first reached after the bound, ${firstReach.size} of ${rollout.plan.machines} reached, never announced at risk`);
    assert.equal(sim.result().hitHorizon, false, 'a rollout never ended');
  }), { numRuns: 20, seed: 20261207 });
  assert.ok(stops > 0 && zonal > 0, `R23 stops ${stops}, zonal sets ${zonal}: the property saw what it is about`);
});
