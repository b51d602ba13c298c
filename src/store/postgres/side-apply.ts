/**
 * A follower's copy of the API's tables (documents, agents and their status, packages, enrollment
 * tokens, webhook outbox: side-tables.ts), kept in step as its fleet is (read-model.ts): copied whole
 * into a new in-memory SQLite database once (and again when the model loads whole), then each refresh
 * reads only the rows written since its version (their `cv`, schema migration 8) and the tombstones of
 * the rows deleted, and applies them in one SQLite transaction, read and written as the whole copy
 * reads and writes them (side-load.ts). The database is left `query_only` between refreshes: a read
 * handler that tries to write fails (and the read goes to the leader) instead of changing the copy.
 * Its tables hold a whole copy's rows; `agent_status` (the one rowid table) may hold them in another
 * rowid order, which no follower's read depends on.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { Tombstone } from './fleet-apply.js';
import { replaceSideTables, sideRowWriter, sideSelectList } from './side-load.js';
import { describeSideTables, ensureSideTables } from './side-tables.js';
import type { SideTable } from './side-tables.js';
import { emptySqlite } from './snapshot.js';
import { SIDE_TABLES } from '../sqlite/side-schema.js';

export const SIDE_TABLE_NAMES: ReadonlySet<string> = new Set(SIDE_TABLES.map((t) => t.name));

export interface SideChanges {
  tombstones: Tombstone[];
  rows: Map<string, Array<Record<string, unknown>>>;
}

/** What a refresh read, to apply once every read succeeded. */
export type SideRead = { whole: Database.Database } | { changes: SideChanges };

export class SideModel {
  private current: Database.Database | null = null;
  private tables: SideTable[] | null = null;

  /** The copy at the model's version (null before the first refresh). */
  get db(): Database.Database | null {
    return this.current;
  }

  /** Inside the caller's REPEATABLE READ transaction: every table whole, into a new database (nobody reads it yet). */
  async readWhole(client: pg.Client): Promise<SideRead> {
    const db = emptySqlite();
    try {
      await replaceSideTables(client, db, { dropCapture: true });
    } catch (err) {
      db.close();
      throw err;
    }
    return { whole: db };
  }

  /** The selects of the rows written after version `after`, one per table, for the caller to send with its own (`after`: a whole number). */
  changesSql(after: number): string[] {
    return this.describe().map((t) => `SELECT ${sideSelectList(t)} FROM ${t.name} WHERE cv > ${after}`);
  }

  /** What `changesSql`'s selects returned (in its order), with the side tables' tombstones read beside them. */
  changesOf(results: ReadonlyArray<Array<Record<string, unknown>>>, tombstones: Tombstone[]): SideRead {
    const rows = new Map<string, Array<Record<string, unknown>>>();
    this.describe().forEach((t, i) => {
      if (results[i]!.length > 0) rows.set(t.name, results[i]!);
    });
    return { changes: { tombstones, rows } };
  }

  /** Drops what `read` holds when the refresh failed before applying it. */
  discard(read: SideRead | null): void {
    if (read && 'whole' in read) read.whole.close();
  }

  /**
   * Applies what was read; returns the database a whole copy replaced (the caller closes it once nothing
   * reads it), or null. Rows count: the changes' rows and tombstones.
   */
  apply(read: SideRead): { retired: Database.Database | null; rows: number } {
    if ('whole' in read) {
      const retired = this.current;
      this.current = read.whole;
      this.current.pragma('query_only = ON');
      return { retired, rows: 0 };
    }
    const db = this.current;
    if (!db) throw new Error('side tables: changes applied before a whole copy');
    const { tombstones, rows } = read.changes;
    const byName = new Map(this.describe().map((t) => [t.name, t]));
    db.pragma('query_only = OFF');
    try {
      db.transaction(() => {
        const deletes = new Map<string, Database.Statement>(); // one statement per table, not per tombstone
        for (const tb of tombstones) {
          const t = byName.get(tb.tbl)!;
          let del = deletes.get(t.name);
          if (!del) deletes.set(t.name, (del = db.prepare(`DELETE FROM ${t.name} WHERE ${t.key.map((k) => `${k} = ?`).join(' AND ')}`)));
          del.run(...keyValues(t, tb));
        }
        for (const [name, list] of rows) {
          const put = sideRowWriter(db, byName.get(name)!, true);
          for (const r of list) put(r);
        }
      })();
    } finally {
      db.pragma('query_only = ON');
    }
    let n = tombstones.length;
    for (const list of rows.values()) n += list.length;
    return { retired: null, rows: n };
  }

  close(): void {
    this.current?.close();
    this.current = null;
  }

  private describe(): SideTable[] {
    if (!this.tables) {
      const shape = emptySqlite();
      try {
        ensureSideTables(shape);
        this.tables = describeSideTables(shape);
      } finally {
        shape.close();
      }
    }
    return this.tables;
  }
}

/** A tombstone's key (kept as text) as the column's values: an integer key column compares as an integer. */
function keyValues(t: SideTable, tb: Tombstone): unknown[] {
  return t.key.map((k, i) => {
    const text = i === 0 ? tb.k1 : tb.k2;
    return t.columns.find((c) => c.name === k)!.type === 'BIGINT' && text !== null ? BigInt(text) : text;
  });
}

