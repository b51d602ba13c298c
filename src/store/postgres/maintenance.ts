/**
 * `db check`, `db backup` and `db restore` on PostgreSQL. A backup is a consistent snapshot (one
 * REPEATABLE READ transaction) written as a Phasewise SQLite file: `db check` reads it, a single
 * Phasewise can run on it, and `db restore` loads it into an empty PostgreSQL database. (`pg_dump`
 * of the whole database works as well, with the server's own tools.)
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asStoreError, openDatabase, StoreError } from '../sqlite/database.js';
import type { OpenDatabase } from '../sqlite/database.js';
import { SCHEMA_VERSION } from '../sqlite/schema.js';
import type { CheckReport, RolloutRow } from '../sqlite/maintenance.js';
import { shownRollout } from '../sqlite/maintenance.js';
import { connect, migrate, pgStoreError, redact, schemaVersion } from './connect.js';
import { readLease } from './lease.js';
import type { LeaseView } from './lease.js';
import { PG_SCHEMA_VERSION } from './schema.js';
import { copyToSqlite, emptySqlite } from './snapshot.js';
import { literal } from './sql-batch.js';
import { eventRow } from './events.js';
import { iterateEvents } from '../sqlite/event-log.js';
import { SIDE_TABLES } from '../sqlite/side-schema.js';
import { SIDE_TABLES_PG_VERSION } from './side-load.js';
import { checkBackupTarget, writeBackup } from '../backup-target.js';

const COUNTED = ['machines', 'instances', 'rollouts', 'attempts', 'timers', 'events'] as const;

export interface PgCheckReport extends CheckReport {
  lease: LeaseView | null;
  openCommands: number;
}

export async function checkPostgres(url: string): Promise<PgCheckReport> {
  const client = await connect(url);
  try {
    const version = await schemaVersion(client);
    const base = { file: redact(url), schemaVersion: version, codeSchemaVersion: PG_SCHEMA_VERSION };
    if (version === 0) return { ...base, integrity: ['no Phasewise schema in this database'], counts: {}, rollouts: [], lease: null, openCommands: 0 };
    if (version > PG_SCHEMA_VERSION) throw new StoreError('STORE_NEWER', `${redact(url)} has schema version ${version}, newer than this Phasewise (${PG_SCHEMA_VERSION})`);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const counts: Record<string, number> = {};
    for (const t of COUNTED) counts[t] = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
    if (version >= SIDE_TABLES_PG_VERSION) {
      for (const { name } of SIDE_TABLES) counts[name] = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${name}`)).rows[0]!.n);
    }
    counts.pendingActions = Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM actions WHERE answered_at IS NULL')).rows[0]!.n);
    const rows = (await client.query<RolloutRow>('SELECT id, status, reason, to_version AS "toVersion", artifact_key AS artifact FROM rollouts ORDER BY created_at, id')).rows;
    const rollouts = rows.map(shownRollout);
    // The event log has no gap: the engine numbers every event, and commits them whole.
    const gaps = (await client.query<{ n: string; max: number | null }>('SELECT count(*) AS n, max(seq) AS max FROM events')).rows[0]!;
    const integrity = Number(gaps.n) === Number(gaps.max ?? 0) ? ['ok'] : [`the event log has ${Number(gaps.max) - Number(gaps.n)} missing seq numbers`];
    const openCommands = Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM commands WHERE done_at IS NULL')).rows[0]!.n);
    const lease = await readLease(client);
    await client.query('COMMIT');
    return { ...base, integrity, counts, rollouts, lease, openCommands };
  } catch (err) {
    throw pgStoreError(err, url);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * A consistent snapshot of the whole database as a new Phasewise SQLite file. Never overwrites a file;
 * the file takes its name only once complete (backup-target.ts): a failed or killed backup leaves none.
 */
export async function backupPostgres(url: string, destination: string): Promise<{ events: number }> {
  checkBackupTarget(destination);
  const client = await connect(url);
  try {
    const version = await schemaVersion(client);
    if (version !== PG_SCHEMA_VERSION) {
      const code = version > PG_SCHEMA_VERSION ? 'STORE_NEWER' : 'STORE_IO';
      throw new StoreError(code, `${redact(url)} has schema version ${version}; this Phasewise backs up version ${PG_SCHEMA_VERSION}`);
    }
    return await writeBackup(destination, async (tmp) => {
      let db: Database.Database | null = null;
      try {
        db = emptySqlite(tmp);
        await copyToSqlite(client, db, { whole: true });
        return { events: (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n };
      } catch (err) {
        // The copy's own failures (a full disk where it is written) name the backup, not PostgreSQL.
        throw String((err as { code?: unknown }).code ?? '').startsWith('SQLITE_') ? asStoreError(err, destination) : err;
      } finally {
        db?.close();
      }
    });
  } catch (err) {
    throw pgStoreError(err, url);
  } finally {
    await client.end().catch(() => {});
  }
}

const TABLES = [
  'meta', 'regions', 'scale_sets', 'availability_sets', 'machines', 'instances', 'machine_health', 'catalog_types', 'catalog_versions',
  'rollouts', 'rollout_plans', 'rollout_phases', 'rollout_regions', 'rollout_units', 'gate_runs', 'attempts', 'timers', 'actions',
  'maintenance_configs', 'maintenance_assignments', 'events',
];

/**
 * Loads a Phasewise SQLite file (a backup, or a single Phasewise's database) into an empty PostgreSQL
 * database, in one transaction. The file is checked before the database is touched, and read in one
 * read transaction (a consistent snapshot even while a Phasewise writes it).
 */
export async function restorePostgres(file: string, url: string): Promise<{ rows: number }> {
  const source = await restoreSource(file);
  try {
    const client = await connect(url);
    try {
      await migrate(client, url);
      const { rows } = await client.query("SELECT 1 FROM meta WHERE key = 'imported'");
      if (rows.length > 0) throw new StoreError('STORE_EXISTS', `${redact(url)} already holds a fleet; restore into an empty database`);
      let n = 0;
      source.db.exec('BEGIN');
      await client.query('BEGIN');
      try {
        for (const table of TABLES) n += await copyTable(source.db, client, table);
        // serve's side tables, when the file has them (a backup has; a single Phasewise's file has those its serve created).
        for (const { name } of SIDE_TABLES) if (hasTable(source.db, name)) n += await copyTable(source.db, client, name);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        source.db.exec('ROLLBACK');
      }
      return { rows: n };
    } catch (err) {
      throw pgStoreError(err, url);
    } finally {
      await client.end().catch(() => {});
    }
  } finally {
    source.close();
  }
}

/**
 * The file to restore, read-only and at this Phasewise's schema version: a file of an older version is
 * copied to a temporary file and migrated there (the file named is never changed); one that holds no
 * Phasewise schema is refused.
 */
async function restoreSource(file: string): Promise<OpenDatabase> {
  const source = openDatabase(file, { mode: 'existing', readonly: true });
  const version = source.db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return source;
  if (version === 0) {
    source.close();
    throw new StoreError('STORE_NOT_DATABASE', `${file} holds no Phasewise data (schema version 0); check the path — nothing was restored`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'phasewise-restore-'));
  try {
    const copy = join(dir, 'migrated.sqlite');
    await source.db.backup(copy);
    source.close();
    const migrated = openDatabase(copy, { mode: 'existing' });
    const close = () => {
      try {
        migrated.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    return { ...migrated, close };
  } catch (err) {
    source.close();
    rmSync(dir, { recursive: true, force: true });
    throw asStoreError(err, file);
  }
}

function hasTable(db: Database.Database, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

/** SQLite's own columns, which PostgreSQL's tables do not have: `actions.seq` orders SQLite's rows (schema v7). */
const SQLITE_ONLY: Readonly<Record<string, readonly string[]>> = { actions: ['seq'] };

async function copyTable(db: Database.Database, client: pg.Client, table: string): Promise<number> {
  let batch: string[] = [];
  let cols: string[] | null = null;
  let n = 0;
  const flush = async () => {
    if (batch.length === 0 || !cols) return;
    await client.query(`INSERT INTO ${table} (${cols.join(', ')}) VALUES ${batch.join(',')}`);
    batch = [];
  };
  // SQLite's event log is compact (event-log.ts): its events are decoded and stored whole here.
  const rows = table === 'events' ? eventRows(db) : db.prepare(`SELECT * FROM ${table}`).iterate() as Iterable<Record<string, unknown>>;
  for (const row of rows) {
    cols ??= Object.keys(row).filter((c) => !SQLITE_ONLY[table]?.includes(c));
    batch.push(`(${cols.map((c) => literal(row[c])).join(', ')})`);
    n++;
    if (batch.length >= 1000) await flush();
  }
  await flush();
  return n;
}

function* eventRows(db: Database.Database): Generator<Record<string, unknown>> {
  for (const e of iterateEvents(db)) {
    const [seq, time, type, rolloutId, machineId, body] = eventRow(e);
    yield { seq, time, type, rollout_id: rolloutId, machine_id: machineId, body };
  }
}
