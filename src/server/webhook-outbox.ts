/**
 * The webhooks' outbox in the server's SQLite database, so notifications survive a restart: every
 * delivery waiting or being retried is a row (hook URL, event seq, body, attempts so far), removed
 * once delivered, given up or dropped. A cursor records the last engine event whose notifications were
 * written; at start the events after it (committed by the engine just before a crash, before they reached
 * the outbox) are turned into deliveries too, read from the event log. At least once: a delivery sent just
 * before a crash is sent again after it (receivers deduplicate by `X-Phasewise-Delivery`).
 *
 * The cursor is a row of the outbox table itself (hook '', which no hook has: their keys are URLs), not of
 * `meta`: on PostgreSQL replicas the outbox is one of the side tables mirrored into PostgreSQL (side-db.ts),
 * so the cursor ships with the deliveries it covers, in the same transaction, and the next leader finds
 * both as they were; the events after it come from PostgreSQL's event log. Before this, the cursor was
 * `webhooks.lastSeq` in `meta`: still read when the row is missing (a database written by an older build).
 */
import type Database from 'better-sqlite3';
import type { EngineEvent } from '../model/events.js';
import type { EventLogReader } from '../store/event-log-reader.js';
import { MAX_EVENTS_PER_READ } from '../store/event-log-reader.js';

export interface OutboxRow {
  hook: string;
  seq: number;
  type: string;
  body: string;
  attempts: number;
}

/** The cursor row's hook key. */
const CURSOR_HOOK = '';
/** Where builds before the cursor row kept it. */
const LEGACY_CURSOR = 'webhooks.lastSeq';

export class WebhookOutbox {
  private readonly st;

  /** `eventLog`: the engine's event log (on a replica, PostgreSQL's: the working copy holds no events). */
  constructor(private readonly db: Database.Database, private readonly eventLog: EventLogReader) {
    this.st = {
      put: db.prepare('INSERT OR IGNORE INTO webhook_outbox (hook, seq, type, body, attempts) VALUES (?, ?, ?, ?, ?)'),
      attempts: db.prepare('UPDATE webhook_outbox SET attempts = ? WHERE hook = ? AND seq = ?'),
      remove: db.prepare('DELETE FROM webhook_outbox WHERE hook = ? AND seq = ?'),
      pending: db.prepare('SELECT hook, seq, type, body, attempts FROM webhook_outbox WHERE hook <> ? ORDER BY hook, seq'),
      getCursor: db.prepare('SELECT seq FROM webhook_outbox WHERE hook = ?'),
      clearCursor: db.prepare('DELETE FROM webhook_outbox WHERE hook = ?'),
      putCursor: db.prepare("INSERT INTO webhook_outbox (hook, seq, type, body, attempts) VALUES (?, ?, 'cursor', '', 0)"),
      getLegacy: db.prepare('SELECT value FROM meta WHERE key = ?'),
      clearLegacy: db.prepare('DELETE FROM meta WHERE key = ?'),
    };
  }

  /** The last event whose notifications are in the outbox; null before the first start with webhooks. */
  cursor(): number | null {
    const row = this.st.getCursor.get(CURSOR_HOOK) as { seq: number } | undefined;
    if (row) return Number(row.seq);
    const legacy = this.st.getLegacy.get(LEGACY_CURSOR) as { value: string } | undefined;
    return legacy ? Number(legacy.value) : null;
  }

  /** Events of `types` after `seq`, up to and including `upTo`, oldest first, read from the event log page by page. */
  async eventsAfter(seq: number, upTo: number, types: readonly string[]): Promise<EngineEvent[]> {
    const out: EngineEvent[] = [];
    for (let after = seq; after < upTo;) {
      const page = await this.eventLog.read({ order: 'asc', afterSeq: after, beforeSeq: upTo + 1, types, limit: MAX_EVENTS_PER_READ });
      out.push(...page);
      if (page.length < MAX_EVENTS_PER_READ) break;
      after = page[page.length - 1]!.seq;
    }
    return out;
  }

  /** Writes a batch of deliveries and moves the cursor, in one transaction. */
  add(rows: readonly OutboxRow[], lastSeq: number): void {
    this.db.transaction(() => {
      for (const r of rows) this.st.put.run(r.hook, r.seq, r.type, r.body, r.attempts);
      this.st.clearCursor.run(CURSOR_HOOK);
      this.st.putCursor.run(CURSOR_HOOK, lastSeq);
      this.st.clearLegacy.run(LEGACY_CURSOR);
    }).immediate();
  }

  clearCursor(): void {
    this.db.transaction(() => {
      this.st.clearCursor.run(CURSOR_HOOK);
      this.st.clearLegacy.run(LEGACY_CURSOR);
    }).immediate();
  }

  attempted(hook: string, seq: number, attempts: number): void {
    this.st.attempts.run(attempts, hook, seq);
  }

  remove(hook: string, seq: number): void {
    this.st.remove.run(hook, seq);
  }

  /** The deliveries waiting (the cursor row is not one). */
  pending(): OutboxRow[] {
    return this.st.pending.all(CURSOR_HOOK) as OutboxRow[];
  }
}
