/**
 * A leader's start: the side tables' rows copied from PostgreSQL into its SQLite working copy, replacing
 * what the copy held. PostgreSQL is read in one REPEATABLE READ transaction (one moment of every table),
 * in pages along each table's key; SQLite is written in one transaction, so a failed load leaves the
 * working copy as it was.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { StoreError } from '../sqlite/database.js';
import { schemaVersion } from './connect.js';
import { dropCapture } from './side-capture.js';
import { describeSideTables, ensureSideTables } from './side-tables.js';
import type { SideTable } from './side-tables.js';

/** The PostgreSQL schema version that created the side tables (schema.ts). */
export const SIDE_TABLES_PG_VERSION = 4;
const PAGE = 5_000;

/**
 * Replaces the working copy's side tables with PostgreSQL's rows (creating the tables when missing) and
 * drops the capture triggers and outbox (call `installCapture` after). Nothing else may use `db` while
 * it runs (its SQLite transaction stays open across the reads), nor `client` (it holds a transaction
 * there: not the PgStore's client while its commit chain runs). Before the owners are made: PackageStore
 * reads its records once.
 */
export async function loadSideTables(client: pg.Client, db: Database.Database): Promise<{ rows: number }> {
  const version = await schemaVersion(client);
  if (version < SIDE_TABLES_PG_VERSION) {
    throw new StoreError('STORE_IO', `the PostgreSQL schema is at version ${version}; the side tables need version ${SIDE_TABLES_PG_VERSION} (migrate first)`);
  }
  if (db.inTransaction) throw new Error('the side tables are loaded outside a transaction');
  let rows = 0;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    rows = await replaceSideTables(client, db, { dropCapture: true });
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return { rows };
}

/**
 * Inside the caller's transaction on `client`: replaces `db`'s side tables (made when missing) with
 * PostgreSQL's rows in one SQLite transaction, so a failure leaves `db` as it was; with `dropCapture`,
 * the capture triggers and outbox go too. A leader's load (above), a follower's snapshot, `db backup`.
 */
export async function replaceSideTables(client: pg.Client, db: Database.Database, opts: { dropCapture: boolean }): Promise<number> {
  ensureSideTables(db);
  const tables = describeSideTables(db);
  db.exec('BEGIN IMMEDIATE');
  try {
    if (opts.dropCapture) dropCapture(db);
    const rows = await copySideTables(client, db, tables);
    db.exec('COMMIT');
    return rows;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * Copies every side table's rows into `db`, replacing its rows, inside the caller's transactions (a
 * REPEATABLE READ one on `client`, one on `db`): the load above, and `db backup` with the engine's tables.
 */
export async function copySideTables(client: pg.Client, db: Database.Database, tables = describeSideTables(db)): Promise<number> {
  let rows = 0;
  for (const t of tables) rows += await copyTable(client, db, t);
  return rows;
}

async function copyTable(client: pg.Client, db: Database.Database, t: SideTable): Promise<number> {
  db.exec(`DELETE FROM ${t.name}`);
  const insert = sideRowWriter(db, t);
  const select = sideSelectList(t);
  // Qualified: the table's columns, not the text aliases of the select list (a BIGINT key would sort as text).
  const order = t.key.map((k) => `${t.name}.${k}`).join(', ');
  const after = t.key.length === 1 ? `${t.key[0]} > $1` : `(${order}) > (${t.key.map((_, i) => `$${i + 1}`).join(', ')})`;
  let n = 0;
  let last: unknown[] | null = null;
  for (;;) {
    const where: string = last ? ` WHERE ${after}` : '';
    const rows: Array<Record<string, unknown>> = (await client.query<Record<string, unknown>>(`SELECT ${select} FROM ${t.name}${where} ORDER BY ${order} LIMIT ${PAGE}`, last ?? [])).rows;
    for (const r of rows) insert(r);
    n += rows.length;
    if (rows.length < PAGE) return n;
    const end: Record<string, unknown> = rows[rows.length - 1]!;
    last = t.key.map((k): unknown => end[k]);
  }
}

/** A side table's columns as read from PostgreSQL: integers as text, exact whatever the client's type parsers (SQLite's INTEGER affinity stores them back as integers). */
export function sideSelectList(t: SideTable): string {
  return t.columns.map((c) => (c.type === 'BIGINT' ? `${c.name}::text AS ${c.name}` : c.name)).join(', ');
}

/**
 * Writes rows read with `sideSelectList` into `db`. With `replace`, a row already there under the key (or
 * another unique value, a token's digest) is replaced: a follower applying changes (side-apply.ts).
 */
export function sideRowWriter(db: Database.Database, t: SideTable, replace = false): (row: Record<string, unknown>) => void {
  const cols = t.columns.map((c) => c.name);
  const insert = db.prepare(`INSERT${replace ? ' OR REPLACE' : ''} INTO ${t.name} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
  return (r) => void insert.run(...cols.map((c) => r[c]));
}
