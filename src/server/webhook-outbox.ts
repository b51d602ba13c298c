/**
 * The webhooks' outbox in the server's SQLite database, so notifications survive a restart: every
 * delivery waiting or being retried is a row (hook URL, event seq, body, attempts so far), removed
 * once delivered, given up or dropped. A cursor (`webhooks.lastSeq` in `meta`) records the last engine
 * event whose notifications were written; at start the events after it (committed by the engine just
 * before a crash, before they reached the outbox) are turned into deliveries too. At least once: a
 * delivery sent just before a crash is sent again after it (receivers deduplicate by
 * `X-Phasewise-Delivery`).
 */
import type Database from 'better-sqlite3';
import type { EngineEvent } from '../model/events.js';
import { readEvents, typeIn } from '../store/sqlite/event-log.js';

export interface OutboxRow {
  hook: string;
  seq: number;
  type: string;
  body: string;
  attempts: number;
}

const CURSOR = 'webhooks.lastSeq';

export class WebhookOutbox {
  private readonly st;

  constructor(private readonly db: Database.Database) {
    this.st = {
      put: db.prepare('INSERT OR IGNORE INTO webhook_outbox (hook, seq, type, body, attempts) VALUES (?, ?, ?, ?, ?)'),
      attempts: db.prepare('UPDATE webhook_outbox SET attempts = ? WHERE hook = ? AND seq = ?'),
      remove: db.prepare('DELETE FROM webhook_outbox WHERE hook = ? AND seq = ?'),
      pending: db.prepare('SELECT hook, seq, type, body, attempts FROM webhook_outbox ORDER BY hook, seq'),
      getCursor: db.prepare('SELECT value FROM meta WHERE key = ?'),
      clearCursor: db.prepare('DELETE FROM meta WHERE key = ?'),
      putCursor: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /** The last event whose notifications are in the outbox; null before the first start with webhooks. */
  cursor(): number | null {
    const row = this.st.getCursor.get(CURSOR) as { value: string } | undefined;
    return row ? Number(row.value) : null;
  }

  /** Events the engine committed after the cursor, of the types that notify. */
  eventsAfter(seq: number, types: readonly string[]): EngineEvent[] {
    return readEvents(this.db, `e.seq > ? AND ${typeIn(types)}`, [seq, ...types]);
  }

  /** Writes a batch of deliveries and moves the cursor, in one transaction. */
  add(rows: readonly OutboxRow[], lastSeq: number): void {
    this.db.transaction(() => {
      for (const r of rows) this.st.put.run(r.hook, r.seq, r.type, r.body, r.attempts);
      this.st.putCursor.run(CURSOR, String(lastSeq));
    }).immediate();
  }

  clearCursor(): void {
    this.st.clearCursor.run(CURSOR);
  }

  attempted(hook: string, seq: number, attempts: number): void {
    this.st.attempts.run(attempts, hook, seq);
  }

  remove(hook: string, seq: number): void {
    this.st.remove.run(hook, seq);
  }

  pending(): OutboxRow[] {
    return this.st.pending.all() as OutboxRow[];
  }
}
