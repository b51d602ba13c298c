/**
 * Group commit through a journal (`sim --store sqlite:`; docs/store.md, "Group commit"): a group is
 * durable once appended to FILE-phasewise-journal, a worker thread applies it to the tables. Real
 * SQLite files, real worker threads, a real process killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { DriverAction } from '../src/engine/driver.js';
import type { EngineEvent } from '../src/model/events.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { GroupJournal } from '../src/store/sqlite/group-journal.js';
import { decodeGroup } from '../src/store/sqlite/journal-codec.js';
import { HEADER_BYTES, JournalFile, journalPath, journalPaths, readJournal, readJournals } from '../src/store/sqlite/journal-file.js';
import { checkDatabase } from '../src/store/sqlite/maintenance.js';
import { STATEMENT_NAMES } from '../src/store/sqlite/rows.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { groupScenario, workerKilledRun } from './helpers/group-commit-child.js';
import { baseScenario } from './helpers/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-journal-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newFile = () => join(dir, `db-${++n}.sqlite`);
const child = join(import.meta.dirname, 'helpers', 'group-commit-child.js');
const json = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;

const TABLES = ['machines', 'instances', 'machine_health', 'rollouts', 'rollout_phases', 'rollout_regions', 'rollout_units', 'gate_runs', 'attempts', 'timers',
  'actions', 'meta', 'event_shapes', 'event_machines', 'event_values', 'events'];
function dump(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true });
  try {
    return Object.fromEntries(TABLES.map((t) => [t, db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()]));
  } finally {
    db.close();
  }
}

function memoryRun(raw: () => Record<string, unknown>): unknown {
  const store = new MemoryStore();
  new Simulation(compileScenario(raw(), 'journal'), { store }).run();
  return json(store.events());
}

/** Keys of actions durable now: in the database's tables (a second connection) or in a whole record of either journal file (read again at each miss). */
function durableKeys(file: string, reader: Database.Statement): (key: string) => boolean {
  const putAction = STATEMENT_NAMES.indexOf('putAction');
  return (key) => {
    if (reader.get(key) !== undefined) return true;
    for (const r of readJournals(file)?.records ?? []) {
      const ops = decodeGroup(r.body).ops;
      for (let i = 0; i < ops.length; i += 2 + (ops[i + 1] as number)) if (ops[i] === putAction && ops[i + 2] === key) return true;
    }
    return false;
  };
}

/** A run through the journal whose driver checks at every send and every answer or report that the key is durable. */
function journalRun(raw: () => Record<string, unknown>, ticks = 1000, dropAfterBytes?: number) {
  const file = newFile();
  const scenario = compileScenario(raw(), 'journal');
  const store = SqliteStore.open(file, { mode: 'new' });
  store.importState(scenario.state);
  store.groupCommits({ ticks, wallMs: 10_000 }, undefined, { journal: true, ...(dropAfterBytes ? { dropAfterBytes } : {}) });
  const reader = new Database(file, { readonly: true });
  const durable = durableKeys(file, reader.prepare('SELECT 1 FROM actions WHERE key = ?').pluck());
  const sim = new Simulation(scenario, { store });
  const early: string[] = [];
  let sent = 0;
  const send = sim.driver.send.bind(sim.driver);
  sim.driver.send = (a: DriverAction) => {
    if (!durable(a.key)) early.push(`sent ${a.key}`);
    sent++;
    send(a);
  };
  const prepared = new Map<string, string[]>();
  const prepare = sim.driver.prepare.bind(sim.driver);
  sim.driver.prepare = (actions) => {
    for (const a of actions) prepared.set(a.machineId, [...(prepared.get(a.machineId) ?? []), a.key]);
    prepare(actions);
  };
  const observe = sim.engine.observe.bind(sim.engine);
  sim.engine.observe = (o) => {
    if (o.kind === 'actionResult' && !durable(o.key)) early.push(`answer ${o.key}`);
    if (o.kind === 'health') for (const k of prepared.get(o.machineId) ?? []) if (!durable(k)) early.push(`report of ${o.machineId} after ${k}`);
    observe(o);
  };
  return { file, store, sim, early, sent: () => sent, reader };
}

function ungroupedTables(raw: () => Record<string, unknown>): Record<string, unknown[]> {
  const file = newFile();
  const scenario = compileScenario(raw(), 'journal');
  const store = SqliteStore.open(file, { mode: 'new' });
  store.importState(scenario.state);
  new Simulation(scenario, { store }).run();
  store.close();
  return dump(file);
}

/** A child process runs the scenario through the journal and SIGKILLs itself after `steps` steps. */
function killedRun(steps: number, killAtSend?: number, dropAfterBytes?: number, sync?: 'NORMAL'): { file: string; sent: string[] } {
  const file = newFile();
  const sentLog = join(dir, `sent-${n}.log`);
  const mode = killAtSend === undefined ? 'journal' : `journal@${killAtSend}`;
  const env = { ...process.env, ...(dropAfterBytes ? { JOURNAL_DROP_AFTER: String(dropAfterBytes) } : {}), ...(sync ? { PHASEWISE_SQLITE_SYNC: sync } : {}) };
  const r = spawnSync(process.execPath, [child, file, sentLog, String(steps), mode], { encoding: 'utf8', env });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const sent = readFileSync(sentLog, 'utf8').trim().split('\n').filter((l) => l.startsWith('sent ')).map((l) => l.slice(5));
  return { file, sent };
}

function meta(file: string, key: string): string | undefined {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
  } finally {
    db.close();
  }
}

describe('group commit through a journal', () => {
  const expected = memoryRun(groupScenario);

  test('every action leaves, and anything of it is seen, only once its key is durable; the log is the in-memory one; the tables equal a transaction per commit', () => {
    const scenarios: Array<() => Record<string, unknown>> = [
      groupScenario,
      () => baseScenario({
        seed: 11,
        failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.1, installFailure: 0.05, rollbackFailure: 0.3 } } },
        events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
      }),
      () => baseScenario({ seed: 77, failures: { versions: { '1.1.0.0': { installFailure: 0.15 } }, background: [{ at: 'PT1H20M', duration: 'PT2H', scaleSet: 'ss-east', share: 0.3 }] } }),
    ];
    for (const raw of scenarios) {
      // The last: the journal turns to its other file whenever one passes 20 KB (checked at every send too).
      for (const [ticks, dropAfter] of [[2], [1000], [1000, 20_000]] as Array<[number, number?]>) {
        const run = journalRun(raw, ticks, dropAfter);
        const result = run.sim.run();
        assert.deepEqual(run.early, [], 'nothing of an action before its key is durable');
        assert.ok(run.sent() > 0);
        assert.deepEqual(json([...run.store.events()]), memoryRun(raw), `the log with groups of ${ticks}`);
        assert.ok(run.store.transactions < result.ticks, `${run.store.transactions} groups for ${result.ticks} ticks`);
        run.reader.close();
        run.store.close();
        if (dropAfter) assert.ok(run.store.journalFigures()!.emptied >= 2, 'the journal turned, back and forth');
        assert.deepEqual(journalPaths(run.file).filter((p) => existsSync(p)), [], 'close removes the journal (both files)');
        assert.equal(meta(run.file, 'journal_id'), undefined, 'and the meta rows that named it');
        assert.deepEqual(dump(run.file), ungroupedTables(raw), `the tables (events included) equal a transaction per commit, groups of ${ticks}`);
      }
    }
  });

  test('a real process killed mid-run: its journal is applied once at the next open, every key it sent is in the tables, the log is a gapless prefix and its counters continue it', () => {
    let appliedBefore = 0;
    let recoveredSome = 0;
    // Killed between steps (after a pause that lets the worker apply part), or at a send: just after an append.
    // The last two: a journal emptied whenever it passes 20 KB (once the tables hold its records durably).
    const kills: Array<[number, number?, number?]> = [[5], [23], [60], [140], [1000, 10], [1000, 25], [1000, 45], [1000, 70], [1000, 90], [1000, 120],
      [1000, 60, 20_000], [1000, 110, 20_000]];
    for (const [steps, atSend, dropAfter] of kills) {
      const { file, sent } = killedRun(steps, atSend, dropAfter);
      assert.ok(existsSync(journalPath(file)), 'the killed process left its journal');
      if (Number(meta(file, 'journal_applied') ?? 0) > 0) appliedBefore++;
      const store = SqliteStore.open(file, { mode: 'existing' });
      if (store.recovered > 0) recoveredSome++;
      assert.deepEqual(journalPaths(file).filter((p) => existsSync(p)), [], 'the journal (both files) is removed once applied');
      const keys = new Set(store.database.prepare('SELECT key FROM actions').pluck().all() as string[]);
      assert.deepEqual(sent.filter((k) => !keys.has(k)), [], `killed after ${steps} steps: every key sent is in the tables`);
      const kept = json([...store.events()]) as EngineEvent[];
      assert.deepEqual(kept, (expected as unknown[]).slice(0, kept.length), 'a prefix of the uninterrupted run');
      assert.deepEqual(kept.map((e) => e.seq), kept.map((_, i) => i + 1), 'no gap and no event twice');
      const state = store.load()!;
      assert.equal(state.eventSeq, kept.length, 'the counters match the log: the next event continues it without a gap');
      // A kill at a send may leave actions of the appended group unsent: durable, they are sent on restart.
      if (atSend === undefined) for (const a of store.pendingActions()) assert.ok(sent.includes(a.key), 'a pending action is one that was sent');
      store.close();
      const again = SqliteStore.open(file, { mode: 'existing' });
      assert.equal(again.recovered, 0, 'applied exactly once');
      assert.deepEqual(json([...again.events()]), kept);
      again.close();
    }
    assert.ok(recoveredSome >= 1, `${recoveredSome} kills left records to apply`);
    assert.ok(appliedBefore >= 1, `${appliedBefore} kills came after the worker had applied some records`);
  });

  test('with PHASEWISE_SQLITE_SYNC=NORMAL (appends not fsynced) a killed process loses nothing either: the next open applies what its journal holds, every key it sent is in the tables', () => {
    // A killed process's writes are in the OS's cache: only a power loss can lose an unsynced append (docs/store.md).
    let recoveredSome = 0;
    for (const [steps, atSend, dropAfter] of [[60], [1000, 45], [1000, 110, 20_000]] as Array<[number, number?, number?]>) {
      const { file, sent } = killedRun(steps, atSend, dropAfter, 'NORMAL');
      assert.ok(existsSync(journalPath(file)), 'the killed process left its journal');
      const store = SqliteStore.open(file, { mode: 'existing' });
      if (store.recovered > 0) recoveredSome++;
      assert.deepEqual(journalPaths(file).filter((p) => existsSync(p)), [], 'the journal (both files) is removed once applied');
      const keys = new Set(store.database.prepare('SELECT key FROM actions').pluck().all() as string[]);
      assert.deepEqual(sent.filter((k) => !keys.has(k)), [], `killed after ${steps} steps: every key sent is in the tables`);
      const kept = json([...store.events()]) as EngineEvent[];
      assert.ok(kept.length > 0);
      assert.deepEqual(kept, (expected as unknown[]).slice(0, kept.length), 'a prefix of the uninterrupted run');
      assert.equal(store.load()!.eventSeq, kept.length, 'the counters match the log');
      store.close();
      const again = SqliteStore.open(file, { mode: 'existing' });
      assert.equal(again.recovered, 0, 'applied exactly once');
      again.close();
    }
    assert.ok(recoveredSome >= 1, `${recoveredSome} kills left records to apply`);
  });

  test('a torn last record is ignored: the records before it are applied, nothing after', () => {
    // Killed at a send: just after a group was appended, most often before the worker applied it (tried until so).
    let found = null;
    for (let tries = 0; tries < 8 && !found; tries++) {
      const { file } = killedRun(1000, 40 + tries);
      const applied = Number(meta(file, 'journal_applied') ?? 0);
      const records = readJournal(journalPath(file))!.records;
      if (records.some((r) => r.seq > applied)) found = { file, applied, records };
    }
    assert.ok(found, 'a kill left records the worker had not applied');
    const { file, applied, records } = found;
    const path = journalPath(file);
    // A next record that only partly reached the disk: its frame and half its body.
    const last = records[records.length - 1]!;
    const frame = Buffer.alloc(16);
    frame.writeUInt32LE(last.body.length, 0);
    frame.writeDoubleLE(last.seq + 1, 8);
    // Written right after the last whole record (the file goes on with zeros written ahead).
    const end = HEADER_BYTES + records.reduce((sum, r) => sum + 16 + r.body.length, 0);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.concat([frame, last.body.subarray(0, last.body.length >> 1)]), 0, undefined, end);
    closeSync(fd);
    assert.equal(readJournal(path)!.records.length, records.length, 'the torn record is not read');
    const store = SqliteStore.open(file, { mode: 'existing' });
    assert.equal(store.recovered, records.filter((r) => r.seq > applied).length, 'every whole record past the applied seq, and no more');
    const kept = json([...store.events()]) as EngineEvent[];
    assert.deepEqual(kept, (expected as unknown[]).slice(0, kept.length), 'a prefix of the uninterrupted run');
    assert.equal(store.load()!.eventSeq, kept.length, 'the counters match the log');
    store.close();
  });

  test('a journal emptied during the run (past its size bound, once the tables hold its records durably): the log and the tables are unchanged', () => {
    const file = newFile();
    const scenario = compileScenario(groupScenario(), 'journal');
    const store = SqliteStore.open(file, { mode: 'new' });
    store.importState(scenario.state);
    store.groupCommits({ ticks: 1000, wallMs: 10_000 }, undefined, { journal: true, dropAfterBytes: 20_000 });
    new Simulation(scenario, { store }).run();
    const figures = store.journalFigures()!;
    assert.ok(figures.emptied >= 2, `emptied ${figures.emptied} times (${figures.bytes} bytes appended)`);
    assert.deepEqual(json([...store.events()]), expected);
    store.close();
    assert.deepEqual(dump(file), ungroupedTables(groupScenario));
  });

  test('seqs past 2^31 (a run of billions of groups, started near the limit): nothing waits for ever, the log and the tables are unchanged', () => {
    const file = newFile();
    const scenario = compileScenario(groupScenario(), 'journal');
    const store = SqliteStore.open(file, { mode: 'new' });
    store.importState(scenario.state);
    const firstSeq = 2 ** 31 - 3; // 32-bit shared slots would wrap a few groups in, and a barrier would wait until the stall watch
    store.groupCommits({ ticks: 1000, wallMs: 10_000 }, undefined, { journal: true, dropAfterBytes: 20_000, stallMs: 5_000, firstSeq });
    new Simulation(scenario, { store }).run();
    assert.deepEqual(json([...store.events()]), expected);
    assert.ok(store.transactions > 3, `${store.transactions} groups: the run crossed 2^31`);
    store.close();
    assert.deepEqual(dump(file), ungroupedTables(groupScenario));
  });

  test('a worker slow to start (1.5 s, past a 300 ms stall bound) is not taken as dead: the stall bound counts from its start, the run and its log are unchanged', () => {
    const file = newFile();
    const scenario = compileScenario(groupScenario(), 'journal');
    const store = SqliteStore.open(file, { mode: 'new' });
    store.importState(scenario.state);
    // A loaded machine took more than 300 ms to start the thread and open the database: the first append, which
    // waits for the worker's zeros, failed with "no progress for 0 s" (the two worker-killed tests below did).
    store.groupCommits({ ticks: 1000, wallMs: 10_000 }, undefined, { journal: true, stallMs: 300, workerStartDelayMsForTest: 1500 });
    new Simulation(scenario, { store }).run();
    assert.deepEqual(json([...store.events()]), expected);
    store.close();
    assert.deepEqual(dump(file), ungroupedTables(groupScenario));
  });

  test('a journal emptied and written again reads only its new records, not the older ones left beyond them nor the zeros written ahead', () => {
    const path = join(dir, 'plain-journal');
    const id = 'a'.repeat(32);
    const file = new JournalFile(path, id, true);
    for (let seq = 1; seq <= 3; seq++) file.append(seq, Buffer.from(`record ${seq} `.repeat(seq * 10)));
    assert.deepEqual(readJournal(path)!.records.map((r) => r.seq), [1, 2, 3]);
    assert.ok(statSync(path).size > 1_000_000, 'zeros are written ahead');
    file.clear();
    file.append(4, Buffer.from('four'));
    const read = readJournal(path)!;
    assert.equal(read.id, id);
    assert.deepEqual(read.records.map((r) => [r.seq, Buffer.from(r.body).toString()]), [[4, 'four']]);
    file.close(true);
    assert.equal(existsSync(path), false);
  });

  test('the zeros ahead are written by the apply worker: past 16 MiB of records (one of them larger than that) each reads back whole and is applied, and the file is written ahead of them', () => {
    const file = newFile();
    const store = SqliteStore.open(file, { mode: 'new' });
    store.importState(compileScenario(groupScenario(), 'journal').state);
    const db = store.database;
    const journal = new GroupJournal(db, file, { stallMs: 10_000 }); // a worker that never wrote them would fail the append, not hang
    const values = Array.from({ length: 30 }, (_, i) => (i === 5 ? 'x'.repeat(20 * 1024 * 1024) : `v${i} `.repeat(50_000)));
    for (const v of values) journal.append({ ops: [], meta: new Map([['probe', v]]), events: [] });
    const path = journalPath(file);
    const records = readJournal(path)!.records;
    assert.deepEqual(records.map((r) => r.seq), values.map((_, i) => i + 1));
    assert.ok(records.every((r, i) => decodeGroup(r.body).ops[3] === values[i]), 'every record as appended: no zeros written over one');
    const end = HEADER_BYTES + records.reduce((sum, r) => sum + 16 + r.body.length, 0);
    journal.barrier(); // the worker writes the zeros asked for before a record before it applies that record
    assert.ok(statSync(path).size >= end + 8 * 1024 * 1024, `${statSync(path).size} bytes for ${end} of records`);
    journal.close(db);
    assert.equal(db.prepare("SELECT value FROM meta WHERE key = 'probe'").pluck().get(), values.at(-1));
    store.close();
  });

  test('a journal written for another database is refused and both files are left as they were', () => {
    const a = killedRun(60);
    const b = killedRun(23);
    copyFileSync(journalPath(a.file), journalPath(b.file));
    const before = dump(b.file);
    const journal = readFileSync(journalPath(b.file));
    assert.throws(() => SqliteStore.open(b.file, { mode: 'existing' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'STORE_CORRUPT');
      assert.match(err.message, /holds group commits of another database .*nothing was changed/);
      return true;
    });
    assert.deepEqual(dump(b.file), before);
    assert.deepEqual(readFileSync(journalPath(b.file)), journal);
    const notJournal = newFile();
    SqliteStore.open(notJournal, { mode: 'new' }).close();
    const garbage = journalPath(notJournal);
    copyFileSync(b.file, garbage);
    assert.throws(() => SqliteStore.open(notJournal, { mode: 'existing' }), /is not a Phasewise journal/);
  });

  test('db check on a killed run\'s file applies its journal first and counts every durable group', () => {
    const { file, sent } = killedRun(60);
    const report = checkDatabase(file);
    assert.equal(existsSync(journalPath(file)), false);
    assert.deepEqual(report.integrity, ['ok']);
    assert.ok(report.counts.events! > 0);
    const db = new Database(file, { readonly: true });
    const keys = new Set(db.prepare('SELECT key FROM actions').pluck().all() as string[]);
    db.close();
    assert.deepEqual(sent.filter((k) => !keys.has(k)), []);
  });

  test('db check on a file a running Phasewise holds, its journal holding records not yet applied: reads what is applied, leaves the journal to its owner', async () => {
    const file = newFile();
    // The worker stops: the groups appended from then on stay in the journal, unapplied, while the store holds the file.
    const store = await workerKilledRun(file);
    const applied = Number(meta(file, 'journal_applied') ?? 0);
    assert.ok(readJournals(file)!.records.some((r) => r.seq > applied), 'the journal holds records past the applied seq');
    const journalBefore = journalPaths(file).filter((p) => existsSync(p)).map((p) => readFileSync(p));
    const report = checkDatabase(file);
    assert.deepEqual(report.integrity, ['ok']);
    assert.deepEqual(journalPaths(file).filter((p) => existsSync(p)).map((p) => readFileSync(p)), journalBefore, 'the journal is left as it was');
    assert.equal(Number(meta(file, 'journal_applied') ?? 0), applied, 'nothing of it applied by the check');
    assert.throws(() => store.close(), /apply worker failed/);
    const again = SqliteStore.open(file, { mode: 'existing' });
    assert.ok(again.recovered > 0);
    again.close();
    assert.ok(checkDatabase(file).counts.events! > report.counts.events!, 'the check counted only what was applied then');
  });

  test('the apply worker dying without a word (terminated): a read stops with a clear error instead of waiting for ever, and the journal is recovered', async () => {
    const file = newFile();
    const store = await workerKilledRun(file);
    const started = performance.now();
    assert.throws(() => store.load(), /apply worker failed: no progress for/);
    assert.ok(performance.now() - started < 10_000, 'the wait is bounded');
    assert.throws(() => store.close(), /apply worker failed/);
    assert.ok(existsSync(journalPath(file)), 'the journal is kept');
    const again = SqliteStore.open(file, { mode: 'existing' });
    assert.ok(again.recovered > 0, 'the records the dead worker left are applied at open');
    const kept = json([...again.events()]) as unknown[];
    assert.deepEqual(kept, (expected as unknown[]).slice(0, kept.length));
    again.close();
  });

  test('the apply worker failing: the run halts without sending the group, and the journal keeps what was durable for the next open', () => {
    const run = journalRun(groupScenario);
    run.sim.driver.observe = () => {}; // as in store-fault.test: asking again for reports would change timings
    for (let i = 0; i < 20 && run.sim.step(); i++);
    const other = new Database(run.file);
    other.exec("CREATE TRIGGER fail_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'simulated apply failure'); END");
    other.close();
    let failed: unknown = null;
    try {
      while (run.sim.step());
      run.store.load(); // the worker may fail after the last append: a read finds it at the latest
    } catch (err) {
      failed = err;
    }
    assert.match(String((failed as Error | null)?.message), /simulated apply failure/);
    assert.deepEqual(run.early, [], 'nothing left before it was durable');
    run.reader.close();
    assert.throws(() => run.store.close(), /simulated apply failure/);
    assert.ok(existsSync(journalPath(run.file)), 'the journal is kept');
    const fix = new Database(run.file);
    fix.exec('DROP TRIGGER fail_events');
    fix.close();
    const store = SqliteStore.open(run.file, { mode: 'existing' });
    assert.ok(store.recovered > 0);
    const kept = json([...store.events()]) as unknown[];
    assert.deepEqual(kept, (expected as unknown[]).slice(0, kept.length));
    store.close();
  });
});
