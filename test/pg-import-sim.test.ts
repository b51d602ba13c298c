/**
 * Issue 15 at scale: the PostgreSQL import (COPY, one transaction) writes the rows SQLite's import
 * writes and loads back the same state; a failed import leaves the database empty; and
 * `phasewise sim --store postgres://…` (a real process against a throw-away server) commits the run
 * tick by tick with the in-memory run's event log, refuses a database that holds a fleet, and ends
 * with a clear exit when a commit fails.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { EngineState } from '../src/engine/state.js';
import { compileScenario } from '../src/sim/scenario.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import type { EmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { StoreError } from '../src/store/sqlite/database.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { baseScenario, everyStepScenario } from './helpers/harness.js';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'phasewise-pg-import-'));
let server: EmbeddedPostgres;
let dbs = 0;

before(async () => {
  server = await startEmbeddedPostgres();
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A new empty database on the test's server. */
async function database(): Promise<string> {
  const name = `t${++dbs}`;
  const c = new pg.Client(server.url);
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return server.url.replace(/\/phasewise$/, `/${name}`);
}

/** BIGINT as numbers, as SQLite gives them (and as the store reads them). */
const types = { getTypeParser: ((oid: number, format?: 'text') => (oid === 20 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser };

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url, types });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

/** The fleet tables' indexes and constraints, which an import drops and builds again (FLEET_INDEXES). */
async function fleetIndexes(url: string): Promise<string[]> {
  const indexes = await query<{ d: string }>(url, "SELECT indexname || ': ' || indexdef AS d FROM pg_indexes WHERE tablename IN ('machines', 'instances', 'machine_health')");
  const constraints = await query<{ d: string }>(url, "SELECT conname || ': ' || pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid IN ('machines'::regclass, 'instances'::regclass)");
  return [...indexes, ...constraints].map((r) => r.d).sort();
}

/** A scenario's state with texts COPY must escape: a backslash, a tab, a newline and a carriage return. */
function awkwardState(): EngineState {
  const state = compileScenario(everyStepScenario(), 'test').state;
  const [first] = state.fleet.machines.values();
  first!.resourceGroup = 'rg\\with\ttab\nnew line\rreturn';
  const inst = [...state.fleet.instances.values()][0]!.get(first!.id)!;
  inst.settings = { path: 'C:\\agent\\bin', note: 'tab\there' };
  state.fleet.health.set(first!.id, { platform: false });
  return state;
}

/** Tables and the order that makes their rows comparable between the two stores. */
const COMPARED: Record<string, string> = {
  regions: 'name', scale_sets: 'id', availability_sets: 'id', machines: 'ord', instances: 'ord', machine_health: 'machine_id',
  catalog_types: 'key', catalog_versions: 'type_key, version', meta: 'key', timers: 'id',
};

describe('importing into PostgreSQL', () => {
  test('writes exactly the rows SQLite\'s import writes, escaped texts included, and loads back the same state', async () => {
    const url = await database();
    const pgStore = await PgStore.open(url);
    await pgStore.importState(awkwardState(), { load: false });
    assert.equal(pgStore.isInitialised(), true);
    assert.throws(() => pgStore.load(), /open the store again/);
    await pgStore.end();
    const file = join(dir, 'same.sqlite');
    const sqlite = SqliteStore.open(file, { mode: 'new' });
    sqlite.importState(awkwardState());
    sqlite.close();

    const db = new Database(file, { readonly: true });
    try {
      for (const [table, order] of Object.entries(COMPARED)) {
        const want = db.prepare(`SELECT * FROM ${table} ORDER BY ${order}`).all();
        const got = await query(url, `SELECT * FROM ${table} ORDER BY ${order}`);
        if (['machines', 'instances', 'machine_health', 'meta', 'regions', 'scale_sets'].includes(table)) assert.ok(want.length > 0, `${table} has rows to compare`);
        // cv (the commit version that wrote a fleet row, for followers: read-model.ts) is PostgreSQL's alone; an import leaves it NULL.
        assert.ok(got.every((r) => r.cv === undefined || r.cv === null), `${table}: an import stamps no commit version`);
        assert.deepStrictEqual(got.map(({ cv: _cv, ...r }) => r), want, `table ${table}`);
      }
    } finally {
      db.close();
    }

    const loaded = await PgStore.open(url);
    const fromPg = loaded.load()!;
    await loaded.end();
    const fromSqlite = SqliteStore.open(file, { mode: 'existing' });
    const expected = fromSqlite.load()!;
    fromSqlite.close();
    const fleetOf = (s: EngineState) => ({
      machines: [...s.fleet.machines.values()],
      instances: [...s.fleet.instances.values()].flatMap((m) => [...m.values()]),
      health: [...s.fleet.health],
      unhealthy: [...s.fleet.unhealthy].sort(),
      regions: [...s.fleet.regions.values()],
      sets: [...s.fleet.scaleSets.values(), ...s.fleet.availabilitySets.values()],
    });
    assert.deepStrictEqual(fleetOf(fromPg), fleetOf(expected));
    assert.equal(fromPg.fleet.machines.values().next().value!.resourceGroup, 'rg\\with\ttab\nnew line\rreturn');
    assert.deepStrictEqual(fromPg.catalog.listTypes(), expected.catalog.listTypes());
  });

  test('a failed import (a value that cannot be stored, a row the server refuses) leaves the database empty; a good one then succeeds', async () => {
    const url = await database();
    const store = await PgStore.open(url);
    const migrated = await fleetIndexes(url);
    for (const name of ['machines_pkey: PRIMARY KEY (id)', 'instances_pkey: PRIMARY KEY (artifact_key, machine_id)', 'machines_ord: CREATE INDEX', 'instances_ord: CREATE INDEX']) {
      assert.ok(migrated.some((d) => d.startsWith(name)), `${name} in ${migrated.join('; ')}`);
    }
    const sum = '(SELECT count(*) FROM machines) + (SELECT count(*) FROM instances) + (SELECT count(*) FROM regions) + (SELECT count(*) FROM meta)';
    const counts = async () => (await query<{ n: number }>(url, `SELECT ${sum} AS n`))[0]!.n;

    const notANumber = compileScenario(baseScenario(), 'test').state;
    const last = [...notANumber.fleet.machines.values()].at(-1)!;
    notANumber.fleet.machines.set(last.id, { ...last, placement: { ...last.placement, updateDomain: Number.NaN } });
    await assert.rejects(store.importState(notANumber), /cannot store the number NaN/);
    assert.equal(Number(await counts()), 0);

    const refused = compileScenario(baseScenario(), 'test').state;
    const inst = [...[...refused.fleet.instances.values()][0]!.values()].at(-1)!;
    (inst as { status: unknown }).status = null; // NOT NULL in the table: the server refuses the COPY
    await assert.rejects(store.importState(refused), (err: unknown) => err instanceof StoreError && /null value/.test(err.message));
    assert.equal(Number(await counts()), 0);

    assert.deepStrictEqual(await fleetIndexes(url), migrated, 'the failed imports left the indexes as they were');

    const good = compileScenario(baseScenario(), 'test').state;
    await store.importState(good);
    assert.deepStrictEqual(await fleetIndexes(url), migrated, 'the import built the indexes it dropped, as the migrations define them');
    assert.equal(store.load()!.fleet.machines.size, good.fleet.machines.size);
    const ords = await query<{ min: number; max: number; n: number }>(url, 'SELECT min(ord), max(ord), count(*) AS n FROM machines');
    assert.deepStrictEqual([ords[0]!.min, ords[0]!.max], [1, ords[0]!.n], 'ord starts at 1 again after the failed imports');
    await assert.rejects(store.importState(good), (err: unknown) => err instanceof StoreError && err.code === 'STORE_EXISTS');
    await store.end();
  });
});

describe('phasewise sim --store postgres://', () => {
  const scenarioFile = join(dir, 'every-step.json');
  before(() => writeFileSync(scenarioFile, JSON.stringify(everyStepScenario())));

  function sim(...args: string[]) {
    const r = spawnSync(process.execPath, [cli, 'sim', ...args, '--quiet'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    return r;
  }

  test('commits the run tick by tick into an empty database, with the event log of the in-memory run; a database with a fleet is refused', async () => {
    const url = await database();
    const memoryLog = join(dir, 'memory.jsonl');
    const pgLog = join(dir, 'pg.jsonl');
    const mem = sim(scenarioFile, '--events', memoryLog);
    assert.equal(mem.status, 0, mem.stderr);
    const r = sim(scenarioFile, '--store', url, '--events', pgLog);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /State and event log kept in postgres:\/\/phasewise:\*\*\*@127\.0\.0\.1:\d+\/t\d+ \([\d,]+ commits/);
    assert.ok(!r.stdout.includes(`:${new URL(url).password}@`), 'no password printed');
    const log = readFileSync(pgLog, 'utf8');
    assert.ok(log.split('\n').length > 100, 'a run with something in it');
    assert.equal(log, readFileSync(memoryLog, 'utf8'), 'the same event log as in memory');
    // What PostgreSQL holds is that run: every event, in order.
    const stored = await query<{ body: string }>(url, 'SELECT body FROM events ORDER BY seq');
    assert.deepStrictEqual(stored.map((e) => JSON.parse(e.body) as unknown), log.trim().split('\n').map((l) => JSON.parse(l) as unknown));

    const again = sim(scenarioFile, '--store', url);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already holds a fleet; sim needs an empty database/);
    assert.equal((await query(url, 'SELECT 1 FROM events')).length, stored.length, 'the refused run changed nothing');

    const replace = sim(scenarioFile, '--store', url, '--replace');
    assert.equal(replace.status, 2);
    assert.match(replace.stderr, /--replace: only for --store sqlite:FILE/);
  });

  test('a commit that fails mid-run (the schema changed under it) ends the run with the store\'s exit code and message', async () => {
    const url = await database();
    const child = spawn(process.execPath, [cli, 'sim', join(root, 'examples', 'demo.yaml'), '--quiet', '--store', url], { cwd: root });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Once the run has committed some ticks, a newer Phasewise "migrates" the database under it.
    for (let i = 0; i < 600; i++) {
      const rows = await query<{ present: boolean }>(url, "SELECT to_regclass('events') IS NOT NULL AS present").catch(() => [{ present: false }]);
      if (rows[0]!.present && (await query(url, 'SELECT 1 FROM events LIMIT 1')).length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await query(url, 'UPDATE phasewise_schema SET version = version + 1');
    const code = await exited;
    assert.equal(code, 4, stderr);
    assert.match(stderr, /the database schema changed under this replica/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });
});
