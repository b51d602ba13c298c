/**
 * The engine inside maintenance windows (R70, R72, R73): whole simulated rollouts with configurations
 * written into the engine's state before they start, and the host-maintenance schedule on a manual clock.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ManualClock } from '../src/engine/clock.js';
import { Engine } from '../src/engine/engine.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { EngineEvent } from '../src/model/events.js';
import type { MaintenanceConfigSpec } from '../src/model/maintenance.js';
import { maintenanceConfig } from '../src/model/maintenance.js';
import { batchBudgetMs } from '../src/planner/windows.js';
import { PROFILES } from '../src/planner/profile.js';
import { windowAt } from '../src/schedule/window.js';
import type { MaintenanceWindow } from '../src/schedule/window.js';
import { compileScenario } from '../src/sim/scenario.js';
import type { Scenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { baseScenario } from './helpers/harness.js';
import { DAY, HOUR, Rig } from './helpers/rig.js';

/** 22:00–04:00 UTC every night, from the day before the scenario starts (2026-01-05 00:00 UTC). */
const NIGHTLY: MaintenanceConfigSpec = {
  id: 'nightly', scope: 'Extension', emergencyBypass: false,
  window: { startDateTime: '2026-01-04 22:00', duration: '06:00', timeZone: 'UTC', recurEvery: 'Day' },
};

function withWindows(raw: Record<string, unknown>, configs: MaintenanceConfigSpec[], assignments: Array<[string, string]>): Scenario {
  const scenario = compileScenario(raw, 'windows-test');
  const m = scenario.state.maintenance;
  for (const c of configs) m.configs.set(c.id, maintenanceConfig(c));
  for (const [target, id] of assignments) {
    if (!m.assignments.has(target)) m.assignments.set(target, new Set());
    m.assignments.get(target)!.add(id);
  }
  return scenario;
}

function run(scenario: Scenario) {
  const store = new MemoryStore();
  const result = runSimulation(scenario, { store });
  const events = store.events();
  const of = <T extends EngineEvent['type']>(type: T) => events.filter((e) => e.type === type) as Array<Extract<EngineEvent, { type: T }>>;
  return { ...result, events, of };
}

const ms = (iso: string) => Date.parse(iso);
const inWindow = (w: MaintenanceWindow, iso: string) => windowAt(w, ms(iso)) !== null;

/** The base fleet with the release published at 10:00 UTC, outside the nightly window. */
const daytime = (over: Record<string, unknown> = {}) => baseScenario({ events: [{ at: 'PT10H', publish: { extension: 'agent', version: '1.1.0.0' } }], ...over });

describe('R70: automatic upgrades of a confined scale set run only inside its windows', () => {
  const scenario = withWindows(daytime(), [NIGHTLY], [['ss-east', 'nightly']]);
  const w = maintenanceConfig(NIGHTLY).parsed;
  const r = run(scenario);
  const confined = (e: { machineId: string }) => scenario.state.fleet.machines.get(e.machineId)!.placement.setId === 'ss-east';

  test('R70: the rollout completes, every upgrade of the set started inside a window, others did not wait', () => {
    assert.equal(r.of('rollout.completed').length, 1);
    const started = r.of('instance.upgrade.started');
    const inSet = started.filter(confined);
    assert.equal(inSet.length, 30);
    for (const e of inSet) assert.ok(inWindow(w, e.time), `${e.machineId} started at ${e.time}, outside 22:00–04:00`);
    // Unconfined machines went at once: some of them started in daytime.
    assert.ok(started.filter((e) => !confined(e)).some((e) => !inWindow(w, e.time)), 'unconfined machines are not held to the window');
  });

  test('R70: a batch starts only if upgrade, health wait and a rollback fit before the window closes; none overruns', () => {
    const budget = batchBudgetMs(PROFILES.standard, { healthWindowMs: 5 * 60_000 });
    const starts = new Map(r.of('batch.started').map((b) => [b.batchId, b]));
    let checked = 0;
    for (const done of r.of('batch.completed')) {
      const b = starts.get(done.batchId)!;
      if (b.scope.setId !== 'ss-east') continue;
      const inst = windowAt(w, ms(b.time))!;
      assert.ok(inst, `batch ${b.batchId} started outside a window`);
      assert.ok(ms(b.time) + budget <= inst.end, `batch ${b.batchId} started at ${b.time} with less than ${budget / HOUR} h left`);
      assert.ok(ms(done.time) <= inst.end, `batch ${b.batchId} completed at ${done.time}, after its window closed`);
      checked++;
    }
    assert.ok(checked >= 5, `checked ${checked} batches`);
  });

  test('R70: the wait is logged with the instant the unit resumes, which is a window slot', () => {
    const waits = r.of('window.waiting');
    assert.ok(waits.length > 0);
    for (const e of waits) {
      assert.equal(e.scope.setId, 'ss-east');
      assert.deepEqual(e.configurations, ['nightly']);
      assert.ok(e.opensAt !== null && inWindow(w, e.opensAt), `opensAt ${e.opensAt}`);
      assert.match(e.reason, /R70/);
    }
    assert.equal(r.of('window.bypassed').length, 0, 'a standard release never bypasses');
  });

  test('R70: the plan places each batch of the set in a window and says when the rollout is expected to end', () => {
    const rollout = [...r.engine.state.rollouts.values()][0]!;
    const plan = rollout.plan;
    const units = plan.phases.flatMap((p) => p.regions.flatMap((x) => x.waves.flatMap((wv) => wv.units)));
    const setUnits = units.filter((u) => u.setId === 'ss-east');
    assert.ok(setUnits.length > 0 && setUnits.every((u) => u.windowKey === 'nightly'));
    for (const u of setUnits) for (const b of u.batches) {
      assert.ok(b.window, `batch ${b.id} has its window`);
      const start = plan.estimate.startMs + b.window.startMs;
      assert.ok(inWindow(w, new Date(start).toISOString()));
      assert.equal(windowAt(w, start)!.end, plan.estimate.startMs + b.window.closesMs);
    }
    assert.ok(units.filter((u) => u.setId !== 'ss-east').every((u) => u.windowKey === undefined && u.batches.every((b) => b.window === undefined)));
    assert.equal(plan.estimate.startMs, rollout.createdAtMs);
    assert.ok(plan.estimate.windowedBatches! >= setUnits.reduce((n, u) => n + u.batches.length, 0));
    assert.ok(plan.estimate.notes.some((n) => /maintenance windows/.test(n) && /R70/.test(n)), plan.estimate.notes.join('; '));
  });
});

describe('R72: the emergency lane', () => {
  const critical = (raw: Record<string, unknown>) => ({ ...raw, events: [{ at: 'PT10H', publish: { extension: 'agent', version: '1.1.0.0', critical: true } }] });

  test('R72: a critical release starts batches outside the windows where the configuration allows it, each bypass recorded', () => {
    const scenario = withWindows(critical(baseScenario()), [{ ...NIGHTLY, emergencyBypass: true }], [['ss-east', 'nightly']]);
    const w = maintenanceConfig(NIGHTLY).parsed;
    const r = run(scenario);
    const bypasses = r.of('window.bypassed');
    assert.ok(bypasses.length > 0);
    const bypassed = new Set(bypasses.map((b) => b.batchId));
    const outside = r.of('instance.upgrade.started').filter((e) => e.placement.setId === 'ss-east' && !inWindow(w, e.time));
    assert.ok(outside.length > 0, 'some upgrades of the set ran outside the window');
    for (const e of outside) assert.ok(bypassed.has(e.batchId), `${e.machineId} started outside the window without a recorded bypass`);
    for (const b of bypasses) {
      assert.deepEqual(b.configurations, ['nightly']);
      assert.match(b.reason, /critical/);
      const started = r.events.find((e) => e.type === 'batch.started' && e.batchId === b.batchId)!;
      assert.ok(started.seq > b.seq, 'the bypass is logged before its batch starts');
    }
  });

  test('R72: without the configuration\'s consent a critical release waits like any other', () => {
    const scenario = withWindows(critical(baseScenario()), [NIGHTLY], [['ss-east', 'nightly']]);
    const w = maintenanceConfig(NIGHTLY).parsed;
    const r = run(scenario);
    assert.equal(r.of('window.bypassed').length, 0);
    assert.ok(r.of('window.waiting').length > 0);
    for (const e of r.of('instance.upgrade.started').filter((x) => x.placement.setId === 'ss-east')) assert.ok(inWindow(w, e.time));
  });

  test('R72: a standard release never bypasses, even where the configuration would allow it', () => {
    const scenario = withWindows(daytime(), [{ ...NIGHTLY, emergencyBypass: true }], [['ss-east', 'nightly']]);
    const r = run(scenario);
    assert.equal(r.of('window.bypassed').length, 0);
    assert.ok(r.of('window.waiting').length > 0);
  });
});

describe('R70: windows that can never hold a batch', () => {
  test('R70: an expired configuration leaves the set waiting, and the plan says it can never run', () => {
    const expired: MaintenanceConfigSpec = { ...NIGHTLY, id: 'expired', window: { ...NIGHTLY.window, startDateTime: '2025-01-01 22:00', expirationDateTime: '2025-06-01 00:00' } };
    const scenario = withWindows({ ...baseScenario(), horizon: 'P3W' }, [expired], [['ss-east', 'expired']]);
    const r = run(scenario);
    const rollout = [...r.engine.state.rollouts.values()][0]!;
    assert.equal(rollout.plan.estimate.fitsBound, false);
    assert.ok(rollout.plan.estimate.notes.some((n) => /can never run/.test(n)), rollout.plan.estimate.notes.join('; '));
    const waits = r.of('window.waiting');
    assert.ok(waits.length > 0 && waits.every((e) => e.opensAt === null));
    assert.equal(r.of('instance.upgrade.started').filter((e) => e.placement.setId === 'ss-east').length, 0);
    assert.equal(rollout.status, 'running', 'it waits for the configuration to change');
  });
});

describe('R73: applyUpdates applies pending automatic upgrades now', () => {
  test('R73: a set waiting for its window is upgraded at once through a manual rollout; the automatic one finds it done', () => {
    const onlyTheSet = { scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'] }] };
    const rig = new Rig(baseScenario({ fleet: onlyTheSet }), (s) => {
      s.state.maintenance.configs.set('nightly', maintenanceConfig(NIGHTLY));
      s.state.maintenance.assignments.set('ss-east', new Set(['nightly']));
    });
    rig.at(6 * HOUR); // 06:00 UTC: the window closed at 04:00
    rig.publish('1.1.0.0');
    rig.at(6 * HOUR + 1000);
    const members = [...rig.engine.state.fleet.machines.values()].filter((m) => m.placement.setId === 'ss-east').map((m) => m.id);
    assert.ok(rig.of('window.waiting').some((e) => e.scope.setId === 'ss-east'));
    assert.equal(rig.driver.sent.filter((a) => members.includes(a.machineId)).length, 0, 'nothing sent to the set outside its window');
    const pending = rig.engine.pendingUpdates(members);
    assert.equal(pending.length, members.length);
    assert.ok(pending.every((p) => p.scope === 'Extension' && p.status === 'Pending' && p.toVersion === '1.1.0.0'));
    const w = maintenanceConfig(NIGHTLY).parsed;
    assert.ok(pending.some((p) => p.notBeforeMs === ms('2026-01-05T22:00:00Z')), 'the first batch waits for tonight');
    for (const p of pending) assert.ok(windowAt(w, p.notBeforeMs) !== null, `notBefore ${new Date(p.notBeforeMs).toISOString()} is in a window`);

    const applied = rig.engine.applyUpdates(members, 'ops@contoso.com');
    assert.equal(applied.rollouts.length, 1);
    const manual = applied.rollouts[0]!;
    assert.equal(manual.plan.profile.name, 'manual');
    assert.equal(manual.caller, 'ops@contoso.com');
    rig.at(6 * HOUR + 2000);
    const sent = rig.driver.sent.filter((a) => members.includes(a.machineId));
    assert.ok(sent.length > 0 && sent.length < members.length, 'the manual rollout keeps batches (R6)');
    assert.ok(sent.every((a) => a.key.startsWith(`${manual.id}/`)));

    // Play the machines: every upgrade succeeds and reports healthy, until the manual rollout is done.
    const answered = new Set<string>();
    let t = 6 * HOUR + 2000;
    for (let i = 0; i < 60 && manual.status === 'running'; i++) {
      for (const a of rig.driver.sent) {
        if (answered.has(a.key) || a.kind !== 'upgrade') continue;
        answered.add(a.key);
        rig.answer(a.machineId, 'upgrade', true);
        rig.report(a.machineId, { platform: true });
      }
      t += 60_000;
      rig.at(t);
    }
    assert.equal(manual.status, 'completed');
    assert.ok(t < 22 * HOUR, 'done long before the window');
    assert.ok(members.every((id) => rig.inst(id).installedVersion === '1.1.0.0'));
    // At night the automatic rollout reaches the set and finds nothing left to do.
    rig.at(22 * HOUR + 1000);
    const automatic = [...rig.engine.state.rollouts.values()].find((r) => r.plan.profile.name === 'standard')!;
    assert.equal(rig.driver.sent.filter((a) => a.key.startsWith(`${automatic.id}/`)).length, 0);
    assert.ok(rig.of('instance.skipped').some((e) => e.rolloutId === automatic.id && /already at 1\.1\.0\.0/.test(e.reason)));
  });
});

describe('R73: host updates', () => {
  const hostWindow = (recurEvery: string, start = '2026-01-10 02:00'): MaintenanceConfigSpec => ({
    id: 'host', scope: 'Host', emergencyBypass: false, window: { startDateTime: start, duration: '03:00', timeZone: 'UTC', recurEvery },
  });
  const rigWith = (spec: MaintenanceConfigSpec | null, target = 'ss-east') => new Rig(baseScenario(), (s) => {
    if (!spec) return;
    s.state.maintenance.configs.set(spec.id, maintenanceConfig(spec));
    s.state.maintenance.assignments.set(target, new Set([spec.id]));
  });

  test('R73: a confined machine takes its pending host updates together at the next window', () => {
    const rig = rigWith(hostWindow('Week Saturday'));
    rig.at(HOUR);
    rig.engine.assignMaintenance('ss-east', 'host', 'ops'); // already assigned: nothing changes, but records start
    rig.engine.publishHostUpdate({ id: 'h1', regions: ['east'], impactType: 'Freeze', impactDurationSec: 30 }, 'platform');
    rig.at(2 * HOUR);
    rig.engine.publishHostUpdate({ id: 'h2', regions: null, impactType: 'Restart', impactDurationSec: 600 }, 'platform');
    const machine = [...rig.engine.state.fleet.machines.values()].find((m) => m.placement.setId === 'ss-east')!;
    const pending = rig.engine.pendingUpdates([machine.id]).filter((p) => p.scope === 'Host');
    assert.equal(pending.length, 1);
    assert.deepEqual(pending[0]!.updates, ['h1', 'h2']);
    assert.equal(pending[0]!.impactType, 'Restart');
    assert.equal(pending[0]!.notBeforeMs, ms('2026-01-10T02:00:00Z'), 'the first Saturday window');
    rig.at(ms('2026-01-10T01:59:00Z') - rig.startMs);
    assert.equal(rig.of('host.update.applied').length, 0);
    rig.at(ms('2026-01-10T02:00:00Z') - rig.startMs);
    const applied = rig.of('host.update.applied');
    assert.equal(applied.length, 30, 'every instance of the set, once');
    for (const e of applied) {
      assert.deepEqual(e.updates, ['h1', 'h2']);
      assert.match(e.reason, /window/);
    }
    // Unconfined machines (the west VMs) took them without waiting: no record, nothing pending.
    const vm = [...rig.engine.state.fleet.machines.values()].find((m) => m.placement.setId === null && m.kind === 'vm')!;
    assert.deepEqual(rig.engine.pendingUpdates([vm.id]), []);
  });

  test('R73: no window within 35 days of the last maintenance: the updates apply at the deferral limit', () => {
    const rig = rigWith(hostWindow('2Months', '2026-03-20 02:00'));
    rig.at(HOUR);
    rig.engine.publishHostUpdate({ id: 'h1', regions: null, impactType: 'Freeze', impactDurationSec: 30 }, 'platform');
    const machine = [...rig.engine.state.fleet.machines.values()].find((m) => m.placement.setId === 'ss-east')!;
    // The records started when the configuration came into force (the engine's first tick at 00:00).
    const limit = rig.engine.state.maintenance.hostApplied.get(machine.id)!.lastMs + 35 * DAY;
    assert.equal(rig.engine.pendingUpdates([machine.id])[0]!.notBeforeMs, limit);
    rig.at(limit - rig.startMs - 1000);
    assert.equal(rig.of('host.update.applied').length, 0);
    rig.at(limit - rig.startMs);
    const applied = rig.of('host.update.applied');
    assert.equal(applied.length, 30);
    assert.match(applied[0]!.reason, /35 days/);
  });

  test('R73: applyUpdates applies every pending host update at once', () => {
    const rig = rigWith(hostWindow('Week Saturday'));
    rig.at(HOUR);
    rig.engine.publishHostUpdate({ id: 'h1', regions: null, impactType: 'Freeze', impactDurationSec: 30 }, 'platform');
    rig.engine.publishHostUpdate({ id: 'h2', regions: null, impactType: 'Freeze', impactDurationSec: 30 }, 'platform');
    const members = [...rig.engine.state.fleet.machines.values()].filter((m) => m.placement.setId === 'ss-east').map((m) => m.id);
    const result = rig.engine.applyUpdates(members, 'ops');
    assert.equal(result.hostApplied, 60);
    assert.equal(rig.of('host.update.applied').length, 30);
    assert.ok(rig.of('host.update.applied').every((e) => e.caller === 'ops' && /applyUpdates/.test(e.reason)));
    assert.deepEqual(rig.engine.pendingUpdates(members), []);
    assert.throws(() => rig.engine.publishHostUpdate({ id: 'h1', regions: null, impactType: 'Freeze', impactDurationSec: 30 }, 'platform'), /already published/);
  });
});

describe('maintenance state is durable (SQLite)', () => {
  test('R70, R73: configurations, assignments, a unit waiting for its window and host records survive a restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'phasewise-windows-'));
    try {
      const file = join(dir, 'w.sqlite');
      const onlyTheSet = { scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'] }] };
      const scenario = compileScenario(baseScenario({ fleet: onlyTheSet }), 'durable');
      const store = SqliteStore.open(file);
      store.importState(scenario.state);
      const clock = new ManualClock(scenario.startMs + 6 * HOUR);
      const engine = new Engine({ clock, driver: { send: () => {} }, store, state: store.load()! });
      engine.putMaintenanceConfiguration(NIGHTLY, 'ops');
      engine.putMaintenanceConfiguration({ id: 'host', scope: 'Host', emergencyBypass: true, window: { startDateTime: '2026-01-10 02:00', duration: '03:00', timeZone: 'W. Europe Standard Time', recurEvery: 'Week Saturday' } }, 'ops');
      engine.assignMaintenance('ss-east', 'nightly', 'ops');
      engine.assignMaintenance('ss-east', 'host', 'ops');
      engine.publishHostUpdate({ id: 'h1', regions: null, impactType: 'Freeze', impactDurationSec: 30 }, 'platform');
      engine.publishVersion('Contoso', 'Agent', { version: '1.1.0.0', os: ['linux', 'windows'], regions: null, publishedAtMs: clock.now(), critical: false, digest: null });
      const waiting = [...[...engine.state.rollouts.values()][0]!.units.values()].filter((u) => u.status === 'window').map((u) => u.plan.id);
      assert.ok(waiting.length > 0);
      assert.throws(() => engine.assignMaintenance('nosuch', 'nightly', 'ops'), /no machine or set nosuch/);
      assert.throws(() => engine.assignMaintenance('ss-east', 'nosuch', 'ops'), /no maintenance configuration nosuch/);
      assert.throws(() => engine.putMaintenanceConfiguration({ ...NIGHTLY, id: 'bad', window: { ...NIGHTLY.window, recurEvery: 'Fortnight' } }, 'ops'), /recurEvery/);
      const before = engine.state.maintenance;
      store.close();

      const reopened = SqliteStore.open(file);
      try {
        const state = reopened.load()!;
        const m = state.maintenance;
        assert.deepEqual([...m.configs.keys()].sort(), ['host', 'nightly']);
        assert.deepEqual(m.configs.get('host')!.window, before.configs.get('host')!.window);
        assert.equal(m.configs.get('host')!.emergencyBypass, true);
        assert.equal(m.configs.get('nightly')!.parsed.durationMs, 6 * HOUR);
        assert.deepEqual([...m.assignments.get('ss-east')!].sort(), ['host', 'nightly']);
        assert.deepEqual(m.hostUpdates, before.hostUpdates);
        assert.deepEqual([...m.hostApplied].sort(), [...before.hostApplied].sort());
        const r = [...state.rollouts.values()][0]!;
        assert.deepEqual([...r.units.values()].filter((u) => u.status === 'window').map((u) => u.plan.id), waiting);
        // The resumed engine starts the waiting set when its window opens.
        const clock2 = new ManualClock(ms('2026-01-05T22:00:00Z'));
        const sent: string[] = [];
        const engine2 = new Engine({ clock: clock2, driver: { send: (a) => sent.push(a.machineId) }, store: reopened, state });
        engine2.tick();
        assert.ok(sent.length > 0, 'the set starts at 22:00');
      } finally {
        reopened.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
