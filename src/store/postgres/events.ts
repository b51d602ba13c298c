/**
 * The event log on PostgreSQL, apart from the other tables so it can follow the SQLite event log's
 * layout when that changes: its table, and reading it back in `seq` order.
 */
import type pg from 'pg';
import type { EngineEvent } from '../../model/events.js';

/** The table: one row per event, its JSON whole (SQLite's log is compact since its schema v5; this one can follow). */
export const EVENTS_DDL = `
  CREATE TABLE events (seq BIGINT PRIMARY KEY, time TEXT NOT NULL, type TEXT NOT NULL, rollout_id TEXT, machine_id TEXT, body TEXT NOT NULL);
  CREATE INDEX events_rollout ON events (rollout_id, seq) WHERE rollout_id IS NOT NULL;
`;

/** One event as the row `PUT_EVENT` inserts. */
export function eventRow(e: EngineEvent): unknown[] {
  return [e.seq, e.time, e.type, 'rolloutId' in e ? e.rolloutId : null, 'machineId' in e ? e.machineId : null, JSON.stringify(e)];
}

export const PUT_EVENT = 'INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)';

/** Events from `afterSeq` on, in pages (a long log is never held whole by the query). */
export async function* readEvents(client: pg.Client, afterSeq = 0, page = 5000): AsyncGenerator<EngineEvent> {
  let from = afterSeq;
  for (;;) {
    const { rows } = await client.query<{ seq: number; body: string }>('SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2', [from, page]);
    for (const r of rows) yield JSON.parse(r.body) as EngineEvent;
    if (rows.length < page) return;
    from = rows[rows.length - 1]!.seq;
  }
}
