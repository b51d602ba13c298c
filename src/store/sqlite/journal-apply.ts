/**
 * Applying group-commit journal records to the database's tables: by the apply worker as the run goes,
 * and at open for records a killed process left (recovery). Many records go into one transaction, their
 * rows coalesced across records (coalesce.ts), and the transaction records the last applied `seq`, so a
 * record is applied exactly once whatever stops when.
 */
import { rmSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { RowCoalescer } from './coalesce.js';
import { EventWriter } from './event-log.js';
import { decodeGroup, RecordError, replayOps } from './journal-codec.js';
import { journalPath, JournalError, readJournals } from './journal-file.js';
import type { JournalRecord } from './journal-file.js';
import { statements } from './rows.js';
import type { Statements } from './rows.js';
import { StoreError } from './store-error.js';

/** Meta rows while a journal is in use: its id, and the last record applied to the tables. Gone after close. */
export const JOURNAL_ID_KEY = 'journal_id';
export const JOURNAL_APPLIED_KEY = 'journal_applied';

export class JournalApplier {
  private readonly st: Statements;
  private readonly coalescer: RowCoalescer;
  private readonly events: EventWriter;

  constructor(db: Database.Database) {
    this.st = statements(db);
    this.coalescer = new RowCoalescer(db, this.st);
    this.events = new EventWriter(db);
  }

  /**
   * Applies records in order inside the caller's transaction and records the last one's seq. `before`
   * runs before each record (the worker writes the zeros the engine thread may be waiting for).
   */
  apply(records: readonly JournalRecord[], before?: () => void): void {
    if (records.length === 0) return;
    this.events.sync(); // the main connection may have written events since (a caller's transaction)
    for (const r of records) {
      before?.();
      const group = decodeGroup(r.body);
      for (const e of group.events) this.events.write(e);
      replayOps(group.ops, this.coalescer.writers);
    }
    this.coalescer.apply();
    this.st.putMeta.run(JOURNAL_APPLIED_KEY, String(records[records.length - 1]!.seq));
  }

  /** Writes the applied seq again (a transaction that has something to make durable). */
  touch(seq: number): void {
    this.st.putMeta.run(JOURNAL_APPLIED_KEY, String(seq));
  }

  /** Forgets held rows after a failed transaction. */
  discard(): void {
    this.coalescer.discard();
  }
}

export function appliedSeq(db: Database.Database): number {
  const v = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(JOURNAL_APPLIED_KEY) as string | undefined;
  return v === undefined ? 0 : Number(v);
}

/**
 * At open: applies what a journal (its one or two files) left by a stopped process holds past the applied `seq` (a torn last
 * record is ignored: it was never durable, so none of its actions left), then removes the journal, and
 * only then the meta rows naming it (a crash between the two then finds a journal of this file, all of it
 * applied, not one of "another database"). A journal written for another database, records that do not
 * follow the applied `seq`, or a record this code did not write are refused, and both files are left as
 * they are. `remove`: the journal's removal (tests stop there, as a crash would).
 */
export function recoverJournal(db: Database.Database, file: string, remove = (path: string) => rmSync(path, { force: true })): number {
  const refuse = (path: string, why: string) => new StoreError('STORE_CORRUPT', `${path} ${why}; move it away if ${file} is right — nothing was changed`);
  let journal;
  try {
    journal = readJournals(file);
  } catch (err) {
    if (err instanceof JournalError) throw new StoreError('STORE_CORRUPT', `${err.message}; move it away if ${file} is right — nothing was changed`);
    throw err;
  }
  const meta = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
  const id = (meta.get(JOURNAL_ID_KEY) as string | undefined) ?? null;
  // A journal file whose header never reached the disk (id null: killed as it was created) holds no record.
  for (const f of journal?.files ?? []) {
    if (f.id !== null && f.id !== id) throw refuse(f.path, `holds group commits of another database (journal ${f.id}, this file's ${id ?? 'none'})`);
  }
  if (!journal && id === null) return 0;
  const path = journalPath(file);
  let pending: JournalRecord[] = [];
  // IMMEDIATE before the applied seq is read: no other connection applies between the read and the writes.
  db.transaction(() => {
    const applied = appliedSeq(db);
    pending = journal ? journal.records.filter((r) => r.seq > applied) : [];
    // Records must follow what the tables hold and one another (across the two files), or groups are missing.
    if (pending.length > 0 && pending[0]!.seq !== applied + 1) {
      throw refuse(path, `starts at group ${pending[0]!.seq} but the database holds groups up to ${applied} (restored from an older copy?)`);
    }
    const gap = pending.findIndex((r, i) => r.seq !== applied + 1 + i);
    if (gap > 0) throw refuse(path, `misses group ${applied + 1 + gap}: its records go from ${pending[gap - 1]!.seq} to ${pending[gap]!.seq}`);
    try {
      new JournalApplier(db).apply(pending);
    } catch (err) {
      if (err instanceof RecordError) throw refuse(path, `holds a record Phasewise did not write (${err.message})`);
      throw err;
    }
  }).immediate();
  for (const f of journal?.files ?? []) remove(f.path);
  db.prepare('DELETE FROM meta WHERE key IN (?, ?)').run(JOURNAL_ID_KEY, JOURNAL_APPLIED_KEY);
  return pending.length;
}
