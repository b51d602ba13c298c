/**
 * Leadership on PostgreSQL: the engine lease with its fencing token. A leader that lost its lease
 * (paused past it, then resumed) can never commit again and none of its held sends leave; a lease that
 * merely expired fences too; the next leader loads every commit of the last one. API writes queued by
 * any replica are applied once, in the leader's commit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { commandResult, enqueueCommand, markDoneSql, openCommands } from '../src/store/postgres/commands.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import type { EmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { readLease, release, renew, tryAcquire } from '../src/store/postgres/lease.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { StoreError } from '../src/store/sqlite/database.js';
import { baseScenario } from './helpers/harness.js';

let server: EmbeddedPostgres;
let n = 0;
before(async () => {
  server = await startEmbeddedPostgres();
});
after(async () => server?.stop());

async function freshDb(): Promise<string> {
  const name = `lease_${++n}`;
  const admin = new pg.Client(server.url);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return server.url.replace(/\/phasewise$/, `/${name}`);
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client(url);
  await c.connect();
  return c;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const scenario = () => compileScenario(baseScenario({ seed: 3, events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }] }), 'test');

async function steps(sim: Simulation, store: PgStore, count: number): Promise<void> {
  for (let i = 0; i < count && sim.step(); i++) await store.settled();
}

async function eventsOf(store: PgStore): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const e of store.events()) out.push(e);
  return out;
}

describe('the engine lease', () => {
  test('one holder at a time; the token grows with every new holder; renew only by the holder; release frees it at once', async () => {
    const url = await freshDb();
    (await PgStore.open(url)).close(); // migrates
    const a = await client(url);
    const b = await client(url);
    const fa = await tryAcquire(a, 'A', 5000);
    assert.ok(fa);
    assert.equal(await tryAcquire(b, 'B', 5000), null);
    assert.equal(await renew(b, { ...fa, holder: 'B' }, 5000), false);
    assert.equal(await renew(a, fa, 5000), true);
    const view = await readLease(a);
    assert.equal(view?.holder, 'A');
    assert.ok(view!.remainingMs > 3000 && view!.remainingMs <= 5000);
    await release(a, fa);
    const fb = await tryAcquire(b, 'B', 5000);
    assert.equal(fb?.token, fa.token + 1);
    assert.equal(await renew(a, fa, 5000), false, 'the old holder cannot renew a lease that changed hands');
    await a.end();
    await b.end();
  });

  test('a leader paused past its lease, then resumed, cannot commit: its tick fails, its sends never leave, the engine halts', async () => {
    const url = await freshDb();
    const ca = await client(url);
    (await PgStore.open(url)).close();
    const fa = (await tryAcquire(ca, 'A', 10_000))!;
    const brokenSeen: StoreError[] = [];
    const a = await PgStore.open(url, { fence: fa, onBroken: (e) => brokenSeen.push(e) });
    const sc = scenario();
    await a.importState(sc.state);
    const sim = new Simulation(sc, { store: a });
    await steps(sim, a, 30);
    const committed = await eventsOf(a);
    assert.ok(committed.length > 0);
    // "Paused": A's last renewal leaves it 200 ms; it stops renewing; the lease runs out; B takes it.
    assert.equal(await renew(ca, fa, 200), true);
    await sleep(300);
    const cb = await client(url);
    const fb = await tryAcquire(cb, 'B', 5000);
    assert.equal(fb?.token, fa.token + 1);
    // "Resumed": A ticks as if nothing happened.
    let sendsLeft = 0;
    const send = sim.driver.send.bind(sim.driver);
    sim.driver.send = (action) => {
      sendsLeft++;
      send(action);
    };
    let tried = 0;
    while (a.broken === null && tried++ < 50) {
      if (!sim.step()) break;
      await a.settled().catch(() => {});
    }
    assert.equal((a.broken as StoreError | null)?.code, 'STORE_FENCED');
    assert.match(a.broken!.message, /no longer holds the engine lease/);
    assert.equal(brokenSeen.length, 1);
    assert.equal(sendsLeft, 0, 'no action of a fenced commit left');
    assert.throws(() => sim.step(), /the store stopped after a failed write: .*no longer holds the engine lease/);
    assert.throws(() => sim.step(), /the engine is not advancing \(store commit failed/);
    // B, the new leader, loads exactly what A committed while it led.
    const b = await PgStore.open(url, { fence: fb! });
    assert.deepEqual(await eventsOf(b), committed);
    assert.ok(b.load());
    await b.end();
    await a.end();
    await ca.end();
    await cb.end();
  });

  test('a lease that expired fences its holder even when nobody took it over', async () => {
    const url = await freshDb();
    const ca = await client(url);
    (await PgStore.open(url)).close();
    const fa = (await tryAcquire(ca, 'A', 10_000))!;
    const a = await PgStore.open(url, { fence: fa });
    const sc = scenario();
    await a.importState(sc.state);
    const sim = new Simulation(sc, { store: a });
    await steps(sim, a, 3);
    assert.equal(a.broken, null);
    assert.equal(await renew(ca, fa, 200), true);
    await sleep(300);
    for (let i = 0; i < 50 && a.broken === null && sim.step(); i++) await a.settled().catch(() => {});
    assert.equal((a.broken as StoreError | null)?.code, 'STORE_FENCED');
    await a.end();
    await ca.end();
  });

  test('a leader that lost its lease while importing its fleet commits no import: STORE_FENCED, the database left empty for the next leader', async () => {
    const url = await freshDb();
    const ca = await client(url);
    (await PgStore.open(url)).close();
    const fa = (await tryAcquire(ca, 'A', 10_000))!;
    const a = await PgStore.open(url, { fence: fa });
    // The lease expires and B takes it while A's import runs (as a SIGSTOP or a long load past the lease would).
    assert.equal(await renew(ca, fa, 1), true);
    await sleep(50);
    const fb = await tryAcquire(ca, 'B', 10_000);
    assert.equal(fb?.token, fa.token + 1);
    const err = await a.importState(scenario().state).then(() => null, (e: StoreError) => e);
    assert.equal(err?.code, 'STORE_FENCED', `the import was refused: ${String(err)}`);
    await a.end();
    const b = await PgStore.open(url, { fence: fb! });
    assert.equal(b.isInitialised(), false, 'nothing of A\'s import is there');
    await b.importState(scenario().state);
    assert.equal(b.isInitialised(), true, 'the lease\'s holder imports');
    await b.end();
    await ca.end();
  });

  test('a replica whose database was migrated under it by a newer Phasewise cannot commit another tick', async () => {
    const url = await freshDb();
    const a = await PgStore.open(url);
    const sc = scenario();
    await a.importState(sc.state);
    const sim = new Simulation(sc, { store: a });
    await steps(sim, a, 3);
    const newer = await client(url);
    await newer.query('UPDATE phasewise_schema SET version = version + 1'); // what a newer replica's migration does
    for (let i = 0; i < 50 && a.broken === null && sim.step(); i++) await a.settled().catch(() => {});
    assert.equal((a.broken as StoreError | null)?.code, 'STORE_NEWER');
    assert.match(a.broken!.message, /the database schema changed under this replica/);
    await a.end();
    await assert.rejects(PgStore.open(url), /newer than this Phasewise/);
    await newer.end();
  });

  test('a command queued on any replica is applied by the leader in its own commit, once; an unapplied one survives the leader', async () => {
    const url = await freshDb();
    const ca = await client(url);
    (await PgStore.open(url)).close();
    const fa = (await tryAcquire(ca, 'A', 5000))!;
    const a = await PgStore.open(url, { fence: fa });
    const sc = scenario();
    await a.importState(sc.state);
    const sim = new Simulation(sc, { store: a });
    await steps(sim, a, 2);
    const replica = await client(url); // a replica that does not lead
    const machine = [...sc.state.fleet.machines.keys()][0]!;
    const key = 'extension:contoso.agent';
    const id1 = await enqueueCommand(replica, 'updateExtension', { machineId: machine, key, settings: { level: 9 } });
    const id2 = await enqueueCommand(replica, 'updateExtension', { machineId: machine, key, settings: { level: 10 } });
    // The leader applies the first, and dies before applying the second.
    const [c1] = await openCommands(ca);
    assert.equal(c1?.id, id1);
    a.withNextCommit(markDoneSql(c1!.id, { ok: true }));
    sim.engine.updateExtension(machine, key, { settings: { level: 9 } }, 'test');
    await a.settled();
    await a.end();
    assert.deepEqual(await commandResult(replica, id1), { done: true, result: { ok: true } });
    assert.deepEqual((await openCommands(replica)).map((c) => c.id), [id2]);
    const { rows } = await replica.query<{ settings: string }>('SELECT settings FROM instances WHERE machine_id = $1 AND artifact_key = $2', [machine, key]);
    assert.deepEqual(JSON.parse(rows[0]!.settings), { level: 9 });
    await release(ca, fa);
    await ca.end();
    await replica.end();
  });
});
