/**
 * The Store contract, one suite run against SQLite and PostgreSQL (a throw-away server from the npm
 * package): the same run commits the in-memory run's event log; a restart from the store at any point
 * carries on exactly; committed unanswered actions come back with their keys; a fleet is never
 * imported twice; a schema newer than the code is refused and left untouched.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DriverAction } from '../src/engine/driver.js';
import type { EngineState } from '../src/engine/state.js';
import type { EngineEvent } from '../src/model/events.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import type { EmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { StoreError } from '../src/store/sqlite/database.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { SCHEMA_VERSION } from '../src/store/sqlite/schema.js';
import { PG_SCHEMA_VERSION } from '../src/store/postgres/schema.js';
import type { Store } from '../src/store/store.js';
import { everyStepScenario as raw } from './helpers/harness.js';

/** What the suite needs of a durable store, whatever its kind. */
interface Opened {
  store: Store & { pendingActions(): DriverAction[] };
  importState(state: EngineState): Promise<void>;
  /** Every queued commit durable (at once for SQLite). */
  settled(): Promise<void>;
  events(): Promise<EngineEvent[]>;
  /** The process is gone: only what was committed remains. */
  close(): Promise<void>;
}

interface Kit {
  name: string;
  /** A new, empty database; its address for `open`. */
  fresh(): Promise<string>;
  open(where: string): Promise<Opened>;
  /** Pretends a newer Phasewise migrated the database. */
  makeNewer(where: string, version: number): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'phasewise-contract-'));
let n = 0;
let server: EmbeddedPostgres | null = null;
before(async () => {
  server = await startEmbeddedPostgres();
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sqliteKit: Kit = {
  name: 'SQLite',
  fresh: async () => join(dir, `db-${++n}.sqlite`),
  async open(file) {
    const store = SqliteStore.open(file, { mode: 'either' });
    return {
      store,
      importState: async (state) => store.importState(state),
      settled: async () => {},
      events: async () => [...store.events()],
      close: async () => store.close(),
    };
  },
  async makeNewer(file, version) {
    const db = new Database(file);
    db.pragma(`user_version = ${version}`);
    db.close();
  },
};

const postgresKit: Kit = {
  name: 'PostgreSQL',
  async fresh() {
    const name = `contract_${++n}`;
    const admin = new pg.Client(server!.url);
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    return server!.url.replace(/\/phasewise$/, `/${name}`);
  },
  async open(url) {
    const store = await PgStore.open(url);
    return {
      store,
      importState: (state) => store.importState(state),
      settled: () => store.settled(),
      async events() {
        const out: EngineEvent[] = [];
        for await (const e of store.events()) out.push(e);
        return out;
      },
      close: () => store.end(),
    };
  },
  async makeNewer(url, version) {
    const c = new pg.Client(url);
    await c.connect();
    await c.query('UPDATE phasewise_schema SET version = $1', [version]);
    await c.end();
  },
};


const expected: readonly EngineEvent[] = (() => {
  const store = new MemoryStore();
  new Simulation(compileScenario(raw(), 'test'), { store }).run();
  return JSON.parse(JSON.stringify(store.events())) as EngineEvent[];
})();

/** Steps the simulation, letting each step's commits become durable (and their sends leave) before the next. */
async function stepAll(sim: Simulation, h: Opened, limit = Infinity): Promise<number> {
  let i = 0;
  while (i < limit && sim.step()) {
    await h.settled();
    i++;
  }
  await h.settled();
  return i;
}

async function started(kit: Kit): Promise<{ where: string; h: Opened; sim: Simulation }> {
  const where = await kit.fresh();
  const h = await kit.open(where);
  const scenario = compileScenario(raw(), 'test');
  await h.importState(scenario.state);
  return { where, h, sim: new Simulation(scenario, { store: h.store }) };
}

for (const kit of [sqliteKit, postgresKit]) {
  describe(`Store contract: ${kit.name}`, () => {
    test('a simulation commits exactly the event log of the in-memory run', async () => {
      const { h, sim } = await started(kit);
      await stepAll(sim, h);
      const events = await h.events();
      await h.close();
      assert.ok(expected.length > 150);
      assert.deepEqual(events, expected);
    });

    test('a restart from the store in the middle of the rollout carries on exactly; unanswered actions come back with their keys', async () => {
      for (const stopAfter of [5, 60, 160]) {
        const { where, h, sim } = await started(kit);
        await stepAll(sim, h, stopAfter);
        const inFlight = [...sim.engine.state.pendingActions.keys()].sort();
        await h.close(); // the process is gone; its last commit is all that is left
        const again = await kit.open(where);
        assert.deepEqual(again.store.pendingActions().map((a) => a.key).sort(), inFlight, `pending actions after ${stopAfter} ticks`);
        sim.driver.observe = () => {}; // restarting between ticks loses no report: asking again would change timings
        sim.restart(again.store);
        await stepAll(sim, again);
        const events = await again.events();
        await again.close();
        assert.deepEqual(events, expected, `restart after ${stopAfter} ticks`);
      }
    });

    test('a fleet is never imported over another', async () => {
      const { h } = await started(kit);
      await assert.rejects(h.importState(compileScenario(raw(), 'test').state), (err: unknown) => err instanceof StoreError && err.code === 'STORE_EXISTS');
      await h.close();
    });

    test('a database from a newer Phasewise is refused with a clear message and left as it was', async () => {
      const { where, h, sim } = await started(kit);
      await stepAll(sim, h, 20);
      const before = await h.events();
      await h.close();
      await kit.makeNewer(where, 99);
      await assert.rejects(kit.open(where), (err: unknown) => err instanceof StoreError && err.code === 'STORE_NEWER' && /newer than this Phasewise/.test(err.message));
      await kit.makeNewer(where, kit === sqliteKit ? SCHEMA_VERSION : PG_SCHEMA_VERSION);
      const again = await kit.open(where);
      assert.deepEqual(await again.events(), before);
      await again.close();
    });
  });
}
