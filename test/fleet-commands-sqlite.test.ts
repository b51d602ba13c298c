/**
 * Fleet changes are durable: after every kind of change the engine is restarted from its SQLite file
 * and the state read back equals the state it had; an install still in flight is sent again with the
 * same key and done once. And a database of schema version 1 is migrated, its fleet intact.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { InvariantChecker } from '../src/audit/invariants.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { ManualClock } from '../src/engine/clock.js';
import type { Driver, DriverAction } from '../src/engine/driver.js';
import { Engine } from '../src/engine/engine.js';
import type { EngineState } from '../src/engine/state.js';
import type { EngineEvent } from '../src/model/events.js';
import type { Machine, ScaleSet } from '../src/model/fleet.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { withDefaults } from '../src/model/upgrade-policy.js';
import type { Scenario } from '../src/sim/scenario.js';
import { compileScenario } from '../src/sim/scenario.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/store/sqlite/schema.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { DAY, KEY, MIN } from './helpers/rig.js';
import { canonical } from './helpers/state-canonical.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-fleet-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newFile = () => join(dir, `fleet-${++n}.sqlite`);

function raw(): Record<string, unknown> {
  return {
    name: 'fleet-durable',
    start: '2026-01-05T00:00:00Z',
    seed: 9,
    horizon: 'P10W',
    regions: [
      { name: 'east', pair: 'west', zones: ['1', '2'] },
      { name: 'west', pair: 'east', zones: ['1', '2'] },
      { name: 'north', pair: null, zones: [] },
    ],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }, { version: '2.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0', enableAutomaticUpgrade: false, settings: { level: 1 } } },
    fleet: {
      scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2'], capacity: 6, extensions: ['agent'] }],
      vms: [{ name: 'vm', region: 'west', subscription: 'sub2', count: 3, extensions: ['agent'] }],
    },
    failures: { versions: { '2.0.0.0': { installFailure: 1 } } },
  };
}

/** Records what reaches the simulated fleet. */
class Spy implements Driver {
  readonly sent: DriverAction[] = [];
  constructor(private readonly inner: SimDriver) {}
  send(a: DriverAction): void {
    this.sent.push(a);
    this.inner.send(a);
  }
  observe(ids: readonly string[]): void {
    this.inner.observe(ids);
  }
}

/** The engine on SQLite with the simulated fleet; `restart` rebuilds it from the file, as after a crash. */
class DurableWorld {
  readonly scenario: Scenario;
  readonly file = newFile();
  readonly clock: ManualClock;
  readonly sim: SimDriver;
  readonly spy: Spy;
  readonly published: EngineEvent[] = [];
  readonly checker: InvariantChecker;
  store: SqliteStore;
  engine: Engine;

  constructor() {
    this.scenario = compileScenario(raw(), 'fleet-durable');
    this.clock = new ManualClock(this.scenario.startMs);
    this.sim = new SimDriver(this.scenario.state.fleet, this.scenario.behaviour, () => this.clock.now(), this.scenario.seed);
    this.spy = new Spy(this.sim);
    this.checker = new InvariantChecker({ pairs: symmetricPairs([...this.scenario.state.fleet.regions.values()]) });
    this.store = SqliteStore.open(this.file, { mode: 'new' });
    this.store.importState(this.scenario.state);
    this.engine = this.newEngine(this.scenario.state);
  }

  private newEngine(state: EngineState): Engine {
    const engine = new Engine({ clock: this.clock, driver: this.spy, store: this.store, state, profiles: this.scenario.profiles });
    engine.onEvents((events) => {
      this.published.push(...events);
      this.checker.onEvents(events);
    });
    return engine;
  }

  /** Closes the file, opens it again, checks the state read back equals the live one, and carries on from it. */
  restart(step: string): EngineState {
    const live = this.engine.state;
    this.store.close();
    this.store = SqliteStore.open(this.file, { mode: 'existing' });
    const loaded = this.store.load()!;
    assert.equal(canonical(loaded), canonical(live), `state after a restart following: ${step}`);
    this.sim.useFleet(loaded.fleet);
    this.engine = this.newEngine(loaded);
    this.engine.recover(this.store.pendingActions());
    return loaded;
  }

  runFor(ms: number): void {
    const end = this.clock.now() + ms;
    for (;;) {
      const times = [this.sim.nextAt(), this.engine.nextWakeAt()].filter((t): t is number => t !== null);
      const t = times.length > 0 ? Math.min(...times) : null;
      if (t === null || t > end) break;
      this.clock.set(Math.max(t, this.clock.now()));
      this.sim.deliverDue(t, (o) => this.engine.observe(o));
      this.engine.tick();
    }
    this.clock.set(end);
    this.engine.tick();
  }

  inst(machineId: string) {
    return this.engine.state.fleet.instances.get(KEY)?.get(machineId);
  }

  of(type: EngineEvent['type'], machineId?: string): EngineEvent[] {
    return this.published.filter((e) => e.type === type && (machineId === undefined || (e as { machineId?: string }).machineId === machineId));
  }
}

/** JSON with object keys sorted and maps as sorted entries, so two states compare by content. */
const scaleSet = (id: string, zones: string[]): ScaleSet => ({
  id, name: id, region: 'west', subscription: 'sub1', resourceGroup: 'rg', zones, updateDomainCount: 5, faultDomainCount: 5,
  upgradePolicy: withDefaults({ mode: 'Rolling' }), healthGracePeriodMs: 5 * MIN, hasApplicationHealth: true,
});

const ssMachine = (i: number): Machine => ({
  id: `ss-new/${i}`, name: `ss-new_${i}`, kind: 'scaleSetInstance', os: 'linux', resourceGroup: 'rg',
  placement: { region: 'west', zone: String((i % 2) + 1), setId: 'ss-new', setKind: 'scaleSet', updateDomain: null, faultDomain: null, subscription: 'sub1' },
});

const AGENT = { name: 'agent', publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: true, enableAutomaticUpgrade: false, settings: { level: 2 } };

describe('fleet changes on SQLite', () => {
  test('every kind of change survives a restart: the state read back equals the live state, and runs on from there', () => {
    const w = new DurableWorld();
    w.engine.putRegion({ name: 'south', pair: 'north', zones: ['1'] });
    w.engine.putRegion({ name: 'north', pair: 'south', zones: [] });
    w.restart('regions');
    w.engine.putScaleSet(scaleSet('ss-new', ['1', '2']));
    w.engine.putAvailabilitySet({ id: 'as-new', name: 'as-new', region: 'north', subscription: 'sub1', resourceGroup: 'rg', updateDomainCount: 3, faultDomainCount: 2 });
    w.restart('sets');
    for (let i = 0; i < 4; i++) w.engine.addMachine(ssMachine(i));
    w.engine.addMachine({ id: 'as-vm', name: 'as-vm', kind: 'vm', os: 'windows', resourceGroup: 'rg', placement: { region: 'north', zone: null, setId: 'as-new', setKind: 'availabilitySet', updateDomain: null, faultDomain: null, subscription: 'sub1' } });
    const loaded = w.restart('machines');
    assert.deepEqual([...loaded.fleet.machines.values()].filter((m) => m.placement.setId === 'ss-new').map((m) => m.instanceId), ['0', '1', '2', '3']);

    // An install in flight across a restart: sent again with the same key, done once.
    for (let i = 0; i < 4; i++) w.engine.installExtension(`ss-new/${i}`, AGENT, 'alice');
    const installs = w.spy.sent.filter((a) => a.kind === 'install').map((a) => a.key);
    assert.equal(installs.length, 4);
    w.restart('installs sent, not answered');
    assert.deepEqual(w.spy.sent.filter((a) => a.kind === 'install').map((a) => a.key), [...installs, ...installs], 'resent with the same keys');
    w.runFor(30 * MIN);
    assert.equal(w.sim.stats.duplicateActions, 4);
    assert.equal(w.of('instance.install.succeeded').length, 4);
    assert.equal(w.inst('ss-new/0')?.status, 'Succeeded');
    w.restart('installs answered');

    w.engine.updateExtension('ss-new/0', KEY, { settings: { level: 7 } }, 'alice');
    w.engine.updateExtension('ss-new/1', KEY, { typeHandlerVersion: '2.0' }, 'alice'); // fails to install (failure model)
    w.restart('updates sent');
    w.runFor(30 * MIN);
    assert.match(w.inst('ss-new/1')?.lastError ?? '', /failed/);
    assert.deepEqual(w.inst('ss-new/0')?.settings, { level: 7 });
    w.restart('an update failed, with its error');
    assert.match(w.inst('ss-new/1')?.lastError ?? '', /failed/);

    // R7 enrollment, restarted in the middle of the catch-up rollout it started.
    const [catchUp] = w.engine.setSubscriptionEnrollment('sub1', true, 'ops');
    assert.ok(catchUp);
    w.restart('enrolled');
    assert.ok(w.engine.state.enrolledSubscriptions.has('sub1'));
    w.runFor(2 * 60 * MIN);
    w.restart('enrollment rollout running');
    w.runFor(14 * DAY);
    assert.equal(w.engine.state.rollouts.get(catchUp.id)?.status, 'completed');
    assert.equal(w.inst('ss-east/0')?.installedVersion, '1.1.0.0');

    // A forced manual rollout keeps its flag.
    const forced = w.engine.manualUpgrade({ artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, machineIds: ['vm-0', 'vm-1', 'vm-2'], toVersion: '1.1.0.0', caller: 'alice', force: true })!;
    w.restart('forced manual rollout');
    assert.equal(w.engine.state.rollouts.get(forced.id)?.force, true);
    w.runFor(DAY);

    // Removals.
    w.engine.removeExtension('ss-new/2', KEY, 'alice');
    w.restart('extension removed, uninstall not answered');
    assert.equal(w.inst('ss-new/2'), undefined);
    assert.equal([...w.engine.state.pendingActions.values()].filter((p) => p.kind === 'uninstall').length, 1);
    w.runFor(30 * MIN);
    for (let i = 0; i < 4; i++) w.engine.removeMachine(`ss-new/${i}`);
    w.engine.removeMachine('as-vm');
    w.restart('machines removed');
    w.engine.removeScaleSet('ss-new');
    w.engine.removeAvailabilitySet('as-new');
    w.engine.setSubscriptionEnrollment('sub1', false, 'ops');
    const final = w.restart('sets removed, enrollment withdrawn');
    assert.equal(final.fleet.scaleSets.has('ss-new'), false);
    assert.equal(final.fleet.machines.has('ss-new/0'), false);
    assert.equal(final.enrolledSubscriptions.size, 0);

    // The file holds the whole event log, in order, exactly as published.
    const logged = [...w.store.events()];
    assert.deepEqual(logged, JSON.parse(JSON.stringify(w.published)));
    assert.deepEqual(logged.map((e) => e.seq), logged.map((_, i) => i + 1));
    assert.deepEqual(w.checker.finish(), []);
    const db = new Database(w.file, { readonly: true });
    const rows = db.prepare("SELECT count(*) AS n FROM actions WHERE kind IN ('install', 'uninstall') AND rollout_id = ''").get() as { n: number };
    db.close();
    assert.equal(rows.n, 7, 'four installs, two updates, one uninstall, each under its own key');
    w.store.close();
  });

  test('an update that supersedes an install in flight gives the older one up: only the newer is sent again after a restart', () => {
    const w = new DurableWorld();
    w.engine.addMachine({ id: 'arc-0', name: 'arc-0', kind: 'arc', os: 'linux', resourceGroup: 'rg', placement: { region: 'north', zone: null, setId: null, setKind: 'none', updateDomain: null, faultDomain: null, subscription: 'sub3' } });
    w.engine.installExtension('arc-0', AGENT, 'alice');
    w.engine.updateExtension('arc-0', KEY, { settings: { level: 5 } }, 'bob');
    const [first, second] = w.spy.sent.filter((a) => a.kind === 'install');
    assert.ok(first && second && first.key !== second.key);
    assert.deepEqual(second.settings, { level: 5 });
    w.restart('an install superseded by an update');
    assert.deepEqual(w.spy.sent.slice(2).map((a) => a.key), [second.key], 'only the newer install is sent again');
    w.runFor(30 * MIN);
    assert.deepEqual(w.of('instance.install.succeeded', 'arc-0').map((e) => (e as { caller: string }).caller), ['bob']);
    assert.equal(w.inst('arc-0')?.status, 'Succeeded');
    assert.equal(w.engine.state.pendingActions.size, 0);
    w.restart('done');
    w.store.close();
  });
});

describe('schema migrations', () => {
  test('a database of schema version 1 is migrated to the current version with its fleet intact', () => {
    const file = newFile();
    const db = new Database(file);
    db.exec(MIGRATIONS[0]!.sql);
    db.pragma('user_version = 1');
    db.prepare('INSERT INTO regions VALUES (?, ?, ?)').run('east', null, '[]');
    db.prepare('INSERT INTO machines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run('vm-0', 'vm-0', 'vm', 'linux', 'rg', 'east', null, null, 'none', null, null, 'sub1');
    db.prepare('INSERT INTO instances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(KEY, 'vm-0', 'agent', 'Contoso', 'Agent', '1.0', 1, 0, '{}', '1.0.0.0', '1.0.0.0', '1.0.0.0', 'Succeeded', null);
    db.prepare("INSERT INTO meta VALUES ('imported', '1970-01-01T00:00:00.000Z')").run();
    db.close();
    const store = SqliteStore.open(file, { mode: 'existing' });
    const state = store.load()!;
    store.close();
    const check = new Database(file, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    check.close();
    assert.deepEqual(state.fleet.machines.get('vm-0')?.placement.region, 'east');
    assert.equal(state.fleet.machines.get('vm-0')?.instanceId, undefined);
    const inst = state.fleet.instances.get(KEY)?.get('vm-0');
    assert.equal(inst?.installedVersion, '1.0.0.0');
    assert.equal('lastError' in inst!, false);
    assert.equal(state.enrolledSubscriptions.size, 0);
  });
});
