/**
 * Fleet changes at run time: regions, sets, machines and extensions created, changed and removed
 * through the engine's commands, with the simulated fleet answering (or the test playing the machines
 * by hand), R7 enrollment, forced manual rollouts, and the rollout-progress reader.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvariantChecker } from '../src/audit/invariants.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { ManualClock } from '../src/engine/clock.js';
import { Engine, FleetError } from '../src/engine/engine.js';
import type { FleetErrorCode } from '../src/engine/engine.js';
import { autoUpgradeStateOf } from '../src/engine/fleet/views.js';
import { rolloutsTouchingSet, setProgress } from '../src/engine/rollouts/set-progress.js';
import type { EngineState } from '../src/engine/state.js';
import type { EngineEvent, EventType } from '../src/model/events.js';
import type { Machine, ScaleSet } from '../src/model/fleet.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { withDefaults } from '../src/model/upgrade-policy.js';
import { compileScenario } from '../src/sim/scenario.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { DAY, HOUR, KEY, MIN, Rig } from './helpers/rig.js';

const SF_KEY = 'extension:microsoft.azure.servicefabric.servicefabricnode';

function raw(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'fleet-commands',
    start: '2026-01-05T00:00:00Z',
    seed: 5,
    horizon: 'P10W',
    regions: [
      { name: 'east', pair: 'west', zones: ['1', '2', '3'] },
      { name: 'west', pair: 'east', zones: ['1', '2'] },
      { name: 'north', pair: null, zones: [] },
    ],
    catalog: [
      { publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }, { version: '2.0.0.0' }] },
      { publisher: 'Microsoft.Azure.ServiceFabric', type: 'ServiceFabricNode', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }] },
    ],
    extensions: {
      agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0', enableAutomaticUpgrade: false, settings: { level: 1 } },
      pinned: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0', autoUpgradeMinorVersion: false, enableAutomaticUpgrade: false },
      sf: { publisher: 'Microsoft.Azure.ServiceFabric', type: 'ServiceFabricNode', typeHandlerVersion: '1.0', installed: '1.0.0.0', enableAutomaticUpgrade: false },
    },
    fleet: {
      scaleSets: [
        { name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 12, extensions: ['agent', 'sf'] },
        { name: 'ss-pinned', region: 'east', subscription: 'sub1', capacity: 4, extensions: ['pinned'] },
        { name: 'ss-other', region: 'west', subscription: 'sub2', capacity: 5, extensions: ['agent'] },
      ],
      vms: [{ name: 'vm', region: 'west', subscription: 'sub1', count: 4, extensions: ['agent'] }],
    },
    failures: { versions: { '2.0.0.0': { installFailure: 1 } } },
    ...overrides,
  };
}

/** The real engine and the simulated fleet on a manual clock, moved by hand. */
class World {
  readonly clock: ManualClock;
  readonly driver: SimDriver;
  readonly store = new MemoryStore();
  readonly engine: Engine;
  readonly checker: InvariantChecker;

  constructor(input: Record<string, unknown> = raw()) {
    const scenario = compileScenario(input, 'fleet-commands');
    this.clock = new ManualClock(scenario.startMs);
    this.driver = new SimDriver(scenario.state.fleet, scenario.behaviour, () => this.clock.now(), scenario.seed);
    this.engine = new Engine({ clock: this.clock, driver: this.driver, store: this.store, state: scenario.state, profiles: scenario.profiles });
    this.checker = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
    this.engine.onEvents(this.checker.onEvents);
  }

  get state(): EngineState {
    return this.engine.state;
  }

  /** Lets the fleet answer and the engine work for `ms` of virtual time. */
  runFor(ms: number): void {
    const end = this.clock.now() + ms;
    for (;;) {
      const times = [this.driver.nextAt(), this.engine.nextWakeAt()].filter((t): t is number => t !== null);
      const t = times.length > 0 ? Math.min(...times) : null;
      if (t === null || t > end) break;
      this.clock.set(Math.max(t, this.clock.now()));
      this.driver.deliverDue(t, (o) => this.engine.observe(o));
      this.engine.tick();
    }
    this.clock.set(end);
    this.engine.tick();
  }

  of<T extends EventType>(type: T, machineId?: string): Array<Extract<EngineEvent, { type: T }>> {
    return this.store.events().filter((e) => e.type === type && (machineId === undefined || (e as { machineId?: string }).machineId === machineId)) as Array<Extract<EngineEvent, { type: T }>>;
  }

  inst(machineId: string, key = KEY) {
    return this.state.fleet.instances.get(key)?.get(machineId);
  }
}

function scaleSet(id: string, region: string, zones: string[], extra: Partial<ScaleSet> = {}): ScaleSet {
  return { id, name: id, region, subscription: 'sub1', resourceGroup: 'rg', zones, updateDomainCount: 5, faultDomainCount: 5, upgradePolicy: withDefaults(), healthGracePeriodMs: 5 * MIN, hasApplicationHealth: false, ...extra };
}

function machine(id: string, p: Partial<Machine['placement']> & { region: string }, extra: Partial<Machine> = {}): Machine {
  return {
    id, name: id, kind: 'vm', os: 'linux', resourceGroup: 'rg',
    placement: { zone: null, setId: null, setKind: 'none', updateDomain: null, faultDomain: null, subscription: 'sub1', ...p },
    ...extra,
  };
}

const AGENT = { name: 'agent', publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: true, enableAutomaticUpgrade: false, settings: { level: 2 } };

/** Everything a command could have touched, as text. */
function snapshot(w: World): string {
  const s = w.state;
  const instances = [...s.fleet.instances].map(([k, m]) => [k, [...m.values()]]);
  return JSON.stringify({
    regions: [...s.fleet.regions.values()], scaleSets: [...s.fleet.scaleSets.values()], availabilitySets: [...s.fleet.availabilitySets.values()],
    machines: [...s.fleet.machines.values()], instances, setSizes: [...s.fleet.setSizes], unhealthy: [...s.fleet.unhealthy], enrolled: [...s.enrolledSubscriptions],
    seqs: [s.eventSeq, s.timerSeq, s.actionSeq, s.rolloutSeq], pending: [...s.pendingActions.keys()], installing: [...s.installing], timers: s.timers.size,
    rollouts: [...s.rollouts.values()].map((r) => [r.id, r.status, r.open, [...r.attempts.values()].map((a) => [a.machineId, a.status])]),
    events: w.store.events().length, sent: w.driver.stats.actions,
  });
}

function refused(w: World, code: FleetErrorCode, fn: () => unknown, message?: RegExp): void {
  const before = snapshot(w);
  assert.throws(fn, (e: unknown) => e instanceof FleetError && e.code === code && (message === undefined || message.test(e.message)), `expected FleetError ${code}`);
  assert.equal(snapshot(w), before, 'a refused command changes nothing');
}

describe('fleet commands: regions and sets', () => {
  test('a region is created, its zones and pair change, and a pair that is not symmetric or a zone in use is refused', () => {
    const w = new World();
    w.engine.putRegion({ name: 'south', pair: 'north', zones: ['1'] });
    assert.deepEqual(w.state.fleet.regions.get('south'), { name: 'south', pair: 'north', zones: ['1'] });
    w.engine.putRegion({ name: 'north', pair: 'south', zones: ['1', '2'] });
    assert.deepEqual(w.state.fleet.regions.get('north')?.zones, ['1', '2']);
    refused(w, 'InvalidFleet', () => w.engine.putRegion({ name: 'north', pair: 'east', zones: [] }), /east is paired with west/);
    refused(w, 'InvalidFleet', () => w.engine.putRegion({ name: 'x', pair: 'x', zones: [] }), /paired with itself/);
    // R10: a one-sided pair makes the named region the other's pair; a second region naming it is refused.
    w.engine.putRegion({ name: 'lone', pair: null, zones: [] });
    w.engine.putRegion({ name: 'first', pair: 'lone', zones: [] });
    refused(w, 'InvalidFleet', () => w.engine.putRegion({ name: 'second', pair: 'lone', zones: [] }), /lone is the geo-pair of first already/);
    refused(w, 'InvalidFleet', () => w.engine.putRegion({ name: 'x', pair: 'nowhere', zones: [] }), /unknown region/);
    refused(w, 'Conflict', () => w.engine.putRegion({ name: 'east', pair: 'west', zones: ['1', '2'] }), /zone\(s\) 3/);
    refused(w, 'InvalidFleet', () => w.engine.putRegion({ name: '', pair: null, zones: [] }));
  });

  test('a scale set is created and replaced; a bad policy, an unknown region or a move with machines is refused', () => {
    const w = new World();
    w.engine.putScaleSet(scaleSet('ss-new', 'west', ['1', '2']));
    assert.equal(w.state.fleet.scaleSets.get('ss-new')?.upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent, 20);
    const policy = withDefaults({ mode: 'Rolling', rollingUpgradePolicy: { maxBatchInstancePercent: 50, maxUnhealthyUpgradedInstancePercent: 40 } });
    w.engine.putScaleSet(scaleSet('ss-new', 'west', ['1'], { upgradePolicy: policy, healthGracePeriodMs: 10 * MIN, hasApplicationHealth: true }));
    const replaced = w.state.fleet.scaleSets.get('ss-new')!;
    assert.equal(replaced.upgradePolicy.mode, 'Rolling');
    assert.equal(replaced.upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent, 50);
    assert.deepEqual([replaced.zones, replaced.healthGracePeriodMs, replaced.hasApplicationHealth], [['1'], 10 * MIN, true]);
    const bad = withDefaults({ rollingUpgradePolicy: { maxBatchInstancePercent: 0 } });
    refused(w, 'InvalidFleet', () => w.engine.putScaleSet(scaleSet('ss-x', 'west', [], { upgradePolicy: bad })), /maxBatchInstancePercent/);
    refused(w, 'NotFound', () => w.engine.putScaleSet(scaleSet('ss-x', 'nowhere', [])));
    refused(w, 'InvalidFleet', () => w.engine.putScaleSet(scaleSet('ss-x', 'west', ['3'])), /no zone 3/);
    refused(w, 'Conflict', () => w.engine.putScaleSet(scaleSet('ss-east', 'west', ['1'])), /cannot move/);
    refused(w, 'Conflict', () => w.engine.putScaleSet(scaleSet('ss-east', 'east', ['1', '2'])), /zone 3/);
    w.engine.putAvailabilitySet({ id: 'as-1', name: 'as-1', region: 'north', subscription: 'sub1', resourceGroup: 'rg', updateDomainCount: 3, faultDomainCount: 2 });
    assert.equal(w.state.fleet.availabilitySets.get('as-1')?.updateDomainCount, 3);
    refused(w, 'Conflict', () => w.engine.putAvailabilitySet({ id: 'ss-east', name: 'x', region: 'east', subscription: 'sub1', resourceGroup: 'rg', updateDomainCount: 3, faultDomainCount: 2 }));
    refused(w, 'Conflict', () => w.engine.removeScaleSet('ss-east'), /still has 12 machine/);
    refused(w, 'NotFound', () => w.engine.removeScaleSet('ss-none'));
    w.engine.removeScaleSet('ss-new');
    w.engine.removeAvailabilitySet('as-1');
    assert.equal(w.state.fleet.scaleSets.has('ss-new') || w.state.fleet.availabilitySets.has('as-1'), false);
  });
});

describe('fleet commands: machines', () => {
  test('scale-set instances built from a scenario carry their ordinal as instanceId', () => {
    const w = new World();
    const ids = [...w.state.fleet.machines.values()].filter((m) => m.placement.setId === 'ss-east').map((m) => [m.id, m.instanceId]);
    assert.deepEqual(ids.slice(0, 3), [['ss-east/0', '0'], ['ss-east/1', '1'], ['ss-east/2', '2']]);
    assert.equal(w.state.fleet.machines.get('vm-0')?.instanceId, undefined);
  });

  test('a machine is added with its domains and instance id filled in; an existing id, an unknown region or set, a wrong zone are refused', () => {
    const w = new World();
    w.engine.putScaleSet(scaleSet('ss-new', 'west', ['1', '2'], { updateDomainCount: 2 }));
    const a = w.engine.addMachine(machine('ss-new/a', { region: 'west', zone: '1', setId: 'ss-new', setKind: 'scaleSet' }, { kind: 'scaleSetInstance' }));
    const b = w.engine.addMachine(machine('ss-new/b', { region: 'west', zone: '2', setId: 'ss-new', setKind: 'scaleSet' }, { kind: 'scaleSetInstance', instanceId: '7' }));
    const c = w.engine.addMachine(machine('ss-new/c', { region: 'west', zone: '1', setId: 'ss-new', setKind: 'scaleSet' }, { kind: 'scaleSetInstance' }));
    assert.deepEqual([a.instanceId, b.instanceId, c.instanceId], ['0', '7', '8']);
    assert.deepEqual([a.placement.updateDomain, b.placement.updateDomain, c.placement.updateDomain], [0, 1, 0]);
    assert.equal(w.state.fleet.setSizes.get('ss-new'), 3);
    assert.ok(w.state.fleet.machines.has('ss-new/c'));
    w.engine.addMachine(machine('arc-new', { region: 'north' }, { kind: 'arc' }));
    refused(w, 'Conflict', () => w.engine.addMachine(machine('vm-0', { region: 'west' })), /already exists/);
    refused(w, 'NotFound', () => w.engine.addMachine(machine('vm-x', { region: 'nowhere' })));
    refused(w, 'NotFound', () => w.engine.addMachine(machine('vm-x', { region: 'west', setId: 'as-none', setKind: 'availabilitySet' })));
    refused(w, 'InvalidFleet', () => w.engine.addMachine(machine('vm-x', { region: 'west', zone: '3' })), /no zone 3/);
    refused(w, 'InvalidFleet', () => w.engine.addMachine(machine('ss-new/x', { region: 'west', zone: null, setId: 'ss-new', setKind: 'scaleSet' }, { kind: 'scaleSetInstance' })), /spans zones/);
    refused(w, 'InvalidFleet', () => w.engine.addMachine(machine('ss-new/x', { region: 'west', zone: '1', setId: 'ss-new', setKind: 'scaleSet' })), /cannot have setKind/);
    refused(w, 'Conflict', () => w.engine.addMachine(machine('ss-new/x', { region: 'west', zone: '1', setId: 'ss-new', setKind: 'scaleSet' }, { kind: 'scaleSetInstance', instanceId: '7' })), /taken/);
    refused(w, 'InvalidFleet', () => w.engine.addMachine(machine('arc-x', { region: 'north', zone: null }, { kind: 'arc', os: 'solaris' as 'linux' })));
    refused(w, 'NotFound', () => w.engine.removeMachine('vm-none'));
  });

  test('a machine removed while its rollout runs is skipped (machine deleted) and the rollout still completes; one in flight is refused', () => {
    const w = new World();
    const r = w.engine.manualUpgrade({ artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, machineIds: [...w.state.fleet.machines.keys()].filter((id) => id.startsWith('ss-east/')), toVersion: '1.1.0.0', caller: 'alice' })!;
    const inflight = [...r.attempts.values()].find((a) => a.status === 'upgrading')!;
    refused(w, 'Conflict', () => w.engine.removeMachine(inflight.machineId), /in flight/);
    refused(w, 'Conflict', () => w.engine.removeExtension(inflight.machineId, KEY, 'bob'), /in flight/);
    refused(w, 'Conflict', () => w.engine.updateExtension(inflight.machineId, KEY, { settings: { level: 9 } }, 'bob'), /in flight/);
    const later = [...w.state.fleet.machines.keys()].filter((id) => id.startsWith('ss-east/') && !r.attempts.has(id));
    const open = r.open;
    w.engine.removeMachine(later[0]!);
    w.engine.removeExtension(later[1]!, KEY, 'bob');
    assert.equal(r.open, open - 2);
    assert.deepEqual(w.of('instance.skipped').map((e) => [e.machineId, e.reason]), [[later[0], 'machine deleted'], [later[1], 'extension removed']]);
    assert.equal(w.state.fleet.machines.has(later[0]!), false);
    assert.equal(w.inst(later[0]!, SF_KEY), undefined, 'every instance of the machine went with it');
    assert.equal(w.state.fleet.setSizes.get('ss-east'), 11);
    assert.equal(w.of('instance.removed', later[1]).length, 1);
    w.runFor(DAY);
    assert.equal(r.status, 'completed');
    const upgraded = new Set(w.of('instance.upgrade.started').map((e) => e.machineId));
    assert.equal(upgraded.size, 10);
    assert.ok(!upgraded.has(later[0]!) && !upgraded.has(later[1]!));
    assert.deepEqual(w.checker.finish(), []);
  });

  test('a machine waiting for a retry is skipped when deleted, and its retry never comes', () => {
    const rig = new Rig({
      name: 'rig', start: '2026-01-05T00:00:00Z', seed: 3,
      regions: [{ name: 'west', pair: null, zones: [] }],
      catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
      extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
      fleet: { vms: [{ name: 'vm', region: 'west', subscription: 'sub1', count: 1, extensions: ['agent'] }] },
      profiles: { standard: { maxPhaseFailurePercent: 100 } },
    });
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer('vm-0', 'upgrade', false, 'exit code 1');
    rig.at(MIN);
    rig.answer('vm-0', 'rollback', true);
    rig.at(2 * MIN);
    const r = [...rig.engine.state.rollouts.values()][0]!;
    assert.equal(r.attempts.get('vm-0')?.status, 'retryWait');
    rig.engine.removeMachine('vm-0');
    assert.equal(r.attempts.get('vm-0')?.status, 'skipped');
    assert.equal(rig.of('instance.skipped', 'vm-0')[0]?.reason, 'machine deleted');
    assert.equal(r.open, 0);
    const sent = rig.driver.sent.length;
    rig.at(4 * DAY); // the group stopped by R23 comes back, finds nothing to do, and the rollout completes
    assert.equal(rig.driver.sent.length, sent, 'no retry for a deleted machine');
    assert.equal(r.status, 'completed');
  });
});

describe('fleet commands: extensions', () => {
  test('R4: an installed extension shows Transitioning, then Succeeded at the newest minor once the simulated agent answers', () => {
    const w = new World();
    w.engine.putScaleSet(scaleSet('ss-new', 'west', ['1']));
    w.engine.addMachine(machine('ss-new/0', { region: 'west', zone: '1', setId: 'ss-new', setKind: 'scaleSet' }, { kind: 'scaleSetInstance' }));
    const inst = w.engine.installExtension('ss-new/0', AGENT, 'alice');
    assert.deepEqual([inst.status, inst.desiredVersion, inst.installedVersion, inst.lastKnownGoodVersion], ['Transitioning', '1.1.0.0', '', '']);
    assert.equal(inst.artifactKey, KEY);
    const started = w.of('instance.install.started', 'ss-new/0');
    assert.deepEqual(started.map((e) => [e.toVersion, e.fromVersion, e.caller, e.placement.setId]), [['1.1.0.0', '', 'alice', 'ss-new']]);
    assert.equal(w.driver.stats.actions, 1);
    assert.equal(w.state.pendingActions.size, 1);
    w.runFor(30 * MIN);
    assert.deepEqual([inst.status, inst.desiredVersion, inst.installedVersion, inst.lastKnownGoodVersion], ['Succeeded', '1.1.0.0', '1.1.0.0', '1.1.0.0']);
    assert.equal(w.of('instance.install.succeeded', 'ss-new/0').length, 1);
    assert.equal(w.state.pendingActions.size, 0);
    assert.deepEqual(inst.settings, { level: 2 });
    refused(w, 'Conflict', () => w.engine.installExtension('ss-new/0', { ...AGENT, name: 'other' }, 'alice'), /already has an extension of type/);
    refused(w, 'Conflict', () => w.engine.installExtension('ss-new/0', { ...AGENT, publisher: 'Microsoft.Azure.ServiceFabric', type: 'ServiceFabricNode' }, 'alice'), /named agent/);
  });

  test('an install that fails shows Failed with its reason, and the machine counts as unhealthy (R20)', () => {
    const w = new World();
    w.engine.addMachine(machine('vm-new', { region: 'north' }));
    const inst = w.engine.installExtension('vm-new', { ...AGENT, typeHandlerVersion: '2.0', autoUpgradeMinorVersion: false }, 'alice');
    assert.equal(inst.desiredVersion, '2.0.0.0');
    w.runFor(30 * MIN);
    assert.equal(inst.status, 'Failed');
    assert.match(inst.lastError ?? '', /install of 2\.0\.0\.0 failed/);
    assert.equal(inst.installedVersion, '');
    assert.ok(w.state.fleet.unhealthy.has('vm-new'));
    assert.match(w.of('instance.install.failed', 'vm-new')[0]?.reason ?? '', /failed \(simulated\)/);
    // Installed again at another version: it recovers.
    w.engine.updateExtension('vm-new', KEY, { typeHandlerVersion: '1.0', autoUpgradeMinorVersion: true }, 'alice');
    w.runFor(30 * MIN);
    assert.deepEqual([inst.status, inst.installedVersion, inst.lastError], ['Succeeded', '1.1.0.0', undefined]);
    assert.equal(w.state.fleet.unhealthy.has('vm-new'), false);
  });

  test('an install with no matching version, a bad typeHandlerVersion or an unknown machine is refused', () => {
    const w = new World();
    refused(w, 'VersionNotFound', () => w.engine.installExtension('vm-0', { ...AGENT, name: 'x', publisher: 'Contoso', type: 'Other' }, 'a'));
    w.engine.addMachine(machine('vm-new', { region: 'north' }));
    refused(w, 'VersionNotFound', () => w.engine.installExtension('vm-new', { ...AGENT, typeHandlerVersion: '3.0' }, 'a'), /matches typeHandlerVersion 3\.0/);
    refused(w, 'InvalidFleet', () => w.engine.installExtension('vm-new', { ...AGENT, typeHandlerVersion: 'latest' }, 'a'));
    refused(w, 'NotFound', () => w.engine.installExtension('vm-none', AGENT, 'a'));
    refused(w, 'NotFound', () => w.engine.updateExtension('vm-new', KEY, { reinstall: true }, 'a'));
    refused(w, 'VersionNotFound', () => w.engine.updateExtension('vm-0', KEY, { typeHandlerVersion: '3.0' }, 'a'));
    refused(w, 'NotFound', () => w.engine.removeExtension('vm-0', SF_KEY, 'a'));
  });

  test('an update installs when the version resolves differently, the settings change or a reinstall is asked; a user may cross a major', () => {
    const w = new World();
    const inst = w.inst('vm-0')!;
    w.engine.updateExtension('vm-0', KEY, { autoUpgradeMinorVersion: false }, 'alice'); // 1.0 exactly: still 1.0.0.0, nothing to install
    assert.equal(w.driver.stats.actions, 0);
    assert.equal(inst.autoUpgradeMinorVersion, false);
    w.engine.updateExtension('vm-0', KEY, { settings: { level: 3 } }, 'alice');
    assert.equal(w.of('instance.install.started', 'vm-0').at(-1)?.toVersion, '1.0.0.0', 'new settings, same version');
    w.runFor(30 * MIN);
    w.engine.updateExtension('vm-0', KEY, { reinstall: true }, 'alice');
    w.runFor(30 * MIN);
    w.engine.updateExtension('vm-0', KEY, { typeHandlerVersion: '1.1' }, 'alice');
    w.runFor(30 * MIN);
    assert.equal(inst.installedVersion, '1.1.0.0');
    w.engine.updateExtension('vm-1', KEY, { typeHandlerVersion: '2.0' }, 'alice'); // across a major, by hand
    assert.equal(w.of('instance.install.started', 'vm-1')[0]?.toVersion, '2.0.0.0');
    assert.deepEqual(w.of('instance.install.started', 'vm-0').map((e) => [e.fromVersion, e.toVersion, e.reason.split(';')[0]]), [
      ['1.0.0.0', '1.0.0.0', 'settings changed'],
      ['1.0.0.0', '1.0.0.0', 'reinstall requested'],
      ['1.0.0.0', '1.1.0.0', 'typeHandlerVersion 1.1 (autoUpgradeMinorVersion false) resolves to 1.1.0.0'],
    ]);
    assert.deepEqual(inst.settings, { level: 3 });
    assert.deepEqual(w.of('instance.install.succeeded', 'vm-0').length, 3);
  });

  test('R5: enableAutomaticUpgrade changed through an update goes through opt-in: its event and a catch-up rollout', () => {
    const w = new World();
    const started = w.engine.updateExtension('vm-0', KEY, { enableAutomaticUpgrade: true }, 'alice');
    assert.equal(started.enableAutomaticUpgrade, true);
    assert.deepEqual(w.of('autoUpgrade.changed').map((e) => [e.machineId, e.enabled, e.caller]), [['vm-0', true, 'alice']]);
    const created = w.of('rollout.created');
    assert.equal(created.length, 1);
    assert.equal(created[0]?.toVersion, '1.1.0.0');
    assert.equal(created[0]?.eligible, 1);
    w.runFor(2 * DAY);
    assert.equal(w.inst('vm-0')?.installedVersion, '1.1.0.0');
  });

  test('an extension pinned to an older version with automatic upgrade on catches up after its install', () => {
    const w = new World();
    w.engine.addMachine(machine('vm-new', { region: 'north' }));
    w.engine.installExtension('vm-new', { ...AGENT, autoUpgradeMinorVersion: false, enableAutomaticUpgrade: true }, 'alice');
    assert.equal(w.of('rollout.created').length, 0, 'nothing rolls out to an instance being installed');
    w.runFor(2 * DAY);
    assert.equal(w.of('instance.install.succeeded', 'vm-new')[0]?.toVersion, '1.0.0.0');
    assert.equal(w.of('rollout.created').length, 1);
    assert.equal(w.inst('vm-new')?.installedVersion, '1.1.0.0');
  });

  test('a removed extension is gone at once and an uninstall goes to the machine', () => {
    const w = new World();
    w.engine.removeExtension('vm-2', KEY, 'alice');
    assert.equal(w.inst('vm-2'), undefined);
    assert.deepEqual(w.of('instance.removed').map((e) => [e.machineId, e.version, e.caller]), [['vm-2', '1.0.0.0', 'alice']]);
    assert.equal([...w.state.pendingActions.values()][0]?.kind, 'uninstall');
    w.runFor(30 * MIN);
    assert.equal(w.state.pendingActions.size, 0);
    w.engine.installExtension('vm-2', AGENT, 'alice');
    w.runFor(30 * MIN);
    assert.equal(w.inst('vm-2')?.status, 'Succeeded');
  });
});

describe('R7 scale-set enrollment', () => {
  test('R7: enrolling a subscription upgrades its scale sets\' extensions with autoUpgradeMinorVersion, never Service Fabric types nor other subscriptions', () => {
    const w = new World();
    const ssEast = [...w.state.fleet.machines.values()].filter((m) => m.placement.setId === 'ss-east').map((m) => m.id);
    assert.equal(autoUpgradeStateOf(w.state, w.inst(ssEast[0]!)!), 'disabled');
    const started = w.engine.setSubscriptionEnrollment('sub1', true, 'ops');
    assert.deepEqual(started.map((r) => [r.artifactKey, r.toVersion, r.open]), [[KEY, '1.1.0.0', 12]], 'only Contoso.Agent on ss-east (not the pinned set, not the VMs, not sub2)');
    assert.deepEqual(w.of('enrollment.changed').map((e) => [e.subscription, e.enrolled, e.caller]), [['sub1', true, 'ops']]);
    assert.equal(autoUpgradeStateOf(w.state, w.inst(ssEast[0]!)!), 'enabled');
    assert.equal(autoUpgradeStateOf(w.state, w.inst(ssEast[0]!, SF_KEY)!), 'disabled', 'Service Fabric is not eligible');
    assert.equal(autoUpgradeStateOf(w.state, w.inst('ss-pinned/0')!), 'disabled', 'autoUpgradeMinorVersion=false');
    assert.equal(autoUpgradeStateOf(w.state, w.inst('vm-0')!), 'disabled', 'not a scale set');
    assert.deepEqual(w.engine.setSubscriptionEnrollment('sub1', true, 'ops'), [], 'enrolling again changes nothing');
    w.runFor(14 * DAY);
    assert.equal(started[0]!.status, 'completed');
    for (const id of ssEast) {
      assert.equal(w.inst(id)?.installedVersion, '1.1.0.0');
      assert.equal(w.inst(id, SF_KEY)?.installedVersion, '1.0.0.0');
    }
    assert.equal(w.inst('ss-other/0')?.installedVersion, '1.0.0.0');
    assert.equal(w.inst('ss-pinned/0')?.installedVersion, '1.0.0.0');
    assert.equal(w.inst('vm-0')?.installedVersion, '1.0.0.0');
    // A later release reaches the enrolled instances by itself.
    w.engine.publishVersion('Contoso', 'Agent', { version: '1.2.0.0', os: ['linux', 'windows'], regions: null, publishedAtMs: w.clock.now(), critical: false, digest: null });
    assert.equal(w.of('rollout.created').at(-1)?.eligible, 12);
    // Withdrawn: the next release skips them.
    w.engine.setSubscriptionEnrollment('sub1', false, 'ops');
    assert.equal(autoUpgradeStateOf(w.state, w.inst(ssEast[0]!)!), 'disabled');
    assert.deepEqual(w.checker.finish(), []);
  });
});

describe('forced manual rollouts', () => {
  const failing = (force: boolean) => {
    const w = new World(raw({ failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } } }));
    const ids = [...w.state.fleet.machines.keys()].filter((id) => id.startsWith('ss-east/'));
    const r = w.engine.manualUpgrade({ artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, machineIds: ids, toVersion: '1.1.0.0', caller: 'alice', force })!;
    w.runFor(DAY);
    return { w, r, ids };
  };

  test('R23: a manual rollout without force stops a set whose upgraded instances turn unhealthy', () => {
    const { w, r } = failing(false);
    assert.ok(w.of('gate.breached').some((e) => e.rule === 'R23'));
    assert.ok(w.of('instance.upgrade.started').length < 12);
    assert.notEqual(r.status, 'completed');
  });

  test('R22: a forced manual rollout goes through a set that breaches R23, still rolling back every unhealthy instance', () => {
    const { w, r, ids } = failing(true);
    assert.equal(r.force, true);
    assert.equal(r.status, 'completed');
    assert.deepEqual(w.of('gate.breached'), []);
    assert.deepEqual(w.of('gate.held'), []);
    assert.equal(new Set(w.of('instance.upgrade.started').map((e) => e.machineId)).size, 12);
    assert.equal(w.of('instance.health.unhealthy').length, 12);
    assert.equal(w.of('instance.rollback.succeeded').length, 12);
    for (const id of ids) assert.equal(w.inst(id)?.installedVersion, '1.0.0.0');
    const p = setProgress(w.state, r, 'ss-east', w.clock.now());
    assert.deepEqual(p, { successful: 0, failed: 12, inProgress: 0, pending: 0, skipped: 0, rolledBackOk: 12, rolledBackFailed: 0, stopped: null, cancelled: false });
    assert.deepEqual(w.checker.finish(), []);
  });
});

describe('rollout progress per set', () => {
  test('counts a set\'s instances by outcome while the rollout runs, and lists the rollouts of a set newest first', () => {
    const w = new World();
    const ids = [...w.state.fleet.machines.keys()].filter((id) => id.startsWith('ss-east/'));
    const first = w.engine.manualUpgrade({ artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, machineIds: ids, toVersion: '1.1.0.0', caller: 'alice' })!;
    const p0 = setProgress(w.state, first, 'ss-east', w.clock.now());
    assert.equal(p0.inProgress, 1, 'one update domain of one zone');
    assert.equal(p0.pending, 11);
    assert.equal(p0.successful + p0.failed, 0);
    w.runFor(HOUR);
    const p1 = setProgress(w.state, first, 'ss-east', w.clock.now());
    assert.equal(p1.successful + p1.inProgress + p1.pending, 12);
    assert.ok(p1.successful > 0);
    w.runFor(DAY);
    assert.equal(setProgress(w.state, first, 'ss-east', w.clock.now()).successful, 12);
    const second = w.engine.manualUpgrade({ artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, machineIds: ids, toVersion: '2.0.0.0', caller: 'alice' })!;
    assert.deepEqual(rolloutsTouchingSet(w.state, 'ss-east').map((r) => r.id), [second.id, first.id]);
    assert.deepEqual(rolloutsTouchingSet(w.state, 'ss-other'), []);
  });
});
