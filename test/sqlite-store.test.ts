/**
 * The SQLite store: the same run on disk as in memory, a restart from the database in the middle of
 * a rollout that carries on exactly, and the faults a database file can have.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import type { AttemptState } from '../src/engine/state.js';
import type { EngineEvent } from '../src/model/events.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { StoreError } from '../src/store/sqlite/database.js';
import { SCHEMA_VERSION } from '../src/store/sqlite/schema.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { everyStepScenario as raw } from './helpers/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newFile = () => join(dir, `db-${++n}.sqlite`);


function memoryRun(): readonly EngineEvent[] {
  const store = new MemoryStore();
  new Simulation(compileScenario(raw(), 'test'), { store }).run();
  return store.events();
}

function sqliteSim(file: string): { sim: Simulation; store: SqliteStore } {
  const scenario = compileScenario(raw(), 'test');
  const store = SqliteStore.open(file, { mode: 'new' });
  store.importState(scenario.state);
  return { sim: new Simulation(scenario, { store }), store };
}

describe('SqliteStore', () => {
  const expected = memoryRun();

  test('a simulation on SQLite commits exactly the event log of the in-memory run', () => {
    const file = newFile();
    const { sim, store } = sqliteSim(file);
    sim.run();
    const events = [...store.events()];
    store.close();
    assert.ok(expected.length > 150);
    assert.deepEqual(events, JSON.parse(JSON.stringify(expected)));
  });

  test('a restart from the database in the middle of the rollout carries on exactly as if nothing happened', () => {
    for (const stopAfter of [5, 40, 90, 160]) {
      const file = newFile();
      const { sim, store } = sqliteSim(file);
      for (let i = 0; i < stopAfter && sim.step(); i++);
      store.close(); // the process is gone; its last commit is all that is left
      const reopened = SqliteStore.open(file, { mode: 'existing' });
      sim.driver.observe = () => {}; // restarting between ticks loses no report: no need to ask again, and asking would change timings
      sim.restart(reopened);
      sim.run();
      const events = [...reopened.events()];
      reopened.close();
      assert.deepEqual(events, JSON.parse(JSON.stringify(expected)), `restart after ${stopAfter} ticks`);
    }
  });

  test('the state read back equals the state in memory: instances, rollouts, attempts, timers', () => {
    const file = newFile();
    const { sim, store } = sqliteSim(file);
    for (let i = 0; i < 120 && sim.step(); i++);
    const live = sim.engine.state;
    const loaded = store.load()!;
    store.close();
    const instances = (s: typeof live) => [...s.fleet.instances.values()].flatMap((m) => [...m.values()]).map((i) => JSON.stringify(i)).sort();
    assert.deepEqual(instances(loaded), instances(live));
    assert.deepEqual([...loaded.fleet.unhealthy].sort(), [...live.fleet.unhealthy].sort());
    // Cancelled timers left the store when cancelled; in memory they wait to be passed over.
    assert.deepEqual(loaded.timers.toArray().map((t) => t.id).sort(), live.timers.toArray().filter((t) => !t.done).map((t) => t.id).sort());
    assert.deepEqual([...loaded.pendingActions.keys()].sort(), [...live.pendingActions.keys()].sort());
    for (const [id, r] of live.rollouts) {
      const l = loaded.rollouts.get(id)!;
      assert.equal(l.status, r.status);
      assert.equal(l.open, r.open);
      assert.deepEqual(l.phases, r.phases);
      for (const [uid, u] of r.units) {
        const lu = l.units.get(uid)!;
        assert.deepEqual({ s: lu.status, n: lu.next, p: lu.passDone, w: lu.waveSettled, r: lu.retryReady, i: lu.inflight, g: lu.gateRun }, { s: u.status, n: u.next, p: u.passDone, w: u.waveSettled, r: u.retryReady, i: u.inflight, g: u.gateRun });
      }
      // What the store keeps of an attempt (the references to its unit, placement and timer are found again).
      const kept = ({ inst: _i, unit: _u, placement: _p, healthTimer: _t, ...rest }: AttemptState) => rest;
      for (const [mid, a] of r.attempts) assert.deepEqual(kept(l.attempts.get(mid)!), kept(a));
    }
  });
});

describe('database files', () => {
  test('a file that is not a database is refused with a clear error and left untouched', () => {
    const file = newFile();
    writeFileSync(file, 'this is not sqlite, it is a text file with some bytes in it '.repeat(100));
    const before = readFileSync(file);
    assert.throws(() => SqliteStore.open(file, { mode: 'existing' }), (e: unknown) => e instanceof StoreError && e.code === 'STORE_NOT_DATABASE' && e.message.includes(file));
    assert.deepEqual(readFileSync(file), before);
    assert.equal(existsSync(`${file}.lock`), false, 'no lock left behind');
  });

  test('a file that cannot be opened (a folder, another application\'s database, tables missing, truncated, newer) is refused with one line naming it, and left byte for byte', () => {
    // A Phasewise file with a fleet, the source of the damaged ones.
    const good = newFile();
    const { sim, store } = sqliteSim(good);
    for (let i = 0; i < 20 && sim.step(); i++);
    const ours = store.database.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    store.close();
    const goodBytes = readFileSync(good);
    const name = fc.stringMatching(/^[a-z][a-z_]{0,11}$/);
    type Made = { make: (file: string) => void; codes: readonly string[] };
    const foreign = (version: number) => (tables: string[]) => (file: string) => {
      const db = new Database(file);
      for (const t of new Set(tables)) db.exec(`CREATE TABLE "x_${t}" (a, b)`);
      db.pragma(`user_version = ${version}`);
      db.close();
    };
    const kinds: fc.Arbitrary<Made> = fc.oneof(
      fc.constant<Made>({ make: (file) => mkdirSync(file), codes: ['STORE_NOT_DATABASE'] }),
      fc.array(name, { minLength: 1, maxLength: 4 }).map((t): Made => ({ make: foreign(0)(t), codes: ['STORE_NOT_DATABASE'] })),
      fc.tuple(fc.integer({ min: 1, max: SCHEMA_VERSION }), fc.array(name, { maxLength: 4 }))
        .map(([v, t]): Made => ({ make: foreign(v)(t), codes: ['STORE_NOT_DATABASE'] })),
      fc.subarray(ours, { minLength: 1 }).map((drop): Made => ({
        make: (file) => {
          writeFileSync(file, goodBytes);
          const db = new Database(file);
          db.pragma('foreign_keys = OFF');
          for (const t of drop) db.exec(`DROP TABLE IF EXISTS "${t}"`);
          db.close();
        },
        codes: drop.length === ours.length ? ['STORE_NOT_DATABASE'] : ['STORE_CORRUPT'],
      })),
      fc.integer({ min: 1, max: goodBytes.length - 1 }).map((len): Made => ({
        make: (file) => writeFileSync(file, goodBytes.subarray(0, len)),
        codes: len < 16 ? ['STORE_NOT_DATABASE'] : ['STORE_CORRUPT'],
      })),
      fc.uint8Array({ minLength: 1, maxLength: 3000 }).filter((b) => b[0] !== 0x53).map((b): Made => ({ make: (file) => writeFileSync(file, b), codes: ['STORE_NOT_DATABASE'] })),
      fc.integer({ min: SCHEMA_VERSION + 1, max: 1_000_000 }).map((v): Made => ({ make: foreign(v)([]), codes: ['STORE_NEWER'] })),
    );
    fc.assert(fc.property(kinds, fc.constantFrom<'either' | 'existing'>('either', 'existing'), (made, mode) => {
      const folder = join(dir, `refused-${++n}`);
      mkdirSync(folder);
      const file = join(folder, 'phasewise.sqlite');
      made.make(file);
      const before = tryHash(file);
      assert.throws(() => SqliteStore.open(file, { mode }), (e: unknown) => {
        assert.ok(e instanceof StoreError, String(e));
        assert.ok(made.codes.includes(e.code), `${e.code}: ${e.message}`);
        assert.ok(e.message.includes(file) && !e.message.includes('\n'), e.message);
        return true;
      });
      assert.equal(tryHash(file), before, 'left byte for byte');
      assert.deepEqual(readdirSync(folder), ['phasewise.sqlite'], 'no lock, journal or WAL left beside it');
      rmSync(folder, { recursive: true, force: true });
    }), { numRuns: 120 });
    // Nothing of the refusals holds a lock or a handle in this process: the good file opens.
    SqliteStore.open(good, { mode: 'existing' }).close();
  });

  test('a database from a newer Phasewise is refused and not migrated', () => {
    const file = newFile();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => SqliteStore.open(file, { mode: 'existing' }), (e: unknown) => e instanceof StoreError && e.code === 'STORE_NEWER' && /newer than this Phasewise/.test(e.message));
    const check = new Database(file);
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1);
    check.close();
  });

  test('a database in use by another running Phasewise is refused; a lock left by a dead process is taken over', () => {
    const file = newFile();
    const first = SqliteStore.open(file, { mode: 'new' });
    assert.throws(() => SqliteStore.open(file, { mode: 'existing' }), (e: unknown) => e instanceof StoreError && e.code === 'STORE_LOCKED');
    first.close();
    writeFileSync(`${file}.lock`, '999999999'); // a pid no process has
    const second = SqliteStore.open(file, { mode: 'existing' });
    second.close();
  });

  test('an existing fleet is never overwritten, and a new file is never created over an old one', () => {
    const file = newFile();
    const { sim, store } = sqliteSim(file);
    sim.step();
    assert.throws(() => store.importState(compileScenario(raw(), 'test').state), (e: unknown) => e instanceof StoreError && e.code === 'STORE_EXISTS');
    store.close();
    assert.throws(() => SqliteStore.open(file, { mode: 'new' }), (e: unknown) => e instanceof StoreError && e.code === 'STORE_EXISTS');
  });

  test('a failed write rolls back, the engine stops advancing and says why, and everything committed before is kept', () => {
    const file = newFile();
    const { sim, store } = sqliteSim(file);
    for (let i = 0; i < 30; i++) sim.step();
    const committed = [...store.events()].length;
    // Make the next event insert fail, as a full disk would.
    const db = new Database(file);
    db.exec(`CREATE TRIGGER fail_write BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;`);
    db.close();
    assert.throws(() => { while (sim.step()); }, /simulated write failure/);
    assert.match(sim.engine.haltedBecause ?? '', /store commit failed: .*simulated write failure/);
    assert.throws(() => sim.engine.tick(), /the engine is not advancing \(store commit failed/);
    store.close();
    const after = SqliteStore.open(file, { mode: 'existing' });
    assert.equal([...after.events()].length, committed);
    assert.ok(after.load());
    after.close();
  });
});

/** A file's sha256, or for a folder its listing. */
function tryHash(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return `folder: ${readdirSync(file).join(',')}`;
  }
}
