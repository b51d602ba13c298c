/**
 * A follower's read model kept in step commit by commit (read-model.ts, fleet-apply.ts, progress-apply.ts,
 * side-apply.ts), on a real embedded PostgreSQL: after any sequence of engine ticks (rollouts' progress),
 * fleet changes (machines added and removed, extensions removed), rollouts started and cancelled and
 * writes and deletions in the API's tables (shipped as a leader ships them), the model updated from the
 * changes alone equals a whole load at the same commit version, in its orders; a refresh reads only the
 * progress rows that changed; a model behind the tombstones' floor, or started before the fleet was
 * imported, loads whole and is equal too; bad input to the pruning changes nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { EngineState } from '../src/engine/state.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { connect } from '../src/store/postgres/connect.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { ReadModel } from '../src/store/postgres/read-model.js';
import { PROGRESS_TABLES } from '../src/store/postgres/progress-apply.js';
import { installCapture, takeChanges } from '../src/store/postgres/side-capture.js';
import { loadSideTables } from '../src/store/postgres/side-load.js';
import { describeSideTables } from '../src/store/postgres/side-tables.js';
import { emptySqlite } from '../src/store/postgres/snapshot.js';
import { PRUNE_EVERY, pruneTombstonesSql, TOMBSTONE_KEEP } from '../src/store/postgres/tombstones.js';
import { everyStepScenario } from './helpers/harness.js';
import { createDatabase, usePgServer } from './helpers/pg-databases.js';

const pgServer = usePgServer('readmodel');
let dbs = 0;

/**
 * A stable JSON of a state: maps and sets as sorted entries, objects with sorted keys, a reference met
 * again on its own path cut (units and their rollout refer to each other). Maps' order is compared apart.
 */
function canonical(v: unknown, path: Set<object> = new Set()): unknown {
  if (v === null || typeof v !== 'object') return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
  if (path.has(v)) return '[cycle]';
  path.add(v);
  try {
    if (v instanceof Map) {
      return [...v].map(([k, x]) => [JSON.stringify(canonical(k, path)), canonical(x, path)]).sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1));
    }
    if (v instanceof Set || Array.isArray(v)) {
      const items = [...v].map((x) => canonical(x, path));
      return v instanceof Set ? items.map((x) => JSON.stringify(x)).sort() : items;
    }
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined && typeof x !== 'function') out[k] = canonical(x, path);
    }
    return out;
  } finally {
    path.delete(v);
  }
}

/**
 * What must be equal: the whole state, plus the orders a whole load gives (machines, each artifact's
 * instances, rollouts, each rollout's attempts, timers, each region's blocked units).
 */
function comparable(s: EngineState | null): unknown {
  if (!s) return null;
  // A count that went back to 0 is kept by the engine and by the model alike; a whole load never makes one.
  const setUnhealthy = new Map([...s.fleet.setUnhealthy].filter(([, n]) => n !== 0));
  const rollouts = [...s.rollouts.values()];
  return {
    state: canonical({ ...s, fleet: { ...s.fleet, setUnhealthy } }),
    machineOrder: [...s.fleet.machines.keys()],
    instanceOrder: [...s.fleet.instances].map(([k, m]) => [k, [...m.keys()]]).sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1)),
    rolloutOrder: rollouts.map((r) => r.id),
    attemptOrder: rollouts.map((r) => [...r.attempts.keys()]),
    timerOrder: s.timers.ordered().map((t) => t.id),
    blockedOrder: rollouts.map((r) => [...r.regions.values()].map((rs) => [...rs.blocked].map((u) => u.plan.id))),
  };
}

/** Every API table's rows in key order (integers exact), and each table's own scan order but agent_status' (a rowid table: see side-apply.ts). */
function sideRows(db: Database.Database | null): unknown {
  if (!db) return null;
  const out: Record<string, unknown> = {};
  for (const t of describeSideTables(db)) {
    const rows = (sql: string) => db.prepare(sql).safeIntegers(true).all().map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    out[t.name] = rows(`SELECT * FROM ${t.name} ORDER BY ${t.key.join(', ')}`);
    if (t.name !== 'agent_status') out[`${t.name} scan`] = rows(`SELECT * FROM ${t.name}`);
  }
  return out;
}

async function wholeLoad(url: string): Promise<EngineState | null> {
  const store = await PgStore.open(url);
  try {
    return store.load();
  } finally {
    await store.end();
  }
}

async function commitVersion(client: pg.Client): Promise<number> {
  return Number((await client.query<{ version: number }>('SELECT version FROM commit_version')).rows[0]!.version);
}

type Op =
  | { kind: 'steps'; n: number }
  | { kind: 'addMachine'; like: number }
  | { kind: 'removeMachine'; pick: number }
  | { kind: 'removeExtension'; pick: number }
  | { kind: 'manualUpgrade'; pick: number; n: number }
  | { kind: 'cancelRollout'; pick: number }
  | { kind: 'api'; writes: ApiWrite[] };

interface ApiWrite {
  table: 'doc' | 'status' | 'outbox' | 'token';
  pick: number;
  del: boolean;
}

const apiWriteArb: fc.Arbitrary<ApiWrite> = fc.record({
  table: fc.constantFrom('doc' as const, 'status' as const, 'outbox' as const, 'token' as const), pick: fc.nat({ max: 40 }), del: fc.boolean(),
});

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('steps' as const), n: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('addMachine' as const), like: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeMachine' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeExtension' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('manualUpgrade' as const), pick: fc.nat(), n: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancelRollout' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('api' as const),
      writes: fc.array(apiWriteArb, { minLength: 1, maxLength: 5 }),
    }),
  },
);

/** A leader's working copy of the API's tables: written there, captured, shipped in a fenced commit of the store (side-capture.ts). */
async function workingCopy(client: pg.Client): Promise<Database.Database> {
  const db = emptySqlite();
  await loadSideTables(client, db);
  installCapture(db);
  return db;
}

/** One write or deletion in an API table, on the working copy; keys from small sets, so rows are written again and deleted. */
function apiWrite(side: Database.Database, o: ApiWrite): void {
  const n = o.pick % 3;
  if (o.table === 'doc') {
    const key = `/subscriptions/s1/resourcegroups/rg/providers/p/things/d${n}`;
    if (o.del) side.prepare('DELETE FROM arm_documents WHERE key = ?').run(key);
    else {
      side.prepare('INSERT INTO arm_documents VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET body = excluded.body')
        .run(key, '/subscriptions/s1', 'thing', key, JSON.stringify({ v: o.pick }));
    }
  } else if (o.table === 'status') {
    if (o.del) side.prepare('DELETE FROM agent_status WHERE agent_id = ?').run(`agent-${n}`);
    else {
      side.prepare('INSERT INTO agent_status VALUES (?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET received_at = excluded.received_at, report = excluded.report')
        .run(`agent-${n}`, 1_700_000_000_000 + o.pick, 'x'.repeat(o.pick * 50));
    }
  } else if (o.table === 'outbox') {
    // An integer key column: its tombstones' text keys must find the integer rows.
    if (o.del) side.prepare('DELETE FROM webhook_outbox WHERE hook = ? AND seq = ?').run('hook', n);
    else side.prepare('INSERT OR REPLACE INTO webhook_outbox VALUES (?, ?, ?, ?, ?)').run('hook', n, 'RolloutStarted', '{}', o.pick);
  } else if (o.del) side.prepare('DELETE FROM agent_enrollment_tokens WHERE name = ?').run(`t${n % 4}`);
  else {
    // digest is UNIQUE too: a token may take the digest another one held (that one goes).
    side.prepare('INSERT OR REPLACE INTO agent_enrollment_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(`t${n % 4}`, `d${o.pick % 3}`, 's1', 'rg', 'east', 9e12, 'alice', o.pick);
  }
}

/** Applies one operation to the leader's engine; a change the engine refuses (an attempt in flight) changes nothing. */
async function run(sim: Simulation, store: PgStore, side: Database.Database, o: Op, added: { n: number }): Promise<void> {
  const state = sim.engine.state;
  const machines = [...state.fleet.machines.values()];
  try {
    if (o.kind === 'steps') for (let i = 0; i < o.n && sim.step(); i++);
    else if (o.kind === 'addMachine') {
      const like = machines[o.like % machines.length]!;
      const id = `extra-${++added.n}`;
      const { instanceId: _taken, ...rest } = like; // the engine gives a scale-set machine the next free instance id
      sim.engine.addMachine({ ...rest, id, name: id, placement: { ...like.placement, updateDomain: null, faultDomain: null } });
    } else if (o.kind === 'removeMachine') sim.engine.removeMachine(machines[o.pick % machines.length]!.id);
    else if (o.kind === 'removeExtension') {
      const all = [...state.fleet.instances.values()].flatMap((m) => [...m.values()]);
      const inst = all[o.pick % all.length];
      if (inst) sim.engine.removeExtension(inst.machineId, inst.artifactKey, 'test');
    } else if (o.kind === 'manualUpgrade') {
      // A rollout created between two refreshes: the model builds it from its row, its plan and its progress rows.
      const all = [...state.fleet.instances.values()].flatMap((m) => [...m.values()]);
      const picked = all.slice(o.pick % all.length, (o.pick % all.length) + o.n);
      const first = picked[0];
      if (first) {
        const toVersion = first.installedVersion === '1.1.0.0' ? '1.0.0.0' : '1.1.0.0';
        const machineIds = picked.filter((i) => i.artifactKey === first.artifactKey).map((i) => i.machineId);
        sim.engine.manualUpgrade({ artifact: { kind: 'extension', publisher: first.publisher, type: first.type }, machineIds, toVersion, caller: 'test', force: true });
      }
    } else if (o.kind === 'cancelRollout') {
      const running = [...state.rollouts.values()].filter((r) => r.status === 'running');
      const r = running[o.pick % Math.max(1, running.length)];
      if (r) sim.engine.cancelRollout(r.id, 'test');
    } else {
      for (const w of o.writes) apiWrite(side, w);
      const sql = takeChanges(side);
      if (sql) assert.ok(await store.commitAlone(sql), 'the API tables\' changes committed');
    }
  } catch (err) {
    if (!/in flight|refused|not found|already|no such|cannot|not published|no machine|nothing to/i.test((err as Error).message)) throw err;
  }
}

async function started(): Promise<{ url: string; store: PgStore; sim: Simulation; client: pg.Client }> {
  const url = await createDatabase(pgServer.server().url, `rm_${++dbs}`);
  const store = await PgStore.open(url);
  const scenario = compileScenario(everyStepScenario(), 'test');
  await store.importState(scenario.state);
  return { url, store, sim: new Simulation(scenario, { store }), client: await connect(url) };
}

/** The rows written in the progress tables after `after`, and their tombstones: what a refresh from `after` must read, no more. */
async function progressWritten(client: pg.Client, after: number): Promise<{ changed: number; total: number }> {
  let changed = 0;
  let total = 0;
  for (const t of PROGRESS_TABLES) {
    const { rows: [r] } = await client.query<{ changed: string; total: string }>(`SELECT count(*) FILTER (WHERE cv > $1) AS changed, count(*) AS total FROM ${t}`, [after]);
    changed += Number(r!.changed);
    total += Number(r!.total);
  }
  const { rows: [g] } = await client.query<{ n: string }>('SELECT count(*) AS n FROM state_tombstones WHERE cv > $1 AND tbl = ANY($2)', [after, [...PROGRESS_TABLES]]);
  return { changed: changed + Number(g!.n), total };
}

describe('a follower\'s read model, updated commit by commit', () => {
  test('after any sequence of ticks, fleet changes, rollouts started and cancelled and API table writes, the model updated from the changes equals a whole load', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
      const { url, store, sim, client } = await started();
      const side = await workingCopy(client);
      const model = new ReadModel({ side: true });
      try {
        assert.equal((await model.refresh(client)).kind, 'whole');
        assert.deepStrictEqual(comparable(model.state), comparable(await wholeLoad(url)), 'the first load');
        const added = { n: 0 };
        for (const o of ops) {
          await run(sim, store, side, o, added);
          await store.settled();
          const r = await model.refresh(client);
          assert.notEqual(r.kind, 'whole', `a model that keeps up never loads whole (${r.fellBack})`);
          assert.equal(r.version, await commitVersion(client));
          assert.deepStrictEqual(comparable(model.state), comparable(await wholeLoad(url)), `after ${JSON.stringify(o)}`);
          const fresh = new ReadModel({ side: true });
          await fresh.refresh(client);
          try {
            assert.deepStrictEqual(sideRows(model.sideDb), sideRows(fresh.sideDb), `the API tables after ${JSON.stringify(o)}`);
          } finally {
            fresh.close();
          }
        }
        return true;
      } finally {
        model.close();
        side.close();
        await store.end();
        await client.end();
      }
    }), { numRuns: 12 });
  });

  test('a refresh while a rollout runs reads only the progress rows written since its version (and their tombstones), not the rollout\'s', async () => {
    const { store, sim, client } = await started();
    try {
      const model = new ReadModel();
      await model.refresh(client);
      let smaller = 0;
      let refreshes = 0;
      for (let i = 0; i < 400 && sim.step(); i++) {
        const before = model.version;
        await store.settled();
        const r = await model.refresh(client);
        if (r.kind === 'same') continue;
        assert.equal(r.kind, 'changes');
        const { changed, total } = await progressWritten(client, before);
        assert.equal(r.progressRows, changed, `refresh ${i}: read what was written since version ${before}`);
        refreshes++;
        if ([...model.state!.rollouts.values()].some((x) => x.status === 'running') && changed < total / 2) smaller++;
      }
      assert.ok(refreshes > 20 && smaller > 10, `refreshes while a rollout ran read less than half its rows (${smaller} of ${refreshes})`);
    } finally {
      await store.end();
      await client.end();
    }
  });

  test('the API tables\' copy refuses writes between refreshes (a follower\'s read handler that writes fails, and its read goes to the leader) and keeps its rows', async () => {
    const { store, sim, client } = await started();
    const side = await workingCopy(client);
    const model = new ReadModel({ side: true });
    try {
      await run(sim, store, side, { kind: 'api', writes: [{ table: 'doc', pick: 1, del: false }] }, { n: 0 });
      await store.settled();
      await model.refresh(client);
      const before = sideRows(model.sideDb);
      assert.equal((before as Record<string, string[]>).arm_documents!.length, 1, 'the document is in the copy');
      assert.throws(() => model.sideDb!.prepare('DELETE FROM arm_documents').run(), /readonly/i);
      assert.throws(() => model.sideDb!.prepare("INSERT INTO agent_status VALUES ('a', 1, 'r')").run(), /readonly/i);
      assert.deepStrictEqual(sideRows(model.sideDb), before);
    } finally {
      model.close();
      side.close();
      await store.end();
      await client.end();
    }
  });

  test('a follower that started before the fleet was imported loads it whole once it is, and then keeps up', async () => {
    const url = await createDatabase(pgServer.server().url, `rm_${++dbs}`);
    const store = await PgStore.open(url);
    const client = await connect(url);
    try {
      const model = new ReadModel();
      await model.refresh(client);
      assert.equal(model.state, null, 'no fleet yet');
      const scenario = compileScenario(everyStepScenario(), 'test');
      await store.importState(scenario.state);
      const sim = new Simulation(scenario, { store });
      for (let i = 0; i < 30 && sim.step(); i++);
      await store.settled();
      assert.equal((await model.refresh(client)).kind, 'whole', 'the import\'s rows carry no version: read whole');
      assert.deepStrictEqual(comparable(model.state), comparable(await wholeLoad(url)));
      const side = await workingCopy(client);
      await run(sim, store, side, { kind: 'addMachine', like: 3 }, { n: 0 });
      await run(sim, store, side, { kind: 'api', writes: [{ table: 'doc', pick: 1, del: false }] }, { n: 0 });
      side.close();
      await store.settled();
      assert.equal((await model.refresh(client)).kind, 'changes');
      assert.deepStrictEqual(comparable(model.state), comparable(await wholeLoad(url)));
    } finally {
      await store.end();
      await client.end();
    }
  });

  test('the changes are what a refresh reads: ticks that touch a few instances read a few rows, and an unchanged version reads nothing', async () => {
    const { store, sim, client } = await started();
    try {
      const model = new ReadModel();
      await model.refresh(client);
      const size = model.state!.fleet.machines.size;
      let sawChanges = false;
      for (let i = 0; i < 400 && sim.step(); i++) {
        await store.settled();
        const r = await model.refresh(client);
        if (r.kind === 'same') continue;
        assert.equal(r.kind, 'changes');
        if (r.rows > 0) sawChanges = true;
        assert.ok(r.rows <= 3 * size, `a tick's changes are bounded by what it wrote (${r.rows} rows)`);
      }
      assert.ok(sawChanges, 'some tick changed fleet rows');
      assert.deepStrictEqual(await model.refresh(client).then((r) => r.kind), 'same');
    } finally {
      await store.end();
      await client.end();
    }
  });

  test('a model behind the tombstones\' floor (they were pruned) loads whole, and is equal to a whole load', async () => {
    const { url, store, sim, client } = await started();
    try {
      const model = new ReadModel();
      await model.refresh(client);
      for (let i = 0; i < 150 && sim.step(); i++);
      const machines = [...sim.engine.state.fleet.machines.keys()];
      for (const id of machines.slice(-3)) {
        try {
          sim.engine.removeMachine(id);
        } catch {
          // an attempt in flight on it: refused, nothing changed
        }
      }
      await store.settled();
      assert.ok(Number((await client.query('SELECT count(*) AS n FROM state_tombstones')).rows[0].n) > 0, 'the changes left tombstones');
      await client.query(`BEGIN; ${pruneTombstonesSql(0)} COMMIT;`);
      assert.equal(Number((await client.query('SELECT count(*) AS n FROM state_tombstones')).rows[0].n), 0, 'pruned');
      const r = await model.refresh(client);
      assert.equal(r.kind, 'whole', 'behind the floor: a whole load');
      assert.deepStrictEqual(comparable(model.state), comparable(await wholeLoad(url)));
      assert.throws(() => pruneTombstonesSql(-1), /whole number >= 0/);
      assert.throws(() => pruneTombstonesSql(Number.NaN), /whole number >= 0/);
    } finally {
      await store.end();
      await client.end();
    }
  });

  test(`the leader prunes in every ${PRUNE_EVERY}th transaction: tombstones more than ${TOMBSTONE_KEEP} versions old go, the floor rises, newer ones stay`, async () => {
    const { store, client } = await started();
    try {
      await client.query('UPDATE commit_version SET version = $1', [3 * TOMBSTONE_KEEP]);
      await client.query("INSERT INTO state_tombstones VALUES (1, 'machines', 'old', NULL), ($1, 'machines', 'recent', NULL)", [3 * TOMBSTONE_KEEP]);
      const commits: Array<Promise<boolean>> = [];
      for (let i = 0; i < PRUNE_EVERY; i++) commits.push(store.commitAlone('SELECT 1'));
      assert.ok((await Promise.all(commits)).every(Boolean), 'every commit durable, the pruning one too');
      assert.equal(store.broken, null);
      const left = (await client.query<{ k1: string }>('SELECT k1 FROM state_tombstones ORDER BY k1')).rows.map((r) => r.k1);
      assert.deepStrictEqual(left, ['recent']);
      const floor = Number((await client.query('SELECT floor FROM tombstone_floor')).rows[0].floor);
      assert.ok(floor > 1 && floor < 3 * TOMBSTONE_KEEP, `the floor rose to ${floor}`);
    } finally {
      await store.end();
      await client.end();
    }
  });
});
