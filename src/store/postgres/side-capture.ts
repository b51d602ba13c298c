/**
 * Changes to the side tables, captured in SQLite and shipped to PostgreSQL. Triggers on each side table
 * record the primary keys a statement touched in `side_changes` (in the writer's own transaction, on any
 * connection: the status writer thread's too); `takeChanges` turns them into one text of SQL that
 * brings PostgreSQL's rows for those keys to the local rows' current values. Values are read when the
 * text is built, not when the change happened: shipping a key twice, or after later changes, is
 * harmless, so a ship that failed is retried by shipping its keys again (`pendingChanges`).
 */
import type Database from 'better-sqlite3';
import { describeSideTables, pgLiteral } from './side-tables.js';
import type { SideTable } from './side-tables.js';

/**
 * The local outbox: one row per key written (k2 for two-column keys); untyped columns keep each value as
 * written. AUTOINCREMENT: an id is never reused, so a late `done()` (ids up to its own) cannot forget a newer change.
 */
const OUTBOX_DDL = 'CREATE TABLE IF NOT EXISTS side_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, k1, k2)';
const TRIGGER_PREFIX = 'side_capture_';
const ROWS_PER_INSERT = 500;
const FORGET_EVERY = 4096;

/**
 * Creates the outbox and the capture triggers (idempotent). Call it after `loadSideTables`, which drops
 * them so the load records nothing. Turns on recursive_triggers on this connection: without it SQLite
 * runs no DELETE trigger for the rows an INSERT OR REPLACE removes.
 */
export function installCapture(db: Database.Database): void {
  db.pragma('recursive_triggers = ON');
  db.transaction(() => {
    db.exec(OUTBOX_DDL);
    for (const t of describeSideTables(db)) db.exec(triggersOf(t));
  })();
}

/** Drops the triggers and empties the outbox (a load replaces the working copy). */
export function dropCapture(db: Database.Database): void {
  const triggers = db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ? ESCAPE '!'").pluck().all(`${TRIGGER_PREFIX.replace(/_/g, '!_')}%`) as string[];
  for (const name of triggers) db.exec(`DROP TRIGGER ${name}`);
  db.exec(OUTBOX_DDL);
  db.exec('DELETE FROM side_changes');
}

function triggersOf(t: SideTable): string {
  const keys = (row: 'NEW' | 'OLD') => [...t.key.map((k) => `${row}.${k}`), ...(t.key.length === 1 ? ['NULL'] : [])].join(', ');
  const record = (row: 'NEW' | 'OLD') => `INSERT INTO side_changes (tbl, k1, k2) VALUES ('${t.name}', ${keys(row)});`;
  const keyChanged = t.key.map((k) => `NEW.${k} IS NOT OLD.${k}`).join(' OR ');
  const name = `${TRIGGER_PREFIX}${t.name}`;
  return `
    CREATE TRIGGER IF NOT EXISTS ${name}_insert AFTER INSERT ON ${t.name} BEGIN ${record('NEW')} END;
    CREATE TRIGGER IF NOT EXISTS ${name}_delete AFTER DELETE ON ${t.name} BEGIN ${record('OLD')} END;
    CREATE TRIGGER IF NOT EXISTS ${name}_update AFTER UPDATE ON ${t.name} BEGIN
      ${record('OLD')}
      INSERT INTO side_changes (tbl, k1, k2) SELECT '${t.name}', ${keys('NEW')} WHERE ${keyChanged};
    END;`;
}

export interface PendingChanges {
  /** Statements for PostgreSQL, joined by `;\n` (no trailing semicolon): one multi-statement query, one transaction. */
  sql: string;
  /** Forgets the changes this text carries (call once PostgreSQL committed it); later changes stay. */
  done(): void;
}

/**
 * The SQL that ships every change recorded so far, or null when nothing changed. Outside a transaction
 * only (throws otherwise): inside one, the text could carry rows the transaction then rolls back.
 * Throws, changing nothing, when a row holds what PostgreSQL cannot store the same (side-tables.ts).
 */
export function pendingChanges(db: Database.Database): PendingChanges | null {
  if (db.inTransaction) throw new Error('side-table changes are shipped outside a transaction: the text could carry rows the transaction then rolls back');
  const st = statementsOf(db);
  const upTo = st.last.get() as number | null;
  if (upTo === null || upTo <= st.shipped) return null;
  const sql = st.build(st.shipped, upTo);
  return { sql, done: () => shipped(st, upTo) };
}

/**
 * Moves the mark of what is shipped; the outbox rows under it are deleted only every FORGET_EVERY ids.
 * A DELETE per ship would be a commit (an fsync with synchronous=FULL) per ship; the mark lives in
 * memory, which is enough: a new process loads the working copy again, and that empties the outbox.
 */
function shipped(st: Statements, upTo: number): void {
  st.shipped = Math.max(st.shipped, upTo);
  if (st.shipped - st.forgotten < FORGET_EVERY) return;
  st.forget.run(st.shipped);
  st.forgotten = st.shipped;
}

interface Statements {
  last: Database.Statement;
  keys: Database.Statement;
  forget: Database.Statement;
  /** Per table: its row by key, integers as bigint. */
  rows: Map<string, Database.Statement>;
  tables: SideTable[];
  /** The text for the changes after one id up to another, in one read transaction: every row as of one moment, even with the status writer thread writing. */
  build: (after: number, upTo: number) => string;
  /** The outbox ids shipped (the highest `done()` gave), and those deleted. */
  shipped: number;
  forgotten: number;
}

/** Prepared once per connection: a ship of one row then costs about what writing it did (preparing them each time cost 300 µs). */
const STATEMENTS = new WeakMap<Database.Database, Statements>();

function statementsOf(db: Database.Database): Statements {
  let st = STATEMENTS.get(db);
  if (st) return st;
  const tables = describeSideTables(db);
  const rows = new Map(tables.map((t) => {
    const where = t.key.map((k) => `${k} IS ?`).join(' AND ');
    return [t.name, db.prepare(`SELECT ${t.columns.map((c) => c.name).join(', ')} FROM ${t.name} WHERE ${where}`).safeIntegers(true)] as const;
  }));
  const last = db.prepare('SELECT max(id) FROM side_changes').pluck();
  const keys = db.prepare('SELECT tbl, k1, k2 FROM side_changes WHERE id > ? AND id <= ? GROUP BY tbl, k1, k2 ORDER BY min(id)').safeIntegers(true);
  const forget = db.prepare('DELETE FROM side_changes WHERE id <= ?');
  const build = db.transaction((after: number, upTo: number) => buildSql(keys, rows, tables, after, upTo));
  st = { last, keys, forget, rows, tables, build, shipped: 0, forgotten: 0 };
  STATEMENTS.set(db, st);
  return st;
}

/** `pendingChanges`, forgotten at once: the caller ships the text, and a failed ship must end its leadership (the next leader loads from PostgreSQL). */
export function takeChanges(db: Database.Database): string | null {
  const p = pendingChanges(db);
  p?.done();
  return p?.sql ?? null;
}

function buildSql(keysStmt: Database.Statement, rowStmts: Map<string, Database.Statement>, tables: readonly SideTable[], after: number, upTo: number): string {
  const changed = new Map<string, unknown[][]>();
  for (const r of keysStmt.all(after, upTo) as Array<{ tbl: string; k1: unknown; k2: unknown }>) {
    let list = changed.get(r.tbl);
    if (!list) changed.set(r.tbl, (list = []));
    list.push([r.k1, r.k2]);
  }
  const deletes: string[] = [];
  const inserts: string[] = [];
  for (const t of tables) {
    const keys = changed.get(t.name);
    if (!keys) continue;
    const { gone, rows } = currentRows(rowStmts.get(t.name)!, t, keys);
    // With another unique constraint (a token's digest), a key's new value may hold what another changed key held: delete them all first.
    const toDelete = t.otherUnique ? [...gone, ...rows.map((r) => t.key.map((k) => r[k]))] : gone;
    if (toDelete.length > 0) deletes.push(deleteSql(t, toDelete));
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) inserts.push(upsertSql(t, rows.slice(i, i + ROWS_PER_INSERT)));
  }
  return [...deletes, ...inserts].join(';\n');
}

function currentRows(get: Database.Statement, t: SideTable, keys: unknown[][]): { gone: unknown[][]; rows: Array<Record<string, unknown>> } {
  const gone: unknown[][] = [];
  const rows: Array<Record<string, unknown>> = [];
  for (const k of keys) {
    const key = k.slice(0, t.key.length);
    const row = get.get(...key) as Record<string, unknown> | undefined;
    if (row) rows.push(row);
    else gone.push(key);
  }
  return { gone, rows };
}

/**
 * PostgreSQL's b-tree refuses an index entry over 2,704 bytes (after compression); SQLite has no such limit.
 * Checked before anything is sent, uncompressed (so a long key that would compress is refused too), to name the row.
 */
export const MAX_KEY_BYTES = 2_700;

/** Only for a row to store: a DELETE of a long key (one PostgreSQL cannot hold anyway) is harmless. */
function checkKeySize(t: SideTable, key: readonly unknown[]): void {
  const bytes = key.reduce<number>((n, v) => n + (typeof v === 'string' ? Buffer.byteLength(v) : 8), 0);
  if (bytes > MAX_KEY_BYTES) {
    throw new Error(`${t.name}: a key of ${bytes} bytes (${JSON.stringify(String(key[0]).slice(0, 60))}…); PostgreSQL's index takes keys up to ${MAX_KEY_BYTES} bytes`);
  }
}

function keyTuple(t: SideTable, key: readonly unknown[]): string {
  const cols = t.key.map((k) => t.columns.find((c) => c.name === k)!);
  const values = cols.map((c, i) => pgLiteral(key[i], c, () => `${t.name} key`));
  return values.length === 1 ? values[0]! : `(${values.join(', ')})`;
}

function deleteSql(t: SideTable, keys: readonly unknown[][]): string {
  const lhs = t.key.length === 1 ? t.key[0]! : `(${t.key.join(', ')})`;
  return `DELETE FROM ${t.name} WHERE ${lhs} IN (${keys.map((k) => keyTuple(t, k)).join(', ')})`;
}

function upsertSql(t: SideTable, rows: ReadonlyArray<Record<string, unknown>>): string {
  const cols = t.columns.map((c) => c.name);
  const tuples = rows.map((r) => {
    checkKeySize(t, t.key.map((k) => r[k]));
    const where = () => `${t.name} ${JSON.stringify(t.key.map((k) => String(r[k])))}`;
    return `(${t.columns.map((c) => pgLiteral(r[c.name], c, where)).join(', ')})`;
  });
  const rest = cols.filter((c) => !t.key.includes(c));
  const onConflict = rest.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${rest.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`;
  return `INSERT INTO ${t.name} (${cols.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (${t.key.join(', ')}) ${onConflict}`;
}
