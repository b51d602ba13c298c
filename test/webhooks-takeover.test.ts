/**
 * Webhook notifications across a takeover of PostgreSQL replicas (issue 15). The outbox's cursor is a row of
 * the mirrored outbox (webhook-outbox.ts), and a new leader reads the events it owes notifications for from
 * PostgreSQL's event log. A leader (the PostgreSQL store, its side tables' working copy, the webhooks over
 * them, a real loopback receiver) commits notifying events and dies: one event's notification written to its
 * outbox but never shipped, another's never written at all. The next leader makes those two notifications,
 * once, and nothing the first one delivered; a third leader owes nothing.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { ROOT } from './helpers/cli.js';
import { createDatabase, usePgServer } from './helpers/pg-databases.js';
import { waitFor } from './helpers/poll.js';
import type { EngineEvent } from '../src/model/events.js';
import { openSideDb } from '../src/server/replicas/side-db.js';
import type { SideDb } from '../src/server/replicas/side-db.js';
import { WebhookOutbox } from '../src/server/webhook-outbox.js';
import { notificationOf, Webhooks } from '../src/server/webhooks.js';
import { Simulation } from '../src/sim/simulator.js';
import { loadScenarioFile } from '../src/sim/scenario.js';
import { connect } from '../src/store/postgres/connect.js';
import { PgEventLogReader } from '../src/store/postgres/event-log-reader.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { SqliteEventLogReader } from '../src/store/sqlite/event-log-reader.js';
import { emptySqlite } from '../src/store/postgres/snapshot.js';

const SECRET = 'webhook-secret-0123456789abcdef';
const AGENT = { kind: 'extension' as const, publisher: 'Contoso.Monitoring', type: 'Agent' };
const scenario = () => loadScenarioFile(join(ROOT, 'examples/small.yaml'));

interface Received { delivery: string; status: number }

/** What a leader runs of the webhooks: its store, its working copy, the webhooks, and the ship of the working copy's changes. */
interface Leader {
  store: PgStore;
  side: SideDb;
  reader: pg.Client;
  sim: Simulation;
  webhooks: Webhooks;
  outbox: WebhookOutbox;
  ship(): Promise<void>;
  end(): Promise<void>;
}

async function openLeader(url: string, dir: string, hookUrl: string, warnings: string[]): Promise<Leader> {
  const store = await PgStore.open(url);
  const side = await openSideDb(store.connection, dir);
  const reader = await connect(url);
  const sim = new Simulation(scenario(), { store });
  sim.restart(store);
  await store.settled();
  const outbox = new WebhookOutbox(side.db, new PgEventLogReader(reader));
  // A long backoff: a failed attempt is not retried within the test.
  const webhooks = new Webhooks(sim.engine, [{ url: hookUrl, secret: SECRET }], { warn: (_o, m) => warnings.push(m) },
    { maxAttempts: 10, initialBackoffMs: 600_000, maxBackoffMs: 600_000, timeoutMs: 5_000, maxQueue: 1_000 }, () => {}, outbox);
  await webhooks.recovered;
  return {
    store, side, reader, sim, webhooks, outbox,
    async ship() {
      const sql = side.takeChanges();
      if (sql) assert.ok(await store.commitAlone(sql), 'the working copy shipped');
    },
    async end() {
      webhooks.close();
      await store.end();
      await reader.end();
      side.close();
    },
  };
}

/** Lets the store's deliveries (`afterCommit`, then the webhooks' outbox) run after the commits queued so far. */
async function settle(l: Leader): Promise<void> {
  await l.store.settled();
  await new Promise((r) => setImmediate(r));
}

describe('webhooks across a takeover of PostgreSQL replicas', () => {
  const { server, tempDir } = usePgServer('hooks');
  let receiver: Server;
  let hookUrl = '';
  let up = true;
  const received: Received[] = [];

  before(async () => {
    receiver = createServer((req, res) => {
      req.resume().on('end', () => {
        const status = up ? 204 : 503;
        received.push({ delivery: String(req.headers['x-phasewise-delivery']), status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  });
  after(async () => {
    await new Promise((r) => receiver.close(r));
  });

  test('a leader that commits events and dies before its outbox holds them: the next leader makes each notification once', async () => {
    const url = await createDatabase(server().url, 'hooks_takeover');
    const init = await PgStore.open(url);
    await init.importState(scenario().state, { load: false });
    await init.end();
    const warnings: string[] = [];

    // Leader A runs the rollout to its end; its notifications are delivered and the outbox's state shipped.
    const a = await openLeader(url, tempDir(), hookUrl, warnings);
    while (a.sim.step()) await a.store.settled();
    await settle(a);
    assert.ok(await waitFor(() => a.outbox.pending().length === 0 && received.length > 0, 10_000), 'A delivered its notifications');
    await a.ship();
    const deliveredByA = new Set(received.map((r) => r.delivery));
    assert.ok(received.every((r) => r.status === 204));

    // W1: committed, its notification in A's outbox (the receiver down, no retry before the end), never shipped.
    up = false;
    a.sim.engine.withdrawVersion(AGENT, '1.4.1.0', { rollback: false, reason: 'w1', caller: 'test' });
    await settle(a);
    const w1 = a.outbox.pending();
    assert.equal(w1.length, 1, 'W1 is in A\'s outbox');
    assert.ok(await waitFor(() => received.some((r) => r.delivery === `phasewise-${w1[0]!.seq}`), 10_000), 'W1 attempted once by A');
    // W2: A dies between the engine's commit and its outbox (its webhooks stopped first).
    a.webhooks.close();
    a.sim.engine.withdrawVersion(AGENT, '1.4.0.0', { rollback: false, reason: 'w2', caller: 'test' });
    await settle(a);
    assert.equal(a.outbox.pending().length, 1, 'W2 never reached A\'s outbox');
    // A's process ends without shipping its working copy again.
    await a.store.end();
    await a.reader.end();
    a.side.close();

    const log = await readLog(url);
    const notifying = log.filter((e) => notificationOf(e) !== null).map((e) => `phasewise-${e.seq}`);
    const owed = notifying.filter((id) => !deliveredByA.has(id));
    assert.equal(owed.length, 2, `W1 and W2 owed: ${JSON.stringify({ notifying, deliveredByA: [...deliveredByA] })}`);
    assert.equal(owed[0], `phasewise-${w1[0]!.seq}`);

    // Leader B takes over: it makes W1's and W2's notifications from PostgreSQL's log, and sends them.
    up = true;
    const before = received.length;
    const b = await openLeader(url, tempDir(), hookUrl, warnings);
    assert.deepEqual(b.outbox.pending().map((r) => `phasewise-${r.seq}`).sort(), [...owed].sort(), 'B made exactly the notifications owed');
    assert.ok(await waitFor(() => b.outbox.pending().length === 0, 10_000), 'B delivered them');
    await b.ship();
    const byB = received.slice(before);
    assert.deepEqual(byB.map((r) => r.delivery).sort(), [...owed].sort(), 'each owed notification sent once by B, nothing A delivered');
    assert.ok(byB.every((r) => r.status === 204));
    await b.end();

    // Leader C owes nothing: the cursor and the outbox came through PostgreSQL.
    const beforeC = received.length;
    const c = await openLeader(url, tempDir(), hookUrl, warnings);
    assert.deepEqual(c.outbox.pending(), []);
    assert.equal(c.outbox.cursor(), Number(owed[1]!.slice('phasewise-'.length)), 'the cursor at W2, the last notifying event');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(received.length, beforeC, 'C sends nothing');
    await c.end();

    // Overall: every notifying event of the log delivered (a 2xx) exactly once.
    const ok = received.filter((r) => r.status === 204).map((r) => r.delivery).sort();
    assert.deepEqual(ok, [...notifying].sort());
    assert.deepEqual(warnings, []);
  });
});

async function readLog(url: string): Promise<EngineEvent[]> {
  const client = await connect(url);
  try {
    const { rows } = await client.query<{ body: string }>('SELECT body FROM events ORDER BY seq');
    return rows.map((r) => JSON.parse(r.body) as EngineEvent);
  } finally {
    await client.end();
  }
}

describe('the webhooks cursor on SQLite', () => {
  test('a cursor kept in meta by an older build is read, and moved into the outbox at the next write', () => {
    const db = emptySqlite();
    try {
      const outbox = new WebhookOutbox(db, new SqliteEventLogReader(db));
      assert.equal(outbox.cursor(), null);
      db.prepare("INSERT INTO meta (key, value) VALUES ('webhooks.lastSeq', '41')").run();
      assert.equal(outbox.cursor(), 41);
      outbox.add([{ hook: 'https://h.example/x', seq: 43, type: 'rollout.completed', body: '{}', attempts: 0 }], 43);
      assert.equal(outbox.cursor(), 43);
      assert.equal(db.prepare("SELECT count(*) FROM meta WHERE key = 'webhooks.lastSeq'").pluck().get(), 0);
      assert.deepEqual(outbox.pending().map((r) => r.seq), [43], 'the cursor row is no delivery');
      outbox.clearCursor();
      assert.equal(outbox.cursor(), null);
      assert.deepEqual(outbox.pending().map((r) => r.seq), [43]);
    } finally {
      db.close();
    }
  });
});
