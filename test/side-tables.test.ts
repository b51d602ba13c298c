/**
 * The side tables mirrored to PostgreSQL (issue 15): a leader's SQLite working copy is loaded from
 * PostgreSQL, its changes are captured by triggers and shipped as one SQL text. On a real embedded
 * PostgreSQL and real SQLite, through the owners' own classes: after a ship PostgreSQL holds exactly the
 * local rows, and a fresh working copy loaded from it holds them too.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { EnrollmentTokens } from '../src/api/agent/enrollment-tokens.js';
import { PackageStore } from '../src/api/agent/package-store.js';
import { StatusWriter } from '../src/api/agent/status-writer.js';
import { Documents } from '../src/api/arm/documents.js';
import type { DocKind } from '../src/api/arm/documents.js';
import { AgentStore } from '../src/drivers/agent/agent-store.js';
import { WebhookOutbox } from '../src/server/webhook-outbox.js';
import { SqliteEventLogReader } from '../src/store/sqlite/event-log-reader.js';
import { connect } from '../src/store/postgres/connect.js';
import { createDatabase, usePgServer } from './helpers/pg-databases.js';
import { installCapture, MAX_KEY_BYTES, pendingChanges, takeChanges } from '../src/store/postgres/side-capture.js';
import { loadSideTables } from '../src/store/postgres/side-load.js';
import { describeSideTables, ensureSideTables, quote } from '../src/store/postgres/side-tables.js';
import { emptySqlite } from '../src/store/postgres/snapshot.js';
import { SIDE_TABLES } from '../src/store/sqlite/side-schema.js';
import { statusReport } from './helpers/agent-client.js';

const { server, freshPg, tempDir } = usePgServer('side');

/** A leader's working copy: the engine's SQLite schema, the owners' tables, loaded from PostgreSQL, capturing. */
async function workingCopy(client: pg.Client, file = ':memory:'): Promise<Database.Database> {
  const db = emptySqlite(file);
  await loadSideTables(client, db);
  installCapture(db);
  return db;
}

const TABLE_NAMES = SIDE_TABLES.map((t) => t.name);

/** Every side table's rows as sorted JSON texts (integers as decimal text: exact at any size). */
function localRows(db: Database.Database): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const t of describeSideTables(db)) {
    const rows = db.prepare(`SELECT ${t.columns.map((c) => c.name).join(', ')} FROM ${t.name}`).safeIntegers(true).all() as Array<Record<string, unknown>>;
    out[t.name] = rows.map((r) => JSON.stringify(t.columns.map((c) => (r[c.name] === null ? null : String(r[c.name]))))).sort();
  }
  return out;
}

async function pgRows(client: pg.Client, shape: Database.Database): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of describeSideTables(shape)) {
    const { rows } = await client.query<Record<string, unknown>>(`SELECT ${t.columns.map((c) => `${c.name}::text AS ${c.name}`).join(', ')} FROM ${t.name}`);
    out[t.name] = rows.map((r) => JSON.stringify(t.columns.map((c) => r[c.name] as string | null))).sort();
  }
  return out;
}

async function ship(client: pg.Client, db: Database.Database): Promise<boolean> {
  const sql = takeChanges(db);
  if (sql !== null) await client.query(sql);
  return sql !== null;
}

async function truncateSide(client: pg.Client): Promise<void> {
  await client.query(`TRUNCATE ${TABLE_NAMES.join(', ')}`);
}

/** Statements no owner runs but SQL allows: keys changed by UPDATE, rows removed by REPLACE, whole tables emptied. */
const RAW = [
  "UPDATE arm_documents SET key = key || 'x' WHERE key = (SELECT min(key) FROM arm_documents)",
  'UPDATE arm_documents SET key = ?, body = ? WHERE key = (SELECT max(key) FROM arm_documents)',
  "INSERT OR REPLACE INTO agent_enrollment_tokens SELECT ?, digest, 's', 'rg', 'l', 1, ?, 2 FROM agent_enrollment_tokens LIMIT 1",
  "UPDATE agent_enrollment_tokens SET digest = name || '-' || digest",
  'UPDATE agent_status SET received_at = received_at + 1',
  'DELETE FROM webhook_outbox',
  'UPDATE webhook_outbox SET seq = seq + 1, hook = ?',
  'DELETE FROM agent_ops WHERE key > ?',
];

describe('the side tables on PostgreSQL', () => {
  test('migration 4 creates every side table with SQLite\'s columns, nullability, primary key and unique constraints (and migration 8 a cv column last)', async () => {
    const client = await freshPg();
    try {
      const db = new Database(':memory:');
      ensureSideTables(db);
      for (const t of describeSideTables(db)) {
        const cols = await client.query<{ column_name: string; data_type: string; is_nullable: string }>(
          'SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position', [t.name]);
        // Then `cv`, PostgreSQL's own (migration 8: the commit version that wrote the row, for followers: side-apply.ts).
        const last = cols.rows.pop();
        assert.deepEqual(last && { name: last.column_name, type: last.data_type.toUpperCase() }, { name: 'cv', type: 'BIGINT' }, t.name);
        assert.deepEqual(cols.rows.map((c) => ({ name: c.column_name, type: c.data_type.toUpperCase(), notNull: c.is_nullable === 'NO' })), t.columns, t.name);
        const key = await client.query<{ attname: string }>(`SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
          WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`, [t.name]);
        assert.deepEqual(key.rows.map((r) => r.attname), t.key, t.name);
        const unique = await client.query('SELECT 1 FROM pg_index WHERE indrelid = $1::regclass AND indisunique AND NOT indisprimary', [t.name]);
        assert.equal(unique.rows.length > 0, t.otherUnique, t.name);
      }
      db.close();
    } finally {
      await client.end();
    }
  });

  test('property: random changes through the owners\' classes, shipped at random points: PostgreSQL then holds the local rows, and a load gives them back', async () => {
    const client = await freshPg();
    const text = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/\u0000/g, '')); // NUL: its own test below
    const docId = fc.constantFrom('/subscriptions/S/resourceGroups/rg', '/subscriptions/s/resourceGroups/RG/providers/p/vm/a', '/subscriptions/s/resourceGroups/rg/providers/p/vm/b', "/x/it's");
    const agentId = fc.constantFrom('a1', 'a2', 'A1', 'ä3');
    const tokenName = fc.constantFrom('t', 'T', 'tok', "o'brien", 'back\\slash');
    const hook = fc.constantFrom('https://h.example/1', 'https://h.example/2');
    const op = fc.oneof(
      fc.record({ k: fc.constant('docPut' as const), id: docId, parent: docId, kind: fc.constantFrom<DocKind>('virtualMachine', 'extension', 'operation'), body: fc.jsonValue({ maxDepth: 2 }) }),
      fc.record({ k: fc.constant('docDelete' as const), id: docId }),
      fc.record({ k: fc.constant('agentAdd' as const), id: agentId, cert: text, at: fc.maxSafeNat() }),
      fc.record({ k: fc.constant('agentRevoke' as const), id: agentId, at: fc.maxSafeNat() }),
      fc.record({ k: fc.constant('agentGoal' as const), id: agentId, goalStateId: fc.nat() }),
      fc.record({ k: fc.constant('opAdd' as const), key: text, agent: agentId, answered: fc.option(fc.jsonValue({ maxDepth: 1 })) }),
      fc.record({ k: fc.constant('status' as const), rows: fc.array(fc.record({ agentId, receivedAtMs: fc.maxSafeNat(), json: text }), { maxLength: 4 }) }),
      fc.record({ k: fc.constant('tokenCreate' as const), name: tokenName, by: text, expires: fc.maxSafeNat() }),
      fc.record({ k: fc.constant('tokenDelete' as const), name: tokenName }),
      fc.record({ k: fc.constant('package' as const), key: fc.constantFrom('extension:p.a', 'extension:p.b'), version: fc.constantFrom('1.0', '1.1', '2.0'), size: fc.maxSafeNat() }),
      fc.record({ k: fc.constant('hookAdd' as const), hook, seq: fc.maxSafeNat(), body: text }),
      fc.record({ k: fc.constant('hookAttempt' as const), hook, seq: fc.maxSafeNat(), attempts: fc.nat() }),
      fc.record({ k: fc.constant('hookRemove' as const), hook, seq: fc.maxSafeNat() }),
      fc.record({ k: fc.constant('raw' as const), sql: fc.constantFrom(...RAW), a: text, b: text }),
      fc.record({ k: fc.constant('ship' as const) }),
    );
    const dataDir = tempDir();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
          await truncateSide(client);
          const db = await workingCopy(client);
          const docs = new Documents(db);
          const agents = new AgentStore(db);
          const tokens = new EnrollmentTokens(db, []);
          const packages = new PackageStore(db, dataDir);
          const outbox = new WebhookOutbox(db, new SqliteEventLogReader(db));
          const seqs: number[] = [];
          for (const o of ops) {
            switch (o.k) {
              case 'docPut': docs.put(o.id, o.parent, o.kind, o.body); break;
              case 'docDelete': docs.delete(o.id); break;
              case 'agentAdd':
                if (agents.loadAgents().some((a) => a.record.agentId === o.id)) break;
                agents.addAgent({
                  agentId: o.id, machineId: `m-${o.id}`, resourceId: `/r/${o.id}`, fingerprint: 'f', machineCertPem: o.cert, thumbprint: 't', enrolledAtMs: o.at, revokedAtMs: null,
                  info: { agentVersion: '1', osName: 'linux', osVersion: '22', computerName: o.cert },
                }, { goalStateId: 1, contentHash: 'h', entries: {} });
                break;
              case 'agentRevoke': agents.revoke(o.id, o.at); break;
              case 'agentGoal': agents.putGoal(o.id, { goalStateId: o.goalStateId, contentHash: 'h2', entries: {} }); break;
              case 'opAdd': {
                const rec = { key: o.key, agentId: o.agent, machineId: 'm', artifactKey: 'extension:p.a', kind: 'install', toVersion: '1.0' };
                if (o.answered === null) agents.addOperation(rec);
                else agents.answer(o.key, o.answered);
                break;
              }
              case 'status': agents.putStatuses(o.rows); break;
              case 'tokenCreate': tokens.create(o.name, { subscriptionId: 's', resourceGroup: 'rg', location: 'here' }, o.expires, o.by, 7); break;
              case 'tokenDelete': tokens.delete(o.name); break;
              case 'package': {
                if (packages.has(o.key, o.version)) break;
                const tmp = join(packages.dir, `upload-${o.version}`);
                writeFileSync(tmp, o.version);
                packages.keep(tmp, { artifactKey: o.key, version: o.version, sha256: `${o.version}`.padEnd(64, '0'), size: o.size, signature: { s: o.key } as never, uploadedAtMs: o.size });
                break;
              }
              case 'hookAdd': outbox.add([{ hook: o.hook, seq: o.seq, type: 'x', body: o.body, attempts: 0 }], o.seq); seqs.push(o.seq); break;
              case 'hookAttempt': outbox.attempted(o.hook, seqs[o.seq % Math.max(1, seqs.length)] ?? o.seq, o.attempts); break;
              case 'hookRemove': outbox.remove(o.hook, seqs[o.seq % Math.max(1, seqs.length)] ?? o.seq); break;
              case 'raw':
                try {
                  db.prepare(o.sql).run(...[o.a, o.b].slice(0, (o.sql.match(/\?/g) ?? []).length));
                } catch (err) {
                  assert.match((err as Error).message, /constraint failed/); // a key taken: nothing changed
                }
                break;
              case 'ship': await ship(client, db); break;
            }
          }
          await ship(client, db);
          const local = localRows(db);
          assert.deepEqual(await pgRows(client, db), local);
          assert.equal(takeChanges(db), null, 'a second ship with nothing changed');
          const fresh = await workingCopy(client);
          assert.deepEqual(localRows(fresh), local);
          assert.equal(takeChanges(fresh), null, 'the load records no change');
          fresh.close();
          db.close();
        }),
        { numRuns: 100 },
      );
    } finally {
      await client.end();
    }
  });

  test('nasty values: quotes, backslashes, dollar quotes, unicode, a megabyte of text, NULLs and integers at the edges of 64 bits go and come back exact', async () => {
    const client = await freshPg();
    try {
      const db = await workingCopy(client);
      const nasty = ["'", "''", "\\", "\\'", "E'\\x00'", '$$; DROP TABLE agents; $$',
        '"quoted"', '\n\r\t', '\u202Eevil', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👩‍👩‍👧', '\uFEFF', 'x'.repeat(1 << 20), ''];
      const put = db.prepare('INSERT INTO agent_ops (key, agent_id, machine_id, artifact_key, kind, to_version, answer) VALUES (?, ?, ?, ?, ?, ?, ?)');
      // Keys up to MAX_KEY_BYTES (PostgreSQL's index limit, its own test below); other columns of any length.
      nasty.forEach((s, i) => put.run(`${i}${s.slice(0, MAX_KEY_BYTES - 10)}`, s, s, s, s, s, i % 2 === 0 ? null : s));
      put.run('é'.repeat(MAX_KEY_BYTES / 2), 'x', 'x', 'x', 'x', 'x', null);
      const hook = db.prepare('INSERT INTO webhook_outbox (hook, seq, type, body, attempts) VALUES (?, ?, ?, ?, ?)').safeIntegers(true);
      for (const seq of [0n, 1n, -1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)]) hook.run("it's", seq, 't', '\\', seq);
      db.prepare('INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)').run('a', 'm', 'r', 'f', 'c', 't', 1, '{}', '{}');
      assert.equal(await ship(client, db), true);
      const local = localRows(db);
      assert.deepEqual(await pgRows(client, db), local);
      const fresh = await workingCopy(client);
      assert.deepEqual(localRows(fresh), local);
      const big = fresh.prepare('SELECT seq FROM webhook_outbox ORDER BY seq').safeIntegers(true).pluck().all();
      assert.deepEqual(big, [-(2n ** 63n), -1n, 0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n]);
      assert.equal(fresh.prepare('SELECT revoked_at FROM agents').pluck().get(), null);
      fresh.close();
      db.close();
    } finally {
      await client.end();
    }
  });

  test('a value PostgreSQL cannot hold the same (a NUL character, a fraction in an integer column, a key over its index limit) is a clear error; nothing is forgotten or shipped', async () => {
    const client = await freshPg();
    try {
      const db = await workingCopy(client);
      db.prepare('INSERT INTO agent_status (agent_id, received_at, report) VALUES (?, ?, ?)').run('ok', 1, '{}');
      db.prepare('INSERT INTO agent_status (agent_id, received_at, report) VALUES (?, ?, ?)').run('nul', 1, 'a\u0000b');
      assert.throws(() => takeChanges(db), /agent_status .*"nul".*report holds a NUL character/);
      db.prepare('UPDATE agent_status SET report = ? WHERE agent_id = ?').run('ab', 'nul');
      db.prepare('INSERT INTO agent_status (agent_id, received_at, report) VALUES (?, ?, ?)').run('half', 1.5, '{}');
      assert.throws(() => takeChanges(db), /agent_status .*"half".*received_at holds a fractional number \(1\.5\), not an integer/);
      db.prepare('DELETE FROM agent_status WHERE agent_id = ?').run('half');
      const longKey = `/subscriptions/${'s'.repeat(1000)}/resourceGroups/${'r'.repeat(1000)}/providers/p/${'v'.repeat(1000)}`; // segments the API accepts
      // The API refuses such an id before it is stored (MAX_ID_BYTES); a row an older Phasewise kept is refused by the ship, by name.
      assert.throws(() => new Documents(db).put(longKey, '/', 'virtualMachine', {}), /at most 2048 are accepted/);
      db.prepare('INSERT INTO arm_documents (key, parent, kind, id, body) VALUES (?, ?, ?, ?, ?)').run(longKey.toLowerCase(), '/', 'virtualMachine', longKey, '{}');
      assert.throws(() => takeChanges(db), /arm_documents: a key of 3044 bytes .*PostgreSQL's index takes keys up to 2700 bytes/);
      new Documents(db).delete(longKey);
      assert.deepEqual((await pgRows(client, db)).agent_status, []);
      assert.equal(await ship(client, db), true, 'the changes recorded before the errors are still there');
      assert.deepEqual(await pgRows(client, db), localRows(db));
      db.close();
    } finally {
      await client.end();
    }
  });

  test('a ship PostgreSQL refuses (the fence fails in its transaction) changes nothing there; shipped again, it lands', async () => {
    const client = await freshPg();
    try {
      const db = await workingCopy(client);
      new Documents(db).put('/a', '/', 'virtualMachine', { v: 1 });
      await ship(client, db);
      const docs = new Documents(db);
      docs.put('/a', '/', 'virtualMachine', { v: 2 });
      docs.put('/b', '/', 'virtualMachine', { v: 3 });
      const before = await pgRows(client, db);
      const pending = pendingChanges(db)!;
      // As the leader's commit chain runs it: the fence first, in the same transaction. This replica holds no lease.
      await assert.rejects(client.query(`SELECT phasewise_fence('engine', 'me', 1);\n${pending.sql}`), /no longer holds the engine lease/);
      await assert.rejects(client.query(`${pending.sql};\nSELECT 1/0`), /division by zero/);
      assert.deepEqual(await pgRows(client, db), before);
      docs.delete('/a'); // a change made meanwhile travels with the retry
      assert.equal(await ship(client, db), true);
      assert.deepEqual(await pgRows(client, db), localRows(db));
      pending.done(); // late: forgets only what it carried
      assert.equal(takeChanges(db), null);
      db.close();
    } finally {
      await client.end();
    }
  });

  test('pendingChanges: done() forgets only the changes its text carried, even late; changes made after the text was built are shipped next', async () => {
    const client = await freshPg();
    try {
      const db = await workingCopy(client);
      const docs = new Documents(db);
      docs.put('/a', '/', 'virtualMachine', { v: 1 });
      const first = pendingChanges(db)!;
      docs.put('/b', '/', 'virtualMachine', { v: 2 });
      await client.query(first.sql);
      first.done();
      assert.equal(await ship(client, db), true);
      assert.deepEqual(await pgRows(client, db), localRows(db));
      assert.equal(pendingChanges(db), null);

      // Two texts in flight; the later one lands first and empties the outbox; a change follows; the earlier one's done() comes last.
      docs.put('/c', '/', 'virtualMachine', { v: 3 });
      const early = pendingChanges(db)!;
      docs.put('/d', '/', 'virtualMachine', { v: 4 });
      const late = pendingChanges(db)!;
      await client.query(late.sql);
      late.done();
      docs.put('/e', '/', 'virtualMachine', { v: 5 });
      early.done();
      assert.match(takeChanges(db) ?? '', /'\/e'/, 'the change made after both texts is still to ship');
      db.close();
    } finally {
      await client.end();
    }
  });

  test('the outbox is emptied as ships go (not at every ship: that would be a commit each); changes made while a text is in flight survive it', async () => {
    const client = await freshPg();
    try {
      const db = await workingCopy(client);
      const docs = new Documents(db);
      let largest = 0;
      for (let round = 0; round < 200; round++) {
        for (let i = 0; i < 50; i++) docs.put(`/d/${(round * 50 + i) % 700}`, '/', 'virtualMachine', { round, i });
        const p = pendingChanges(db)!;
        for (let i = 0; i < 5; i++) docs.put(`/late/${round}-${i}`, '/', 'operation', { round });
        if (round % 7 === 3) docs.delete(`/late/${round - 1}-0`);
        await client.query(p.sql);
        p.done();
        largest = Math.max(largest, db.prepare('SELECT count(*) FROM side_changes').pluck().get() as number);
      }
      assert.equal(await ship(client, db), true);
      assert.deepEqual(await pgRows(client, db), localRows(db));
      assert.ok(largest < 4096 + 60, `the outbox held at most ${largest} rows, 11,000 changes went through it`);
      assert.equal(pendingChanges(db), null);
      db.close();
    } finally {
      await client.end();
    }
  });

  test('reports the status writer thread commits on its own connection are captured and shipped', async () => {
    const client = await freshPg();
    try {
      const file = join(tempDir(), 'side.sqlite');
      const db = await workingCopy(client, file);
      db.pragma('journal_mode = WAL');
      const store = new AgentStore(db);
      const seen: string[] = [];
      const writer = new StatusWriter(store, (agentId) => seen.push(agentId), undefined, file);
      const reports = Array.from({ length: 40 }, (_, i) => ({ agentId: `agent-${i % 7}`, report: statusReport({ goalStateId: i }) }));
      await Promise.all(reports.map((r, i) => writer.write(r.agentId, r.report, Buffer.from(JSON.stringify({ ...r.report, note: "o'k ü" }), 'utf8'), 1000 + i)));
      await writer.close();
      assert.equal(seen.length, 40);
      assert.equal(await ship(client, db), true);
      const local = localRows(db);
      assert.equal(local.agent_status!.length, 7);
      assert.deepEqual(await pgRows(client, db), local);
      db.close();
    } finally {
      await client.end();
    }
  });

  test('enrollment tokens: digests swapped between two names, and a row INSERT OR REPLACE removes for its digest, ship without breaking the unique digest', async () => {
    const client = await freshPg();
    try {
      const db = await workingCopy(client);
      const put = db.prepare('INSERT INTO agent_enrollment_tokens VALUES (?, ?, \'s\', \'rg\', \'l\', 1, \'me\', 1)');
      put.run('a', 'd1');
      put.run('b', 'd2');
      put.run('c', 'd3');
      await ship(client, db);
      db.transaction(() => {
        db.prepare('UPDATE agent_enrollment_tokens SET digest = ? WHERE name = ?').run('tmp', 'a');
        db.prepare('UPDATE agent_enrollment_tokens SET digest = ? WHERE name = ?').run('d1', 'b');
        db.prepare('UPDATE agent_enrollment_tokens SET digest = ? WHERE name = ?').run('d2', 'a');
      })();
      db.prepare('INSERT OR REPLACE INTO agent_enrollment_tokens VALUES (?, ?, \'s\', \'rg\', \'l\', 1, \'me\', 1)').run('d', 'd3'); // removes c
      assert.equal(await ship(client, db), true);
      assert.deepEqual(await pgRows(client, db), localRows(db));
      assert.deepEqual((await pgRows(client, db)).agent_enrollment_tokens!.map((r) => (JSON.parse(r) as string[]).slice(0, 2)), [['a', 'd2'], ['b', 'd1'], ['d', 'd3']]);
      db.close();
    } finally {
      await client.end();
    }
  });

  test('the load replaces a stale working copy in one transaction; against an unmigrated database it fails clearly and changes nothing', async () => {
    const client = await freshPg();
    try {
      const leader = await workingCopy(client);
      new Documents(leader).put('/kept', '/', 'virtualMachine', { v: 1 });
      await ship(client, leader);
      const stale = emptySqlite();
      ensureSideTables(stale);
      stale.prepare("INSERT INTO arm_documents VALUES ('/gone', '/', 'virtualMachine', '/gone', '{}')").run();
      await loadSideTables(client, stale);
      assert.deepEqual(localRows(stale), localRows(leader));

      const empty = await connect(await createDatabase(server().url, 'side_empty'));
      const before = localRows(stale);
      await assert.rejects(loadSideTables(empty, stale), /schema is at version 0; the side tables need version 4/);
      assert.deepEqual(localRows(stale), before);
      await empty.end();

      // A failure in the middle (a table PostgreSQL no longer has) rolls the working copy back; the capture triggers stay as they were.
      installCapture(stale);
      await client.query('ALTER TABLE webhook_outbox RENAME TO webhook_outbox_x');
      await assert.rejects(loadSideTables(client, stale), /webhook_outbox/);
      await client.query('ALTER TABLE webhook_outbox_x RENAME TO webhook_outbox');
      assert.deepEqual(localRows(stale), before);
      stale.prepare("INSERT INTO arm_documents VALUES ('/new', '/', 'virtualMachine', '/new', '{}')").run();
      assert.match(takeChanges(stale) ?? '', /'\/new'/);
      stale.close();
      leader.close();
    } finally {
      await client.end();
    }
  });

  test('property: quote() writes the literal pg.escapeLiteral writes, and PostgreSQL reads it back as the same text', async () => {
    const client = await freshPg();
    try {
      const tricky = fc.string({ unit: fc.constantFrom("'", '\\', 'E', '$', '"', '\n', 'ü', '😀', 'a'), maxLength: 30 });
      await fc.assert(
        fc.asyncProperty(fc.oneof(tricky, fc.string({ unit: 'binary', maxLength: 30 })), async (raw) => {
          const text = raw.replace(/\u0000/g, '');
          assert.equal(quote(text).trim(), pg.escapeLiteral(text).trim());
          const { rows } = await client.query<{ v: string }>(`SELECT ${quote(text)} AS v`);
          assert.equal(rows[0]!.v, Buffer.from(text, 'utf8').toString('utf8')); // a lone surrogate travels as U+FFFD
        }),
        { numRuns: 300 },
      );
    } finally {
      await client.end();
    }
  });

  test('a load reads large tables in pages along their keys (one column and two, text and 64-bit integers) and misses no row', async () => {
    const client = await freshPg();
    try {
      const db = await workingCopy(client);
      const hook = db.prepare('INSERT INTO webhook_outbox (hook, seq, type, body, attempts) VALUES (?, ?, ?, ?, ?)').safeIntegers(true);
      const doc = db.prepare("INSERT INTO arm_documents VALUES (?, '/', 'operation', ?, '{}')");
      db.transaction(() => {
        // Keys that sort differently as text and as numbers, and hooks whose pages end in the middle of a hook's seqs.
        for (let i = 0; i < 12_345; i++) hook.run(`h${i % 3}`, BigInt(i % 2 === 0 ? i : -i) * 1_000_000_007n, 't', 'b', 0n);
        for (let i = 0; i < 11_111; i++) doc.run(`/doc/${i}`, `/Doc/${i}`);
      })();
      await ship(client, db);
      const fresh = emptySqlite();
      const { rows } = await loadSideTables(client, fresh);
      assert.equal(rows, 12_345 + 11_111);
      assert.deepEqual(localRows(fresh), localRows(db));
      fresh.close();
      db.close();
    } finally {
      await client.end();
    }
  });

  test('takeChanges refuses to run inside an open SQLite transaction', async () => {
    const client = await freshPg();
    try {
      const db = await workingCopy(client);
      assert.throws(() => db.transaction(() => takeChanges(db))(), /outside a transaction/);
      db.close();
    } finally {
      await client.end();
    }
  });
});
