/**
 * The compact event log in SQLite (schema v5): every event reads back as the very JSON line the engine
 * wrote, a database of the previous schema (v4, one JSON body per event) migrates with its data, one
 * machine's history is read through its index, and a rolled-back transaction leaves the dictionaries sound.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { newContext } from '../src/engine/core/context.js';
import type { EngineEvent } from '../src/model/events.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { EVENT_COLUMNS, MACHINE_IS, readEvents, typeIn } from '../src/store/sqlite/event-log.js';
import { SCHEMA_VERSION } from '../src/store/sqlite/schema.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { baseScenario } from './helpers/harness.js';
import { downgradeToV4 } from './helpers/sqlite-versions.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-eventlog-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newFile = () => join(dir, `db-${++n}.sqlite`);

/** Failures, rollbacks, retries, an opt-out and a background fault: most kinds of event. */
function raw(): Record<string, unknown> {
  return baseScenario({
    seed: 7,
    failures: {
      versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.1, installFailure: 0.05, rollbackFailure: 0.2 } },
      background: [{ at: 'PT1H20M', duration: 'PT2H', scaleSet: 'ss-east', share: 0.3 }],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'PT1H30M', setAutomaticUpgrade: { extension: 'agent', region: 'west', share: 0.3, enabled: false } },
    ],
  });
}

const lines = (events: Iterable<EngineEvent>) => [...events].map((e) => JSON.stringify(e));

function memoryLines(): string[] {
  const store = new MemoryStore();
  new Simulation(compileScenario(raw(), 'test'), { store }).run();
  return lines(store.events());
}

function sqliteSim(file: string): { sim: Simulation; store: SqliteStore } {
  const scenario = compileScenario(raw(), 'test');
  const store = SqliteStore.open(file, { mode: 'new' });
  store.importState(scenario.state);
  return { sim: new Simulation(scenario, { store }), store };
}

describe('the compact event log', () => {
  const expected = memoryLines();

  test('every event reads back as the exact JSON line of the in-memory run, and no row repeats a placement', () => {
    const file = newFile();
    const { sim, store } = sqliteSim(file);
    sim.run();
    const got = lines(store.events());
    const db = store.database;
    const withPlacement = db.prepare(`SELECT count(*) FROM events WHERE vals LIKE '%"region"%' OR vals LIKE '%"subscription"%'`).pluck().get();
    store.close();
    assert.ok(expected.length > 150);
    assert.ok(expected.some((l) => l.includes('"instance.rollback.failed"')), 'the scenario has a failed rollback');
    assert.deepEqual(got, expected);
    assert.equal(withPlacement, 0);
  });

  test('a database of schema v4 with a half-run rollout migrates: same events, same state, and the run carries on exactly', () => {
    const file = newFile();
    const { sim, store } = sqliteSim(file);
    for (let i = 0; i < 90 && sim.step(); i++);
    const before = lines(store.events());
    const state = store.load()!;
    store.close();
    assert.equal(downgradeToV4(file), before.length);
    assert.equal(new Database(file, { readonly: true }).pragma('user_version', { simple: true }), 4);

    const reopened = SqliteStore.open(file, { mode: 'existing' });
    assert.equal(reopened.database.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.deepEqual(lines(reopened.events()), before);
    const tables = reopened.database.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    assert.ok(!tables.includes('events_v4'));
    const loaded = reopened.load()!;
    assert.equal(loaded.eventSeq, state.eventSeq);
    assert.deepEqual([...loaded.rollouts.values()].map((r) => [r.id, r.status, r.currentPhase]), [...state.rollouts.values()].map((r) => [r.id, r.status, r.currentPhase]));
    sim.driver.observe = () => {};
    sim.restart(reopened);
    sim.run();
    const all = lines(reopened.events());
    reopened.close();
    assert.deepEqual(all, expected);
  });

  test('one machine\'s history is read through the index events_machine, not by scanning the log', () => {
    const file = newFile();
    const { sim, store } = sqliteSim(file);
    sim.run();
    const db = store.database;
    const plan = (sql: string, ...params: unknown[]) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
    const history = plan(`SELECT ${EVENT_COLUMNS} FROM events e WHERE ${MACHINE_IS} ORDER BY e.seq DESC LIMIT 20`, 'vm-1');
    assert.match(history, /SEARCH e USING INDEX events_machine \(machine=\?\)/, history);
    assert.doesNotMatch(history, /SCAN e\b/, history);
    const install = plan(`SELECT ${EVENT_COLUMNS} FROM events e WHERE e.seq < 9 AND e.seq >= 1 AND ${MACHINE_IS} AND ${typeIn(['instance.install.started'])}`, 'vm-1', 'instance.install.started');
    assert.match(install, /USING INDEX events_machine/, install);
    const rollout = plan(`SELECT ${EVENT_COLUMNS} FROM events e WHERE e.rollout_id = ? AND e.seq > ? ORDER BY e.seq`, 'ro-1', 0);
    assert.match(rollout, /USING INDEX events_rollout/, rollout);

    // The history read that way is the machine's events, in order, and nothing else.
    const machineId = (JSON.parse(expected.find((l) => l.includes('"instance.upgrade.started"'))!) as { machineId: string }).machineId;
    const mine = expected.filter((l) => (JSON.parse(l) as { machineId?: string }).machineId === machineId);
    assert.ok(mine.length >= 2);
    assert.deepEqual(lines(readEvents(db, MACHINE_IS, [machineId], 'ORDER BY e.seq')), mine);
    store.close();
  });

  test('events of a transaction that rolled back leave no trace, the values they introduced are written again afterwards, and odd keys and times read back exactly', () => {
    const file = newFile();
    const { sim, store } = sqliteSim(file);
    for (let i = 0; i < 20 && sim.step(); i++);
    const state = sim.engine.state;
    const [machine] = state.fleet.machines.values();
    const event = (seq: number, reason: string): EngineEvent => ({
      seq, time: '2026-03-02T05:00:00.000Z', type: 'host.update.applied', machineId: `${machine!.id}-new`,
      placement: { ...machine!.placement, region: `${reason}-region` }, updates: ['u1'], reason, caller: 'test',
    });
    const commit = (events: EngineEvent[]) => {
      const ctx = newContext(state, Date.parse('2026-03-02T05:00:00Z'));
      store.commit({ state, now: ctx.now, events, actions: [], changes: ctx.changes });
    };
    const seq = state.eventSeq;
    assert.throws(() => store.transaction(() => {
      commit([event(seq + 1, 'rolled-back')]);
      throw new Error('the caller gave up');
    }), /gave up/);
    commit([event(seq + 1, 'kept'), event(seq + 2, 'kept-too')]);
    // Keys the row format uses as marks, a time toISOString would not give back, values of every JSON kind.
    const odd = {
      seq: seq + 3, time: '2026-03-02T05:00:00Z', type: 'maintenance.changed', '@x': 1, '%y': [null, { a: 'b' }], '#z': ['m'], '=w': 'v',
      configuration: 'c', targets: [], action: 'put', caller: 'test', reason: null,
    } as unknown as EngineEvent;
    commit([odd]);
    const tail = [...store.events(seq)];
    store.close();
    assert.deepEqual(lines(tail), lines([event(seq + 1, 'kept'), event(seq + 2, 'kept-too'), odd]));
  });
});
