/**
 * The event log reader (../event-log-reader.ts) over PostgreSQL's events table (events.ts: one row per
 * event, its JSON whole). Times are canonical ISO text (`toISOString`, as the engine writes them), so a
 * time range compares text in the "C" collation; the chart reads the time as a timestamp.
 */
import type pg from 'pg';
import type { EngineEvent } from '../../model/events.js';
import type { EventLogReader, EventQuery, MinuteCount } from '../event-log-reader.js';
import { checkCounts, checkQuery } from '../event-log-reader.js';

/** A client, a pool or a pool's client: anything that runs a query. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.Client, 'query'>;

export class PgEventLogReader implements EventLogReader {
  constructor(private readonly db: Queryable) {}

  async read(q: EventQuery): Promise<EngineEvent[]> {
    checkQuery(q);
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.afterSeq !== undefined) where.push(`seq > ${p(q.afterSeq)}`);
    if (q.beforeSeq !== undefined) where.push(`seq < ${p(q.beforeSeq)}`);
    if (q.fromMs !== undefined) where.push(`time COLLATE "C" >= ${p(new Date(q.fromMs).toISOString())}`);
    if (q.toMs !== undefined) where.push(`time COLLATE "C" <= ${p(new Date(q.toMs).toISOString())}`);
    if (q.types !== undefined) where.push(`type = ANY(${p(q.types)}::text[])`);
    if (q.rolloutId !== undefined) where.push(`rollout_id = ${p(q.rolloutId)}`);
    if (q.machineId !== undefined) where.push(`machine_id = ${p(q.machineId)}`);
    if (q.noRolloutOr !== undefined) {
      const { rolloutIds, orTypes } = q.noRolloutOr;
      where.push(`(rollout_id IS NULL OR type = ANY(${p(orTypes)}::text[]) OR rollout_id = ANY(${p(rolloutIds)}::text[]))`);
    }
    const sql = `SELECT body FROM events${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${q.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ${p(q.limit)}`;
    const { rows } = await this.db.query<{ body: string }>(sql, params);
    return rows.map((r) => JSON.parse(r.body) as EngineEvent);
  }

  async lastSeq(): Promise<number> {
    const { rows } = await this.db.query<{ s: string }>('SELECT COALESCE(MAX(seq), 0) AS s FROM events');
    return Number(rows[0]!.s);
  }

  async countsPerMinute(rolloutId: string, types: readonly string[], originS: number, uptoSeq: number): Promise<MinuteCount[]> {
    checkCounts(rolloutId, types, originS, uptoSeq);
    const unique = [...new Set(types)];
    if (unique.length === 0) return [];
    // bigint division truncates toward zero, as SQLite's CAST of the quotient does.
    const { rows } = await this.db.query<{ m: string; type: string; n: string }>(
      `SELECT (floor(extract(epoch FROM time::timestamptz))::bigint - $1::bigint) / 60 AS m, type, COUNT(*) AS n FROM events
        WHERE rollout_id = $2 AND type = ANY($3::text[]) AND seq <= $4 GROUP BY m, type`,
      [originS, rolloutId, unique, uptoSeq],
    );
    const order = new Map(unique.map((t, i) => [t, i]));
    return rows
      .map((r) => ({ minute: Number(r.m), type: r.type, count: Number(r.n) }))
      .sort((a, b) => order.get(a.type)! - order.get(b.type)! || a.minute - b.minute);
  }
}
