/**
 * A consistent copy of the PostgreSQL tables into an SQLite database of the same schema, read in one
 * REPEATABLE READ transaction. Loading uses it (into memory: the SQLite loader then rebuilds the
 * engine state exactly as after a SQLite restart) and `db backup` (into a file, with serve's side tables).
 */
import Database from 'better-sqlite3';
import type pg from 'pg';
import { MIGRATIONS } from '../sqlite/schema.js';
import { EventWriter } from '../sqlite/event-log.js';
import type { EngineEvent } from '../../model/events.js';
import type { FleetLoader } from '../sqlite/load.js';
import { replaceSideTables } from './side-load.js';

/** The engine's tables; `events` and answered actions only when `whole` (a backup). */
const TABLES = [
  'meta', 'regions', 'scale_sets', 'availability_sets', 'machines', 'instances', 'machine_health', 'catalog_types', 'catalog_versions',
  'rollouts', 'rollout_plans', 'rollout_phases', 'rollout_regions', 'rollout_units', 'gate_runs', 'attempts', 'timers', 'actions',
  'maintenance_configs', 'maintenance_assignments', 'events',
] as const;

export interface CopyOptions {
  whole: boolean;
  fleet?: (db: Database.Database) => FleetLoader;
  /** The caller has begun a REPEATABLE READ transaction and reads more in it (a follower's refresh, read-model.ts). */
  inTransaction?: boolean;
  /** Tables not copied (a follower applies the fleet's changes instead). */
  skip?: ReadonlySet<string>;
}

/** Tables read in pages along their key (large ones: the fleet, the log). */
const PAGED: Record<string, string> = { machines: 'ord', instances: 'ord', events: 'seq' };
const PAGE = 50_000;

/** An SQLite database at the current SQLite schema version (in memory, or a new file). */
export function emptySqlite(file = ':memory:'): Database.Database {
  const db = new Database(file);
  for (const m of MIGRATIONS) {
    db.exec(m.sql);
    m.run?.(db);
  }
  db.pragma(`user_version = ${MIGRATIONS[MIGRATIONS.length - 1]!.version}`);
  return db;
}

/**
 * Copies the tables into `target`. With `fleet`, the machines and instances go to that loader instead
 * (page by page, straight into the engine's fleet: a load never holds them twice); it is made once the
 * regions and sets are in `target`.
 */
export async function copyToSqlite(client: pg.Client, target: Database.Database, opts: CopyOptions): Promise<FleetLoader | null> {
  let loader: FleetLoader | null = null;
  if (!opts.inTransaction) await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    for (const table of TABLES) {
      if (opts.skip?.has(table)) continue;
      if (table === 'events' && !opts.whole) continue;
      const where = table === 'actions' && !opts.whole ? ' WHERE answered_at IS NULL' : '';
      if (table === 'events') {
        await copyEvents(client, target);
        continue;
      }
      const key = PAGED[table];
      let insert: Database.Statement | null = null;
      const toSqlite = (rows: Array<Record<string, unknown>>) => {
        if (rows.length === 0) return;
        const cols = Object.keys(rows[0]!).filter((c) => c !== 'cv'); // PostgreSQL's own (read-model.ts); SQLite has no such column
        insert ??= target.prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`);
        const stmt = insert;
        target.transaction(() => {
          for (const r of rows) stmt.run(r);
        })();
      };
      let put = toSqlite;
      if (opts.fleet && (table === 'machines' || table === 'instances')) {
        const l = (loader ??= opts.fleet(target));
        put = table === 'machines' ? (rows) => { for (const r of rows) l.machine(r); } : (rows) => { for (const r of rows) l.instance(r); };
      }
      if (!key) {
        put((await client.query(`SELECT * FROM ${table}${where}`)).rows);
        continue;
      }
      // The next page is asked for before this one is handled: the server reads while this process builds.
      const page = (after: number) => client.query(`SELECT * FROM ${table} WHERE ${key} > $1 ORDER BY ${key} LIMIT ${PAGE}`, [after]);
      let next = page(-1);
      for (;;) {
        const { rows } = await next;
        const more = rows.length === PAGE;
        if (more) {
          next = page(rows[rows.length - 1]![key] as number);
          next.catch(() => {}); // awaited next round; if `put` throws first, its failure is not unhandled
        }
        put(rows);
        if (!more) break;
      }
    }
    if (opts.whole) await replaceSideTables(client, target, { dropCapture: false }); // a backup holds serve's side tables too
  } finally {
    if (!opts.inTransaction) await client.query('COMMIT');
  }
  return loader;
}

/** The log is stored whole here and compact in SQLite (event-log.ts): each event is written through SQLite's writer. */
async function copyEvents(client: pg.Client, target: Database.Database): Promise<void> {
  const writer = new EventWriter(target);
  let after = 0;
  for (;;) {
    const { rows } = await client.query<{ seq: number; body: string }>(`SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT ${PAGE}`, [after]);
    target.transaction(() => {
      writer.sync();
      for (const r of rows) writer.write(JSON.parse(r.body) as EngineEvent);
    })();
    if (rows.length < PAGE) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}
