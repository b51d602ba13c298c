/**
 * The apply worker (a worker thread): owns its own connection to the database and applies the journal
 * records the main thread posts, in order, in batches (BATCH_RECORDS, below) of one transaction each. Progress and
 * failure go through shared memory (the main thread waits on it with Atomics.wait, synchronously):
 * [0] the last applied seq, [1] 0 running, 1 failed (the message on `port`), 2 closed, [2] the last seq
 * applied and on disk (after a 'sync' message), [3] and [4] the bytes of the journal's first and second
 * file that exist (records or zeros), [5] 1 once this thread has started (the main thread's stall bound counts from
 * then: group-journal.ts, `stallWatch`): the worker writes the zeros ahead of the records when asked
 * (group-journal.ts, `zeroAhead`), so that the engine thread does not. Those requests come on a port of their
 * own (`zeroPort`), read before each record applied: the engine thread may be waiting for them.
 *
 * Its transactions use synchronous=NORMAL: the journal holds every group durably, so an applied
 * transaction need not be (an fsync here would compete with the journal's on the same disk). When the
 * journal turns to its other file, the main thread posts 'sync': the worker applies what is queued and
 * commits one transaction at synchronous=FULL, which makes the WAL and everything before it durable (the
 * file turned away from is emptied, a turn later, only once this is done).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { JournalApplier } from './journal-apply.js';
import { journalPaths } from './journal-file.js';
import type { JournalRecord } from './journal-file.js';

interface Data { file: string; durable: boolean; shared: SharedArrayBuffer; port: MessagePort; zeroPort: MessagePort; startDelayMs: number }
const { file, durable, shared, port, zeroPort, startDelayMs } = workerData as Data;
const state = new BigInt64Array(shared); // 64-bit: a seq must not wrap (group-journal.ts)

function fail(err: unknown): void {
  port.postMessage((err as Error)?.message ?? String(err));
  Atomics.store(state, 1, 1n);
  Atomics.notify(state, 0);
  Atomics.notify(state, 1);
}

process.on('uncaughtException', fail);
if (startDelayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, startDelayMs); // tests: a slow start

let db: Database.Database | null = null;
let applier: JournalApplier | null = null;
try {
  db = new Database(file);
  db.pragma('synchronous = NORMAL');
  // As the grouped store's own connection: groups rewrite the same pages, so checkpoint less often.
  db.pragma('wal_autocheckpoint = 10000');
  applier = new JournalApplier(db);
} catch (err) {
  fail(err);
}

let queue: JournalRecord[] = [];
/** A drain is due: at once (setImmediate) or once a small batch waited long enough (setTimeout). */
let scheduled: 'now' | 'later' | null = null;
let timer: NodeJS.Timeout | null = null;
/**
 * Records applied together: one transaction writes a page once however many of them change it, and rows
 * several records write are written once (coalesce.ts), so a few records per transaction cost less than
 * one each. A smaller queue waits at most BATCH_WAIT_MS (the main thread posts 'drain' before it waits for
 * the worker, and 'sync' and 'close' drain at once). 64 records or 100 ms rather than 8 or 20 ms: the
 * example's 1,908 records replayed in batches of 8 took 6.3-6.4 s of CPU, in batches of 64 5.4 s (paired, docs/benchmarks.md, session 18).
 */
const BATCH_RECORDS = 64;
const BATCH_WAIT_MS = 100;

function drain(): void {
  scheduled = null;
  if (timer) clearTimeout(timer);
  timer = null;
  if (queue.length === 0 || Atomics.load(state, 1) !== 0n || !db || !applier) return;
  const batch = queue;
  queue = [];
  try {
    db.transaction(() => applier!.apply(batch, serveZeros)).immediate();
  } catch (err) {
    applier.discard();
    fail(err);
    return;
  }
  Atomics.store(state, 0, BigInt(batch[batch.length - 1]!.seq));
  Atomics.notify(state, 0);
}

/** Applies what is queued, then makes everything applied durable (the main thread then empties the journal). */
function sync(): void {
  drain();
  if (Atomics.load(state, 1) !== 0n || !db || !applier) return;
  const applied = Atomics.load(state, 0);
  try {
    // Without durable appends (PHASEWISE_SQLITE_SYNC=NORMAL) what is applied is as durable as the journal was.
    if (durable) {
      db.pragma('synchronous = FULL');
      db.transaction(() => applier!.touch(Number(applied))).immediate();
      db.pragma('synchronous = NORMAL');
    }
  } catch (err) {
    fail(err);
    return;
  }
  Atomics.store(state, 2, applied);
  Atomics.notify(state, 0);
}

/** Schedules a drain: at once once `BATCH_RECORDS` wait (or `now`), else after `BATCH_WAIT_MS`. */
function schedule(now: boolean): void {
  if (scheduled === 'now' || queue.length === 0) return;
  if (now || queue.length >= BATCH_RECORDS) {
    scheduled = 'now';
    setImmediate(drain); // records that arrive meanwhile join this transaction
  } else if (scheduled === null) {
    scheduled = 'later';
    timer = setTimeout(drain, BATCH_WAIT_MS);
  }
}

/** The journal's files as this thread writes zeros into them (opened at the first request: the second is made later). */
const journalFds: Array<number | undefined> = [];
const ZEROS = Buffer.alloc(1024 * 1024);

/** Writes zeros over [from, to) of journal file `index`, then says so in its slot (3 + index). */
function zero(index: 0 | 1, from: number, to: number): void {
  try {
    const fd = (journalFds[index] ??= openSync(journalPaths(file)[index], 'r+'));
    for (let at = from; at < to;) at += writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, to - at), at);
  } catch (err) {
    fail(err);
    return;
  }
  Atomics.store(state, 3 + index, BigInt(to));
  Atomics.notify(state, 0);
}

interface ZeroRequest { zero: 0 | 1; from: number; to: number }

/** Writes every zero request waiting (called before each record applied, and when idle by the port's listener). */
function serveZeros(): void {
  for (let m = receiveMessageOnPort(zeroPort); m; m = receiveMessageOnPort(zeroPort)) {
    const r = m.message as ZeroRequest;
    zero(r.zero, r.from, r.to);
  }
}

zeroPort.on('message', (r: ZeroRequest) => zero(r.zero, r.from, r.to));

parentPort!.on('message', (m: JournalRecord | 'close' | 'sync' | 'drain') => {
  if (m === 'sync') return sync();
  if (m === 'drain') return schedule(true);
  if (m !== 'close') {
    queue.push(m);
    schedule(false);
    return;
  }
  drain();
  serveZeros(); // asked before 'close': the journal may be read again before it is removed (tests)
  zeroPort.close();
  try {
    for (const fd of journalFds) if (fd !== undefined) closeSync(fd);
    db?.close();
  } catch (err) {
    fail(err);
  }
  if (Atomics.load(state, 1) === 0n) Atomics.store(state, 1, 2n);
  Atomics.notify(state, 1);
  parentPort!.close();
});

// Started: the database is open and the listeners are set (a wait's stall bound counts from here).
Atomics.store(state, 5, 1n);
Atomics.notify(state, 0);
