/**
 * Principle 5 (a state transition is committed before the action it causes is sent), inside an API
 * transaction: the engine's commit is then a savepoint, and its actions and events leave only after
 * the outermost COMMIT, and never when that transaction rolls back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Documents } from '../src/api/arm/documents.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { ManualClock } from '../src/engine/clock.js';
import type { Driver, DriverAction } from '../src/engine/driver.js';
import { Engine } from '../src/engine/engine.js';
import type { EngineEvent } from '../src/model/events.js';
import { compileScenario } from '../src/sim/scenario.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-outer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const scenario = () => compileScenario({
  name: 'outer-commit', start: '2026-01-05T00:00:00Z', seed: 3, horizon: 'P2W',
  regions: [{ name: 'east', pair: null, zones: [] }],
  catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }] }],
  extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0', enableAutomaticUpgrade: false } },
  fleet: { vms: [{ name: 'vm', region: 'east', subscription: 'sub1', count: 2, extensions: ['agent'] }] },
}, 'outer-commit');

function world(name: string) {
  const sc = scenario();
  const clock = new ManualClock(sc.startMs);
  const sent: DriverAction[] = [];
  const published: EngineEvent[] = [];
  const sim = new SimDriver(sc.state.fleet, sc.behaviour, () => clock.now(), sc.seed);
  const driver: Driver = { send: (a) => { sent.push(a); sim.send(a); } };
  const store = SqliteStore.open(join(dir, `${name}.sqlite`), { mode: 'new' });
  store.importState(sc.state);
  const engine = new Engine({ clock, driver, store, state: sc.state, profiles: sc.profiles });
  engine.onEvents((e) => published.push(...e));
  const docs = new Documents(store.database, (fn) => store.transaction(fn));
  const machineIds = [...sc.state.fleet.machines.keys()];
  const upgrade = () => engine.manualUpgrade({ artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, machineIds, toVersion: '1.1.0.0', caller: 'test' });
  return { store, docs, sent, published, upgrade };
}

test('inside an API transaction, actions and events leave after the outer COMMIT, not at the savepoint', () => {
  const w = world('commit');
  let sentInside = -1;
  let publishedInside = -1;
  w.docs.atomically(() => {
    w.upgrade();
    w.docs.put('/x', '/', 'setting', { after: 'the engine' });
    sentInside = w.sent.length;
    publishedInside = w.published.length;
  });
  assert.equal(sentInside, 0, 'no action left before the outer COMMIT');
  assert.equal(publishedInside, 0, 'no event published before the outer COMMIT');
  assert.ok(w.sent.length > 0, 'the actions left after it');
  assert.ok(w.published.some((e) => e.type === 'rollout.created'));
  w.store.close();
});

test('when the outer transaction rolls back, nothing of the engine\'s savepoint leaves', () => {
  const w = world('rollback');
  assert.throws(() => w.docs.atomically(() => {
    w.upgrade();
    throw new Error('the API failed after the engine committed its savepoint');
  }), /API failed/);
  assert.equal(w.sent.length, 0);
  assert.equal(w.published.length, 0);
  w.store.close();
});

test('outside a transaction, a commit sends at once', () => {
  const w = world('plain');
  w.upgrade();
  assert.ok(w.sent.length > 0);
  w.store.close();
});
