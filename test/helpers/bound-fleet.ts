/**
 * "The bound holds under holds" (R40): fleets of small scale sets under maintenance windows, run step by
 * step through the real simulator and engine, with the rollout's R40 outlook (`boundRisk`) read as the run
 * goes and each machine's first reach taken from the event log.
 */
import { boundRisk } from '../../src/engine/rollouts/bound-risk.js';
import type { RolloutState } from '../../src/engine/state.js';
import type { EngineEvent } from '../../src/model/events.js';
import { compileScenario } from '../../src/sim/scenario.js';
import { Simulation } from '../../src/sim/simulator.js';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface BoundFleet {
  seed: number;
  /** Regions (no zones), in geo-pairs. */
  regions: number;
  /** Capacities of each region's scale sets. */
  sets: number[][];
  /** Index into WINDOWS per set (in order), or -1 for none. */
  windows: number[];
  /** Share of upgrades after which the machine turns unhealthy (R22, feeding R23). */
  failure: number;
  /** The bound, when not the critical profile's three weeks. */
  bound?: string;
}

/** Windows R71 allows for the Extension scope, none letting a critical release bypass them (R72). */
export const WINDOWS = [
  { name: 'weekend', startDateTime: '2026-01-03 00:00', duration: '08:00', timeZone: 'UTC', recurEvery: 'Week Saturday,Sunday', emergencyBypass: false },
  { name: 'every2', startDateTime: '2026-01-04 20:00', duration: '06:00', timeZone: 'UTC', recurEvery: '2Days', emergencyBypass: false },
  { name: 'nightly', startDateTime: '2026-01-04 01:00', duration: '05:00', timeZone: 'UTC', recurEvery: 'Day', emergencyBypass: false },
  { name: 'weekly', startDateTime: '2026-01-06 18:00', duration: '10:00', timeZone: 'UTC', recurEvery: 'Week Tuesday', emergencyBypass: false },
];

const NAMES = 'abcdefghij';

export function boundScenario(f: BoundFleet): Record<string, unknown> {
  const regions = Array.from({ length: f.regions }, (_, i) => ({ name: NAMES[i]!, pair: (i ^ 1) < f.regions ? NAMES[i ^ 1]! : null, zones: [] }));
  const sets: Array<{ name: string; region: string; subscription: string; capacity: number; extensions: string[] }> = [];
  f.sets.forEach((caps, i) => caps.forEach((capacity, k) => sets.push({ name: `ss-${NAMES[i]}${k}`, region: NAMES[i]!, subscription: 'prod', capacity, extensions: ['agent'] })));
  const assignments = sets.flatMap((s, j) => {
    const w = f.windows[j % f.windows.length]!;
    return w < 0 ? [] : [{ configuration: WINDOWS[w]!.name, scaleSet: s.name }];
  });
  return {
    name: 'bound-under-holds',
    start: '2026-01-05T00:00:00Z',
    seed: f.seed,
    horizon: 'P10W',
    regions,
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: { scaleSets: sets },
    ...(f.bound ? { profiles: { critical: { bound: f.bound } } } : {}),
    maintenance: { configurations: WINDOWS, assignments },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', critical: true } }],
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: f.failure } } },
  };
}

/**
 * Session 14's find (R40 with R23 and slow agents): a critical release on one 100-instance set in 1% batches,
 * R23 at 0%, so each failure stops the set; `share` of the agents answer 50 times slower (health reports
 * late, rollbacks taking hours). Used by test/bound-under-holds.test.ts and bench/r40-slow-seeds.ts.
 */
export function slowAgentsScenario(seed: number, share = 0.1): Record<string, unknown> {
  return {
    name: 'r40-slow', start: '2026-03-02T00:00:00Z', seed, horizon: 'P20W', regions: [{ name: 'r0', zones: [] }],
    catalog: [{ publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: { scaleSets: [{ name: 'ss0', region: 'r0', subscription: 's1', capacity: 100, updateDomains: 1, extensions: ['agent'],
      upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { maxBatchInstancePercent: 1, maxUnhealthyInstancePercent: 1, maxUnhealthyUpgradedInstancePercent: 0 } } }] },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', critical: true } }],
    failures: { slowAgents: { share, factor: 50 } },
  };
}

export interface BoundRun {
  rollout: RolloutState;
  events: EngineEvent[];
  /** Eligible machines and when each was first reached (its first `instance.upgrade.started`). */
  eligible: string[];
  firstReach: Map<string, number>;
  deadline: number;
  /** Outlooks read every `everyMs` while the rollout ran: when, at risk or not, and why. */
  outlooks: Array<{ at: number; atRisk: boolean; projectedEndMs: number; reason: string }>;
  halted: boolean;
}

/**
 * Steps `sim` to its end, calling `look(now)` at least every `everyMs` of simulated time: the state after a step
 * stands until the next one, so look when a mark passed, or before a jump past it.
 */
export function stepLooking(sim: Simulation, everyMs: number, look: (now: number) => void): void {
  let next = 0;
  while (sim.step()) {
    const now = sim.clock.now();
    const wake = sim.engine.nextWakeAt();
    if (now >= next || wake === null || wake >= next) {
      look(now);
      next = now + everyMs;
    }
  }
}

/** Runs the fleet, reading the rollout's outlook at least every `everyMs` of simulated time. */
export function runBoundFleet(f: BoundFleet, everyMs = 6 * HOUR): BoundRun {
  const sim = new Simulation(compileScenario(boundScenario(f), 'bound-under-holds'));
  const events: EngineEvent[] = [];
  const firstReach = new Map<string, number>();
  sim.engine.onEvents((batch) => {
    for (const e of batch) {
      events.push(e);
      if (e.type === 'instance.upgrade.started' && !firstReach.has(e.machineId)) firstReach.set(e.machineId, Date.parse(e.time));
    }
  });
  const outlooks: BoundRun['outlooks'] = [];
  const look = () => {
    const now = sim.clock.now();
    for (const r of sim.engine.state.rollouts.values()) {
      if (r.status !== 'running') continue;
      const o = boundRisk(sim.engine.state, r, now);
      if (o) outlooks.push({ at: now, atRisk: o.atRisk, projectedEndMs: o.projectedEndMs, reason: o.reason });
    }
  };
  stepLooking(sim, everyMs, look);
  const rollout = [...sim.engine.state.rollouts.values()][0]!;
  return {
    rollout,
    events,
    eligible: rollout.plan.phases.flatMap((p) => p.regions.flatMap((r) => r.waves.flatMap((w) => w.units.flatMap((u) => u.batches.flatMap((b) => b.machineIds))))),
    firstReach,
    deadline: rollout.createdAtMs + rollout.plan.profile.boundMs,
    outlooks,
    halted: events.some((e) => e.type === 'release.halted'),
  };
}
