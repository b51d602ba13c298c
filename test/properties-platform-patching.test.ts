/**
 * Property-based tests of platform-orchestrated guest patching (R76): random fleets of platform-patched
 * machines in real Azure regions (so their off-peak hours fall in different time zones), random reboot
 * settings, random failure rates, critical baselines or not, and InGuestPatch schedules on some machines,
 * run through the real scenario compiler, simulator and engine. The event log must keep the safety
 * invariants (src/audit/invariants.ts) and the patching rules (src/audit/patches.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvariantChecker } from '../src/audit/invariants.js';
import { PatchChecker } from '../src/audit/patches.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { REBOOT_NOTICE_MS } from '../src/planner/windows.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';

const PAIRS: Array<[string, string]> = [['eastus', 'westus'], ['northeurope', 'westeurope'], ['japaneast', 'japanwest'], ['australiaeast', 'australiasoutheast']];
const ZONES = ['1', '2', '3'];
const BASELINE = '2026.3.1';

const regionsArb = fc.subarray(PAIRS, { minLength: 1, maxLength: 2 }).chain((pairs) =>
  fc.tuple(...pairs.flatMap(() => [fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })])).map((zones) =>
    pairs.flatMap(([a, b], i) => [
      { name: a, pair: b, zones: ZONES.slice(0, zones[2 * i]!) },
      { name: b, pair: a, zones: ZONES.slice(0, zones[2 * i + 1]!) },
    ]),
  ),
);

type Region = { name: string; pair: string; zones: string[] };
const patchArb = fc.record({
  patchMode: fc.constantFrom('AutomaticByPlatform', 'AutomaticByPlatform', 'AutomaticByPlatform', 'ImageDefault'),
  rebootSetting: fc.constantFrom('IfRequired', 'Never', 'Always'),
});

function fleetArb(regions: Region[]) {
  const region = fc.constantFrom(...regions);
  return fc.record({
    scaleSets: fc.array(fc.record({ region, capacity: fc.integer({ min: 1, max: 25 }), uds: fc.integer({ min: 1, max: 5 }), zonal: fc.boolean(), patch: patchArb, scheduled: fc.boolean() }), { maxLength: 3 }),
    availabilitySets: fc.array(fc.record({ region, vms: fc.integer({ min: 1, max: 10 }), uds: fc.integer({ min: 1, max: 5 }), patch: patchArb }), { maxLength: 2 }),
    vms: fc.array(fc.record({ region, count: fc.integer({ min: 1, max: 12 }), zonal: fc.boolean(), sub: fc.constantFrom('s1', 's2'), patch: patchArb, scheduled: fc.integer({ min: 0, max: 3 }) }), { maxLength: 3 }),
  });
}

const scenarioArb = regionsArb.chain((regions) =>
  fc.record({
    regions: fc.constant(regions),
    fleet: fleetArb(regions),
    failure: fc.record({ installFailure: fc.constantFrom(0, 0.05, 0.3), unhealthyAfterUpgrade: fc.constantFrom(0, 0.05, 0.4) }),
    critical: fc.boolean(),
    publishAt: fc.constantFrom('PT1H', 'PT13H', 'P1DT5H'),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
  }),
);

type Gen = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function toScenario(g: Gen): Record<string, unknown> {
  const zonesOf = (name: string, zonal: boolean) => (zonal ? g.regions.find((r) => r.name === name)!.zones : []);
  return {
    name: 'property-platform-patching',
    start: '2026-03-02T00:00:00Z',
    seed: g.seed,
    horizon: 'P10W',
    regions: g.regions,
    profiles: { standard: { phaseBake: 'PT12H' }, critical: { phaseBake: 'PT6H' } },
    catalog: [{ publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0' } },
    fleet: {
      scaleSets: g.fleet.scaleSets.map((s, i) => ({ name: `ss${i}`, region: s.region.name, subscription: 's1', zones: zonesOf(s.region.name, s.zonal), capacity: s.capacity, updateDomains: s.uds, patchSettings: s.patch })),
      availabilitySets: g.fleet.availabilitySets.map((a, i) => ({ name: `as${i}`, region: a.region.name, subscription: 's2', vms: a.vms, updateDomains: a.uds, os: 'linux', patchSettings: a.patch })),
      vms: g.fleet.vms.map((v, i) => ({ name: `vm${i}`, region: v.region.name, subscription: v.sub, count: v.count, zones: zonesOf(v.region.name, v.zonal), patchSettings: v.patch })),
    },
    events: [{ at: g.publishAt, publishPatchBaseline: { os: 'linux', version: BASELINE, critical: g.critical } }],
    failures: { versions: { [BASELINE]: { ...g.failure, installSeconds: { median: 60, p95: 120 } } } },
  };
}

interface Outcome {
  events: EngineEvent[];
  invariants: string[];
  patches: PatchChecker;
  /** Machines an InGuestPatch schedule covers; machines whose patch mode is not AutomaticByPlatform. */
  scheduled: Set<string>;
  notPlatform: Set<string>;
  platform: number;
  rebootSetting: Map<string, unknown>;
}

function run(g: Gen): Outcome {
  const scenario = compileScenario(toScenario(g), 'property-platform-patching');
  const sim = new Simulation(scenario, {
    onEvents: (batch) => {
      invariants.onEvents(batch);
      patches.onEvents(batch);
      for (const e of batch) events.push(e);
    },
  });
  const events: EngineEvent[] = [];
  const invariants = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  const patches = new PatchChecker({ windowOf: () => undefined, noticeMs: REBOOT_NOTICE_MS });
  // An InGuestPatch schedule on some sets and machines: the schedule patches them, the platform never does.
  const scheduled = new Set<string>();
  sim.engine.putMaintenanceConfiguration({ id: 'nightly', scope: 'InGuestPatch', window: { startDateTime: '2026-03-01 22:00', duration: '03:00', timeZone: 'UTC', recurEvery: 'Day' }, emergencyBypass: false }, 'test');
  const machines = [...scenario.state.fleet.machines.values()];
  g.fleet.scaleSets.forEach((s, i) => {
    if (!s.scheduled) return;
    sim.engine.assignMaintenance(`ss${i}`, 'nightly', 'test');
    for (const m of machines) if (m.placement.setId === `ss${i}`) scheduled.add(m.id);
  });
  g.fleet.vms.forEach((v, i) => {
    for (let c = 0; c < Math.min(v.scheduled, v.count); c++) {
      sim.engine.assignMaintenance(`vm${i}-${c}`, 'nightly', 'test');
      scheduled.add(`vm${i}-${c}`);
    }
  });
  const platform = scenario.state.fleet.instances.get('guestPatch:linux');
  const notPlatform = new Set(machines.filter((m) => !platform?.has(m.id)).map((m) => m.id));
  sim.run();
  const rebootSetting = new Map([...(platform?.values() ?? [])].map((i) => [i.machineId, i.settings['rebootSetting']]));
  return { events, invariants: invariants.finish(), patches, scheduled, notPlatform, platform: platform?.size ?? 0, rebootSetting };
}

test('R10 R11 R12 R20–R23 R72 R76 R77 R83: platform patch baselines roll out availability-first, in off-peak hours, announced, gated, never touching scheduled machines', () => {
  let offPeak = 0;
  let reboots = 0;
  let stopped = 0;
  let failedKept = 0;
  let bypasses = 0;
  let noticed = 0;
  fc.assert(
    fc.property(scenarioArb, (g) => {
      const o = run(g);
      // R10/R11/R12, ≤20% batches, one zone and update domain at a time: the engine's safety invariants.
      assert.deepEqual(o.invariants, [], o.invariants.join('\n'));
      // R76 off-peak starts, R83 reboot notice ≥ 15 minutes before the reboot.
      assert.deepEqual(o.patches.violations, [], o.patches.violations.join('\n'));
      offPeak += o.patches.checkedOffPeak;
      reboots += o.patches.checkedReboots;
      const stoppedRollouts = new Set<string>();
      const announced = new Map<string, number>();
      for (const e of o.events) {
        if (e.type === 'rollout.stopped') stoppedRollouts.add(e.rolloutId);
        if (e.type === 'window.bypassed') {
          bypasses++;
          assert.equal(g.critical, true, `${e.batchId}: off-peak hours bypassed by a standard baseline`);
        }
        if (e.type === 'batch.started') {
          assert.ok(!stoppedRollouts.has(e.rolloutId), `${e.batchId} started after its rollout stopped (R20–R23)`);
          for (const id of e.instances) {
            assert.ok(!o.scheduled.has(id), `${id} is under an InGuestPatch schedule but the platform rollout took it`);
            assert.ok(!o.notPlatform.has(id), `${id} is not AutomaticByPlatform but the platform rollout took it`);
          }
        }
        // Patches are not uninstalled: a failure is recorded, never rolled back.
        assert.notEqual(e.type, 'instance.rollback.started', 'a platform patch attempt was rolled back');
        if (e.type === 'instance.rollback.skipped') {
          assert.match(e.reason ?? '', /patches cannot be uninstalled/);
          failedKept++;
        }
        if (e.type === 'machine.reboot.announced') {
          assert.ok(!o.scheduled.has(e.machineId));
          announced.set(e.runId, Date.parse(e.time));
        }
        // R77, R83: a machine that may reboot is told before its installation starts, the whole notice ahead.
        if (e.type === 'instance.upgrade.started' && e.artifact.kind === 'guestPatch' && o.rebootSetting.get(e.machineId) !== 'Never') {
          const at = announced.get(`${e.rolloutId}/${e.machineId}/${e.attempt}`);
          assert.ok(at !== undefined, `${e.machineId}: installation without a reboot notice`);
          assert.ok(Date.parse(e.time) - at >= REBOOT_NOTICE_MS, `${e.machineId}: installation ${(Date.parse(e.time) - at) / 60_000} minutes after its reboot notice`);
          noticed++;
        }
      }
      stopped += stoppedRollouts.size;
      // A baseline that breaks four machines in ten is stopped by the gates once enough machines judged it.
      const judged = o.events.filter((e) => e.type === 'instance.upgrade.succeeded' || e.type === 'instance.upgrade.failed' || e.type === 'instance.health.unhealthy').length;
      if (g.failure.unhealthyAfterUpgrade >= 0.4 && g.failure.installFailure >= 0.3 && judged >= 20) {
        assert.ok(stoppedRollouts.size > 0 || o.events.some((e) => e.type === 'gate.breached' || e.type === 'release.halted'), 'a bad baseline ran to the end unstopped (R20–R23)');
      }
    }),
    { numRuns: 60, seed: 20261206 },
  );
  assert.ok(offPeak > 300, `only ${offPeak} installations were checked against off-peak hours`);
  assert.ok(reboots > 100, `only ${reboots} reboots were checked for their notice`);
  assert.ok(stopped > 0, 'no run stopped a bad baseline');
  assert.ok(failedKept > 0, 'no run had a failed installation');
  assert.ok(bypasses > 0, 'no critical baseline bypassed off-peak hours');
  assert.ok(noticed > 100, `only ${noticed} installations were checked for their reboot notice`);
});
