/**
 * Group commit through a journal (sim only): a group's durable write is one append of its record to
 * the journal file; the apply worker (journal-worker.ts, on the other core) writes the tables behind.
 * `barrier` waits, synchronously, until the worker applied everything appended: reads of the tables
 * call it first. The journal is two files used in turn: once the one written passes a size, records go
 * to the other, and the worker is asked to make the full one's records durable in the tables, in the
 * background; the other file is emptied first, once the tables hold its records durably (asked for one
 * turn before, so the engine thread seldom waits). Once in the 50,000-machine example, 126 MB of records.
 */
import { randomBytes } from 'node:crypto';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { encodeGroup } from './journal-codec.js';
import type { GroupRecord } from './journal-codec.js';
import { JOURNAL_APPLIED_KEY, JOURNAL_ID_KEY } from './journal-apply.js';
import { AHEAD_BYTES, FRAME_BYTES, journalPaths, JournalFile } from './journal-file.js';

/** Bytes of records after which the journal turns to its other file (emptied, once the tables hold its records durably). */
export const DROP_AFTER_BYTES = 64 * 1024 * 1024;
/** How long a barrier waits between looks at the worker's state (it is woken at once by progress). */
const WAIT_MS = 200;
/**
 * A worker that makes no progress for this long is taken as dead: a thread killed without a word (out of
 * memory, terminated) cannot tell the waiting main thread, whose event loop is blocked in Atomics.wait.
 * Far above any batch's apply time (the worker is seldom more than a group or two behind).
 */
export const STALL_MS = 120_000;
/**
 * Slots of the shared state (journal-worker.ts): the last applied seq, the last applied and on disk, each file's zeroed bytes,
 * and 1 once the worker has started (its database open, its listeners set).
 */
const APPLIED = 0;
const DURABLE = 2;
const ZEROED = [3, 4] as const;
const STARTED = 5;
type Slot = typeof APPLIED | typeof DURABLE | (typeof ZEROED)[number];

export interface JournalOptions {
  /** Smaller in tests, so that a small run turns its journal too. */
  dropAfterBytes?: number;
  /** How long a wait sees no progress from the started worker before it fails (STALL_MS). */
  stallMs?: number;
  /** The seq of the group before the first (0; tests start near a limit, as if that many groups had been applied). */
  firstSeq?: number;
  /** Tests: the worker waits this long before it starts (a loaded machine's slow start). */
  workerStartDelayMsForTest?: number;
}

export class GroupJournal {
  /** The journal's two files (the second made at the first turn) and the one written now. */
  private readonly files: [JournalFile, JournalFile | null];
  private active: 0 | 1 = 0;
  /** The last seq appended to each file since it was last emptied (0: none). */
  private readonly lastSeq = [0, 0];
  private readonly dbFile: string;
  private readonly id: string;
  private readonly worker: Worker;
  /**
   * Shared with the worker: applied seq, worker status, durable seq, each file's zeroed bytes, started (journal-worker.ts). 64-bit slots:
   * 32-bit ones would wrap after 2^31 groups (weeks of a long simulation) and a wait would never end.
   */
  private readonly state = new BigInt64Array(new SharedArrayBuffer(48));
  /** How far each file's zeros were asked of the worker (bytes): records are never written past what it has written. */
  private readonly zerosAsked = [0, 0];
  private readonly durable: boolean;
  private readonly port: MessagePort;
  /** Requests for zeros go on their own port: the worker reads it between records, so they never wait behind a batch. */
  private readonly zeroPort: MessagePort;
  private seq = 0;
  /** Times the journal turned to its other file (a test and benchmark figure). */
  emptied = 0;
  /** Wall milliseconds the engine thread waited at a turn for the tables to hold the other file's records durably (a benchmark figure). */
  turnWaitMs = 0;
  /** Wall milliseconds the engine thread waited for the worker's zeros ahead of the records (a benchmark figure). */
  zeroWaitMs = 0;
  private closed = false;
  private failure: string | null = null;
  /** Bytes appended (a benchmark figure). */
  appendedBytes = 0;

  /** Wall milliseconds the appends waited for the disk (a benchmark figure). */
  get syncMs(): number {
    return this.files[0].syncMs + (this.files[1]?.syncMs ?? 0);
  }

  private readonly dropAfterBytes: number;
  private stallMs: number;

  /**
   * `dropAfterBytes`: smaller in tests, so that a small run turns its journal too. `firstSeq`: the seq of
   * the group before the first (0; tests start near a limit, as if that many groups had been applied).
   */
  constructor(db: Database.Database, dbFile: string, opts: JournalOptions = {}) {
    this.dropAfterBytes = opts.dropAfterBytes ?? DROP_AFTER_BYTES;
    this.stallMs = opts.stallMs ?? STALL_MS;
    this.seq = opts.firstSeq ?? 0;
    const id = randomBytes(16).toString('hex');
    const synchronous = db.pragma('synchronous', { simple: true }) === 1 ? 'NORMAL' : 'FULL';
    // The database names its journal before the journal exists: a journal of another file is then refused at open.
    db.transaction(() => {
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(JOURNAL_ID_KEY, id);
      if (this.seq === 0) db.prepare('DELETE FROM meta WHERE key = ?').run(JOURNAL_APPLIED_KEY);
      else db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(JOURNAL_APPLIED_KEY, String(this.seq));
    }).immediate();
    Atomics.store(this.state, APPLIED, BigInt(this.seq));
    Atomics.store(this.state, DURABLE, BigInt(this.seq));
    this.durable = synchronous === 'FULL';
    this.dbFile = dbFile;
    this.id = id;
    this.files = [new JournalFile(journalPaths(dbFile)[0], id, this.durable), null];
    this.zerosAsked[0] = this.files[0].extent;
    Atomics.store(this.state, ZEROED[0], BigInt(this.files[0].extent));
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const zeros = new MessageChannel();
    this.zeroPort = zeros.port1;
    this.worker = new Worker(new URL('./journal-worker.js', import.meta.url), {
      workerData: { file: dbFile, durable: this.durable, shared: this.state.buffer, port: port2, zeroPort: zeros.port2, startDelayMs: opts.workerStartDelayMsForTest ?? 0 },
      transferList: [port2, zeros.port2],
    });
    this.worker.unref(); // a run that never closes its store still exits; the journal keeps its groups
  }

  /** Appends a group's record; once this returns it is durable (with synchronous=FULL). */
  append(record: GroupRecord): void {
    this.checkWorker();
    if (this.files[this.active]!.bytes > this.dropAfterBytes) this.turn();
    const body = encodeGroup(record);
    const file = this.files[this.active]!;
    this.zeroAhead(file, this.active, FRAME_BYTES + body.length);
    file.append(this.seq + 1, body); // a failed append leaves no record: the next takes the same seq
    this.seq++;
    this.lastSeq[this.active] = this.seq;
    this.appendedBytes += body.length;
    // The body moves to the worker without a copy when it owns its whole buffer (V8's serializer's do).
    const own = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
    this.worker.postMessage({ seq: this.seq, body }, own ? [body.buffer as ArrayBuffer] : []);
  }

  /**
   * The zeros ahead of the records (journal-file.ts) are written by the worker, on the other core: writing
   * 16 MiB that extend a file cost the engine thread about 30 ms of CPU and 70 ms of wall time each (8 times
   * in the example). The worker is asked for the next 16 MiB while 8 MiB of zeros are still ahead, so
   * the engine thread waits only when the records outrun it. A record is never written where the worker
   * may still write zeros: past what it has written, the engine thread waits for it. The requests go on a
   * port of their own, which the worker reads before each record it applies: a request posted behind a long
   * batch waited for all of it (12.7% of the engine thread's samples in a profile, the worker being behind).
   */
  private zeroAhead(file: JournalFile, index: 0 | 1, need: number): void {
    const end = file.bytes + need;
    if (end > this.zerosAsked[index]!) this.askZeros(index, end + AHEAD_BYTES); // a record larger than the zeros asked for
    file.extendedTo(this.slot(ZEROED[index]));
    if (end > file.extent) {
      const t = performance.now();
      this.waitFor(ZEROED[index], end);
      this.zeroWaitMs += performance.now() - t;
      file.extendedTo(this.slot(ZEROED[index]));
    }
    if (this.zerosAsked[index]! - end < AHEAD_BYTES / 2) this.askZeros(index, this.zerosAsked[index]! + AHEAD_BYTES);
  }

  private askZeros(index: 0 | 1, to: number): void {
    this.zeroPort.postMessage({ zero: index, from: this.zerosAsked[index], to });
    this.zerosAsked[index] = to;
  }

  /**
   * Turns to the other file, emptied first: the tables must hold its records durably, which the worker
   * was asked for when the journal last turned away from it (long done, mostly). Then the worker is asked
   * to apply what it has queued (the full file's records and any before) and commit once at
   * synchronous=FULL, in the background: the engine thread goes on appending to the other file.
   */
  private turn(): void {
    const other = this.active === 0 ? 1 : 0;
    if (this.lastSeq[other]! > 0) {
      const t = performance.now();
      this.waitFor(DURABLE, this.lastSeq[other]);
      this.turnWaitMs += performance.now() - t;
    }
    // The second file is made at the first turn: its header, and its name (the folder), durable before any record.
    if (!this.files[other]) {
      const made = (this.files[other] = new JournalFile(journalPaths(this.dbFile)[1], this.id, this.durable));
      this.zerosAsked[other] = made.extent;
      Atomics.store(this.state, ZEROED[other], BigInt(made.extent));
    }
    const file = this.files[other]!;
    file.clear();
    file.extendedTo(this.slot(ZEROED[other]));
    this.lastSeq[other] = 0;
    this.active = other;
    this.worker.postMessage('sync');
    this.emptied++;
  }

  /** Waits until the worker applied every record appended (asked to apply a small batch at once, not after its wait). */
  barrier(): void {
    if (this.slot(APPLIED) < this.seq) this.worker.postMessage('drain');
    this.waitFor(APPLIED);
  }

  /** Waits until the worker's `slot` (applied or durable seq, zeroed bytes) reaches `seq`; the worker notifies slot 0 for each. */
  private waitFor(slot: Slot, seq = this.seq): void {
    const stall = this.stallWatch();
    while (this.slot(slot) < seq) {
      this.checkWorker();
      stall();
      Atomics.wait(this.state, APPLIED, Atomics.load(this.state, APPLIED), WAIT_MS);
    }
  }

  /**
   * A check to call in a wait loop: throws once the worker's state has not moved for `stallMs`. Until the worker
   * has started, the bound is at least STALL_MS: starting a thread and opening the database took more than a
   * shorter `stallMs` (300 ms, tests) on a loaded machine, and a worker still starting was taken as dead. (A worker
   * that fails as it starts says so: its status slot.)
   */
  private stallWatch(): () => void {
    let seen = this.progress();
    let since = performance.now();
    return () => {
      const now = this.progress();
      const limit = Atomics.load(this.state, STARTED) === 1n ? this.stallMs : Math.max(this.stallMs, STALL_MS);
      if (now !== seen) {
        seen = now;
        since = performance.now();
      } else if (performance.now() - since > limit) {
        this.failure ??= `no progress for ${Math.round(limit / 1000)} s (the worker thread is gone or stuck)`;
        throw new Error(`the journal's apply worker failed: ${this.failure}`);
      }
    };
  }

  /** A seq slot's value (a seq stays far below 2^53, the journal file's limit: a Number holds it exactly). */
  private slot(slot: Slot): number {
    return Number(Atomics.load(this.state, slot));
  }

  private progress(): string {
    return [0, 1, 2, 3, 4, 5].map((i) => Atomics.load(this.state, i)).join('/');
  }

  /** Applies everything, stops the worker, removes the journal and its meta rows: the file is whole alone. */
  close(db: Database.Database): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.barrier();
      this.worker.postMessage('close');
      const stall = this.stallWatch();
      while (Atomics.load(this.state, 1) === 0n) {
        stall();
        Atomics.wait(this.state, 1, 0n, WAIT_MS);
      }
      this.checkWorker();
    } catch (err) {
      for (const f of this.files) f?.close(false); // kept: the next open applies what they hold
      void this.worker.terminate();
      throw err;
    }
    // A transaction of this connection (synchronous as the user chose) makes the worker's, before it in
    // the WAL, durable; only then is the journal removed, and last the meta rows that name it.
    db.prepare('UPDATE meta SET value = value WHERE key = ?').run(JOURNAL_APPLIED_KEY);
    for (const f of this.files) f?.close(true);
    this.zeroPort.close();
    db.prepare('DELETE FROM meta WHERE key IN (?, ?)').run(JOURNAL_ID_KEY, JOURNAL_APPLIED_KEY);
  }

  /**
   * Tests: a worker that dies hard. Waits until it wrote the zeros asked for (appends after it need no worker),
   * stops it at once without a word, and from then on takes `stallMs` without progress as its death. Only then:
   * a short bound while it lives fails a wait on a loaded machine, where writing zeros can take longer.
   */
  killWorkerForTest(stallMs: number): Promise<number> {
    for (const i of [0, 1] as const) if (this.files[i]) this.waitFor(ZEROED[i], this.zerosAsked[i]);
    this.stallMs = stallMs;
    return this.worker.terminate();
  }

  /** Throws the worker's error once it failed (the records stay in the journal for the next open). */
  private checkWorker(): void {
    if (this.failure !== null) throw new Error(`the journal's apply worker failed: ${this.failure}`);
    if (Atomics.load(this.state, 1) !== 1n) return;
    this.failure ??= String(receiveMessageOnPort(this.port)?.message ?? 'no message');
    throw new Error(`the journal's apply worker failed: ${this.failure}`);
  }
}
