/**
 * Property-based tests of maintenance windows (R70, R72): random fleets, random windows (what R71 allows
 * for the Extension scope), random assignments (sets, single machines, none), random failures, critical
 * releases or not, with or without emergency bypass, run through the real scenario compiler, simulator
 * and engine. The event log must keep the safety invariants and the windows (src/audit/windows.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvariantChecker } from '../src/audit/invariants.js';
import { WindowChecker } from '../src/audit/windows.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import type { PlanUnit } from '../src/planner/types.js';
import { batchBudgetMs } from '../src/planner/windows.js';
import { fitsAll } from '../src/schedule/slots.js';
import type { MaintenanceWindow } from '../src/schedule/window.js';
import { maintenanceWindow } from '../src/schedule/window.js';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { policyArb } from './helpers/arbitraries.js';

const ZONES = ['1', '2', '3'];
const TIME_ZONES = ['UTC', 'Pacific Standard Time', 'W. Europe Standard Time', 'Tokyo Standard Time', 'AUS Eastern Standard Time'];
const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

const regionsArb = fc.integer({ min: 1, max: 2 }).chain((pairs) =>
  fc.tuple(...Array.from({ length: pairs * 2 }, () => fc.integer({ min: 0, max: 3 }))).map((zoneCounts) =>
    zoneCounts.map((z, i) => ({ name: `r${i}`, pair: `r${i % 2 === 0 ? i + 1 : i - 1}`, zones: ZONES.slice(0, z) })),
  ),
);

/** Every recurrence R71 allows for the Extension scope: at most seven days between windows. */
const recurArb = fc.oneof(
  fc.constant('Day'),
  fc.integer({ min: 2, max: 7 }).map((n) => `${n}Days`),
  fc.constant('Week'),
  fc.subarray(WEEKDAYS, { minLength: 1 }).map((days) => `Week ${days.join(',')}`),
);

const windowFields = {
  recurEvery: recurArb,
  hour: fc.integer({ min: 0, max: 23 }),
  minute: fc.constantFrom(0, 15, 30, 45),
  /** Duration in minutes, 05:00 to 12:00. */
  minutes: fc.integer({ min: 10, max: 24 }).map((half) => half * 30),
  timeZone: fc.constantFrom(...TIME_ZONES),
  /** Day of the window's start: some before the scenario's start (2026-03-02), some after. */
  startDay: fc.integer({ min: 20, max: 35 }),
  /** Days from the start to the expiration, when the window expires. */
  expiresAfter: fc.option(fc.integer({ min: 3, max: 70 }), { freq: 4 }),
  emergencyBypass: fc.boolean(),
};
const windowArb = fc.record(windowFields);
type Window = typeof windowArb extends fc.Arbitrary<infer T> ? T : never;

const failureArb = fc.record({
  installFailure: fc.constantFrom(0, 0.02, 0.2),
  unhealthyAfterUpgrade: fc.constantFrom(0, 0.03, 0.3),
  rollbackFailure: fc.constantFrom(0, 0.1),
});

type Region = { name: string; pair: string; zones: string[] };

/** An assignment: the index of a configuration, or null for none. */
function assignArb(configs: number) {
  return fc.option(fc.integer({ min: 0, max: configs - 1 }), { freq: 3 });
}

function fleetArb(regions: Region[], configs: number) {
  const region = fc.constantFrom(...regions);
  const scaleSet = fc.record({ region, capacity: fc.integer({ min: 1, max: 30 }), uds: fc.integer({ min: 1, max: 5 }), zonal: fc.boolean(), policy: policyArb, appHealth: fc.boolean(), sub: fc.constantFrom('s1', 's2'), window: assignArb(configs) });
  const avSet = fc.record({ region, vms: fc.integer({ min: 1, max: 10 }), uds: fc.integer({ min: 1, max: 5 }), sub: fc.constantFrom('s1', 's2'), window: assignArb(configs), firstVm: assignArb(configs) });
  const group = fc.record({ region, count: fc.integer({ min: 1, max: 10 }), zonal: fc.boolean(), sub: fc.constantFrom('s1', 's2'), windows: fc.array(assignArb(configs), { maxLength: 10 }) });
  return fc.record({
    scaleSets: fc.array(scaleSet, { maxLength: 3 }),
    availabilitySets: fc.array(avSet, { maxLength: 2 }),
    vms: fc.array(group, { maxLength: 2 }),
    arc: fc.array(group, { maxLength: 1 }),
  });
}

/**
 * Zones with odd rules, their changes inside the run (2026-03-02 + 14 weeks): Lord Howe's 30-minute and
 * Chatham's +13:45 → +12:45 on April 5, Casablanca's return from its Ramadan offset on March 22, Santiago
 * on April 5, Pacific on March 8; Kathmandu (+5:45) and Samoa have none. Start times near the changes.
 */
const ODD_TIME_ZONES = [
  'Lord Howe Standard Time', 'Chatham Islands Standard Time', 'Morocco Standard Time', 'Pacific SA Standard Time', 'Nepal Standard Time', 'Samoa Standard Time',
  'Pacific Standard Time',
];
const oddWindowArb = fc.record({
  ...windowFields,
  hour: fc.oneof(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 1, 2, 3, 23)),
  minute: fc.constantFrom(0, 15, 30, 45),
  timeZone: fc.constantFrom(...ODD_TIME_ZONES),
});

const scenarioOf = (windows: fc.Arbitrary<Window>) => fc.tuple(regionsArb, fc.array(windows, { minLength: 1, maxLength: 3 })).chain(([regions, windows]) =>
  fc.record({
    regions: fc.constant(regions),
    windows: fc.constant(windows),
    fleet: fleetArb(regions, windows.length),
    failure: failureArb,
    critical: fc.boolean(),
    publishAt: fc.constantFrom('PT1H', 'PT17H', 'P2DT5H'),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
  }),
);

const scenarioArb = scenarioOf(windowArb);
type Gen = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

const pad = (n: number) => String(n).padStart(2, '0');

function configOf(g: Gen, i: number) {
  const w = g.windows[i]!;
  const day = new Date(Date.UTC(2026, 1, w.startDay)).toISOString().slice(0, 10);
  const expires = w.expiresAfter === null ? {} : { expirationDateTime: `${new Date(Date.UTC(2026, 1, w.startDay + w.expiresAfter)).toISOString().slice(0, 10)} 12:00` };
  return {
    name: `mc${i}`,
    startDateTime: `${day} ${pad(w.hour)}:${pad(w.minute)}`,
    ...expires,
    duration: `${pad(Math.floor(w.minutes / 60))}:${pad(w.minutes % 60)}`,
    timeZone: w.timeZone,
    recurEvery: w.recurEvery,
    emergencyBypass: w.emergencyBypass,
  };
}

/** The scenario, and the configurations assigned to each target (set name or machine id). */
function toScenario(g: Gen): { raw: Record<string, unknown>; assigned: Map<string, number[]> } {
  const zonesOf = (name: string, zonal: boolean) => (zonal ? g.regions.find((r) => r.name === name)!.zones : []);
  const assigned = new Map<string, number[]>();
  const assign = (target: string, config: number | null | undefined) => {
    if (config === null || config === undefined) return;
    assigned.set(target, [...(assigned.get(target) ?? []), config]);
  };
  g.fleet.scaleSets.forEach((s, i) => assign(`ss${i}`, s.window));
  g.fleet.availabilitySets.forEach((a, i) => {
    assign(`as${i}`, a.window);
    assign(`as${i}-vm0`, a.firstVm);
  });
  g.fleet.vms.forEach((v, i) => v.windows.slice(0, v.count).forEach((w, c) => assign(`vm${i}-${c}`, w)));
  g.fleet.arc.forEach((v, i) => v.windows.slice(0, v.count).forEach((w, c) => assign(`arc${i}-${c}`, w)));
  const assignments: unknown[] = [];
  for (const [target, configs] of assigned) {
    const isSet = /^(ss|as)\d+$/.test(target);
    for (const c of configs) assignments.push(isSet ? { configuration: `mc${c}`, scaleSet: target } : { configuration: `mc${c}`, machines: [target] });
  }
  const raw = {
    name: 'property-windows',
    start: '2026-03-02T00:00:00Z',
    seed: g.seed,
    horizon: 'P14W',
    regions: g.regions,
    profiles: { standard: { phaseBake: 'PT12H' }, critical: { phaseBake: 'PT6H' } },
    catalog: [{ publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: {
      scaleSets: g.fleet.scaleSets.map((s, i) => ({ name: `ss${i}`, region: s.region.name, subscription: s.sub, zones: zonesOf(s.region.name, s.zonal), capacity: s.capacity, updateDomains: s.uds, applicationHealth: s.appHealth, extensions: ['agent'], upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: s.policy } })),
      availabilitySets: g.fleet.availabilitySets.map((a, i) => ({ name: `as${i}`, region: a.region.name, subscription: a.sub, vms: a.vms, updateDomains: a.uds, os: 'linux', extensions: ['agent'] })),
      vms: g.fleet.vms.map((v, i) => ({ name: `vm${i}`, region: v.region.name, subscription: v.sub, count: v.count, zones: zonesOf(v.region.name, v.zonal), extensions: ['agent'] })),
      arcMachines: g.fleet.arc.map((v, i) => ({ name: `arc${i}`, region: v.region.name, subscription: v.sub, count: v.count, extensions: ['agent'] })),
    },
    maintenance: { configurations: g.windows.map((_, i) => configOf(g, i)), assignments },
    events: [{ at: g.publishAt, publish: { extension: 'agent', version: '1.1.0.0', critical: g.critical } }],
    failures: { versions: { '1.1.0.0': g.failure } },
  };
  return { raw, assigned };
}

interface Outcome {
  events: EngineEvent[];
  invariantViolations: string[];
  windowViolations: string[];
  windows: WindowChecker;
  unionOf: (machineId: string) => MaintenanceWindow[];
  /** Plan units by id, with their region and the index of their zone wave in it. */
  units: Map<string, { unit: PlanUnit; region: string; wave: number }>;
  profile: Parameters<typeof batchBudgetMs>[0];
}

/** Runs the scenario; the windows of each machine are worked out here from the generated assignments. */
function run(g: Gen): Outcome {
  const { raw, assigned } = toScenario(g);
  const scenario = compileScenario(raw, 'property-windows');
  const parsed = g.windows.map((_, i) => maintenanceWindow(configOf(g, i)));
  const machines = scenario.state.fleet.machines;
  const unionOf = (id: string): MaintenanceWindow[] => {
    const setId = machines.get(id)?.placement.setId ?? null;
    const configs = new Set([...(assigned.get(id) ?? []), ...(setId === null ? [] : (assigned.get(setId) ?? []))]);
    return [...configs].map((c) => parsed[c]!);
  };
  const invariants = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  const windows = new WindowChecker({ unionOf });
  const events: EngineEvent[] = [];
  const result = runSimulation(scenario, {
    onEvents: (batch) => {
      invariants.onEvents(batch);
      windows.onEvents(batch);
      for (const e of batch) events.push(e);
    },
  });
  const units: Outcome['units'] = new Map();
  let profile: Outcome['profile'] = { actionTimeoutMs: 0 };
  for (const r of result.engine.state.rollouts.values()) {
    profile = r.plan.profile;
    for (const p of r.plan.phases) for (const reg of p.regions) reg.waves.forEach((w, wave) => { for (const unit of w.units) units.set(unit.id, { unit, region: reg.region, wave }); });
  }
  return { events, invariantViolations: invariants.finish(), windowViolations: windows.finish(), windows, unionOf, units, profile };
}

const unitOf = (batchId: string) => batchId.slice(0, batchId.lastIndexOf('/'));

/**
 * Batches of automatic, non-critical rollouts that were deferred by their windows: they became ready (the
 * previous batch of the unit completed, plus the pause; or, for the first batch of a unit of the first zone
 * wave, its phase started) at a time their windows had no room for them, and no gate held the rollout
 * meanwhile. Each must have been announced by a `window.waiting` of its unit before it started.
 */
function unannouncedDeferrals(o: Outcome): { deferred: number; unannounced: string[] } {
  let deferred = 0;
  const unannounced: string[] = [];
  const lastCompleted = new Map<string, number>();
  const lastGate = new Map<string, number>();
  const phaseStart = new Map<string, number>();
  const waits: Array<{ rolloutId: string; t: number; key: string }> = [];
  const scopeKey = (s: { region: string; zone?: string | null; setId?: string | null; subscription: string }) => `${s.region}|${s.zone ?? ''}|${s.setId ?? ''}|${s.subscription}`;
  for (const e of o.events) {
    const t = Date.parse(e.time);
    if (e.type === 'gate.held' || e.type === 'gate.breached' || e.type === 'rollout.paused') lastGate.set(e.rolloutId, t);
    if (e.type === 'window.waiting') waits.push({ rolloutId: e.rolloutId, t, key: scopeKey(e.scope) });
    if (e.type === 'phase.started') for (const r of e.regions) phaseStart.set(`${e.rolloutId}|${r}`, t);
    if (e.type === 'batch.completed') lastCompleted.set(`${e.rolloutId}|${unitOf(e.batchId)}`, t);
    if (e.type !== 'batch.started' || e.retry || o.windows.profiles.get(e.rolloutId) !== 'standard') continue;
    const planned = o.units.get(unitOf(e.batchId));
    if (!planned) continue;
    const c = lastCompleted.get(`${e.rolloutId}|${planned.unit.id}`);
    const ready = c !== undefined ? c + planned.unit.limits.pauseBetweenBatchesMs : planned.wave === 0 ? phaseStart.get(`${e.rolloutId}|${planned.region}`) : undefined;
    if (ready === undefined || (lastGate.get(e.rolloutId) ?? -1) >= ready - planned.unit.limits.pauseBetweenBatchesMs) continue;
    const unions = e.instances.map((id) => o.unionOf(id)).filter((u) => u.length > 0);
    const unit = planned.unit;
    if (unions.length === 0 || t <= ready || fitsAll(unions, ready, batchBudgetMs(o.profile, unit.limits))) continue;
    deferred++;
    const key = scopeKey(e.scope);
    if (!waits.some((w) => w.rolloutId === e.rolloutId && w.key === key && w.t >= ready - unit.limits.pauseBetweenBatchesMs && w.t <= t)) unannounced.push(`${e.time} ${e.batchId}: deferred from ${new Date(ready).toISOString()} without window.waiting`);
  }
  return { deferred, unannounced };
}

test('R70 R72: across random windows and fleets, no automatic upgrade starts outside an assigned window except as a recorded bypass, and no batch overruns a window', () => {
  let checkedStarts = 0;
  let bypasses = 0;
  fc.assert(
    fc.property(scenarioArb, (g) => {
      const o = run(g);
      assert.deepEqual(o.invariantViolations, [], o.invariantViolations.join('\n'));
      assert.deepEqual(o.windowViolations, [], o.windowViolations.join('\n'));
      checkedStarts += o.windows.checkedStarts;
      // R72: every bypass is a critical rollout's, and every configuration it names allows it.
      for (const e of o.events) {
        if (e.type !== 'window.bypassed') continue;
        bypasses++;
        assert.equal(g.critical, true, `${e.batchId}: a bypass in a standard rollout`);
        assert.equal(o.windows.profiles.get(e.rolloutId), 'critical');
        assert.ok(e.configurations.length > 0);
        for (const c of e.configurations) assert.equal(g.windows[Number(c.slice(2))]!.emergencyBypass, true, `${e.batchId}: ${c} does not allow emergency bypass`);
      }
    }),
    { numRuns: 120, seed: 20261122 },
  );
  assert.ok(checkedStarts > 500, `only ${checkedStarts} upgrades of machines with windows were checked`);
  assert.ok(bypasses > 0, 'no run exercised an emergency bypass');
});

test('R70: a batch of a standard rollout that its windows defer is announced by window.waiting', () => {
  let deferred = 0;
  fc.assert(
    fc.property(scenarioArb, (raw) => {
      const g = { ...raw, critical: false };
      const o = run(g);
      assert.deepEqual(o.windowViolations, [], o.windowViolations.join('\n'));
      const r = unannouncedDeferrals(o);
      deferred += r.deferred;
      assert.deepEqual(r.unannounced, [], r.unannounced.join('\n'));
      // A rollout that ever waited reports when the window opens, and names only configurations in use.
      for (const e of o.events) {
        if (e.type !== 'window.waiting') continue;
        assert.ok(e.configurations.length > 0);
        for (const c of e.configurations) assert.match(c, /^mc\d$/);
        if (e.opensAt !== null) assert.ok(Date.parse(e.opensAt) > Date.parse(e.time), `${e.time}: opensAt ${e.opensAt} is not later`);
      }
    }),
    { numRuns: 80, seed: 7 },
  );
  assert.ok(deferred > 20, `only ${deferred} deferred batches: the property was hardly exercised`);
});

test('R70: in zones with odd rules, across their clock changes, no automatic upgrade starts outside an assigned window and no batch overruns one', () => {
  let checkedStarts = 0;
  fc.assert(
    fc.property(scenarioOf(oddWindowArb), (raw) => {
      const o = run({ ...raw, critical: false });
      assert.deepEqual(o.invariantViolations, [], o.invariantViolations.join('\n'));
      assert.deepEqual(o.windowViolations, [], o.windowViolations.join('\n'));
      checkedStarts += o.windows.checkedStarts;
      assert.deepEqual(unannouncedDeferrals(o).unannounced, []);
    }),
    { numRuns: 40, seed: 20261206 },
  );
  assert.ok(checkedStarts > 200, `only ${checkedStarts} upgrades of machines with windows were checked`);
});
