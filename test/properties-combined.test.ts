/**
 * The engine under scenarios the examples keep apart, combined at random (session 14): maintenance windows
 * in odd time zones (Extension and OSImage scopes), critical releases, several releases of one extension
 * published while a rollout runs, manual upgrades, opt-outs and opt-ins, type support switched off and on,
 * maintenance assigned and taken off mid-rollout, OS image releases replicated region by region, platform
 * patch baselines, scale sets of one instance to hundreds, availability sets, standalone VMs and Arc
 * machines, flapping machines, agents that stop answering, failing upgrades and failing rollbacks.
 * Every run goes through the real scenario compiler, simulator and engine; its log must keep the safety
 * invariants (src/audit/invariants.ts, one action at a time per instance included) and the rules below.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvariantChecker } from '../src/audit/invariants.js';
import { artifactKey } from '../src/model/artifact.js';
import { MIN_R23_STOP_MS } from '../src/planner/bound.js';
import { WindowChecker } from '../src/audit/windows.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import type { MaintenanceWindow } from '../src/schedule/window.js';
import { maintenanceWindow } from '../src/schedule/window.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { boundRisk } from '../src/engine/rollouts/bound-risk.js';
import { policyArb } from './helpers/arbitraries.js';
import { stepLooking } from './helpers/bound-fleet.js';
import { twoExtensionCatalog } from './helpers/property-catalog.js';

const DAY = 86_400_000;
const ZONES = ['1', '2', '3'];
const TIME_ZONES = ['UTC', 'Lord Howe Standard Time', 'Chatham Islands Standard Time', 'Morocco Standard Time', 'Nepal Standard Time', 'Samoa Standard Time', 'Pacific Standard Time'];
const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const IMAGE = { publisher: 'Canonical', offer: 'ubuntu', sku: 'server' };

const regionsArb = fc.integer({ min: 1, max: 3 }).chain((pairs) =>
  fc.tuple(...Array.from({ length: pairs * 2 }, () => fc.integer({ min: 0, max: 3 }))).map((zones) =>
    zones.map((z, i) => ({ name: `r${i}`, pair: `r${i % 2 === 0 ? i + 1 : i - 1}`, zones: ZONES.slice(0, z) })),
  ),
);
const windowArb = fc.record({
  recurEvery: fc.oneof(fc.constant('Day'), fc.integer({ min: 2, max: 7 }).map((n) => `${n}Days`), fc.constant('Week'), fc.subarray(WEEKDAYS, { minLength: 1 }).map((d) => `Week ${d.join(',')}`)),
  hour: fc.integer({ min: 0, max: 23 }),
  minute: fc.constantFrom(0, 15, 30, 45),
  minutes: fc.integer({ min: 10, max: 24 }).map((half) => half * 30),
  timeZone: fc.constantFrom(...TIME_ZONES),
  startDay: fc.integer({ min: 20, max: 35 }),
  emergencyBypass: fc.boolean(),
  scope: fc.constantFrom('Extension', 'OSImage'),
});
type Window = typeof windowArb extends fc.Arbitrary<infer T> ? T : never;
const failureArb = fc.record({
  installFailure: fc.constantFrom(0, 0.02, 0.2),
  unhealthyAfterUpgrade: fc.constantFrom(0, 0.03, 0.3, 1),
  rollbackFailure: fc.constantFrom(0, 0.1, 0.5),
});
type Region = { name: string; pair: string; zones: string[] };
const assignArb = (n: number) => fc.option(fc.integer({ min: 0, max: n - 1 }), { freq: 2 });

function fleetArb(regions: Region[], windows: number) {
  const region = fc.constantFrom(...regions);
  const sub = fc.constantFrom('s1', 's2');
  const scaleSet = fc.record({
    region, sub, capacity: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 4, max: 40 }), fc.integer({ min: 100, max: 250 })),
    uds: fc.integer({ min: 1, max: 5 }), zonal: fc.boolean(), policy: policyArb, appHealth: fc.boolean(), window: assignArb(windows),
    image: fc.boolean(), osUpgrade: fc.boolean(), noRollback: fc.boolean(),
  });
  const availabilitySet = fc.record({ region, sub, vms: fc.integer({ min: 1, max: 12 }), uds: fc.integer({ min: 1, max: 5 }), window: assignArb(windows) });
  const group = fc.record({ region, sub, count: fc.integer({ min: 1, max: 12 }), zonal: fc.boolean(), window: assignArb(windows), patch: fc.boolean() });
  return fc.record({
    scaleSets: fc.array(scaleSet, { maxLength: 4 }),
    availabilitySets: fc.array(availabilitySet, { maxLength: 2 }),
    vms: fc.array(group, { maxLength: 3 }),
    arc: fc.array(group, { maxLength: 2 }),
  });
}

const eventArb = fc.record({
  at: fc.constantFrom('PT1H', 'PT5H', 'P1D', 'P2D', 'P4D', 'P6D', 'P10D', 'P15D'),
  kind: fc.constantFrom('publish', 'publishCritical', 'manual', 'optOut', 'optIn', 'support', 'unsupport', 'assign', 'unassign', 'image', 'baseline'),
  share: fc.constantFrom(0.3, 1),
});

const scenarioArb = fc.tuple(regionsArb, fc.array(windowArb, { minLength: 1, maxLength: 3 })).chain(([regions, windows]) =>
  fc.record({
    regions: fc.constant(regions),
    windows: fc.constant(windows),
    fleet: fleetArb(regions, windows.length),
    failure: failureArb,
    failure2: failureArb,
    events: fc.array(eventArb, { minLength: 1, maxLength: 8 }),
    slow: fc.option(fc.record({ share: fc.constantFrom(0.1, 0.5), factor: fc.constantFrom(2, 50, 200) })),
    background: fc.option(fc.record({ share: fc.constantFrom(0.1, 0.4, 0.9), at: fc.constantFrom('PT1H', 'PT2H', 'P4D'), duration: fc.constantFrom('PT1H', 'PT8H', 'P3D') })),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
  }),
);
type Gen = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

const pad = (n: number) => String(n).padStart(2, '0');

function configOf(w: Window, i: number) {
  const day = new Date(Date.UTC(2026, 1, w.startDay)).toISOString().slice(0, 10);
  return {
    name: `mc${i}`, scope: w.scope, startDateTime: `${day} ${pad(w.hour)}:${pad(w.minute)}`, duration: `${pad(Math.floor(w.minutes / 60))}:${pad(w.minutes % 60)}`,
    timeZone: w.timeZone, recurEvery: w.recurEvery, emergencyBypass: w.emergencyBypass,
  };
}

/** The scenario, and the configurations assigned at the start to each set name or machine id. */
function toScenario(g: Gen): { raw: Record<string, unknown>; assigned: Map<string, number> } {
  const zonesOf = (name: string, zonal: boolean) => (zonal ? g.regions.find((r) => r.name === name)!.zones : []);
  const assigned = new Map<string, number>();
  const assign = (target: string, config: number | null) => { if (config !== null) assigned.set(target, config); };
  g.fleet.scaleSets.forEach((s, i) => assign(`ss${i}`, s.window));
  g.fleet.availabilitySets.forEach((s, i) => assign(`as${i}`, s.window));
  g.fleet.vms.forEach((s, i) => assign(`vm${i}-0`, s.window));
  g.fleet.arc.forEach((s, i) => assign(`arc${i}-0`, s.window));
  const assignments = [...assigned].map(([target, c]) => (/^(ss|as)\d+$/.test(target) ? { configuration: `mc${c}`, scaleSet: target } : { configuration: `mc${c}`, machines: [target] }));
  let minor = 1;
  let image = 1;
  let day = 1;
  const events: unknown[] = [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }, { at: 'P1D', publish: { extension: 'monitor', version: '3.1.0.0' } }];
  for (const e of g.events) {
    switch (e.kind) {
      case 'publish':
      case 'publishCritical':
        events.push({ at: e.at, publish: { extension: 'agent', version: `1.${++minor}.0.0`, critical: e.kind === 'publishCritical' } });
        break;
      case 'manual': events.push({ at: e.at, manualUpgrade: { extension: 'agent', share: e.share, version: '1.1.0.0' } }); break;
      case 'optOut': events.push({ at: e.at, setAutomaticUpgrade: { extension: 'agent', share: e.share, enabled: false } }); break;
      case 'optIn': events.push({ at: e.at, setAutomaticUpgrade: { extension: 'agent', enabled: true } }); break;
      case 'support': events.push({ at: e.at, supportAutomaticUpgrade: { extension: 'agent', supported: true } }); break;
      case 'unsupport': events.push({ at: e.at, supportAutomaticUpgrade: { extension: 'agent', supported: false } }); break;
      case 'assign': if (g.fleet.scaleSets.length > 0) events.push({ at: e.at, assignMaintenance: { configuration: 'mc0', scaleSet: 'ss0' } }); break;
      case 'unassign': if (assignments.length > 0) events.push({ at: e.at, unassignMaintenance: assignments[0] }); break;
      case 'image':
        image++;
        // The first region at once, the others days later: the rollout is superseded as the version spreads (R64).
        const replications = g.regions.map((r, i) => (i === 0 ? { region: r.name } : { region: r.name, at: `P${16 + day + i}D` }));
        events.push({ at: e.at, publishImage: { ...IMAGE, version: `1.0.${image}`, replications } });
        day += 2;
        break;
      case 'baseline': events.push({ at: e.at, publishPatchBaseline: { os: 'linux', version: `2026.3.${day++}`, critical: e.share === 1 } }); break;
    }
  }
  const extensions = ['agent', 'monitor'];
  const patchSettings = { patchMode: 'AutomaticByPlatform' };
  const raw = {
    name: 'property-combined', start: '2026-03-02T00:00:00Z', seed: g.seed, horizon: 'P20W', regions: g.regions,
    ...twoExtensionCatalog(),
    images: [{ ...IMAGE, osType: 'Linux', versions: [{ version: '1.0.1' }] }],
    fleet: {
      scaleSets: g.fleet.scaleSets.map((s, i) => ({
        name: `ss${i}`, region: s.region.name, subscription: s.sub, zones: zonesOf(s.region.name, s.zonal), capacity: s.capacity, updateDomains: s.uds,
        applicationHealth: s.appHealth, extensions, ...(s.image ? { image: { ...IMAGE, version: 'latest' } } : {}),
        upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: s.policy, automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: s.osUpgrade, disableAutomaticRollback: s.noRollback } },
      })),
      availabilitySets: g.fleet.availabilitySets.map((a, i) => ({ name: `as${i}`, region: a.region.name, subscription: a.sub, vms: a.vms, updateDomains: a.uds, os: 'linux', extensions })),
      vms: g.fleet.vms.map((v, i) => ({
        name: `vm${i}`, region: v.region.name, subscription: v.sub, count: v.count, zones: zonesOf(v.region.name, v.zonal), extensions, ...(v.patch ? { patchSettings } : {}),
      })),
      arcMachines: g.fleet.arc.map((v, i) => ({ name: `arc${i}`, region: v.region.name, subscription: v.sub, count: v.count, extensions, ...(v.patch ? { patchSettings } : {}) })),
    },
    maintenance: { configurations: g.windows.map((w, i) => configOf(w, i)), assignments },
    events,
    failures: {
      default: { rollbackFailure: g.failure.rollbackFailure },
      versions: { '1.1.0.0': g.failure, ...(minor >= 2 ? { '1.2.0.0': g.failure2 } : {}), ...(image >= 2 ? { '1.0.2': g.failure2 } : {}) },
      ...(g.slow ? { slowAgents: g.slow } : {}),
      background: g.background && g.fleet.scaleSets.length > 0 ? [{ at: g.background.at, duration: g.background.duration, scaleSet: 'ss0', share: g.background.share }] : [],
    },
  };
  return { raw, assigned };
}

interface Outcome { violations: string[]; checkedStarts: number; rollouts: number; announcedMisses: number; r23Stops: number; failedRollbacks: number }

/** Runs a scenario with every checker on its log; returns what broke. */
function run(g: Gen): Outcome {
  const { raw, assigned } = toScenario(g);
  const scenario = compileScenario(raw, 'property-combined');
  const invariants = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  // R70 while the assignments stay as they were at the start (no assign or unassign event): extension rollouts
  // against the Extension windows, OS image rollouts against the OSImage ones.
  const staticWindows = !g.events.some((e) => e.kind === 'assign' || e.kind === 'unassign');
  const machines = scenario.state.fleet.machines;
  const checkerOf = (scope: string) => {
    const parsed = g.windows.map((w, i) => (w.scope === scope ? maintenanceWindow(configOf(w, i)) : null));
    return new WindowChecker({
      unionOf: (id: string): MaintenanceWindow[] => {
        const setId = machines.get(id)?.placement.setId ?? null;
        return [assigned.get(id), setId === null ? undefined : assigned.get(setId)].map((c) => (c === undefined ? null : parsed[c]!)).filter((w): w is MaintenanceWindow => w !== null);
      },
    });
  };
  const windows = { extension: checkerOf('Extension'), osImage: checkerOf('OSImage') };
  const kinds = new Map<string, string>();
  const problems: string[] = [];
  const created = new Map<string, { profile: string; at: number; eligible: number; release: string }>();
  const ended = new Map<string, string>();
  const reached = new Map<string, Map<string, number>>();
  const upgradedFrom = new Map<string, string>();
  // R31: extension instances whose rollback failed (machine|artifact); R23: until when a stopped set may not start a batch (rollout|set).
  const failedRollback = new Set<string>();
  const stoppedUntil = new Map<string, number>();
  let stops = 0;
  let halted = false;
  // Rollouts the engine announced at risk of missing R40 before their bound passed (the outlook at each R23 stop, and every 6 hours).
  const warned = new Set<string>();
  const sim: Simulation = new Simulation(scenario, {
    onEvents: (events: readonly EngineEvent[]) => {
      invariants.onEvents(events);
      for (const e of events) {
        if (e.type === 'gate.breached' && e.rule === 'R23') {
          const r = sim.engine.state.rollouts.get(e.rolloutId);
          const o = r ? boundRisk(sim.engine.state, r, Date.parse(e.time)) : null;
          if (o?.atRisk && Date.parse(e.time) < o.boundEndMs) warned.add(e.rolloutId);
        }
        if (e.type === 'rollout.created') {
          created.set(e.rolloutId, { profile: e.profile, at: Date.parse(e.time), eligible: e.eligible, release: e.toVersion });
          kinds.set(e.rolloutId, e.artifact.kind);
        }
        if (staticWindows && 'rolloutId' in e) {
          const kind = kinds.get(e.rolloutId);
          if (kind === 'extension' || kind === 'osImage') windows[kind].check(e);
        }
        if (e.type === 'release.halted') halted = true;
        if (e.type === 'rollout.completed' || e.type === 'rollout.stopped' || e.type === 'rollout.cancelled') ended.set(e.rolloutId, e.type);
        if (e.type === 'batch.started' && created.get(e.rolloutId)!.profile !== 'manual' && e.setSize !== undefined && e.setSize >= 5) {
          // R14: an automatic batch never takes more than 20% of its set.
          if (e.instances.length > Math.max(1, Math.floor(e.setSize / 5))) problems.push(`R14: batch ${e.batchId} takes ${e.instances.length} of ${e.setSize}`);
        }
        if (e.type === 'instance.upgrade.started' || e.type === 'instance.skipped' || e.type === 'instance.notice.scheduled') {
          let m = reached.get(e.rolloutId);
          if (!m) reached.set(e.rolloutId, (m = new Map()));
          if (!m.has(e.machineId)) m.set(e.machineId, Date.parse(e.time));
        }
        if (e.type === 'instance.upgrade.started') upgradedFrom.set(`${e.rolloutId}|${e.machineId}|${e.attempt}`, e.fromVersion);
        if (e.type === 'instance.rollback.failed' && e.artifact.kind === 'extension') failedRollback.add(`${e.machineId}|${artifactKey(e.artifact)}`);
        // R31: a failed rollback leaves the extension Failed, with no more automatic attempts (and a manual upgrade skips it);
        // nothing in these scenarios removes and reinstalls it. (An OS image is another matter: the next image heals it.)
        if (e.type === 'instance.upgrade.started' && e.artifact.kind === 'extension' && failedRollback.has(`${e.machineId}|${artifactKey(e.artifact)}`)) {
          problems.push(`R31: ${e.rolloutId} starts ${e.machineId} (attempt ${e.attempt}) after its rollback of the same extension failed`);
        }
        // R23: a set whose run breached its limit stops; the engine never stops a set of VMs or scale-set instances
        // (retry interval 3 days) for less than its 6-hour floor, windows only lengthen the stop.
        if (e.type === 'gate.breached' && e.rule === 'R23' && e.scope.setId) {
          stops++;
          stoppedUntil.set(`${e.rolloutId}|${e.scope.setId}`, Date.parse(e.time) + MIN_R23_STOP_MS);
        }
        if (e.type === 'batch.started' && e.scope.setId) {
          const until = stoppedUntil.get(`${e.rolloutId}|${e.scope.setId}`);
          if (until !== undefined && Date.parse(e.time) < until) {
            problems.push(`R23: ${e.rolloutId} starts batch ${e.batchId} of ${e.scope.setId} ${((until - Date.parse(e.time)) / 60_000).toFixed(0)} min before its stop ends`);
          }
        }
        if (e.type === 'instance.rollback.started') {
          // R22, R30: back to the version the attempt's upgrade came from (the last known good).
          const from = upgradedFrom.get(`${e.rolloutId}|${e.machineId}|${e.attempt}`);
          if (from !== undefined && from !== e.toVersion) problems.push(`R22: ${e.rolloutId} rolls ${e.machineId} back to ${e.toVersion}, its upgrade came from ${from}`);
        }
      }
    },
  });
  // The outlook is asked as the API would be (boundAtRisk), every 6 hours of simulated time as in test/helpers/bound-fleet.ts.
  stepLooking(sim, 6 * 3_600_000, (now) => {
    for (const r of sim.engine.state.rollouts.values()) {
      if (r.status !== 'running' || warned.has(r.id)) continue;
      const o = boundRisk(sim.engine.state, r, now);
      if (o?.atRisk && now < o.boundEndMs) warned.add(r.id);
    }
  });
  const result = sim.result();
  problems.push(...invariants.finish(), ...windows.extension.finish(), ...windows.osImage.finish().map((v) => `OS image: ${v}`));
  let announcedMisses = 0;
  for (const [id, c] of created) {
    const bound = c.profile === 'critical' ? 21 * DAY : c.profile === 'standard' ? 56 * DAY : Number.POSITIVE_INFINITY;
    const firsts = reached.get(id) ?? new Map<string, number>();
    // R40 as the engine promises it (docs/engine.md "Strict limits and slow agents", the property of
    // test/bound-under-holds.test.ts): every eligible machine reached (attempted, or passed by with a reason) within
    // the bound, slow agents included (their timed-out batches and the R23 stops they cause are counted once they
    // show, bound-pressure.ts), or the miss announced at risk before the bound passed. Failures past what 6-hour R23
    // stops absorb can make the bound unreachable. Found at 20 times the runs (seed 20261214): run 171, a 100-instance
    // set, batches of one, limit 0%, a tenth of the agents 50 times slow, one 7-hour window a week, stopped in every
    // window (each stop outlasting it) and first reached its last machines after 62 days; run 279, the same with
    // agents 200 times slow (each one times out) and a 6-hour window, reached 98 of 100 by the 20-week horizon.
    const plan = sim.engine.state.rollouts.get(id)?.plan.estimate.outlook;
    const announced = warned.has(id) || plan?.atRisk === true;
    const late = [...firsts].filter(([, t]) => t - c.at > bound);
    const unreached = !halted && ended.get(id) !== 'rollout.cancelled' && ended.get(id) !== 'rollout.stopped' && firsts.size < c.eligible;
    if ((late.length > 0 || unreached) && announced) announcedMisses++;
    if (announced) continue;
    const byHorizon = result.hitHorizon ? ' by the horizon' : '';
    if (unreached) problems.push(`R40: ${id} (${c.profile} ${c.release}) reached ${firsts.size} of ${c.eligible} eligible machines${byHorizon}, never announced at risk`);
    for (const [machine, t] of late) problems.push(`R40: ${id} (${c.profile}) first reached ${machine} after ${((t - c.at) / DAY).toFixed(1)} days, never announced at risk`);
  }
  return {
    violations: problems, checkedStarts: windows.extension.checkedStarts + windows.osImage.checkedStarts, rollouts: created.size, announcedMisses,
    r23Stops: stops, failedRollbacks: failedRollback.size,
  };
}

/** The counterexample of seed 20261214, run 171 (found at 20 times the runs): see the R40 check in `run`. */
const unreachableBoundCase: Gen = {
  regions: [{ name: 'r0', pair: 'r1', zones: ['1', '2'] }, { name: 'r1', pair: 'r0', zones: ['1'] }],
  windows: [
    { recurEvery: 'Week Monday,Tuesday', hour: 17, minute: 30, minutes: 360, timeZone: 'Pacific Standard Time', startDay: 21, emergencyBypass: false, scope: 'Extension' },
    { recurEvery: '7Days', hour: 1, minute: 0, minutes: 420, timeZone: 'Morocco Standard Time', startDay: 29, emergencyBypass: true, scope: 'Extension' },
  ],
  fleet: {
    scaleSets: [{
      region: { name: 'r0', pair: 'r1', zones: ['1', '2'] }, sub: 's1', capacity: 100, uds: 1, zonal: false,
      policy: { maxBatchInstancePercent: 1, maxUnhealthyInstancePercent: 1, maxUnhealthyUpgradedInstancePercent: 0, enableCrossZoneUpgrade: false, pauseTimeBetweenBatches: 'PT0S' },
      appHealth: false, window: 1, image: false, osUpgrade: false, noRollback: false,
    }],
    availabilitySets: [], vms: [], arc: [],
  },
  failure: { installFailure: 0, unhealthyAfterUpgrade: 0, rollbackFailure: 0 },
  failure2: { installFailure: 0, unhealthyAfterUpgrade: 0, rollbackFailure: 0 },
  events: [{ at: 'PT1H', kind: 'publish', share: 0.3 }],
  slow: { share: 0.1, factor: 50 },
  background: null,
  seed: 1,
};

/** Seed 20261214, run 279: agents 200 times slow (each times out), a 6-hour weekly window assigned an hour in. */
const unreachedByHorizonCase: Gen = {
  ...unreachableBoundCase,
  regions: [{ name: 'r0', pair: 'r1', zones: ['1'] }, { name: 'r1', pair: 'r0', zones: [] }, { name: 'r2', pair: 'r3', zones: ['1', '2', '3'] }, { name: 'r3', pair: 'r2', zones: ['1'] }],
  windows: [
    { recurEvery: 'Week', hour: 9, minute: 0, minutes: 360, timeZone: 'Nepal Standard Time', startDay: 34, emergencyBypass: false, scope: 'Extension' },
    { recurEvery: 'Week', hour: 12, minute: 15, minutes: 510, timeZone: 'Morocco Standard Time', startDay: 22, emergencyBypass: true, scope: 'Extension' },
  ],
  fleet: { ...unreachableBoundCase.fleet, scaleSets: [{ ...unreachableBoundCase.fleet.scaleSets[0]!, region: { name: 'r0', pair: 'r1', zones: ['1'] }, window: null }] },
  events: [{ at: 'PT1H', kind: 'assign', share: 0.3 }, { at: 'PT1H', kind: 'publish', share: 0.3 }],
  slow: { share: 0.1, factor: 200 },
};

/**
 * Run 279 shrunk another way (found with the outlook read only at R23 stops): limit 5%, the window assigned a day
 * after the release. The engine announced the miss between stops, which only a periodic look saw.
 */
const announcedBetweenStopsCase: Gen = {
  ...unreachedByHorizonCase,
  fleet: {
    ...unreachedByHorizonCase.fleet,
    scaleSets: [{ ...unreachedByHorizonCase.fleet.scaleSets[0]!, policy: { ...unreachedByHorizonCase.fleet.scaleSets[0]!.policy, maxUnhealthyUpgradedInstancePercent: 5 } }],
  },
  events: [{ at: 'P1D', kind: 'assign', share: 0.3 }, { at: 'PT1H', kind: 'publish', share: 0.3 }],
  seed: 642148,
};

test('R40 R23: a bound that R23 stops make unreachable (limit 0% or 5%, slow agents, one window a week) is announced at risk before it passes (seed 20261214, runs 171 and 279)', () => {
  for (const g of [unreachableBoundCase, unreachedByHorizonCase, announcedBetweenStopsCase]) {
    const o = run(g);
    assert.deepEqual(o.violations, [], o.violations.slice(0, 10).join('\n'));
    assert.ok(o.announcedMisses > 0, 'the rollout missed the bound (the case still exercises the announcement)');
  }
});

test('R10 R11 R13 R14 R22 R23 R31 R40 R60 R70: random combined scenarios (windows, releases mid-rollout, images, manual upgrades, flapping machines) keep every invariant', () => {
  let rollouts = 0;
  let checkedStarts = 0;
  let r23Stops = 0;
  let failedRollbacks = 0;
  fc.assert(
    fc.property(scenarioArb, (g) => {
      const o = run(g);
      assert.deepEqual(o.violations, [], o.violations.slice(0, 10).join('\n'));
      rollouts += o.rollouts;
      checkedStarts += o.checkedStarts;
      r23Stops += o.r23Stops;
      failedRollbacks += o.failedRollbacks;
    }),
    { numRuns: 80, seed: 20261214 },
  );
  assert.ok(rollouts > 200, `the scenarios start rollouts (${rollouts})`);
  assert.ok(checkedStarts > 0, 'some upgrades were checked against their windows');
  assert.ok(r23Stops > 0 && failedRollbacks > 0, `R23 stops ${r23Stops}, failed rollbacks ${failedRollbacks}: the R23 and R31 checks were exercised`);
});
