/**
 * A follower's read model kept in step commit by commit (read-model.ts, fleet-apply.ts), on a real
 * embedded PostgreSQL: after any sequence of engine ticks and fleet changes (machines added and removed,
 * extensions removed), the model updated from the changes alone equals a whole load at the same commit
 * version; a model behind the tombstones' floor loads whole and is equal too; bad input to the pruning
 * changes nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import type { EngineState } from '../src/engine/state.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { connect } from '../src/store/postgres/connect.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { ReadModel } from '../src/store/postgres/read-model.js';
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

/** What must be equal: the whole state, plus the orders a whole load gives (machines, each artifact's instances). */
function comparable(s: EngineState | null): unknown {
  if (!s) return null;
  // A count that went back to 0 is kept by the engine and by the model alike; a whole load never makes one.
  const setUnhealthy = new Map([...s.fleet.setUnhealthy].filter(([, n]) => n !== 0));
  return {
    state: canonical({ ...s, fleet: { ...s.fleet, setUnhealthy } }),
    machineOrder: [...s.fleet.machines.keys()],
    instanceOrder: [...s.fleet.instances].map(([k, m]) => [k, [...m.keys()]]).sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1)),
  };
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
  | { kind: 'removeExtension'; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('steps' as const), n: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('addMachine' as const), like: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeMachine' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeExtension' as const), pick: fc.nat() }) },
);

/** Applies one operation to the leader's engine; a change the engine refuses (an attempt in flight) changes nothing. */
function run(sim: Simulation, o: Op, added: { n: number }): void {
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
    else {
      const all = [...state.fleet.instances.values()].flatMap((m) => [...m.values()]);
      const inst = all[o.pick % all.length];
      if (inst) sim.engine.removeExtension(inst.machineId, inst.artifactKey, 'test');
    }
  } catch (err) {
    if (!/in flight|refused|not found|already|no such|cannot/i.test((err as Error).message)) throw err;
  }
}

async function started(): Promise<{ url: string; store: PgStore; sim: Simulation; client: pg.Client }> {
  const url = await createDatabase(pgServer.server().url, `rm_${++dbs}`);
  const store = await PgStore.open(url);
  const scenario = compileScenario(everyStepScenario(), 'test');
  await store.importState(scenario.state);
  return { url, store, sim: new Simulation(scenario, { store }), client: await connect(url) };
}

describe('a follower\'s read model, updated commit by commit', () => {
  test('after any sequence of ticks and fleet changes, the model updated from the changes equals a whole load at the same version', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), async (ops) => {
      const { url, store, sim, client } = await started();
      try {
        const model = new ReadModel();
        assert.equal((await model.refresh(client)).kind, 'whole');
        assert.deepStrictEqual(comparable(model.state), comparable(await wholeLoad(url)), 'the first load');
        const added = { n: 0 };
        let applied = 0;
        for (const o of ops) {
          run(sim, o, added);
          await store.settled();
          const r = await model.refresh(client);
          assert.notEqual(r.kind, 'whole', 'a model that keeps up never loads whole');
          assert.equal(r.version, await commitVersion(client));
          applied += r.rows;
          assert.deepStrictEqual(comparable(model.state), comparable(await wholeLoad(url)), `after ${JSON.stringify(o)}`);
        }
        return applied >= 0;
      } finally {
        await store.end();
        await client.end();
      }
    }), { numRuns: 12 });
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
