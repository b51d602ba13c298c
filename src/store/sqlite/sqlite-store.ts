/**
 * The durable Store on SQLite (better-sqlite3, WAL). Each engine tick is one transaction holding every
 * record the tick changed, its events and the idempotency keys of the actions it is about to send;
 * the engine sends them only after the commit. `load` rebuilds the working state after a restart.
 */
import { existsSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { DriverAction } from '../../engine/driver.js';
import type { EngineState } from '../../engine/state.js';
import type { EngineEvent } from '../../model/events.js';
import type { Commit, Store } from '../store.js';
import { asStoreError, openDatabase, StoreError } from './database.js';
import type { OpenDatabase, OpenOptions } from './database.js';
import { EventWriter, iterateEvents } from './event-log.js';
import { SqliteEventLogReader } from './event-log-reader.js';
import type { EventLogReader } from '../event-log-reader.js';
import { loadState } from './load.js';
import { describeBadRow, EVENT_TABLES, findBadRows, findHugeValues } from './row-checks.js';
import type { BadRow } from './row-checks.js';
import { statements } from './rows.js';
import type { Statements } from './rows.js';
import { writeCommit, writeImport } from './write.js';
import type { OrdCounter } from './write.js';
import { checkGroupCommit } from './group-commit.js';
import { RowCoalescer } from './coalesce.js';
import type { GroupCommitSettings } from './group-commit.js';
import { recordingWriters } from './journal-codec.js';
import type { GroupRecord } from './journal-codec.js';
import { recoverJournal } from './journal-apply.js';
import { GroupJournal } from './group-journal.js';
import type { JournalOptions } from './group-journal.js';
import { journalPaths } from './journal-file.js';

/** An open group: engine commits made in one transaction not committed yet (see `groupCommits`). */
interface OpenGroup {
  commits: number;
  startedAt: number;
  /** A commit of the group holds actions: the group commits before they leave. */
  hasActions: boolean;
}

/**
 * A group-commit journal left beside `file` by a stopped sim is applied (opening the store does it), so
 * `db check` and `db backup` see every group that was durable. A file in use by a running Phasewise is
 * left to it: its own store applies the journal, and these commands read what is applied so far.
 */
export function applyLeftJournal(file: string): void {
  if (!journalPaths(file).some((p) => existsSync(p))) return;
  let store: SqliteStore;
  try {
    store = SqliteStore.open(file, { mode: 'existing' });
  } catch (err) {
    if (err instanceof StoreError && err.code === 'STORE_LOCKED') return;
    throw err;
  }
  store.close();
}

export class SqliteStore implements Store {
  readonly tracksChanges = true;
  private readonly handle: OpenDatabase;
  private readonly db: Database.Database;
  private readonly st: Statements;
  private readonly eventWriter: EventWriter;
  private broken: string | null = null;
  /** The next `ord` of a machine or instance row: rows load in the order they were added (schema v4). */
  private readonly ord: OrdCounter;
  private reader: EventLogReader | undefined;
  /** An open group's row writes, held until it commits (created with the first group). */
  private coalescer: RowCoalescer | null = null;
  /** Group commit through a journal (see `groupCommits`), and the open group's record. */
  private journal: GroupJournal | null = null;
  private record: GroupRecord | null = null;
  private readonly recorder = recordingWriters(() => this.record!);
  /** Journal records a stopped process left, applied when this store opened. */
  readonly recovered: number;

  private constructor(handle: OpenDatabase) {
    this.handle = handle;
    this.db = handle.db;
    // What a stopped sim's journal holds is applied before anything reads the tables (or counts ord).
    this.recovered = handle.db.readonly ? 0 : recoverJournal(this.db, handle.file);
    this.st = statements(this.db);
    this.eventWriter = new EventWriter(this.db);
    const max = (table: string) => (this.db.prepare(`SELECT max(ord) AS m FROM ${table}`).get() as { m: number | null }).m ?? 0;
    this.ord = { next: Math.max(max('machines'), max('instances')) + 1 };
  }

  static open(file: string, opts: OpenOptions = { mode: 'either' }): SqliteStore {
    const handle = openDatabase(file, opts);
    try {
      return new SqliteStore(handle);
    } catch (err) {
      handle.close(); // not left locked by a store that never was
      throw asStoreError(err, file);
    }
  }

  /** The open database, for tables that live beside the engine's (the API's documents). */
  get database(): Database.Database {
    this.catchUp();
    return this.db;
  }

  /** The event log as the API reads it (the same interface on PostgreSQL: ../event-log-reader.ts). */
  get eventLog(): EventLogReader {
    this.catchUp();
    return (this.reader ??= new SqliteEventLogReader(this.db));
  }

  get file(): string {
    return this.handle.file;
  }

  /** True once a fleet was imported. */
  isInitialised(): boolean {
    return this.st.getMeta.get('imported') !== undefined;
  }

  /** Writes a whole engine state (fleet, catalog, and anything already running) into an empty store. */
  importState(state: EngineState): void {
    if (this.isInitialised()) throw new StoreError('STORE_EXISTS', `${this.file} already holds a fleet; it is never overwritten`);
    this.write(() => writeImport(this.st, state, this.ord));
  }

  load(): EngineState | null {
    if (!this.isInitialised()) return null;
    this.catchUp();
    // A value no Phasewise writes (200 MB in a machine's name) would be loaded and served; refused first.
    const huge = findHugeValues(this.db, 1, { skip: EVENT_TABLES });
    if (huge.length > 0) throw this.unloadable(huge[0]!);
    try {
      return loadState(this.db);
    } catch (err) {
      throw this.loadFailure(err);
    }
  }

  /**
   * Why a load failed: a row that is not what Phasewise wrote (text that is not JSON, a huge value) is
   * named, table, row and column, as STORE_CORRUPT; searched only after a failure, so a start pays nothing.
   */
  private loadFailure(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    let bad: BadRow[] = [];
    try {
      bad = findBadRows(this.db, 1);
    } catch {
      // the search failing says nothing more than the error itself
    }
    return bad.length === 0 ? asStoreError(err, this.file) : this.unloadable(bad[0]!, err);
  }

  private unloadable(bad: BadRow, cause?: unknown): StoreError {
    const message = `${this.file} holds a row Phasewise cannot load: ${describeBadRow(bad)}; run phasewise db check for all of them,`
      + ' and restore the file from a backup or mend the row: Phasewise did not start on it';
    return new StoreError('STORE_CORRUPT', message, cause === undefined ? undefined : { cause });
  }

  /** Actions that were committed but never answered: after a restart they are sent again, same keys. */
  pendingActions(): DriverAction[] {
    this.catchUp();
    return (this.st.pendingActions.all() as Array<{ body: string }>).map((r) => JSON.parse(r.body) as DriverAction);
  }

  commit(c: Commit): void {
    if (this.broken) throw new StoreError('STORE_IO', `the store stopped after a failed write: ${this.broken}`);
    if (!c.changes) throw new Error('SqliteStore needs the changes of each tick');
    const changes = c.changes;
    if (this.grouping && this.depth === 0 && !this.group) this.openGroup();
    try {
      const record = this.group ? this.record : null;
      const write = record
        ? () => writeCommit(this.recorder, c, changes, this.ord, (events) => {
          for (const e of events) record.events.push(e);
        })
        : () => writeCommit(this.group && this.coalescer ? this.coalescer.writers : this.st, c, changes, this.ord, (events) => {
          this.eventWriter.sync();
          for (const e of events) this.eventWriter.write(e);
        });
      // In a group no savepoint: a failed write rolls back the whole group (a savepoint's sub-journal costs more than the write).
      if (this.group) write();
      else this.write(write);
      if (!this.group && this.depth === 0) this.transactions++;
      if (this.depth > 0) this.commitsInTransactions++;
      if (this.group) {
        this.group.commits++;
        if (c.actions.length > 0) this.group.hasActions = true;
      }
    } catch (err) {
      // The transaction rolled back; nothing of this tick counts (nor of its group). The engine stops advancing.
      this.abandonGroup();
      const e = asStoreError(err, this.file);
      this.broken = e.message;
      throw e;
    }
  }

  /** Group commit's settings and wall clock, when it is on. */
  private grouping: { settings: GroupCommitSettings; wallNow: () => number; acrossSends: boolean } | null = null;
  private group: OpenGroup | null = null;

  /**
   * Turns group commit on: engine commits outside callers' transactions share one transaction, their
   * deliveries held until its COMMIT. A group commits as soon as one of its commits holds actions
   * (commit before send: they leave only once durable) unless `groupAcrossSends` was asked for, after
   * `ticks` commits, or once `wallMs` passed since its first commit (checked at each commit). A crash
   * loses the open group, which sent nothing.
   */
  groupCommits(settings: GroupCommitSettings, wallNow: () => number = () => performance.now(), opts: { journal?: boolean } & JournalOptions = {}): void {
    this.grouping = { settings: checkGroupCommit(settings), wallNow, acrossSends: false };
    // Groups of one commit write directly, as without groups (a failing write fails its own commit).
    if (opts.journal && settings.ticks > 1 && !this.journal) this.journal = new GroupJournal(this.db, this.file, opts);
    // Groups write hundreds of pages each: checkpoints every 10,000 WAL pages (40 MB) rather than 1,000
    // copy a page rewritten by many groups once. (A larger page cache was slower: SQLite walks it at
    // every transaction's end.)
    this.db.pragma('wal_autocheckpoint = 10000');
  }

  /**
   * With group commit on, a commit holding actions no longer ends its group: whoever asked must `flush`
   * before anything of those actions can be seen (the simulator does; see Store.groupAcrossSends).
   */
  groupAcrossSends(): boolean {
    if (!this.grouping || this.grouping.settings.ticks === 1) return false;
    this.grouping.acrossSends = true;
    return true;
  }

  private openGroup(): void {
    if (this.journal) {
      this.record = { ops: [], meta: new Map(), events: [] };
      this.group = { commits: 0, startedAt: this.grouping!.wallNow(), hasActions: false };
      return;
    }
    this.db.exec('BEGIN IMMEDIATE');
    // A group of one commit writes directly: a failing write then fails its own commit, as without groups.
    if (this.grouping!.settings.ticks > 1) this.coalescer ??= new RowCoalescer(this.db, this.st);
    this.group = { commits: 0, startedAt: this.grouping!.wallNow(), hasActions: false };
  }

  private groupDue(g: OpenGroup): boolean {
    const { settings, wallNow, acrossSends } = this.grouping!;
    return (g.hasActions && !acrossSends) || g.commits >= settings.ticks || wallNow() - g.startedAt >= settings.wallMs;
  }

  /** Rolls back the open group: none of its commits count, none of its deliveries happen. */
  private abandonGroup(): void {
    if (!this.group) return;
    this.group = null;
    this.held = [];
    this.record = null;
    this.coalescer?.discard();
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }

  /**
   * Commits the open group, then runs its deliveries in order. A failed COMMIT undoes commits the
   * engine was told had succeeded: it hears so (onCommitUndone) and halts until resynchronised.
   */
  flush(): void {
    if (!this.group) return;
    try {
      if (this.journal) this.journal.append(this.record!);
      else {
        this.coalescer?.apply();
        this.db.exec('COMMIT');
      }
    } catch (err) {
      this.abandonGroup();
      const e = asStoreError(err, this.file);
      this.broken = e.message;
      for (const l of this.undoneListeners) l(`a group commit failed (${e.message})`);
      throw e;
    }
    this.group = null;
    this.record = null;
    this.transactions++;
    const held = this.held;
    this.held = [];
    for (const deliver of held) deliver();
  }

  /** Engine commits in the open group, not durable yet (0: no group open). */
  get openGroupCommits(): number {
    return this.group?.commits ?? 0;
  }

  /** With the journal: bytes appended, wall time waiting for its fdatasync, its turns and their waits (bench:sim-store prints them). */
  journalFigures(): { bytes: number; syncMs: number; emptied: number; turnWaitMs: number; zeroWaitMs: number } | null {
    const j = this.journal;
    return j ? { bytes: j.appendedBytes, syncMs: j.syncMs, emptied: j.emptied, turnWaitMs: j.turnWaitMs, zeroWaitMs: j.zeroWaitMs } : null;
  }

  /** Engine transactions committed by this store object (alone or as a group): what bench:sim-store counts. */
  transactions = 0;

  private write(fn: () => void): void {
    this.db.transaction(fn).immediate();
  }

  reopen(): void {
    this.broken = null;
  }

  onCommitUndone(listener: (reason: string) => void): void {
    this.undoneListeners.push(listener);
  }

  /** Deliveries waiting for the outer transaction (see `transaction`). */
  private held: Array<() => void> = [];
  private depth = 0;
  /** Engine commits made inside callers' transactions: one undone by a rollback puts memory ahead. */
  private commitsInTransactions = 0;
  private readonly undoneListeners: Array<(reason: string) => void> = [];

  afterCommit(deliver: () => void): void {
    if (this.depth > 0 || this.group) this.held.push(deliver);
    else deliver();
    if (this.depth === 0 && this.group && this.groupDue(this.group)) this.flush();
  }

  /**
   * Runs `fn` in one transaction; engine commits inside it become savepoints, and their actions and
   * events leave only after the outermost COMMIT (none leave when it rolls back: the store never held them).
   */
  transaction<T>(fn: () => T): T {
    if (this.depth === 0) {
      this.flush(); // a caller's transaction never joins an engine group
      this.journal?.barrier(); // nor writes beside the apply worker
    }
    this.depth++;
    const commitsBefore = this.commitsInTransactions;
    let result: T;
    try {
      // IMMEDIATE: the write lock is taken at BEGIN, where SQLite waits for another writer (the agents'
      // status thread); a deferred read that later writes would fail at once (SQLITE_BUSY_SNAPSHOT).
      result = this.db.transaction(fn).immediate();
    } catch (err) {
      if (--this.depth === 0) this.held = [];
      if (this.commitsInTransactions > commitsBefore) {
        const reason = `a transaction holding an engine commit rolled back (${(err as Error).message})`;
        for (const l of this.undoneListeners) l(reason);
      }
      throw err;
    }
    if (--this.depth > 0) return result;
    const held = this.held;
    this.held = [];
    for (const deliver of held) deliver();
    return result;
  }

  /** Events in `seq` order, from `afterSeq` on. */
  *events(afterSeq = 0): Generator<EngineEvent> {
    this.catchUp();
    yield* iterateEvents(this.db, afterSeq);
  }

  /**
   * Before the tables are read or written outside a group: the held rows are written, or with a
   * journal the open group is appended and the worker has applied every record.
   */
  private catchUp(): void {
    if (this.journal) {
      this.flush();
      this.journal.barrier();
    } else this.coalescer?.apply();
  }

  close(): void {
    try {
      try {
        this.flush();
      } finally {
        // Even after a failed last group: the worker must not go on applying once the lock is released
        // (the next owner's recovery would apply the same records). The failed group is not in the journal.
        this.journal?.close(this.db);
      }
    } finally {
      this.handle.close();
    }
  }
}
