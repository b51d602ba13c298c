/**
 * Property tests of rules whose coverage was thin (session 22, task G): R15 (extensions of one machine judged each on
 * its own), R61 (a re-image keeps data disks and runs the extensions again), R77 (a patch run reboots only as its
 * setting allows, announced first) and R84 (every availability impact recorded with its cause and readable back).
 * Random fleets, releases and failures run through the real scenario compiler, simulator and engine; each rule is
 * checked on the event log and the state the run leaves. R50 has its own file (properties-model-upgrade.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvariantChecker } from '../src/audit/invariants.js';
import { PatchChecker } from '../src/audit/patches.js';
import { artifactKey } from '../src/model/artifact.js';
import { AVAILABILITY_EVENT_TYPES, availabilityPeriods } from '../src/model/availability.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { REBOOT_NOTICE_MS } from '../src/planner/windows.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import type { EngineState } from '../src/engine/state.js';
import { policyArb } from './helpers/arbitraries.js';

const ZONES = ['1', '2', '3'];
const IMAGE = { publisher: 'Canonical', offer: 'ubuntu', sku: 'server' };
const AVAILABILITY_TYPES = new Set<string>(AVAILABILITY_EVENT_TYPES);

const regionsArb = fc.integer({ min: 1, max: 2 }).chain((pairs) =>
  fc.tuple(...Array.from({ length: pairs * 2 }, () => fc.integer({ min: 0, max: 3 }))).map((zones) =>
    zones.map((z, i) => ({ name: `r${i}`, pair: `r${i % 2 === 0 ? i + 1 : i - 1}`, zones: ZONES.slice(0, z) })),
  ),
);
type Region = { name: string; pair: string; zones: string[] };
const zonesOf = (regions: Region[], name: string, zonal: boolean) => (zonal ? regions.find((r) => r.name === name)!.zones : []);

interface Run { events: EngineEvent[]; state: EngineState; invariants: string[] }

function simulate(raw: Record<string, unknown>, name: string, also?: (events: readonly EngineEvent[]) => void): Run {
  const scenario = compileScenario(raw, name);
  const invariants = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  const events: EngineEvent[] = [];
  const sim = new Simulation(scenario, {
    onEvents: (batch) => {
      invariants.onEvents(batch);
      also?.(batch);
      for (const e of batch) events.push(e);
    },
  });
  sim.run();
  return { events, state: sim.engine.state, invariants: invariants.finish() };
}

/**
 * R84: every availability impact the log shows is readable back as the machine's availability history, the read of
 * `GET …/availabilityStatuses` (availabilityPeriods over the machine's events): each re-image (an OS image upgrade,
 * and an OS image rollback, which re-images too), each reboot, each unhealthy period, with its cause.
 */
function r84Problems(run: Run): string[] {
  const byMachine = new Map<string, EngineEvent[]>();
  for (const e of run.events) {
    if (!AVAILABILITY_TYPES.has(e.type) || !('machineId' in e)) continue;
    let list = byMachine.get(e.machineId);
    if (!list) byMachine.set(e.machineId, (list = []));
    list.push(e);
  }
  const problems: string[] = [];
  const expect = (machineId: string, cause: string, at: number, what: string) => {
    const periods = availabilityPeriods(byMachine.get(machineId) ?? [], run.state.maintenance.hostUpdates, run.state.fleet.unhealthy.has(machineId));
    const found = periods.some((p) => p.cause === cause && p.startMs <= at && (p.endMs === null || p.endMs >= at));
    const history = periods.map((p) => `${p.cause} ${new Date(p.startMs).toISOString()}`).join(', ') || 'empty';
    if (!found) problems.push(`R84: ${machineId}: ${what} at ${new Date(at).toISOString()} is not in its availability history (${history})`);
  };
  for (const e of run.events) {
    const t = Date.parse(e.time);
    if (e.type === 'instance.reimaged') expect(e.machineId, 'Reimage', t, `re-image to ${e.toVersion}`);
    // An OS image rollback re-images the machine to its previous image (R62): an impact as much as the upgrade's.
    if (e.type === 'instance.rollback.succeeded' && e.artifact.kind === 'osImage') expect(e.machineId, 'Reimage', t, `re-image back to ${e.toVersion}`);
    if (e.type === 'availability.impact') expect(e.machineId, e.cause, Date.parse(e.startTime), `${e.cause} (${e.reason})`);
    if (e.type === 'instance.health.unhealthy') expect(e.machineId, 'Unhealthy', t, `unhealthy after ${e.toVersion}`);
  }
  return problems;
}

// ---- R61, R84: OS image upgrades and rollbacks -------------------------------------------------------------------

const imageFleetArb = (regions: Region[]) =>
  fc.array(
    fc.record({
      region: fc.constantFrom(...regions), capacity: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 4, max: 30 })), uds: fc.integer({ min: 1, max: 5 }),
      zonal: fc.boolean(), policy: policyArb, extensions: fc.subarray(['agent', 'monitor']), noRollback: fc.boolean(), appHealth: fc.boolean(),
    }),
    { minLength: 1, maxLength: 4 },
  );

const imageScenarioArb = regionsArb.chain((regions) =>
  fc.record({
    regions: fc.constant(regions),
    sets: imageFleetArb(regions),
    failure: fc.record({ installFailure: fc.constantFrom(0, 0.1, 0.5), unhealthyAfterUpgrade: fc.constantFrom(0, 0.1, 0.5, 1), rollbackFailure: fc.constantFrom(0, 0.2) }),
    images: fc.integer({ min: 1, max: 3 }),
    extensionRelease: fc.boolean(),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
  }),
);
type ImageGen = typeof imageScenarioArb extends fc.Arbitrary<infer T> ? T : never;

function imageScenario(g: ImageGen): Record<string, unknown> {
  const events: unknown[] = [];
  for (let i = 0; i < g.images; i++) events.push({ at: `P${1 + i * 6}D`, publishImage: { ...IMAGE, version: `1.0.${i + 2}`, replications: g.regions.map((r) => ({ region: r.name })) } });
  if (g.extensionRelease) events.push({ at: 'P1DT2H', publish: { extension: 'agent', version: '1.1.0.0' } });
  return {
    name: 'property-r61', start: '2026-03-02T00:00:00Z', seed: g.seed, horizon: 'P10W', regions: g.regions,
    profiles: { standard: { phaseBake: 'PT6H' } },
    catalog: [
      { publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] },
      { publisher: 'P', type: 'Monitor', supportsAutomaticUpgrade: true, versions: [{ version: '3.0.0.0' }] },
    ],
    extensions: {
      agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true },
      monitor: { publisher: 'P', type: 'Monitor', typeHandlerVersion: '3.0', enableAutomaticUpgrade: false },
    },
    images: [{ ...IMAGE, osType: 'Linux', versions: [{ version: '1.0.1' }] }],
    fleet: {
      scaleSets: g.sets.map((s, i) => ({
        name: `ss${i}`, region: s.region.name, subscription: 's1', zones: zonesOf(g.regions, s.region.name, s.zonal), capacity: s.capacity, updateDomains: s.uds,
        applicationHealth: s.appHealth, extensions: s.extensions, image: { ...IMAGE, version: 'latest' },
        upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: s.policy, automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true, disableAutomaticRollback: s.noRollback } },
      })),
    },
    events,
    failures: { versions: Object.fromEntries(Array.from({ length: g.images }, (_, i) => [`1.0.${i + 2}`, g.failure])) },
  };
}

test('R61 R84: a re-image keeps the data disks, runs the set\'s extensions and custom data again, loses none, and is readable back as an impact (a rollback\'s re-image too)', () => {
  let reimages = 0;
  let rollbacks = 0;
  fc.assert(
    fc.property(imageScenarioArb, (g) => {
      const problems: string[] = [];
      const configured = new Map(g.sets.map((s, i) => [`ss${i}`, [...s.extensions].sort()]));
      const run = simulate(imageScenario(g), 'property-r61');
      const state = run.state;
      problems.push(...run.invariants);
      for (const e of run.events) {
        if (e.type === 'instance.rollback.succeeded' && e.artifact.kind === 'osImage') rollbacks++;
        if (e.type !== 'instance.reimaged') continue;
        reimages++;
        const setId = state.fleet.machines.get(e.machineId)?.placement.setId ?? '';
        const setName = setId.split('/').pop() ?? setId;
        if (!e.dataDisksKept) problems.push(`R61: ${e.machineId} re-imaged without keeping its data disks`);
        if (!e.customData) problems.push(`R61: ${e.machineId} re-imaged without its custom data run again`);
        const want = configured.get(setName) ?? configured.get(setId);
        if (want && [...e.extensions].sort().join(',') !== want.join(',')) problems.push(`R61: ${e.machineId} re-imaged ran [${e.extensions.join(', ')}] again, its set has [${want.join(', ')}]`);
      }
      // The extensions a re-image ran again are still there at the end, none lost (R61: the OS disk only is replaced).
      for (const [id, m] of state.fleet.machines) {
        const want = configured.get(m.placement.setId?.split('/').pop() ?? '') ?? [];
        const have = [...state.fleet.instances].filter(([key, byMachine]) => key.startsWith('extension:') && byMachine.has(id)).map(([, byMachine]) => byMachine.get(id)!.name).sort();
        if (have.join(',') !== want.join(',')) problems.push(`R61: ${id} ends with extensions [${have.join(', ')}], its set has [${want.join(', ')}]`);
      }
      problems.push(...r84Problems(run));
      assert.deepEqual(problems, [], problems.slice(0, 10).join('\n'));
    }),
    { numRuns: 40, seed: 20261207 },
  );
  assert.ok(reimages > 200, `only ${reimages} re-images were checked`);
  assert.ok(rollbacks > 0, 'no OS image rollback was checked');
});

// ---- R15: two extensions on the same machines, one failing -------------------------------------------------------

const r15Arb = regionsArb.chain((regions) =>
  fc.record({
    regions: fc.constant(regions),
    sets: fc.array(fc.record({ region: fc.constantFrom(...regions), capacity: fc.integer({ min: 1, max: 25 }), zonal: fc.boolean(), policy: policyArb }), { maxLength: 3 }),
    vms: fc.array(fc.record({ region: fc.constantFrom(...regions), count: fc.integer({ min: 1, max: 10 }), zonal: fc.boolean() }), { maxLength: 3 }),
    availabilitySets: fc.array(fc.record({ region: fc.constantFrom(...regions), vms: fc.integer({ min: 1, max: 8 }), uds: fc.integer({ min: 1, max: 5 }) }), { maxLength: 2 }),
    failing: fc.constantFrom('agent', 'monitor'),
    failure: fc.record({ installFailure: fc.constantFrom(0.2, 0.6, 1), rollbackFailure: fc.constantFrom(0, 0.3, 1) }),
    agentAt: fc.constantFrom('PT1H', 'PT3H', 'P1D'),
    monitorAt: fc.constantFrom('PT1H', 'PT2H', 'P2D'),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
  }),
).filter((g) => g.sets.length + g.vms.length + g.availabilitySets.length > 0);
type R15Gen = typeof r15Arb extends fc.Arbitrary<infer T> ? T : never;

function r15Scenario(g: R15Gen): Record<string, unknown> {
  const extensions = ['agent', 'monitor'];
  const bad = g.failing === 'agent' ? '1.1.0.0' : '3.1.0.0';
  return {
    name: 'property-r15', start: '2026-03-02T00:00:00Z', seed: g.seed, horizon: 'P12W', regions: g.regions,
    profiles: { standard: { phaseBake: 'PT6H' } },
    catalog: [
      { publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] },
      { publisher: 'P', type: 'Monitor', supportsAutomaticUpgrade: true, versions: [{ version: '3.0.0.0' }] },
    ],
    extensions: {
      agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true },
      monitor: { publisher: 'P', type: 'Monitor', typeHandlerVersion: '3.0', enableAutomaticUpgrade: true },
    },
    fleet: {
      scaleSets: g.sets.map((s, i) => ({ name: `ss${i}`, region: s.region.name, subscription: 's1', zones: zonesOf(g.regions, s.region.name, s.zonal), capacity: s.capacity, extensions,
        upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: s.policy } })),
      vms: g.vms.map((v, i) => ({ name: `vm${i}`, region: v.region.name, subscription: 's1', count: v.count, zones: zonesOf(g.regions, v.region.name, v.zonal), extensions })),
      availabilitySets: g.availabilitySets.map((a, i) => ({ name: `as${i}`, region: a.region.name, subscription: 's2', vms: a.vms, updateDomains: a.uds, os: 'linux', extensions })),
    },
    events: [
      { at: g.agentAt, publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: g.monitorAt, publish: { extension: 'monitor', version: '3.1.0.0' } },
    ],
    // Health reports well inside the 5-minute window: an instance judged unhealthy is judged so for a failure, not a slow report.
    failures: { default: { healthSeconds: { median: 10, p95: 20 } }, versions: { [bad]: { ...g.failure, unhealthyAfterUpgrade: 0 } } },
  };
}

test('R15: with one extension failing on the same machines, the other is judged on its own: never rolled back or stopped by it, every instance upgraded', () => {
  let failedBeside = 0;
  fc.assert(
    fc.property(r15Arb, (g) => {
      const run = simulate(r15Scenario(g), 'property-r15');
      const problems = [...run.invariants];
      const good = g.failing === 'agent' ? { key: 'extension:p.monitor', to: '3.1.0.0' } : { key: 'extension:p.agent', to: '1.1.0.0' };
      const goodRollouts = new Set<string>();
      const failedBad = new Set<string>();
      // Each rollback answers a failure of its own rollout on that machine and attempt, never another extension's.
      const failedAttempts = new Set<string>();
      const ends = new Map<string, string>();
      for (const e of run.events) {
        if (e.type === 'rollout.created' && artifactKey(e.artifact) === good.key) goodRollouts.add(e.rolloutId);
        if (e.type === 'instance.upgrade.failed' || e.type === 'instance.health.unhealthy') failedAttempts.add(`${e.rolloutId}|${e.machineId}|${e.attempt}`);
        if (e.type === 'instance.rollback.started' && !failedAttempts.has(`${e.rolloutId}|${e.machineId}|${e.attempt}`)) {
          problems.push(`R15: ${e.rolloutId} rolls ${e.machineId} back with no failure of its own`);
        }
        if ((e.type === 'instance.upgrade.failed' || e.type === 'instance.rollback.failed') && !goodRollouts.has(e.rolloutId)) failedBad.add(e.machineId);
        if ((e.type === 'rollout.completed' || e.type === 'rollout.stopped' || e.type === 'rollout.cancelled') && goodRollouts.has(e.rolloutId)) ends.set(e.rolloutId, e.type);
        const judged = e.type === 'instance.upgrade.failed' || e.type === 'instance.health.unhealthy' || e.type.startsWith('instance.rollback') || e.type === 'gate.breached';
        if (judged && goodRollouts.has('rolloutId' in e ? e.rolloutId : '')) {
          problems.push(`R15: the healthy extension's rollout has ${e.type} (${'machineId' in e ? e.machineId : ''})`);
        }
      }
      for (const id of goodRollouts) if (ends.get(id) !== 'rollout.completed') problems.push(`R15: the healthy extension's rollout ${id} ended ${ends.get(id) ?? 'never'}`);
      const insts = run.state.fleet.instances.get(good.key)!;
      for (const [id, inst] of insts) {
        if (inst.installedVersion !== good.to) problems.push(`R15: ${id} keeps ${good.key} ${inst.installedVersion}${failedBad.has(id) ? ' (its other extension failed)' : ''}`);
        else if (failedBad.has(id)) failedBeside++;
      }
      assert.deepEqual(problems, [], problems.slice(0, 10).join('\n'));
    }),
    { numRuns: 50, seed: 20261208 },
  );
  assert.ok(failedBeside > 50, `only ${failedBeside} machines had the healthy extension upgraded beside a failed one`);
});

// ---- R77, R84: platform patches and InGuestPatch schedule runs ---------------------------------------------------

const r77Arb = regionsArb.chain((regions) =>
  fc.record({
    regions: fc.constant(regions),
    groups: fc.array(
      fc.record({ region: fc.constantFrom(...regions), count: fc.integer({ min: 1, max: 8 }), reboot: fc.constantFrom('IfRequired', 'Never', 'Always'), set: fc.boolean() }),
      { minLength: 1, maxLength: 4 },
    ),
    failure: fc.record({ installFailure: fc.constantFrom(0, 0.2), unhealthyAfterUpgrade: fc.constantFrom(0, 0.1, 0.5) }),
    critical: fc.boolean(),
    baselines: fc.integer({ min: 1, max: 2 }),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
  }),
);
type R77Gen = typeof r77Arb extends fc.Arbitrary<infer T> ? T : never;

function r77Scenario(g: R77Gen): Record<string, unknown> {
  const patchSettings = (reboot: string) => ({ patchMode: 'AutomaticByPlatform', rebootSetting: reboot });
  const baselines = Array.from({ length: g.baselines }, (_, i) => `2026.3.${i + 1}`);
  return {
    name: 'property-r77', start: '2026-03-02T00:00:00Z', seed: g.seed, horizon: 'P8W', regions: g.regions,
    profiles: { standard: { phaseBake: 'PT6H' }, critical: { phaseBake: 'PT3H' } },
    catalog: [{ publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0' } },
    fleet: {
      scaleSets: g.groups.flatMap((v, i) => (v.set ? [{ name: `ss${i}`, region: v.region.name, subscription: 's1', capacity: v.count, patchSettings: patchSettings(v.reboot) }] : [])),
      vms: g.groups.flatMap((v, i) => (v.set ? [] : [{ name: `vm${i}`, region: v.region.name, subscription: 's1', count: v.count, patchSettings: patchSettings(v.reboot) }])),
    },
    events: baselines.map((version, i) => ({ at: `P${1 + i * 10}D`, publishPatchBaseline: { os: 'linux', version, critical: g.critical } })),
    failures: { versions: Object.fromEntries(baselines.map((b) => [b, { ...g.failure, installSeconds: { median: 60, p95: 120 } }])) },
  };
}

test('R77 R83 R84: a platform patch installation reboots only as its reboot setting allows (never with Never, every time with Always), announced first, and each reboot is readable back', () => {
  let always = 0;
  let never = 0;
  fc.assert(
    fc.property(r77Arb, (g) => {
      const patches = new PatchChecker({ windowOf: () => undefined, noticeMs: REBOOT_NOTICE_MS });
      const run = simulate(r77Scenario(g), 'property-r77', patches.onEvents);
      const problems = [...run.invariants, ...patches.violations];
      const setting = new Map([...(run.state.fleet.instances.get('guestPatch:linux')?.values() ?? [])].map((i) => [i.machineId, String(i.settings['rebootSetting'] ?? 'IfRequired')]));
      const rebootedRuns = new Set<string>();
      for (const e of run.events) if (e.type === 'availability.impact' && e.cause === 'Reboot' && e.runId) rebootedRuns.add(e.runId);
      for (const e of run.events) {
        if (e.type === 'availability.impact' && e.cause === 'Reboot' && setting.get(e.machineId) === 'Never') problems.push(`R77: ${e.machineId} (rebootSetting Never) rebooted: ${e.reason}`);
        if (e.type === 'machine.reboot.announced' && setting.get(e.machineId) === 'Never') problems.push(`R77: ${e.machineId} (rebootSetting Never) was told of a reboot`);
        if (e.type !== 'instance.upgrade.succeeded' || e.artifact.kind !== 'guestPatch') continue;
        const runId = `${e.rolloutId}/${e.machineId}/${e.attempt}`;
        if (setting.get(e.machineId) === 'Always') {
          always++;
          if (!rebootedRuns.has(runId)) problems.push(`R77: ${e.machineId} (rebootSetting Always) installed baseline ${e.toVersion} without a reboot`);
        } else if (setting.get(e.machineId) === 'Never') never++;
      }
      problems.push(...r84Problems(run));
      assert.deepEqual(problems, [], problems.slice(0, 10).join('\n'));
    }),
    { numRuns: 40, seed: 20261209 },
  );
  assert.ok(always > 30 && never > 30, `installations checked: ${always} with Always, ${never} with Never`);
});
