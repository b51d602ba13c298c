/**
 * `phasewise db check | backup | restore` on PostgreSQL, run as real processes against a throw-away
 * server: the report, a consistent snapshot as a SQLite file (serve's side tables included), its restore
 * into an empty database with the same content, and clear exits for a server that cannot be reached and a newer schema.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { EnrollmentTokens } from '../src/api/agent/enrollment-tokens.js';
import { Documents } from '../src/api/arm/documents.js';
import { connect } from '../src/store/postgres/connect.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import type { EmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { PG_SCHEMA_VERSION } from '../src/store/postgres/schema.js';
import { installCapture, takeChanges } from '../src/store/postgres/side-capture.js';
import { loadSideTables } from '../src/store/postgres/side-load.js';
import { emptySqlite } from '../src/store/postgres/snapshot.js';
import { baseScenario } from './helpers/harness.js';
import { downgradeToV4 } from './helpers/sqlite-versions.js';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'phasewise-pg-cli-'));
let server: EmbeddedPostgres;
let url: string;
before(async () => {
  server = await startEmbeddedPostgres();
  url = server.url;
  const store = await PgStore.open(url);
  const scenario = compileScenario(baseScenario({ seed: 4 }), 'test');
  await store.importState(scenario.state);
  const sim = new Simulation(scenario, { store });
  for (let i = 0; i < 60 && sim.step(); i++) await store.settled();
  await store.end();
  // serve's side tables, as a leader ships them (side-capture.ts).
  const client = await connect(url);
  const db = emptySqlite();
  await loadSideTables(client, db);
  installCapture(db);
  const docs = new Documents(db);
  docs.put('/subscriptions/s/resourceGroups/rg', '/subscriptions/s', 'resourceGroup', { tags: { it: "o'k \\ ü" } });
  docs.put('/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm', '/subscriptions/s/resourceGroups/rg', 'virtualMachine', {});
  new EnrollmentTokens(db, []).create('ci', { subscriptionId: 's', resourceGroup: 'rg', location: 'here' }, 10, 'me', 1);
  await client.query(takeChanges(db)!);
  db.close();
  await client.end();
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return r;
}

async function database(name: string): Promise<string> {
  const c = new pg.Client(url);
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return url.replace(/\/phasewise$/, `/${name}`);
}

interface Report {
  ok: boolean;
  schemaVersion: number;
  counts: Record<string, number>;
  lease?: { token: number } | null;
}

describe('db on PostgreSQL', () => {
  test('check reports the schema, what the database holds and the lease; backup and restore carry everything', async () => {
    const check = run('db', 'check', '--db', url, '--json');
    assert.equal(check.status, 0, check.stderr);
    const report = JSON.parse(check.stdout) as Report;
    assert.equal(report.ok, true);
    assert.equal(report.schemaVersion, PG_SCHEMA_VERSION);
    assert.equal(report.counts.machines, 45);
    assert.ok(report.counts.events! > 10);
    assert.equal(report.lease?.token, 0);

    const copy = join(dir, 'backup.sqlite');
    const backup = run('db', 'backup', copy, '--db', url);
    assert.equal(backup.status, 0, backup.stderr);
    assert.doesNotMatch(backup.stdout, /phasewise:phasewise@/, 'the password is not printed');
    const copied = JSON.parse(run('db', 'check', '--db', copy, '--json').stdout) as Report;
    assert.equal(copied.ok, true);
    assert.deepEqual(copied.counts, report.counts);
    assert.equal(run('db', 'backup', copy, '--db', url).status, 2, 'a backup never overwrites');

    const target = await database('restored');
    const restore = run('db', 'restore', copy, '--db', target);
    assert.equal(restore.status, 0, restore.stderr);
    const restored = JSON.parse(run('db', 'check', '--db', target, '--json').stdout) as Report;
    assert.deepEqual(restored.counts, report.counts);
    assert.deepEqual([report.counts.arm_documents, report.counts.agent_enrollment_tokens, report.counts.agents], [2, 1, 0], 'the side tables are counted');
    const sideRows = async (where: string) => {
      const c = new pg.Client(where);
      await c.connect();
      const out = [(await c.query('SELECT * FROM arm_documents ORDER BY key')).rows, (await c.query('SELECT * FROM agent_enrollment_tokens')).rows];
      await c.end();
      // cv (the commit version that wrote a row, for followers: side-apply.ts) is PostgreSQL's alone: a restore writes at its own.
      return out.map((rows) => rows.map(({ cv: _cv, ...r }: Record<string, unknown>) => r));
    };
    assert.deepEqual(await sideRows(target), await sideRows(url), 'backup and restore carry the side tables\' rows');
    const again = run('db', 'restore', copy, '--db', target);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already holds a fleet/);
    // The restored database loads the same engine state and log.
    const [a, b] = [await PgStore.open(url), await PgStore.open(target)];
    assert.deepEqual(JSON.parse(JSON.stringify(b.pendingActions())), JSON.parse(JSON.stringify(a.pendingActions())));
    const events = async (s: PgStore) => {
      const out: unknown[] = [];
      for await (const e of s.events()) out.push(e);
      return out;
    };
    assert.deepEqual(await events(b), await events(a));
    assert.equal(b.load()!.eventSeq, a.load()!.eventSeq);
    await a.end();
    await b.end();
  });

  test('a server that cannot be reached exits 8 with a clear message and no password', () => {
    const r = run('db', 'check', '--db', 'postgres://someone:secret@127.0.0.1:1/nowhere');
    assert.equal(r.status, 8);
    assert.match(r.stderr, /cannot reach PostgreSQL at postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nowhere/);
    assert.doesNotMatch(r.stderr, /secret/);
  });

  test('serve on a database it cannot write (a read-only standby, or the URL\'s options) exits 6 naming the store, without the password', async () => {
    const ro = `${await database('readonly1')}?options=-c%20default_transaction_read_only%3Don`;
    const r = spawnSync(process.execPath, [cli, 'serve', '--store', ro], {
      cwd: root, encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, PHASEWISE_SECRET_KEY: 'ab'.repeat(32), PHASEWISE_TOKEN: 'tok-0123456789abcdef0123456789', PHASEWISE_DATA_DIR: join(dir, 'ro'), PHASEWISE_PORT: '0',
        PHASEWISE_HOST: '127.0.0.1' },
    });
    // Before: exit 1 and only "cannot execute CREATE TABLE in a read-only transaction", no word of PostgreSQL or which one.
    assert.equal(r.status, 6, r.stderr);
    assert.match(r.stderr, /PostgreSQL at postgres:\/\/phasewise:\*\*\*@127\.0\.0\.1:\d+\/readonly1\?options=.*read-only transaction/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.doesNotMatch(r.stderr, new RegExp(`:${new URL(url).password}@`), 'no password');
  });

  test('a database from a newer Phasewise: check exits 4 and the database is left as it was', async () => {
    const target = await database('newer');
    (await PgStore.open(target)).close();
    const c = new pg.Client(target);
    await c.connect();
    const newer = PG_SCHEMA_VERSION + 1; // one this Phasewise does not know, whatever its own is
    await c.query('UPDATE phasewise_schema SET version = $1', [newer]);
    const r = run('db', 'check', '--db', target);
    assert.equal(r.status, 4);
    assert.match(r.stderr, new RegExp(`schema version ${newer}, newer than this Phasewise \\(${PG_SCHEMA_VERSION}\\)`));
    assert.equal((await c.query('SELECT version FROM phasewise_schema')).rows[0].version, newer);
    await c.end();
  });
});

describe('db on PostgreSQL under faults', () => {
  // A password with the characters a URL pattern trips on: the raw '@' and ':' and an escaped '%'.
  const password = 'p@ss%w:rd';
  const asOdd = (name: string) => url.replace(/^postgres:\/\/[^/]*@/, 'postgres://odd:p@ss%25w:rd@').replace(/\/phasewise$/, `/${name}`);
  const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
  const hidesPassword = (text: string) => {
    for (const part of [password, 'ss%w', 'ss%25w', 'w:rd']) assert.ok(!text.includes(part), `the password is not printed: ${text}`);
  };
  before(async () => {
    const c = new pg.Client(url);
    await c.connect();
    await c.query(`CREATE ROLE odd LOGIN PASSWORD '${password}'`);
    await c.query('CREATE DATABASE odd_target OWNER odd');
    await c.end();
  });

  test('a password with @, % and : is never printed, in answers or failures; a backup that fails halfway leaves no file', async () => {
    const copy = join(dir, 'for-odd.sqlite');
    assert.equal(run('db', 'backup', copy, '--db', url).status, 0);
    const restore = run('db', 'restore', copy, '--db', asOdd('odd_target'));
    assert.equal(restore.status, 0, restore.stderr);
    hidesPassword(restore.stdout + restore.stderr);
    const folder = join(dir, 'odd-backups');
    mkdirSync(folder);
    const good = run('db', 'backup', join(folder, 'whole.sqlite'), '--db', asOdd('odd_target'));
    assert.equal(good.status, 0, good.stderr);
    hidesPassword(good.stdout + good.stderr);
    // Reading the event log (copied late) is refused to this role: the copy fails after most tables are written.
    const admin = new pg.Client(url.replace(/\/phasewise$/, '/odd_target'));
    await admin.connect();
    await admin.query('REVOKE SELECT ON events FROM odd');
    await admin.end();
    const half = join(folder, 'half.sqlite');
    const failed = run('db', 'backup', half, '--db', asOdd('odd_target'));
    assert.equal(failed.status, 6, failed.stderr);
    assert.match(failed.stderr, /permission denied/);
    hidesPassword(failed.stdout + failed.stderr);
    assert.ok(!existsSync(half), 'no partial backup under the name: it would pass db check');
    assert.deepEqual(readdirSync(folder), ['whole.sqlite'], 'no temporary file is left');
    for (const [args, pattern] of [
      [['db', 'check', '--db', asOdd('nowhere_db')], /database "nowhere_db" does not exist/],
      [['db', 'check', '--db', asOdd('odd_target').replace('ss%25w', 'xx%25w')], /password authentication failed/],
    ] as const) {
      const r = run(...args);
      assert.equal(r.status, 8, r.stderr);
      assert.match(r.stderr, pattern);
      hidesPassword(r.stdout + r.stderr);
    }
  });

  test('backup targets: a folder, a missing folder or an empty name is refused before the database is read (exit 2)', () => {
    for (const [target, pattern] of [[dir, /is a folder/], [join(dir, 'no', 'such', 'b.sqlite'), /does not exist; create it first/], ['', /needs a file name/]] as const) {
      const r = run('db', 'backup', target, '--db', url);
      assert.equal(r.status, 2, `${target}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
    assert.ok(!existsSync(join(dir, 'no')));
  });

  test('restore: a file of an older schema is restored whole and left unchanged; a file with no Phasewise schema is refused and the database untouched', async () => {
    const file = join(dir, 'v4.sqlite');
    assert.equal(run('db', 'backup', file, '--db', url).status, 0);
    const events = downgradeToV4(file);
    const before = sha(file);
    const target = await database('from_v4');
    const r = run('db', 'restore', file, '--db', target);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(sha(file), before, 'the file restored from is not migrated in place');
    const c = new pg.Client(target);
    await c.connect();
    assert.equal(Number((await c.query('SELECT count(*) AS n FROM events')).rows[0].n), events);
    const original = new pg.Client(url);
    await original.connect();
    const bodies = async (cl: pg.Client) => (await cl.query('SELECT body FROM events ORDER BY seq')).rows.map((x: { body: string }) => x.body);
    assert.deepEqual(await bodies(c), await bodies(original));
    await original.end();
    await c.end();

    const empty = join(dir, 'empty.sqlite');
    new Database(empty).close(); // an SQLite file with nothing in it
    const other = await database('untouched');
    const refused = run('db', 'restore', empty, '--db', other);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /holds no Phasewise data/);
    const o = new pg.Client(other);
    await o.connect();
    assert.equal((await o.query("SELECT to_regclass('phasewise_schema') AS t")).rows[0].t, null, 'the database was not migrated either');
    await o.end();
  });
});
