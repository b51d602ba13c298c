/**
 * "The bound holds under holds" (R40 with R23 and R70): a critical release on small scale sets under
 * weekend-only and every-two-days windows, with failures that make R23 stop sets. The engine keeps the
 * three-week bound (shorter R23 stops, bakes spent where they protect the most), the plan counts the holds,
 * and the rollout's outlook says the bound is at risk, and why, before the bound passes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { rolloutRecord } from '../src/api/arm/routes/publisher.js';
import { projectedWaitMissesBound, waitingMissesBound } from '../src/engine/rollouts/bound-pressure.js';
import { boundRisk } from '../src/engine/rollouts/bound-risk.js';
import { shareBakes } from '../src/engine/rollouts/lifecycle.js';
import {
  LATE_MASS, MIN_R23_STOP_MS, PRIOR_FAILURE_RATE, chooseStopMs, expectedLastReach, expectedStops, placeBatches, placeWithStop, stopProbability, stopsToAllowFor, stopsToCount,
} from '../src/planner/bound.js';
import { describePlan } from '../src/planner/describe.js';
import { maintenanceWindow } from '../src/schedule/window.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { DAY, HOUR, WINDOWS, boundScenario, runBoundFleet, slowAgentsScenario } from './helpers/bound-fleet.js';
import type { BoundFleet, BoundRun } from './helpers/bound-fleet.js';

/** The issue's fleet: eight regions of five 3–4 instance sets, half weekend-only, half every two days. */
// Seed 1, not the issue's seed 3: with stop lengths that allow for the stops to come 99 times in 100, seed 3's
// 12% release reaches 102 machines sooner and the release verdict rightly halts it (16 failed, statistic 7.4 ≥ 6.9).
const ISSUE: BoundFleet = {
  seed: 1,
  regions: 8,
  sets: Array.from({ length: 8 }, (_, i) => Array.from({ length: 5 }, (_, k) => 3 + ((i + k) % 2))),
  windows: [1, 0],
  failure: 0.12,
};

const lastReach = (run: BoundRun) => Math.max(...run.firstReach.values());
const days = (ms: number) => Math.round((ms / DAY) * 100) / 100;

test('R40: a critical release on 3–4 instance sets with weekend and every-two-days windows and R23 stops reaches every machine within three weeks', () => {
  const run = runBoundFleet(ISSUE);
  assert.equal(run.halted, false);
  const stops = run.events.filter((e) => e.type === 'gate.breached' && e.rule === 'R23');
  assert.ok(stops.length >= 9, `only ${stops.length} R23 stops: the scenario does not reproduce the issue`);
  assert.equal(run.firstReach.size, run.eligible.length, 'every eligible machine was reached');
  assert.ok(lastReach(run) <= run.deadline, `last machine first reached after ${days(lastReach(run) - run.rollout.createdAtMs)} days`);
  // The plan counted the holds: its outlook ends later than the timeline without them, and inside the bound.
  const e = run.rollout.plan.estimate;
  assert.ok(e.outlook, 'the plan has an outlook');
  assert.ok(e.outlook.expectedStops >= 1, `${e.outlook.expectedStops} stops expected`);
  assert.ok(e.outlook.projectedEndMs > e.startMs + e.totalMs - 2 * DAY, 'the outlook reaches at least as far as the timeline');
  assert.ok(e.outlook.projectedEndMs - e.startMs > 15 * DAY, `projected ${days(e.outlook.projectedEndMs - e.startMs)} days: the holds are not counted`);
  assert.equal(e.fitsBound, true, e.notes.join('; '));
  assert.ok(Math.abs(e.outlook.projectedEndMs - lastReach(run)) < 4 * DAY, `plan ${days(e.outlook.projectedEndMs - e.startMs)} d, run ${days(lastReach(run) - e.startMs)} d`);
});

test('R40: when the retry interval would push a stopped set past the bound, R23 stops it for less, and says so', () => {
  const run = runBoundFleet({ ...ISSUE, bound: 'P16D' });
  assert.equal(run.halted, false);
  const shortened = run.events.filter((e) => e.type === 'gate.breached' && e.rule === 'R23' && /instead of the retry interval/.test(e.reason));
  assert.ok(shortened.length > 0, 'no R23 stop was shortened');
  assert.ok(lastReach(run) <= run.deadline, `last machine first reached after ${days(lastReach(run) - run.rollout.createdAtMs)} days of 16`);
});

test('R40: a bound the fleet cannot meet is reported at risk by the plan and by GET /phasewise/rollouts, with the reason, before it passes', () => {
  const run = runBoundFleet({ ...ISSUE, bound: 'P7D' });
  const e = run.rollout.plan.estimate;
  assert.equal(e.fitsBound, false);
  assert.equal(e.outlook?.atRisk, true);
  assert.match(e.outlook!.reason, /first reached after .* days \(bound 7 days\)/);
  const text = describePlan(run.rollout.plan, { startMs: e.startMs });
  assert.match(text, /bound \(R40\): AT RISK: last machine first reached by 2026-\d\d-\d\d \d\d:\d\d UTC with [\d.]+ R23 stops expected/);
  const early = run.outlooks.find((o) => o.atRisk);
  assert.ok(early && early.at < run.deadline, 'the running rollout was reported at risk before the bound passed');
  assert.match(early.reason, /after the bound \(7 days\)/);
  assert.ok(lastReach(run) > run.deadline, 'the bound was indeed missed');
});

test('R40: the API record carries boundAtRisk (atRisk, reason, projectedEnd, bound) for a running rollout', () => {
  const run = runBoundFleet({ ...ISSUE, failure: 0 });
  // The finished rollout has nothing left to reach; its record says so.
  const rec = rolloutRecord(run.rollout, undefined) as { estimate: { boundAtRisk: Record<string, unknown> } };
  assert.deepEqual(Object.keys(rec.estimate.boundAtRisk).sort(), ['atRisk', 'bound', 'expectedStops', 'projectedEnd', 'reason']);
  assert.equal(rec.estimate.boundAtRisk.bound, new Date(run.deadline).toISOString());
  assert.ok(run.outlooks.length > 5);
  assert.ok(run.outlooks.every((o) => !o.atRisk), 'a release without failures fits and is never reported at risk');
  assert.ok(lastReach(run) <= run.deadline);
});

test('R23 R40: the stop probability, the placement and the stop length follow the rules\' arithmetic', () => {
  // One-instance batches at 20%: any failure among the first four upgraded trips R23; later ones cannot alone.
  const p = 0.1;
  assert.ok(Math.abs(stopProbability([1, 1, 1, 1, 1, 1], p, 20) - (1 - (1 - p) ** 4)) < 1e-9);
  assert.equal(stopProbability([1, 1], 0, 20), 0);
  // A run that already upgraded 10 cleanly is not tripped by one failure in a batch of 2 (1/12 ≤ 20%).
  assert.ok(stopProbability([2], p, 20, 10) < p * p + 1e-9);
  const weekend = maintenanceWindow({ startDateTime: WINDOWS[0]!.startDateTime, duration: WINDOWS[0]!.duration, timeZone: 'UTC', recurEvery: WINDOWS[0]!.recurEvery });
  const course = { union: [weekend], perMs: 8 * 60_000, budgetMs: 3 * HOUR };
  const monday = Date.parse('2026-01-05T00:00:00Z');
  const placed = placeBatches(course, monday, 2)!;
  assert.equal(new Date(placed.lastStart).toISOString(), '2026-01-10T00:08:00.000Z', 'both batches on Saturday, one after the other');
  // Plenty of time: the retry interval. Too little: shorter, never below the floor, ending in a window.
  assert.deepEqual(chooseStopMs(monday, 3 * DAY, monday + 40 * DAY, course, 2), { stopMs: 3 * DAY, shortened: false });
  const saturday = Date.parse('2026-01-10T01:00:00Z');
  const short = chooseStopMs(saturday, 3 * DAY, Date.parse('2026-01-12T00:00:00Z'), course, 1);
  assert.equal(short.shortened, true);
  assert.ok(short.stopMs >= MIN_R23_STOP_MS);
  assert.equal(new Date(saturday + short.stopMs).toISOString(), '2026-01-11T00:00:00.000Z', 'resumes when Sunday\'s window opens');
  // The projection counts a stop once the stops later than it add up to LATE_MASS (a tenth of a unit) or more.
  assert.equal(LATE_MASS, 0.1);
  assert.equal(expectedLastReach([{ id: 'a', clear: 1, stopped: 10, pStop: 0.3 }, { id: 'b', clear: 2, stopped: 9, pStop: 0.3 }]).at, 10);
  assert.equal(expectedLastReach([{ id: 'a', clear: 1, stopped: 10, pStop: 0.06 }, { id: 'b', clear: 2, stopped: 9, pStop: 0.06 }]).at, 9);
  assert.equal(expectedLastReach([{ id: 'a', clear: 1, stopped: 10, pStop: 0.05 }]).at, 1);
});

test('R40 R23: a critical release whose slow agents make a 0% limit stop the set again and again still reaches every machine within three weeks, reported at risk from the first stop', () => {
  // Before: every stop lasted the 3-day retry interval while the rest fitted without another stop, and the
  // projections took batches at their planned length; the last machine was first reached after 21.72 days.
  const scenario = compileScenario(slowAgentsScenario(1), 'r40-slow');
  const firsts = new Map<string, number>();
  const atStops: Array<{ at: number; atRisk: boolean; reason: string }> = [];
  let createdAt = 0;
  let rolloutId = '';
  const sim: Simulation = new Simulation(scenario, {
    onEvents: (events) => {
      for (const e of events) {
        if (e.type === 'rollout.created') ({ rolloutId } = e);
        if (e.type === 'rollout.created') createdAt = Date.parse(e.time);
        if ((e.type === 'instance.upgrade.started' || e.type === 'instance.skipped') && !firsts.has(e.machineId)) firsts.set(e.machineId, Date.parse(e.time));
        if (e.type === 'gate.breached' && e.rule === 'R23') {
          const o = boundRisk(sim.engine.state, sim.engine.state.rollouts.get(rolloutId)!, Date.parse(e.time))!;
          atStops.push({ at: Date.parse(e.time), atRisk: o.atRisk, reason: o.reason });
        }
      }
    },
  });
  sim.run();
  assert.equal(firsts.size, 100, 'every machine was reached');
  const last = Math.max(...firsts.values());
  assert.ok(atStops.length >= 8, `${atStops.length} R23 stops: the scenario does not reproduce the find`);
  assert.ok(last - createdAt <= 21 * DAY, `last machine first reached after ${days(last - createdAt)} days`);
  assert.equal(atStops[0]!.atRisk, true, `not at risk at the first stop: ${atStops[0]!.reason}`);
  assert.match(atStops[0]!.reason, /holds only if R23 stops are shortened|after the bound/);
  const plan = sim.engine.state.rollouts.get(rolloutId)!.plan.estimate.outlook!;
  assert.equal(plan.atRisk, true, `the plan expects ${plan.expectedStops} stops: ${plan.reason}`);
  assert.ok(plan.expectedStops >= 5, 'the plan counts the stops a 0% limit makes likely at the assumed rate');
});

/** Seeds 1-`last` of the slow-agents scenario at `share`: the runs that reached every machine, and those of them later than three weeks. */
function sweepSlowAgents(share: number, last = 100): { reachedAll: number; missed: string[] } {
  const missed: string[] = [];
  let reachedAll = 0;
  for (let seed = 1; seed <= last; seed++) {
    const firsts = new Map<string, number>();
    let createdAt = 0;
    new Simulation(compileScenario(slowAgentsScenario(seed, share), 'r40-slow'), {
      onEvents: (events) => {
        for (const e of events) {
          if (e.type === 'rollout.created') createdAt = Date.parse(e.time);
          if ((e.type === 'instance.upgrade.started' || e.type === 'instance.skipped') && !firsts.has(e.machineId)) firsts.set(e.machineId, Date.parse(e.time));
        }
      },
    }).run();
    if (firsts.size < 100) continue; // halted by the release's verdict or a failed canary first: R40 asks nothing more
    reachedAll++;
    const lastReach = Math.max(...firsts.values()) - createdAt;
    if (lastReach > 21 * DAY) missed.push(`${share * 100}% seed ${seed}: ${days(lastReach)} days`);
  }
  return { reachedAll, missed };
}

test('R40 R23: with 5% and 10% of agents 50x slow and a 0% limit, every run of seeds 1-100 that reaches every machine does so within three weeks', () => {
  // Before the stop length allowed for the stops to come 99 times in 100 (nine in ten, and none while fewer
  // than one was expected), 2 of 92 runs at 5% and 11 of 79 at 10% missed the bound (bench:bound-slow).
  const runs = [sweepSlowAgents(0.05), sweepSlowAgents(0.1)];
  const reachedAll = runs.reduce((n, x) => n + x.reachedAll, 0);
  assert.ok(reachedAll >= 150, `${reachedAll} runs reached every machine: the scenario no longer tests the bound`);
  assert.deepEqual(runs.flatMap((x) => x.missed), []);
});

test('R40 R23: with 20% of agents 50x slow, the runs of seeds 1-200 the release verdict lets through still reach every machine within three weeks', () => {
  // Before a pressed stop spread the room left over the stops allowed for, seeds 9 and 40 missed by 26 and 13 hours:
  // a long stop followed by others that each fitted "the rest at the 6-hour floor" re-spent the same room (and a
  // full 3-day stop came again once the count of stops to come fell), while the release failed on about 20%.
  const { reachedAll, missed } = sweepSlowAgents(0.2, 200);
  assert.ok(reachedAll >= 8, `${reachedAll} runs reached every machine: the verdict halts (nearly) all, the bound is not tested`);
  assert.deepEqual(missed, []);
});

test('R23 R40: a pressed stop spreads the room left over itself and the stops allowed for; the full interval only when each of them could take it', () => {
  const course = { union: [], perMs: HOUR, budgetMs: 2 * HOUR };
  // 10 batches (9 h until the last starts) and 3 more stops allowed for: the room is 96 h − 9 h.
  const { stopMs, shortened } = chooseStopMs(0, 3 * DAY, 4 * DAY, course, 10, undefined, 3);
  assert.equal(shortened, true);
  assert.ok(4 * stopMs + 9 * HOUR <= 4 * DAY, `stopped ${stopMs / HOUR} h: the three stops to come could not each take as long`);
  assert.ok(stopMs > MIN_R23_STOP_MS, 'the room is spread, not left to the floor');
  // Room for the interval now and three floors later (72 + 18 + 9 h ≤ 11 d), not for four intervals: shortened.
  assert.equal(chooseStopMs(0, 3 * DAY, 11 * DAY, course, 10, undefined, 3).shortened, true);
  assert.deepEqual(chooseStopMs(0, 3 * DAY, 12.5 * DAY, course, 10, undefined, 3), { stopMs: 3 * DAY, shortened: false }, 'four intervals fit');
  // Not even four stops of the floor fit (33 h > 30 h): the longest stop that fits the most of them that do (two, as before).
  const tight = chooseStopMs(0, 3 * DAY, 30 * HOUR, course, 10, undefined, 3);
  assert.ok(tight.stopMs > MIN_R23_STOP_MS && tight.stopMs + 2 * MIN_R23_STOP_MS + 9 * HOUR <= 30 * HOUR, `stopped ${tight.stopMs / HOUR} h`);
});

test('R23 R40: a stop leaves room for the stops to come 99 times in 100 (Poisson), none while they are unlikely', () => {
  assert.equal(stopsToAllowFor(0), 0);
  assert.equal(stopsToAllowFor(0.005), 0, 'a set far from its limit: no stop to allow for');
  assert.equal(stopsToAllowFor(0.05), 1);
  assert.equal(stopsToAllowFor(0.65), 3, 'fewer than one expected, yet two or more one time in seven');
  assert.equal(stopsToAllowFor(3), 8);
  for (const e of [0.3, 1, 2.5, 6]) assert.ok(stopsToAllowFor(e) >= stopsToCount(e), `${e}: at least the plan's nine-in-ten count`);
});

test('R23 R40: the stops a unit expects, the count a projection takes nine times in ten, and their placement', () => {
  // 0%: every failure stops the run, so one stop per expected failure.
  assert.ok(Math.abs(expectedStops(Array(50).fill(1), 0.1, 0) - 5) < 1e-9);
  // 20% on batches of one: only a run's first four batches can trip it (1 of 5 is not above 20%).
  assert.ok(Math.abs(expectedStops(Array(50).fill(1), 0.05, 20) - 4 * 0.05) < 1e-9);
  assert.equal(stopsToCount(0.2), 1, 'fewer than one expected: one, weighed by its chance');
  assert.equal(stopsToCount(1), 2);
  assert.equal(stopsToCount(3), 5);
  const course = { union: [], perMs: HOUR, budgetMs: 2 * HOUR };
  assert.deepEqual(placeWithStop(course, 0, 10, DAY, 1), placeWithStop(course, 0, 10, DAY), 'one stop: after the first batch, as before');
  assert.deepEqual(placeWithStop(course, 0, 10, DAY, 3), { lastStart: 9 * HOUR + 3 * DAY, end: 10 * HOUR + 3 * DAY });
  assert.deepEqual(placeWithStop(course, 0, 3, DAY, 9), { lastStart: 2 * HOUR + 2 * DAY, end: 3 * HOUR + 2 * DAY }, 'no stop after the last batch');
  // Stopped with three more stops of the floor to come: the longest stop that leaves room for them.
  const deadline = 4 * DAY;
  const { stopMs } = chooseStopMs(0, 3 * DAY, deadline, course, 10, undefined, 3);
  assert.ok(stopMs < 3 * DAY && stopMs + 3 * MIN_R23_STOP_MS + 9 * HOUR <= deadline, `stopped ${stopMs / HOUR} h`);
  assert.deepEqual(chooseStopMs(0, 3 * DAY, deadline, course, 10), { stopMs: 3 * DAY, shortened: false }, 'without expected stops the interval fits');
});

test('R40: late bakes are spent where they protect the most machines, none above its plan', () => {
  assert.deepEqual(shareBakes(10 * DAY, [DAY, DAY, DAY], [100, 90, 50]), [DAY, DAY, DAY]);
  const [first, second, last] = shareBakes(DAY, [DAY, DAY, DAY], [700, 600, 400]);
  assert.ok(first! > second! && second! > last!, `${first} ${second} ${last}`);
  assert.ok(first! + second! + last! <= DAY);
  assert.ok(DAY - (first! + second! + last!) < 10);
});

/** Random fleets of small sets, random windows (or none) per set, random failure rates; always critical. */
const fleetArb = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  regions: fc.integer({ min: 2, max: 6 }),
  perRegion: fc.integer({ min: 1, max: 5 }),
  capacities: fc.array(fc.integer({ min: 2, max: 8 }), { minLength: 1, maxLength: 6 }),
  windows: fc.array(fc.integer({ min: -1, max: WINDOWS.length - 1 }), { minLength: 1, maxLength: 4 }),
  failure: fc.constantFrom(0, 0.03, 0.08, 0.15),
  bound: fc.constantFrom(undefined, 'P10D', 'P14D'),
}).map((g): BoundFleet => ({
  seed: g.seed,
  regions: g.regions,
  sets: Array.from({ length: g.regions }, (_, i) => Array.from({ length: g.perRegion }, (_, k) => g.capacities[(i + k) % g.capacities.length]!)),
  windows: g.windows,
  failure: g.failure,
  ...(g.bound ? { bound: g.bound } : {}),
}));

const PROPERTY = 'R40: over random fleets, windows and failure rates, every machine is first reached within the bound when the plan said it fits'
  + ' (at the failure rate it assumes, about nine times in ten), and a miss is announced before the bound passes';

test(PROPERTY, () => {
  let fits = 0;
  let fitMisses = 0;
  let misses = 0;
  fc.assert(
    fc.property(fleetArb, (f) => {
      const run = runBoundFleet(f);
      // A release the evidence halted (R22 fleet-wide) or a failed phase (R10) ends the promise: it is a bad release.
      if (run.halted || run.rollout.status === 'stopped') return;
      const late = run.eligible.filter((id) => (run.firstReach.get(id) ?? Number.POSITIVE_INFINITY) > run.deadline);
      if (late.length > 0) {
        misses++;
        const warned = run.rollout.plan.estimate.outlook?.atRisk === true || run.outlooks.some((o) => o.atRisk && o.at < run.deadline);
        assert.ok(warned, `${late.length} machines missed the bound without an at-risk signal before it passed`);
      }
      // The plan's fit assumes the release fails no more often than the verdict accepts (PRIOR_FAILURE_RATE)
      // and is a projection ("fits" leaves a tenth of a unit expected later: LATE_MASS); beyond that rate
      // only the warning is promised.
      if (run.rollout.plan.estimate.fitsBound && f.failure <= PRIOR_FAILURE_RATE) {
        fits++;
        if (late.length > 0) fitMisses++;
      }
    }),
    { numRuns: 40, seed: 20261205 },
  );
  assert.ok(fits > 8, `only ${fits} runs fitted: the property was hardly exercised`);
  assert.ok(fitMisses <= Math.max(1, Math.floor(fits * LATE_MASS)), `${fitMisses} of ${fits} runs the plan said fit missed the bound`);
  assert.ok(misses > 0, 'no run missed the bound: the at-risk half was not exercised');
});

test('R40: the plan said it fits and the rollout kept the bound in every one of these runs at the assumed failure rate', () => {
  // Runs the property found before the look-ahead counted one more stop per unit and bakes stopped eating the stops' room.
  const found: BoundFleet[] = [
    { seed: 19, regions: 6, sets: [[4, 8, 4], [8, 4, 7], [4, 7, 5], [7, 5, 4], [5, 4, 4], [4, 4, 8]], windows: [3], failure: 0.03 },
    { seed: 297288, regions: 2, sets: [[5], [2]], windows: [0, 1], failure: 0.05, bound: 'P10D' },
  ];
  for (const f of found) {
    const run = runBoundFleet(f);
    if (!run.rollout.plan.estimate.fitsBound || run.halted || run.rollout.status === 'stopped') continue;
    assert.equal(run.firstReach.size, run.eligible.length);
    assert.ok(lastReach(run) <= run.deadline, `${JSON.stringify(f)}: last first reach after ${days(lastReach(run) - run.rollout.createdAtMs)} days`);
  }
});

test('R40: without windows, the quick bound of waitingMissesBound never disagrees with the full projection (random fleets and failures)', () => {
  const seen = { misses: 0, fits: 0 };
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 1000 }),
    fc.integer({ min: 2, max: 6 }),
    fc.array(fc.integer({ min: 2, max: 12 }), { minLength: 1, maxLength: 4 }),
    fc.double({ min: 0.05, max: 0.4, noNaN: true }),
    fc.constantFrom('P1D', 'P2D', 'P3D', 'P5D', 'P10D', 'P21D'),
    (seed, regions, caps, failure, bound) => {
      const sets = Array.from({ length: regions }, (_, i) => caps.map((c, k) => c + ((i + k) % 3)));
      const sim = new Simulation(compileScenario(boundScenario({ seed, regions, sets, windows: [-1], failure, bound }), 'quick-bound'));
      let checked = 0;
      for (let i = 0; i < 20_000 && sim.step(); i++) {
        const now = sim.clock.now();
        for (const r of sim.engine.state.rollouts.values()) {
          r.phases.forEach((p, index) => {
            if (p.status !== 'running') return;
            // Asked at the step's instant and later ones (the engine asks whenever an R23 stop comes): a late
            // instant is where waiting misses the bound, and steps land only where something happens.
            for (const at of [now, now + 6 * 3_600_000, now + 2 * 86_400_000]) {
              const exact = projectedWaitMissesBound(sim.engine.state, r, index, at);
              assert.equal(waitingMissesBound(sim.engine.state, r, index, at), exact, `phase ${index} at ${new Date(at).toISOString()}`);
              checked++;
              if (exact) seen.misses++;
              else seen.fits++;
            }
          });
        }
      }
      assert.ok(checked > 0, 'no running phase was checked');
    },
  ), { numRuns: 25 });
  // Both answers occurred, so both the quick exit and the fall-through to the full projection were compared.
  assert.ok(seen.misses > 0 && seen.fits > 0, `misses ${seen.misses}, fits ${seen.fits}`);
});
