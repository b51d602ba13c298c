/**
 * Recovery of a group-commit journal left beside a database (docs/store.md, "The journal and its apply
 * worker"): crafted, damaged, foreign and half-created journals, and a crash between removing the
 * journal and the meta rows naming it. Each refused journal changes nothing: tables and journal as before.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serialize } from 'node:v8';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { HEADER_BYTES, JournalFile, journalPath, journalPaths } from '../src/store/sqlite/journal-file.js';
import { JOURNAL_APPLIED_KEY, JOURNAL_ID_KEY, recoverJournal } from '../src/store/sqlite/journal-apply.js';
import { STATEMENT_NAMES } from '../src/store/sqlite/rows.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { groupScenario } from './helpers/group-commit-child.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-journal-recovery-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const ID = 'b'.repeat(32);
const PUT_META = STATEMENT_NAMES.indexOf('putMeta');
/** A record as recordingWriters writes it: one meta row, no events. */
const probe = (value: string) => serialize([[PUT_META, 2, `probe`, value], []]);

/** A database whose meta names journal ID (applied up to `applied`), and beside it a journal holding `bodies` from seq `first`. */
function withJournal(bodies: Buffer[], opts: { applied?: number; first?: number } = {}): { file: string; path: string } {
  const file = join(dir, `db-${++n}.sqlite`);
  const store = SqliteStore.open(file, { mode: 'new' });
  store.importState(compileScenario(groupScenario(), 'journal').state);
  store.close();
  const db = new Database(file);
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(JOURNAL_ID_KEY, ID);
  if (opts.applied !== undefined) db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(JOURNAL_APPLIED_KEY, String(opts.applied));
  db.close();
  const path = journalPath(file);
  const journal = new JournalFile(path, ID, true);
  bodies.forEach((b, i) => journal.append((opts.first ?? 1) + i, b));
  journal.close(false);
  return { file, path };
}

function metaRows(file: string): Record<string, unknown> {
  const db = new Database(file, { readonly: true });
  try {
    return Object.fromEntries((db.prepare('SELECT key, value FROM meta ORDER BY key').all() as Array<{ key: string; value: unknown }>).map((r) => [r.key, r.value]));
  } finally {
    db.close();
  }
}

/** Writes the journal's second file (journalPaths) beside `file`, holding `bodies` from seq `first`. */
function withSecondFile(file: string, bodies: Buffer[], first: number, id = ID): string {
  const path = journalPaths(file)[1];
  const journal = new JournalFile(path, id, true);
  bodies.forEach((b, i) => journal.append(first + i, b));
  journal.close(false);
  return path;
}

/** Both journal files' bytes (null: absent). */
const journalBytes = (file: string) => journalPaths(file).map((p) => (existsSync(p) ? readFileSync(p) : null));

/** Opening is refused with STORE_CORRUPT matching `message`; the tables and the journal are as they were, and no lock is left. */
function assertRefused(file: string, message: RegExp): void {
  const before = metaRows(file);
  const journal = journalBytes(file);
  assert.throws(() => SqliteStore.open(file, { mode: 'existing' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STORE_CORRUPT', err.message);
    assert.match(err.message, message);
    assert.match(err.message, /nothing was changed/);
    return true;
  });
  assert.deepEqual(metaRows(file), before, 'no table changed');
  assert.deepEqual(journalBytes(file), journal, 'the journal (both files) is kept as it was');
  assert.equal(existsSync(`${file}.lock`), false);
}

describe('journal recovery', () => {
  test('a whole journal past the applied seq is applied once, and the journal and its meta rows are gone', () => {
    const { file, path } = withJournal([probe('one'), probe('two'), probe('three')], { applied: 1, first: 1 });
    const store = SqliteStore.open(file, { mode: 'existing' });
    assert.equal(store.recovered, 2);
    store.close();
    const meta = metaRows(file);
    assert.equal(meta.probe, 'three');
    assert.equal(meta[JOURNAL_ID_KEY], undefined);
    assert.equal(existsSync(path), false);
  });

  for (const [name, body] of [
    ['a body V8 accepts that is not a record', serialize(42)],
    ['a body V8 refuses', Buffer.from('not serialized at all')],
    ['a statement index no statement has', serialize([[999, 0], []])],
    ['a negative argument count (the replay would loop for ever)', serialize([[PUT_META, -2], []])],
    ['an argument count the statement does not take', serialize([[PUT_META, 1, 'probe'], []])],
    ['an argument count past the end of the record', serialize([[PUT_META, 2, 'probe'], []])],
    ['an argument SQLite cannot bind', serialize([[PUT_META, 2, 'probe', { a: 1 }], []])],
    ['an event that is not one', serialize([[], [42]])],
  ] as const) {
    test(`a crafted record (${name}) is refused as STORE_CORRUPT; the whole record before it is not applied either`, { timeout: 20_000 }, () => {
      const { file } = withJournal([probe('whole'), body]);
      assertRefused(file, /holds a record Phasewise did not write/);
      assert.equal(metaRows(file).probe, undefined);
    });
  }

  test('a journal in two files (turned after the first filled up): the records of both past the applied seq are applied once, in seq order, and both files are gone', () => {
    // The first file was emptied at a second turn and holds the newest records; the second holds the ones before.
    const { file, path } = withJournal([probe('four'), probe('five')], { applied: 2, first: 4 });
    const second = withSecondFile(file, [probe('one'), probe('two'), probe('three')], 1);
    const store = SqliteStore.open(file, { mode: 'existing' });
    assert.equal(store.recovered, 3, 'groups 3, 4 and 5');
    store.close();
    assert.equal(metaRows(file).probe, 'five', 'applied in seq order, not file order');
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(second), false);
    assert.equal(metaRows(file)[JOURNAL_ID_KEY], undefined);
  });

  test('two journal files with a group missing between them are refused, nothing applied', () => {
    const { file } = withJournal([probe('four'), probe('five')], { applied: 0, first: 4 });
    withSecondFile(file, [probe('one'), probe('two')], 1);
    assertRefused(file, /misses group 3: its records go from 2 to 4/);
    assert.equal(metaRows(file).probe, undefined);
  });

  test('a second journal file written for another database is refused and both files are left as they were', () => {
    const { file } = withJournal([probe('one')]);
    withSecondFile(file, [probe('two')], 2, 'c'.repeat(32));
    assertRefused(file, /-phasewise-journal-2 holds group commits of another database/);
  });

  test('killed between removing the first journal file and the second: the next open applies nothing twice', () => {
    const { file, path } = withJournal([probe('three')], { applied: 0, first: 3 });
    const second = withSecondFile(file, [probe('one'), probe('two')], 1);
    const db = new Database(file);
    assert.throws(() => recoverJournal(db, file, (p) => {
      if (p === second) throw new Error('killed before the second file was removed');
      rmSync(p);
    }), /killed before/);
    db.close();
    assert.equal(existsSync(path), false);
    assert.ok(existsSync(second));
    const store = SqliteStore.open(file, { mode: 'existing' });
    assert.equal(store.recovered, 0, 'nothing applied twice');
    store.close();
    assert.equal(metaRows(file).probe, 'three');
    assert.equal(existsSync(second), false);
  });

  test('records that do not follow the applied seq (groups missing between) are refused, not applied with a gap', () => {
    const { file } = withJournal([probe('six'), probe('seven')], { applied: 3, first: 6 });
    assertRefused(file, /starts at group 6 but the database holds groups up to 3/);
  });

  test('a record damaged in the middle (bad checksum, whole records after it) is refused: the groups after it were durable', () => {
    const { file, path } = withJournal([probe('one'), probe('two'), probe('three')]);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, HEADER_BYTES + 16 + probe('one').length + 16 + 3); // a byte of record 2's body
    closeSync(fd);
    assertRefused(file, /group 2 is damaged/);
  });

  test('a huge length field is not allocated: it reads as the torn end, the records before it are applied', () => {
    const { file, path } = withJournal([probe('one'), probe('two'), probe('three')]);
    const fd = openSync(path, 'r+');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(0xffff_fff0, 0);
    writeSync(fd, len, 0, 4, HEADER_BYTES + 16 + probe('one').length); // record 2's length
    closeSync(fd);
    const store = SqliteStore.open(file, { mode: 'existing' });
    assert.equal(store.recovered, 1);
    store.close();
    assert.equal(metaRows(file).probe, 'one');
  });

  test('a journal of another format version is refused with a message saying so', () => {
    const { file, path } = withJournal([probe('one')]);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('PWJ1'), 0, 4, 0); // the one-file journal of the previous version: its reader would miss a second file
    closeSync(fd);
    assertRefused(file, /journal of another Phasewise version \(PWJ1; this one reads PWJ2\)/);
  });

  for (const [name, bytes] of [
    ['zero-length', Buffer.alloc(0)],
    ['cut inside its header', Buffer.from(`PWJ2${ID.slice(0, 10)}`, 'latin1')],
    ['a header of zeros', Buffer.alloc(HEADER_BYTES + 4096)],
  ] as const) {
    test(`a journal ${name} (killed as it was created, before any record) opens: nothing applied, the journal removed`, () => {
      const { file, path } = withJournal([]);
      writeFileSync(path, bytes);
      const store = SqliteStore.open(file, { mode: 'existing' });
      assert.equal(store.recovered, 0);
      store.close();
      assert.equal(existsSync(path), false);
      assert.equal(metaRows(file)[JOURNAL_ID_KEY], undefined);
    });
  }

  test('killed between applying a journal and removing it: the next open finds it all applied, not a journal of another database', () => {
    const { file, path } = withJournal([probe('one'), probe('two')]);
    const db = new Database(file);
    assert.throws(() => recoverJournal(db, file, () => {
      throw new Error('killed before the journal was removed');
    }), /killed before/);
    db.close();
    assert.ok(existsSync(path));
    const store = SqliteStore.open(file, { mode: 'existing' });
    assert.equal(store.recovered, 0, 'nothing applied twice');
    store.close();
    assert.equal(metaRows(file).probe, 'two');
    assert.equal(existsSync(path), false);
  });

  test('a journal beside a file another Phasewise holds is left to it: STORE_LOCKED, journal untouched', () => {
    const { file, path } = withJournal([probe('one')]);
    const db = new Database(file);
    db.prepare('DELETE FROM meta WHERE key = ?').run(JOURNAL_ID_KEY); // so the holder below opens without recovering
    db.close();
    const journal = readFileSync(path);
    rmSync(path);
    const holder = SqliteStore.open(file, { mode: 'existing' });
    writeFileSync(path, journal);
    assert.throws(() => SqliteStore.open(file, { mode: 'existing' }), (err: Error & { code?: string }) => err.code === 'STORE_LOCKED');
    assert.deepEqual(readFileSync(path), journal);
    holder.close();
  });

  test('a new journal\'s folder is fsynced after its header (else a power loss could lose the file with every group in it), seen with strace', () => {
    const folder = join(dir, 'fsync-folder');
    mkdirSync(folder);
    const out = join(dir, 'strace.txt');
    const module = pathToFileURL(join(import.meta.dirname, '..', 'src', 'store', 'sqlite', 'journal-file.js')).href;
    const code = `const { JournalFile } = await import(${JSON.stringify(module)}); new JournalFile(${JSON.stringify(join(folder, 'j'))}, '${ID}', true).close(false);`;
    const run = spawnSync('strace', ['-f', '-e', 'trace=openat,fsync', '-o', out, process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const lines = readFileSync(out, 'utf8').split('\n');
    const opened = lines.map((l) => new RegExp(`openat\\(AT_FDCWD, "${folder}", [^)]*O_RDONLY[^)]*\\) = (\\d+)`).exec(l)?.[1]).filter((fd) => fd !== undefined);
    assert.ok(opened.length > 0, 'the folder is opened');
    assert.ok(lines.some((l) => opened.some((fd) => new RegExp(`fsync\\(${fd}\\)\\s+= 0`).test(l))), 'and fsynced');
  });

  test('a last group whose append fails at close: the worker is still stopped and the journal applied and removed before the lock is released', () => {
    const file = join(dir, `db-${++n}.sqlite`);
    const scenario = compileScenario(groupScenario(), 'journal');
    const store = SqliteStore.open(file, { mode: 'new' });
    store.importState(scenario.state);
    store.groupCommits({ ticks: 1000, wallMs: 10_000 }, undefined, { journal: true });
    const sim = new Simulation(scenario, { store });
    sim.driver.observe = () => {};
    for (let i = 0; i < 2000 && sim.step() && !(store.journalFigures()!.bytes > 0 && store.openGroupCommits > 0); i++);
    assert.ok(store.journalFigures()!.bytes > 0 && store.openGroupCommits > 0, 'groups appended, and one open');
    const journal = (store as unknown as { journal: { files: Array<{ append(): void }>; state: BigInt64Array } }).journal;
    journal.files[0]!.append = () => {
      throw new Error('the disk is gone');
    };
    assert.throws(() => store.close(), /the disk is gone/);
    assert.equal(Atomics.load(journal.state, 1), 2n, 'the worker closed');
    assert.equal(existsSync(journalPath(file)), false, 'what the journal held is applied and durable');
    const again = SqliteStore.open(file, { mode: 'existing' });
    assert.equal(again.recovered, 0);
    assert.ok([...again.events()].length > 0);
    again.close();
  });
});
