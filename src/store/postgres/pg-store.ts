/**
 * The durable Store on PostgreSQL. The Store contract is synchronous (the engine ticks without
 * awaiting), so this store:
 * - loads the whole state when it opens (`PgStore.open` is async; `load()` then returns it);
 * - turns each `commit` into one text of SQL at once (the same rows SQLite writes) and queues it; the
 *   commits run one after another, each one transaction in one round trip;
 * - runs `afterCommit` deliveries (the tick's sends and events) only once that commit succeeded: commit
 *   before send holds as on SQLite, the engine just does not wait for it;
 * - after a failed commit, refuses every later one: the engine halts at its next commit, and the
 *   deliveries of the failed and later commits never run.
 * With a fence (the engine lease's holder and token), every commit first checks, in its transaction,
 * that the lease is still this replica's and unexpired: a replica that lost it can never commit again.
 */
import type pg from 'pg';
import type { DriverAction } from '../../engine/driver.js';
import type { EngineState } from '../../engine/state.js';
import type { EngineEvent } from '../../model/events.js';
import type { Commit, Store } from '../store.js';
import { StoreError } from '../sqlite/database.js';
import { FleetLoader, loadState } from '../sqlite/load.js';
import { SQL, statements } from '../sqlite/rows.js';
import { healthRows, instanceRows, machineRows, writeCommit, writeImportRest, writeImportSets } from '../sqlite/write.js';
import type { OrdCounter } from '../sqlite/write.js';
import { connect, migrate, pgStoreError, redact, SCHEMA_GUARD } from './connect.js';
import { eventRow, PUT_EVENT, readEvents } from './events.js';
import { copyRows } from './copy-in.js';
import { FLEET_INDEXES } from './schema.js';
import { copyToSqlite, emptySqlite } from './snapshot.js';
import { literal, SqlBatch } from './sql-batch.js';
import { DISABLE_STATE_TRIGGERS, ENABLE_STATE_TRIGGERS, PRUNE_EVERY, pruneTombstonesSql, TOMBSTONE_KEEP } from './tombstones.js';

/** The lease a commit must still hold: its name, this replica's id and the fencing token it got. */
export interface Fence {
  lease: string;
  holder: string;
  token: number;
}

export interface PgOpenOptions {
  /** Every commit checks this lease in its transaction (replicas); absent: a single writer. */
  fence?: Fence;
  /** Told once, when a commit fails (the lease was lost, the server went away). */
  onBroken?: (err: StoreError) => void;
}

interface Loaded {
  state: EngineState | null;
  pending: DriverAction[];
  nextOrd: number;
}

export class PgStore implements Store {
  readonly tracksChanges = true;
  private readonly ord: OrdCounter;
  private loaded: Loaded;
  private fence: Fence | null;
  /** The queue of commits: each runs after the one before it. */
  private chain: Promise<void> = Promise.resolve();
  /** The last queued commit: true once it is durable. */
  private last: Promise<boolean> = Promise.resolve(true);
  private brokenError: StoreError | null = null;
  private closed = false;
  /** Imported with `load: false`: initialised, but its state not read back. */
  private importedUnloaded = false;
  commits = 0;
  /** Transactions queued so far (the tombstones are pruned once in PRUNE_EVERY). */
  private queued = 0;
  /** Statements that go into the next commit's transaction (a command marked done with its effects). */
  private extras: string[] = [];
  /** While a command runs: its commits' texts, committed as one transaction by `release` (see `hold`). */
  private held: { texts: string[]; settle: (ok: boolean) => void } | null = null;

  private constructor(private readonly client: pg.Client, readonly url: string, loaded: Loaded, private readonly opts: PgOpenOptions) {
    this.loaded = loaded;
    this.ord = { next: loaded.nextOrd };
    this.fence = opts.fence ?? null;
  }

  /** Connects, migrates (refusing a newer schema) and reads the state saved so far. */
  static async open(url: string, opts: PgOpenOptions = {}): Promise<PgStore> {
    let store: PgStore | null = null;
    const client = await connect(url, { onError: (err) => store?.fail(err), purpose: 'store' });
    try {
      await migrate(client, url);
      store = new PgStore(client, url, await readLoaded(client), opts);
      return store;
    } catch (err) {
      await client.end().catch(() => {});
      throw pgStoreError(err, url);
    }
  }

  /** The URL without its password. */
  get name(): string {
    return redact(this.url);
  }

  get broken(): StoreError | null {
    return this.brokenError;
  }

  isInitialised(): boolean {
    return this.loaded.state !== null || this.importedUnloaded;
  }

  /**
   * Writes a whole engine state into an empty database, in one transaction: a failed import leaves
   * it as it was. The fleet's rows are streamed with COPY (see copy-in.ts), the rest as batched SQL.
   * With `load: false` the state is not read back (a caller that goes on with the state it imported,
   * as `sim` does): `load()` then needs the store opened again.
   */
  async importState(state: EngineState, opts: { load?: boolean } = {}): Promise<void> {
    const { rows } = await this.client.query("SELECT 1 FROM meta WHERE key = 'imported' UNION ALL (SELECT 1 FROM machines LIMIT 1)");
    if (rows.length > 0) throw new StoreError('STORE_EXISTS', `${this.name} already holds a fleet; it is never overwritten`);
    const ordBefore = this.ord.next;
    await this.client.query('BEGIN');
    try {
      const head = new SqlBatch(true);
      writeImportSets(head.writers, state);
      for (const text of head.takeChunks()) await this.client.query(text);
      await this.client.query(DISABLE_STATE_TRIGGERS);
      await this.client.query(FLEET_INDEXES.drop);
      await this.copyAll('putMachine', machineRows(state, this.ord), state.fleet.machines.size);
      await this.copyAll('putInstance', instanceRows(state, this.ord), countInstances(state));
      await this.client.query(FLEET_INDEXES.build);
      await this.copyAll('putHealth', healthRows(state), state.fleet.health.size);
      const rest = new SqlBatch(true);
      writeImportRest(rest.writers, state);
      for (const text of rest.takeChunks()) await this.client.query(text);
      await this.client.query(ENABLE_STATE_TRIGGERS);
      // Fenced as every commit, but last: the check's share lock on the lease row, taken first, would hold the
      // lease's renewals back for the whole import; a leader paused or cut off past its lease meanwhile commits nothing.
      if (this.fence) await this.client.query('SELECT phasewise_fence($1, $2, $3)', [this.fence.lease, this.fence.holder, this.fence.token]);
      await this.client.query('COMMIT');
    } catch (err) {
      this.ord.next = ordBefore;
      await this.client.query('ROLLBACK').catch(() => {});
      throw pgStoreError(err, this.url);
    }
    if (opts.load === false) {
      this.loaded = { state: null, pending: [], nextOrd: this.ord.next };
      this.importedUnloaded = true;
    } else {
      this.loaded = await readLoaded(this.client);
    }
  }

  /** One of SQLite's INSERT statements' tables and columns, filled by COPY; checks the count the server copied. */
  private async copyAll(name: 'putMachine' | 'putInstance' | 'putHealth', rows: Iterable<unknown[]>, expected: number): Promise<void> {
    const m = /^INSERT INTO (\w+) \(([^)]+)\)/.exec(SQL[name])!;
    const copied = await copyRows(this.client, m[1]!, m[2]!.split(',').map((c) => c.trim()), rows);
    if (copied !== expected) throw new StoreError('STORE_IO', `the import copied ${copied} rows into ${m[1]}, expected ${expected}`);
  }

  load(): EngineState | null {
    if (this.closed) throw new Error('PgStore.load: the store is closed');
    if (this.importedUnloaded) throw new Error('the state was imported without being read back: open the store again to load it');
    return this.loaded.state;
  }

  /** Actions that were committed but never answered (as loaded): after a restart they are sent again, same keys. */
  pendingActions(): DriverAction[] {
    return this.loaded.pending;
  }

  commit(c: Commit): void {
    if (this.brokenError) throw new StoreError(this.brokenError.code, `the store stopped after a failed write: ${this.brokenError.message}`);
    if (!c.changes) throw new Error('PgStore needs the changes of each tick');
    const batch = new SqlBatch();
    if (this.fence) batch.raw(`SELECT phasewise_fence(${literal(this.fence.lease)}, ${literal(this.fence.holder)}, ${literal(this.fence.token)})`);
    batch.raw(SCHEMA_GUARD);
    writeCommit(batch.writers, c, c.changes, this.ord, (events) => {
      for (const e of events) batch.statement(PUT_EVENT, eventRow(e));
    });
    for (const sql of this.extras) batch.raw(sql);
    this.extras = [];
    if (this.held) this.held.texts.push(batch.take());
    else this.enqueue(batch.take());
  }

  /**
   * From now until `release`, the engine's commits are kept in memory instead of sent, and their
   * deliveries wait: an API command's effects, the tables beside the engine's and the command's done
   * mark then commit in one transaction (exactly once, whatever dies when).
   */
  hold(): void {
    if (this.held) throw new Error('PgStore.hold: already holding');
    let settle!: (ok: boolean) => void;
    const durable = new Promise<boolean>((resolve) => (settle = resolve));
    this.held = { texts: [], settle };
    this.last = durable;
  }

  /** True between `hold` and `release`. */
  get holding(): boolean {
    return this.held !== null;
  }

  /** Commits what `hold` kept, then `sql`, as one fenced transaction; true once durable. */
  release(sql: string): Promise<boolean> {
    const held = this.held;
    if (!held) throw new Error('PgStore.release: not holding');
    this.held = null;
    const batch = new SqlBatch();
    if (this.fence) batch.raw(`SELECT phasewise_fence(${literal(this.fence.lease)}, ${literal(this.fence.holder)}, ${literal(this.fence.token)})`);
    for (const text of held.texts) batch.raw(text);
    if (sql) batch.raw(sql);
    if (this.brokenError) {
      held.settle(false);
      return Promise.resolve(false);
    }
    this.enqueue(batch.take());
    const done = this.last;
    void done.then(held.settle);
    return done;
  }

  /** Adds a statement to the next engine commit's transaction. */
  withNextCommit(sql: string): void {
    this.extras.push(sql);
  }

  /** Forgets the statements meant for the next commit (the command that queued them failed before committing). */
  clearNextCommit(): void {
    this.extras = [];
  }

  /** Commits statements on their own (fenced, in order with the engine's commits): a command that changed nothing. */
  commitAlone(sql: string): Promise<boolean> {
    if (this.brokenError) return Promise.resolve(false);
    if (this.held) throw new Error('PgStore.commitAlone: a command is being held; add to its release instead');
    const batch = new SqlBatch();
    if (this.fence) batch.raw(`SELECT phasewise_fence(${literal(this.fence.lease)}, ${literal(this.fence.holder)}, ${literal(this.fence.token)})`);
    batch.raw(sql);
    this.enqueue(batch.take());
    return this.last;
  }

  private enqueue(text: string): void {
    // Every transaction moves the commit version first (replicas' read snapshots follow it; see COMMIT_VERSION_NOW),
    // and tells the tables' triggers which version their rows and tombstones belong to (read-model.ts).
    const prune = ++this.queued % PRUNE_EVERY === 0 ? `;\n${pruneTombstonesSql(TOMBSTONE_KEEP)}` : ''; // a batch's text has no final ';'
    const versioned = `WITH v AS (UPDATE commit_version SET version = version + 1 RETURNING version) SELECT set_config('phasewise.cv', version::text, true) FROM v;\n${text}${prune}`;
    const done = this.chain.then(async () => {
      if (this.brokenError) return false;
      try {
        await this.client.query(versioned);
        this.commits++;
        return true;
      } catch (err) {
        this.fail(err);
        return false;
      }
    });
    this.chain = done.then(() => {});
    this.last = done;
  }

  /** `deliver` runs once the last queued commit is durable; never if it failed. */
  afterCommit(deliver: () => void): void {
    void this.last.then((ok) => {
      if (ok) deliver();
    });
  }

  /** Resolves when every queued commit is done; rejects if one failed. */
  async settled(): Promise<void> {
    await this.chain;
    if (this.brokenError) throw this.brokenError;
  }

  private fail(err: unknown): void {
    if (this.brokenError || this.closed) return;
    this.brokenError = pgStoreError(err, this.url);
    this.opts.onBroken?.(this.brokenError);
  }

  /** Events in `seq` order, from `afterSeq` on (after the commits queued so far). */
  async *events(afterSeq = 0): AsyncGenerator<EngineEvent> {
    await this.chain;
    yield* readEvents(this.client, afterSeq);
  }

  /** The client, for the tables that live beside the engine's (lease, commands) and for tests. */
  get connection(): pg.Client {
    return this.client;
  }

  close(): void {
    void this.end();
  }

  /**
   * Waits for the queued commits, then disconnects, and lets go of the state it loaded: the client stays
   * reachable until its socket's close is handled (a later turn of the event loop), and through its error
   * listener this store; at 10,000,000 machines a state kept that long is gigabytes (docs/benchmarks.md, bench:pg).
   */
  async end(): Promise<void> {
    await this.chain;
    this.closed = true;
    await this.client.end().catch(() => {});
    this.loaded = { state: null, pending: [], nextOrd: this.ord.next };
  }
}

function countInstances(state: EngineState): number {
  let n = 0;
  for (const byMachine of state.fleet.instances.values()) n += byMachine.size;
  return n;
}

/** The state as the tables hold it now, rebuilt by the SQLite loader from a consistent in-memory copy. */
async function readLoaded(client: pg.Client): Promise<Loaded> {
  const { rows } = await client.query<{ n: number | null }>('SELECT greatest((SELECT max(ord) FROM machines), (SELECT max(ord) FROM instances)) AS n');
  const nextOrd = (rows[0]?.n ?? 0) + 1;
  const db = emptySqlite();
  try {
    const fleet = await copyToSqlite(client, db, { whole: false, fleet: (d) => new FleetLoader(d) });
    const st = statements(db);
    if (st.getMeta.get('imported') === undefined) return { state: null, pending: [], nextOrd };
    const pending = (st.pendingActions.all() as Array<{ body: string }>).map((r) => JSON.parse(r.body) as DriverAction);
    return { state: loadState(db, fleet ?? undefined), pending, nextOrd };
  } finally {
    db.close();
  }
}
