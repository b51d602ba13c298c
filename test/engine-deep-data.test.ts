/**
 * Validate before applying (issue 12): settings nested deeper than the engine stores are refused by the
 * command's check, whoever sends them (the API refuses them earlier still), so no commit fails on them
 * and the engine is never halted for everyone; memory and store stay equal.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { ManualClock } from '../src/engine/clock.js';
import { Engine, FleetError } from '../src/engine/engine.js';
import { compileScenario } from '../src/sim/scenario.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { nestsDeeperThan } from '../src/util/json-depth.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-deep-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function deep(depth: number): Record<string, unknown> {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return { x: v };
}

test('settings nested 2,500 levels deep are refused before anything changes; the engine commits on', () => {
  const sc = compileScenario({
    name: 'deep', start: '2026-01-05T00:00:00Z', seed: 3, horizon: 'P2W', regions: [{ name: 'east', pair: null, zones: [] }],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0' } },
    fleet: { vms: [{ name: 'vm', region: 'east', subscription: 'sub1', count: 1, extensions: ['agent'] }] },
  }, 'deep');
  const clock = new ManualClock(sc.startMs);
  const store = SqliteStore.open(join(dir, 'deep.sqlite'), { mode: 'new' });
  store.importState(sc.state);
  const engine = new Engine({ clock, driver: new SimDriver(sc.state.fleet, sc.behaviour, () => clock.now(), sc.seed), store, state: sc.state, profiles: sc.profiles });
  const id = [...sc.state.fleet.machines.keys()][0]!;
  const key = 'extension:contoso.agent';
  const before = JSON.stringify(sc.state.fleet.instances.get(key)!.get(id));
  assert.throws(() => engine.updateExtension(id, key, { settings: deep(2500) }, 'test'), (e: unknown) => e instanceof FleetError && /deeper than 64/.test(e.message));
  assert.throws(() => engine.installExtension(id, { name: 'other', publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: false, enableAutomaticUpgrade: false, settings: deep(100) }, 'test'), FleetError);
  assert.equal(JSON.stringify(sc.state.fleet.instances.get(key)!.get(id)), before, 'nothing changed');
  assert.equal(engine.haltedBecause, null);
  engine.updateExtension(id, key, { settings: deep(40) }, 'test'); // within the limit: stored and committed
  assert.equal(engine.haltedBecause, null);
  const loaded = store.load()!;
  assert.deepEqual(loaded.fleet.instances.get(key)!.get(id)!.settings, deep(40), 'memory and store agree');
  store.close();
});

test('the depth check needs no recursion and counts objects and arrays', () => {
  assert.equal(nestsDeeperThan(deep(100_000), 64), true);
  assert.equal(nestsDeeperThan({ a: { b: [1] } }, 3), false);
  assert.equal(nestsDeeperThan({ a: { b: [[1]] } }, 3), true);
});
