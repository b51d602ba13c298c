/**
 * The engine lease is renewed on a thread of its own (src/server/replicas/lease-worker.ts): a leader
 * whose main thread is busy with its own work (loading a large fleet when it takes over, a long tick)
 * keeps its lease and commits afterwards; a main thread silent for longer than the busy limit (a hang)
 * is let go: its lease expires, another replica takes it, and the old leader's commits are fenced.
 * The busy main thread is real: a synchronous loop, as a long load is.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/server/config.js';
import { LeaseKeeper } from '../src/server/replicas/lease-keeper.js';
import { configuredBusyMaxMs } from '../src/server/replicas/lease-shared.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { readLease, tryAcquire } from '../src/store/postgres/lease.js';
import type { Fence } from '../src/store/postgres/pg-store.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import type { StoreError } from '../src/store/sqlite/database.js';
import { baseScenario } from './helpers/harness.js';
import { createDatabase, usePgServer } from './helpers/pg-databases.js';
import { sleep, waitFor } from './helpers/poll.js';

const pgs = usePgServer('busy');
let n = 0;

async function freshDb(): Promise<string> {
  const url = await createDatabase(pgs.server().url, `busy_${++n}`);
  (await PgStore.open(url)).close(); // migrates
  return url;
}

/** The main thread busy with its own work for `ms`: no timer, no message, no I/O callback runs meanwhile. */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* working */ }
}

const scenario = () => compileScenario(baseScenario({ seed: 3, events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }] }), 'busy');

interface Held {
  keeper: LeaseKeeper;
  fence: Fence;
  lost: string[];
}

async function lead(url: string, holder: string, leaseMs: number, busyMaxMs?: number): Promise<Held> {
  const lost: string[] = [];
  let fence: Fence | null = null;
  const keeper = new LeaseKeeper(url, holder, leaseMs, { acquired: (f) => (fence = f), lost: (why) => lost.push(why) }, busyMaxMs);
  keeper.start();
  assert.ok(await waitFor(() => fence !== null, 30_000), `${holder} took the lease`);
  return { keeper, fence: fence!, lost };
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client(url);
  await c.connect();
  return c;
}

describe('a leader busy on its main thread', () => {
  test('keeps its lease through three leases of synchronous work, and commits with its fence afterwards', async () => {
    const url = await freshDb();
    const leaseMs = 2000;
    const a = await lead(url, 'A', leaseMs);
    const store = await PgStore.open(url, { fence: a.fence });
    const sc = scenario();
    await store.importState(sc.state);
    const sim = new Simulation(sc, { store });
    busy(3 * leaseMs); // before the fix the renewals waited for this: the lease expired and the replica stepped down
    await sleep(leaseMs / 2); // the lease's thread's messages, if any, arrive
    assert.deepEqual(a.lost, [], 'the lease was not lost');
    const other = await client(url);
    assert.equal(await tryAcquire(other, 'B', leaseMs), null, 'no other replica can take it');
    const view = await readLease(other);
    assert.equal(view?.holder, 'A');
    assert.equal(view?.token, a.fence.token, 'the same lease, never given up meanwhile');
    for (let i = 0; i < 20 && sim.step(); i++) await store.settled();
    assert.equal(store.broken, null, 'its commits pass the fence');
    assert.ok(store.commits > 0);
    a.keeper.stop();
    await a.keeper.release();
    await a.keeper.end();
    assert.ok(await tryAcquire(other, 'B', leaseMs), 'released at a clean stop');
    await store.end();
    await other.end();
  });

  test('silent for longer than the busy limit (a hang), it is let go: the lease expires, another takes it, its commits are fenced', async () => {
    const url = await freshDb();
    const leaseMs = 1000;
    const a = await lead(url, 'A', leaseMs, 1500);
    const broken: StoreError[] = [];
    const store = await PgStore.open(url, { fence: a.fence, onBroken: (e) => broken.push(e) });
    const sc = scenario();
    await store.importState(sc.state);
    const sim = new Simulation(sc, { store });
    busy(1500 + 3 * leaseMs);
    const other = await client(url);
    try {
      const b = await tryAcquire(other, 'B', 10_000);
      assert.equal(b?.token, a.fence.token + 1, 'the lease expired and another replica took it');
      assert.ok(await waitFor(() => a.lost.length > 0, 10_000), 'the keeper says it was lost');
      // Whichever the main thread hears first once free: its own check, or the lease's thread's message.
      assert.match(a.lost[0]!, /main thread showed no sign of life|no renewal within the lease/);
      assert.equal(a.lost.length, 1, 'told once');
      for (let i = 0; i < 50 && store.broken === null && sim.step(); i++) await store.settled().catch(() => {});
      assert.equal(store.broken?.code, 'STORE_FENCED', 'the old leader cannot commit');
      assert.equal(broken.length, 1);
    } finally {
      await a.keeper.end();
      await store.end();
      await other.end();
    }
  });

  test('a replica takes its busy limit from the configuration (leaseBusyMaxMs), and a keeper given it lets a silent main thread go past it', async () => {
    const config = loadConfig(undefined, {}, { leaseMs: 1000, leaseBusyMaxMs: 1500 });
    assert.equal(configuredBusyMaxMs(config), 1500, 'the configured limit, not the default (two minutes)');
    assert.equal(configuredBusyMaxMs(loadConfig(undefined, {}, { leaseMs: 20_000 })), 240_000, 'absent: twelve leases');
    assert.equal(configuredBusyMaxMs(loadConfig(undefined, {}, {})), 120_000, 'absent: at least two minutes');
    const url = await freshDb();
    const a = await lead(url, 'A', config.leaseMs, configuredBusyMaxMs(config));
    try {
      busy(1500 + 3 * 1000);
      assert.ok(await waitFor(() => a.lost.length > 0, 30_000), 'let go');
      assert.match(a.lost[0]!, /main thread showed no sign of life|no renewal within the lease/);
    } finally {
      a.keeper.stop();
      await a.keeper.end();
    }
  });
});
