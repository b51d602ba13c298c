/**
 * The event log reader (../event-log-reader.ts) over SQLite's compact rows (event-log.ts). better-sqlite3
 * is synchronous: each answer is computed at once and handed back in a resolved promise.
 */
import type Database from 'better-sqlite3';
import type { EngineEvent } from '../../model/events.js';
import type { EventLogReader, EventQuery, MinuteCount } from '../event-log-reader.js';
import { checkCounts, checkQuery } from '../event-log-reader.js';
import { EVENT_COLUMNS, EventDecoder, MACHINE_IS, typeIn } from './event-log.js';
import type { EventRow } from './event-log.js';

const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');

export class SqliteEventLogReader implements EventLogReader {
  /** Prepared statements by SQL text: a route asks the same few shapes of query again and again. */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  read(q: EventQuery): Promise<EngineEvent[]> {
    return settle(() => {
      checkQuery(q);
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (sql: string, ...p: unknown[]) => {
        where.push(sql);
        params.push(...p);
      };
      if (q.afterSeq !== undefined) add('e.seq > ?', q.afterSeq);
      if (q.beforeSeq !== undefined) add('e.seq < ?', q.beforeSeq);
      if (q.fromMs !== undefined) add('e.time >= ?', q.fromMs);
      if (q.toMs !== undefined) add('e.time <= ?', q.toMs);
      if (q.types !== undefined) add(typeIn(q.types), ...q.types);
      if (q.rolloutId !== undefined) add('e.rollout_id = ?', q.rolloutId);
      if (q.machineId !== undefined) add(MACHINE_IS, q.machineId);
      if (q.noRolloutOr !== undefined) {
        const { rolloutIds, orTypes } = q.noRolloutOr;
        add(`(e.rollout_id IS NULL OR ${typeIn(orTypes)} OR e.rollout_id IN (${marks(rolloutIds.length)}))`, ...orTypes, ...rolloutIds);
      }
      const sql = `SELECT ${EVENT_COLUMNS} FROM events e${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY e.seq ${q.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
      const rows = this.statement(sql).all(...params, q.limit) as EventRow[];
      const decoder = new EventDecoder(this.db);
      return rows.map((r) => decoder.decode(r));
    });
  }

  lastSeq(): Promise<number> {
    return settle(() => (this.statement('SELECT COALESCE(MAX(seq), 0) AS s FROM events').get() as { s: number }).s);
  }

  countsPerMinute(rolloutId: string, types: readonly string[], originS: number, uptoSeq: number): Promise<MinuteCount[]> {
    return settle(() => {
      checkCounts(rolloutId, types, originS, uptoSeq);
      const out: MinuteCount[] = [];
      for (const type of new Set(types)) {
        // One query per type, each on the (rollout_id, seq) index; times are milliseconds; parameters bind as REAL, hence the cast.
        const stmt = this.statement(`SELECT CAST((e.time / 1000 - ?) / 60 AS INTEGER) AS m, COUNT(*) AS n FROM events e
          WHERE e.rollout_id = ? AND ${typeIn([type])} AND e.seq <= ? GROUP BY m ORDER BY m`);
        for (const r of stmt.all(originS, rolloutId, type, uptoSeq) as Array<{ m: number; n: number }>) out.push({ minute: r.m, type, count: r.n });
      }
      return out;
    });
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      // Queries differ only in which conditions they have and how long their lists are: few shapes in practice; bounded anyway.
      if (this.statements.size >= 200) this.statements.clear();
      this.statements.set(sql, (s = this.db.prepare(sql)));
    }
    return s;
  }
}

/** The answer (or the error) of synchronous work, as a promise. */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
