/**
 * Property-based tests: random topologies, policies, failure models and opt-outs, run through the real
 * engine; the event log must satisfy every safety invariant of src/audit/invariants.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvariantChecker } from '../src/audit/invariants.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { policyArb } from './helpers/arbitraries.js';
import { twoExtensionCatalog } from './helpers/property-catalog.js';

const ZONES = ['1', '2', '3'];

const regionsArb = fc.integer({ min: 1, max: 3 }).chain((pairs) =>
  fc.tuple(...Array.from({ length: pairs * 2 }, () => fc.integer({ min: 0, max: 3 }))).map((zoneCounts) =>
    zoneCounts.map((z, i) => ({ name: `r${i}`, pair: `r${i % 2 === 0 ? i + 1 : i - 1}`, zones: ZONES.slice(0, z) })),
  ),
);

const failureArb = fc.record({
  installFailure: fc.constantFrom(0, 0.02, 0.2),
  unhealthyAfterUpgrade: fc.constantFrom(0, 0.03, 0.3, 1),
  rollbackFailure: fc.constantFrom(0, 0.1, 0.5),
});

type Region = { name: string; pair: string; zones: string[] };

function fleetArb(regions: Region[]) {
  const region = fc.constantFrom(...regions);
  const scaleSet = fc.record({ region, capacity: fc.integer({ min: 1, max: 40 }), uds: fc.integer({ min: 1, max: 5 }), zonal: fc.boolean(), policy: policyArb, appHealth: fc.boolean(), sub: fc.constantFrom('s1', 's2') });
  const avSet = fc.record({ region, vms: fc.integer({ min: 1, max: 12 }), uds: fc.integer({ min: 1, max: 5 }), sub: fc.constantFrom('s1', 's2') });
  const group = fc.record({ region, count: fc.integer({ min: 1, max: 15 }), zonal: fc.boolean(), sub: fc.constantFrom('s1', 's2', 's3') });
  return fc.record({
    scaleSets: fc.array(scaleSet, { maxLength: 4 }),
    availabilitySets: fc.array(avSet, { maxLength: 2 }),
    vms: fc.array(group, { maxLength: 3 }),
    arc: fc.array(group, { maxLength: 2 }),
  });
}

const scenarioArb = regionsArb.chain((regions) =>
  fc.record({
    regions: fc.constant(regions),
    fleet: fleetArb(regions),
    failure: failureArb,
    secondExtension: fc.boolean(),
    optOutShare: fc.constantFrom(0, 0.2, 0.5),
    optOutAt: fc.constantFrom('PT1H5M', 'PT3H', 'P2D'),
    reEnable: fc.boolean(),
    critical: fc.boolean(),
    background: fc.option(fc.record({ share: fc.constantFrom(0.1, 0.4, 0.9), at: fc.constantFrom('PT1H', 'PT2H', 'P4D'), duration: fc.constantFrom('PT1H', 'PT8H') })),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
  }),
);

type Gen = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function toScenario(g: Gen): Record<string, unknown> {
  const exts = g.secondExtension ? ['agent', 'monitor'] : ['agent'];
  const zonesOf = (name: string, zonal: boolean) => (zonal ? g.regions.find((r) => r.name === name)!.zones : []);
  const events: unknown[] = [
    { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', critical: g.critical } },
    { at: 'PT1H', publish: { extension: 'agent', version: '2.0.0.0' } },
  ];
  if (g.secondExtension) events.push({ at: 'PT1H', publish: { extension: 'monitor', version: '3.1.0.0' } });
  if (g.optOutShare > 0) {
    events.push({ at: g.optOutAt, setAutomaticUpgrade: { extension: 'agent', share: g.optOutShare, enabled: false } });
    if (g.reEnable) events.push({ at: 'P5D', setAutomaticUpgrade: { extension: 'agent', share: g.optOutShare, enabled: true } });
  }
  return {
    name: 'property',
    start: '2026-03-02T00:00:00Z',
    seed: g.seed,
    horizon: 'P12W',
    regions: g.regions,
    ...twoExtensionCatalog(),
    fleet: {
      scaleSets: g.fleet.scaleSets.map((s, i) => ({ name: `ss${i}`, region: s.region.name, subscription: s.sub, zones: zonesOf(s.region.name, s.zonal), capacity: s.capacity, updateDomains: s.uds, applicationHealth: s.appHealth, extensions: exts, upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: s.policy } })),
      availabilitySets: g.fleet.availabilitySets.map((a, i) => ({ name: `as${i}`, region: a.region.name, subscription: a.sub, vms: a.vms, updateDomains: a.uds, os: 'linux', extensions: exts })),
      vms: g.fleet.vms.map((v, i) => ({ name: `vm${i}`, region: v.region.name, subscription: v.sub, count: v.count, zones: zonesOf(v.region.name, v.zonal), extensions: exts })),
      arcMachines: g.fleet.arc.map((v, i) => ({ name: `arc${i}`, region: v.region.name, subscription: v.sub, count: v.count, extensions: exts })),
    },
    events,
    failures: {
      versions: { '1.1.0.0': g.failure, ...(g.secondExtension ? { '3.1.0.0': { installFailure: 0.05 } } : {}) },
      background: g.background && g.fleet.scaleSets.length > 0 ? [{ at: g.background.at, duration: g.background.duration, scaleSet: 'ss0', share: g.background.share }] : [],
    },
  };
}

test('R10 R11 R13 R14 R1 R5 R22: random fleets, policies and failures never break a safety invariant', () => {
  fc.assert(
    fc.property(scenarioArb, (g) => {
      const scenario = compileScenario(toScenario(g), 'property');
      const checker = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
      runSimulation(scenario, { onEvents: checker.onEvents });
      const violations = checker.finish();
      assert.deepEqual(violations, [], violations.join('\n'));
      assert.ok(checker.checked > 0);
    }),
    { numRuns: 150, seed: 20261121 },
  );
});

/**
 * The counterexample of seed 42, run 317 (found at 20 times the runs): 9 VMs of an availability set and an Arc
 * machine in r0, one VM in r1; the r1 VM's health report came 367 s after its upgrade started, which failed
 * r1's one-machine phase. Always run (fast-check's `examples`) so the timely health latency stays needed.
 */
const lateReportCase: Gen = {
  regions: [{ name: 'r0', pair: 'r1', zones: [] }, { name: 'r1', pair: 'r0', zones: ['1', '2'] }],
  fleet: {
    scaleSets: [],
    availabilitySets: [{ region: { name: 'r0', pair: 'r1', zones: [] }, vms: 9, uds: 1, sub: 's1' }, { region: { name: 'r1', pair: 'r0', zones: ['1', '2'] }, vms: 1, uds: 1, sub: 's1' }],
    vms: [],
    arc: [{ region: { name: 'r0', pair: 'r1', zones: [] }, count: 1, zonal: false, sub: 's1' }],
  },
  failure: { installFailure: 0, unhealthyAfterUpgrade: 0, rollbackFailure: 0 },
  secondExtension: true, optOutShare: 0, optOutAt: 'PT1H5M', reEnable: false, critical: false, background: null, seed: 689138,
};

test('R10: a rollout without failures completes, reaching every eligible instance exactly once', () => {
  fc.assert(
    fc.property(scenarioArb, (g) => {
      const clean = { ...g, failure: { installFailure: 0, unhealthyAfterUpgrade: 0, rollbackFailure: 0 }, optOutShare: 0, background: null } as Gen;
      const raw = toScenario(clean);
      // Without failures means health reports within the window too: the simulated agents' default health latency
      // (log-normal, median 30 s, p95 120 s) passes R21's 300 s once in about 300 upgrades, which R22 rightly
      // judges unhealthy and can stop a small phase (seed 42, run 317 at 20 times the runs). Median 5 s, p95 10 s
      // puts 300 s nine standard deviations out.
      raw.failures = { default: { healthSeconds: { median: 5, p95: 10 } } };
      const scenario = compileScenario(raw, 'property');
      const upgraded = new Map<string, number>();
      let created = 0;
      let completed = 0;
      let eligible = 0;
      const result = runSimulation(scenario, {
        onEvents: (events) => {
          for (const e of events) {
            if (e.type === 'rollout.created') { created++; eligible += e.eligible; }
            if (e.type === 'rollout.completed') completed++;
            if (e.type === 'instance.upgrade.succeeded') upgraded.set(`${e.rolloutId}|${e.machineId}`, (upgraded.get(`${e.rolloutId}|${e.machineId}`) ?? 0) + 1);
          }
        },
      });
      assert.equal(result.hitHorizon, false);
      assert.equal(completed, created);
      assert.equal(upgraded.size, eligible);
      for (const n of upgraded.values()) assert.equal(n, 1);
    }),
    { numRuns: 60, seed: 42, examples: [[lateReportCase]] },
  );
});
