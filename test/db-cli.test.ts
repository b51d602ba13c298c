/** `phasewise sim --store sqlite:FILE` and `phasewise db check | backup`, run as real processes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION } from '../src/store/sqlite/schema.js';
import { MAX_VALUE_BYTES } from '../src/store/sqlite/row-checks.js';
import { JournalFile, journalPath } from '../src/store/sqlite/journal-file.js';
import { JOURNAL_ID_KEY } from '../src/store/sqlite/journal-apply.js';
import { STATEMENT_NAMES } from '../src/store/sqlite/rows.js';
import { serialize } from 'node:v8';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'phasewise-db-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8' });
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return r;
}

describe('sim on the SQLite store', () => {
  const file = join(dir, 'small.sqlite');
  test('keeps the state and the event log in a new file, and never overwrites one without --replace', () => {
    const first = run('sim', 'examples/small.yaml', '--store', `sqlite:${file}`, '--quiet');
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /State and event log kept in/);
    const again = run('sim', 'examples/small.yaml', '--store', `sqlite:${file}`);
    assert.equal(again.status, 2);
    // The refusal names the way out the command has (it said only "choose a new file or remove it first").
    assert.equal(again.stderr, `phasewise: ${file} already exists; give --replace to replace it, or choose a new file\n`);
    const replaced = run('sim', 'examples/small.yaml', '--store', `sqlite:${file}`, '--replace', '--quiet');
    assert.equal(replaced.status, 0, replaced.stderr);
  });

  test('db check reports integrity, the schema version and what the file holds', () => {
    const r = run('db', 'check', '--db', file, '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; schemaVersion: number; counts: Record<string, number>; rollouts: Array<{ status: string }> };
    assert.equal(report.ok, true);
    assert.equal(report.schemaVersion, SCHEMA_VERSION);
    assert.ok(report.counts.machines! > 0 && report.counts.events! > 0);
    assert.equal(report.counts.pendingActions, 0);
    assert.ok(report.rollouts.length > 0 && report.rollouts.every((x) => x.status === 'completed'));
  });

  test('db check shows a rollout a newer plan replaced as superseded, as rollout list does (it said cancelled); one an operator cancelled stays cancelled', () => {
    const copy = join(dir, 'superseded.sqlite');
    writeFileSync(copy, readFileSync(file));
    const db = new Database(copy);
    const [first] = db.prepare('SELECT id FROM rollouts ORDER BY created_at, id').all() as Array<{ id: string }>;
    db.prepare("UPDATE rollouts SET status = 'cancelled', reason = 'superseded: 1.4.1.0 reached more regions' WHERE id = ?").run(first!.id);
    db.prepare("INSERT INTO rollouts SELECT 'ro-cancelled', artifact, artifact_key, to_version, 'cancelled', 'cancelled by alice: wrong day', created_at + 1, ended_at, "
      + 'current_phase, open, caller, force FROM rollouts WHERE id = ?').run(first!.id);
    db.close();
    const r = run('db', 'check', '--db', copy, '--json');
    assert.equal(r.status, 0, r.stderr);
    const shown = new Map((JSON.parse(r.stdout) as { rollouts: Array<{ id: string; status: string }> }).rollouts.map((x) => [x.id, x.status]));
    assert.equal(shown.get(first!.id), 'superseded');
    assert.equal(shown.get('ro-cancelled'), 'cancelled');
    assert.match(run('db', 'check', '--db', copy).stdout, new RegExp(`rollout ${first!.id}: .*, superseded\\n`));
  });

  test('db backup makes a consistent copy with the same content, and never overwrites', () => {
    const copy = join(dir, 'copy.sqlite');
    const b = run('db', 'backup', copy, '--db', file);
    assert.equal(b.status, 0, b.stderr);
    const original = JSON.parse(run('db', 'check', '--db', file, '--json').stdout) as { counts: unknown };
    const backedUp = JSON.parse(run('db', 'check', '--db', copy, '--json').stdout) as { counts: unknown; ok: boolean };
    assert.equal(backedUp.ok, true);
    assert.deepEqual(backedUp.counts, original.counts);
    const again = run('db', 'backup', copy, '--db', file);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /never overwrites/);
  });

  test('a backup is one file: not in WAL mode, so checking and restoring it leave nothing beside it (they left -wal and -shm)', () => {
    const folder = mkdtempSync(join(dir, 'one-file-'));
    const copy = join(folder, 'copy.sqlite');
    assert.equal(run('db', 'backup', copy, '--db', file).status, 0);
    const header = readFileSync(copy).subarray(18, 20);
    assert.deepEqual([...header], [1, 1], 'file format 1: a rollback journal, not WAL');
    assert.equal(run('db', 'check', '--db', copy).status, 0);
    const restored = join(dir, 'restored-one-file.sqlite');
    assert.equal(run('db', 'restore', copy, '--db', restored).status, 0);
    assert.deepEqual(readdirSync(folder), ['copy.sqlite']);
  });
});

describe('database faults have their own exit codes and leave files alone', () => {
  test('missing file: exit 2', () => {
    const r = run('db', 'check', '--db', join(dir, 'nope.sqlite'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /does not exist/);
  });
  test('never a database: exit 2, named as a wrong file, not as one to restore', () => {
    const f = join(dir, 'garbage.sqlite');
    writeFileSync(f, 'garbage '.repeat(1000));
    const r = run('db', 'check', '--db', f);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is not a database at all/);
    assert.doesNotMatch(r.stderr, /restore/);
  });
  test('a damaged database (SQLite header, garbage after): exit 3, restore from a backup', () => {
    const f = join(dir, 'damaged.sqlite');
    writeFileSync(f, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.from('garbage '.repeat(1000))]));
    const r = run('db', 'check', '--db', f);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /not a readable Phasewise database.*restore it from a backup/);
  });
  test('newer than this Phasewise: exit 4, for the simulator too', () => {
    const f = join(dir, 'newer.sqlite');
    const db = new Database(f);
    db.pragma('user_version = 99');
    db.close();
    const r = run('db', 'check', '--db', f);
    assert.equal(r.status, 4);
    assert.match(r.stderr, /schema version 99, newer than this Phasewise/);
    const s = run('sim', 'examples/small.yaml', '--store', `sqlite:${f}`, '--replace');
    assert.equal(s.status, 4);
    const check = new Database(f);
    assert.equal(check.pragma('user_version', { simple: true }), 99, 'left untouched');
    check.close();
  });
  test('a negative schema version (no Phasewise writes one): exit 2 as not a Phasewise database, for db check, serve and sim --replace; unchanged', () => {
    const f = join(dir, 'negative.sqlite');
    const s0 = run('sim', 'examples/small.yaml', '--store', `sqlite:${f}`, '--quiet');
    assert.equal(s0.status, 0, s0.stderr);
    const db = new Database(f);
    db.pragma('user_version = -1');
    db.close();
    const before = createHash('sha256').update(readFileSync(f)).digest('hex');
    const message = `${f} has user_version -1, which no Phasewise writes: not a Phasewise database; check the path — the file was left untouched`;
    const check = run('db', 'check', '--db', f); // it said "schema version -1", integrity ok, exit 0
    assert.equal(check.status, 2, check.stdout);
    assert.equal(check.stderr.trim(), `phasewise: ${message}`);
    const sim = run('sim', 'examples/small.yaml', '--store', `sqlite:${f}`, '--replace', '--quiet'); // exit 6, "table meta already exists"
    assert.equal(sim.status, 2, sim.stderr);
    assert.equal(sim.stderr.trim(), `phasewise: ${message}`);
    assert.equal(createHash('sha256').update(readFileSync(f)).digest('hex'), before, 'left untouched');
  });

  test('in use by a running Phasewise: exit 5', () => {
    const f = join(dir, 'busy.sqlite');
    assert.equal(run('sim', 'examples/small.yaml', '--store', `sqlite:${f}`, '--quiet').status, 0);
    writeFileSync(`${f}.lock`, String(process.pid)); // this test process is alive: the file counts as in use
    const r = run('sim', 'examples/small.yaml', '--store', `sqlite:${f}`, '--replace');
    assert.equal(r.status, 5);
    assert.match(r.stderr, new RegExp(`in use by another running Phasewise \\(pid ${process.pid}\\)`));
    assert.ok(existsSync(f), 'not removed');
    rmSync(`${f}.lock`);
  });
  test('a bad --store: exit 2', () => {
    const r = run('sim', 'examples/small.yaml', '--store', 'postgres:x');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--store: expected memory, sqlite:FILE or postgres:\/\/USER@HOST\/DATABASE, got "postgres:x"/);
  });
});

describe('files a command is pointed at by mistake', () => {
  const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
  const source = join(dir, 'source.sqlite');
  before(() => assert.equal(run('sim', 'examples/small.yaml', '--store', `sqlite:${source}`, '--quiet').status, 0));

  test('serve, sim --replace and db check refuse a folder, another application\'s database and one missing its tables (exit 2 or 3), changing nothing', () => {
    const cases: Array<[string, (file: string) => void, number, RegExp]> = [
      ['folder', (f) => mkdirSync(f), 2, /is a folder, not a database file/],
      ['other-app', (f) => { const db = new Database(f); db.exec('CREATE TABLE notes (id, text)'); db.close(); }, 2, /another application/],
      ['cut-short', (f) => writeFileSync(f, readFileSync(source).subarray(0, 100_000)), 3, /cut short or damaged/],
      ['missing-tables', (f) => { writeFileSync(f, readFileSync(source)); const db = new Database(f); db.exec('DROP TABLE timers'); db.close(); }, 3, /lacks the tables timers/],
    ];
    for (const [name, make, status, message] of cases) {
      const data = join(dir, `serve-${name}`);
      mkdirSync(data);
      const file = join(data, 'phasewise.sqlite');
      make(file);
      const before = existsSync(file) && !name.startsWith('folder') ? sha(file) : null;
      const listing = readdirSync(data);
      const commands = [['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', data], ['sim', 'examples/small.yaml', '--store', `sqlite:${file}`, '--replace'], ['db', 'check', '--db', file]];
      for (const args of commands) {
        const r = run(...args);
        assert.equal(r.status, status, `${name}, ${args[0]}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
        if (before) assert.equal(sha(file), before, `${name}, ${args[0]}: the file is unchanged`);
        // db check reads as SQLite reads a WAL database, which may leave its (empty) -wal and -shm; never a lock or a journal.
        const left = readdirSync(data).filter((f) => args[0] !== 'db' || !/-(wal|shm)$/.test(f));
        assert.deepEqual(left, listing, `${name}, ${args[0]}: no lock, WAL or journal left beside it`);
      }
    }
  });

  test('rows SQLite passes but Phasewise cannot load: db check lists them (exit 3), serve refuses naming table, row and column (exit 3, not 6 "Expected property name")', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['bad-json', "UPDATE instances SET settings = '{oops' WHERE machine_id = 'db-vm0'",
        /table instances, row \(artifact_key 'extension:contoso\.monitoring\.agent', machine_id 'db-vm0'\), column settings: not valid JSON/],
      ['bad-json-meta', "UPDATE meta SET value = 'nope' WHERE key = 'counters'", /table meta, row \(key 'counters'\), column value: not valid JSON/],
      // It was loaded whole and served: a 128 MiB + 2 bytes name (hex of a blob), past what Phasewise ever writes there.
      ['huge-value', `UPDATE machines SET name = hex(zeroblob(${MAX_VALUE_BYTES / 2 + 1})) WHERE id = 'db-vm1'`,
        /table machines, row \(id 'db-vm1'\), column name: 134,217,730 bytes, more than the 128 MiB Phasewise ever writes there/],
    ];
    for (const [name, sql, message] of cases) {
      const data = join(dir, `rows-${name}`);
      mkdirSync(data);
      const file = join(data, 'phasewise.sqlite');
      writeFileSync(file, readFileSync(source));
      const db = new Database(file);
      assert.equal(db.prepare(sql).run().changes, 1, name);
      db.close();
      const check = run('db', 'check', '--db', file);
      assert.equal(check.status, 3, `${name}: ${check.stderr}`);
      assert.match(check.stdout, new RegExp(`integrity: ${message.source}`));
      const json = JSON.parse(run('db', 'check', '--db', file, '--json').stdout) as { ok: boolean; integrity: string[] };
      assert.equal(json.ok, false);
      assert.equal(json.integrity.length, 1, json.integrity.join('; '));
      const served = spawnSync(process.execPath, [cli, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', data], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      assert.equal(served.status, 3, `${name}, serve: ${served.stderr}`);
      assert.match(served.stderr, new RegExp(`^phasewise: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} holds a row Phasewise cannot load: ${message.source}; run phasewise db check`));
      assert.equal(served.stderr.trim().split('\n').length, 1, 'one line');
      rmSync(data, { recursive: true, force: true });
    }
  });

  test('a database file Phasewise may not write: serve and sim --replace exit 6 naming it, before anything runs; db check still reads it', () => {
    // Root writes any file: the commands then run as nobody (setpriv), as a service user would.
    const asRoot = process.getuid?.() === 0;
    const folder = mkdtempSync(join(tmpdir(), 'phasewise-readonly-'));
    try {
      chmodSync(folder, 0o777);
      const file = join(folder, 'phasewise.sqlite');
      writeFileSync(file, readFileSync(source));
      chmodSync(file, 0o444);
      const before = sha(file);
      const as = (...args: string[]) => {
        const argv = asRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, ...args] : [process.execPath, cli, ...args];
        const r = spawnSync(argv[0]!, argv.slice(1), { cwd: root, encoding: 'utf8', timeout: 60_000 });
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        return r;
      };
      for (const args of [['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', folder], ['sim', 'examples/small.yaml', '--store', `sqlite:${file}`, '--replace']]) {
        const r = as(...args);
        assert.equal(r.status, 6, `${args[0]}: ${r.stderr}`);
        assert.match(r.stderr, /phasewise\.sqlite cannot be written \(EACCES\)/);
      }
      const check = as('db', 'check', '--db', file);
      assert.equal(check.status, 0, check.stderr);
      assert.equal(sha(file), before);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('a database another program is writing (an open write transaction): serve and sim --replace exit 5 naming it, after the busy timeout', () => {
    const data = join(dir, 'written-elsewhere');
    mkdirSync(data);
    const file = join(data, 'phasewise.sqlite');
    writeFileSync(file, readFileSync(source));
    const writer = new Database(file); // as an sqlite3 shell would, in this process: the children run while it holds the lock
    try {
      writer.exec("BEGIN EXCLUSIVE; INSERT INTO meta VALUES ('someone-else', 'writing')");
      for (const args of [['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', data], ['sim', 'examples/small.yaml', '--store', `sqlite:${file}`, '--replace']]) {
        const r = run(...args);
        assert.equal(r.status, 5, `${args[0]}: ${r.stderr}`);
        assert.match(r.stderr, /phasewise\.sqlite is locked by another program writing to it/);
        assert.ok(existsSync(file), 'not replaced');
      }
      assert.equal(run('db', 'check', '--db', file).status, 0, 'reading needs no write lock');
      writer.exec('ROLLBACK');
    } finally {
      writer.close();
    }
  });

  test('an empty --db (an unset shell variable) is bad input, not the default database', () => {
    for (const args of [['db', 'check', '--db', ''], ['db', 'backup', join(dir, 'never.sqlite'), '--db', ' ']]) {
      const r = run(...args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--db: empty/);
    }
    assert.ok(!existsSync(join(dir, 'never.sqlite')));
  });

  test('db check of an empty file, /dev/null or an empty SQLite database: no Phasewise schema, exit 2 (bad input: not a database; it was 3, "corrupt")', () => {
    const f = join(dir, 'empty.sqlite');
    writeFileSync(f, '');
    const blank = join(dir, 'blank.sqlite');
    new Database(blank).close(); // an SQLite file with no tables, user_version 0
    for (const where of [f, '/dev/null', blank]) {
      const r = run('db', 'check', '--db', where);
      assert.equal(r.status, 2, `${where}: ${r.stderr}`);
      assert.match(r.stdout, /no Phasewise schema in this file/);
      const json = run('db', 'check', '--db', where, '--json');
      assert.equal(json.status, 2);
      assert.equal((JSON.parse(json.stdout) as { ok: boolean }).ok, false);
    }
    assert.equal(readFileSync(f, 'utf8'), '', 'the empty file left empty');
  });

  test('db backup into a folder this user may not write: exit 6 naming the folder, before the database is read (it was SQLite\'s "unable to open database file")', () => {
    const asRoot = process.getuid?.() === 0;
    const folder = mkdtempSync(join(tmpdir(), 'phasewise-backup-ro-'));
    try {
      const readable = join(folder, 'phasewise.sqlite');
      writeFileSync(readable, readFileSync(source));
      chmodSync(readable, 0o444);
      chmodSync(folder, 0o555);
      const target = join(folder, 'copy.sqlite');
      const argv = asRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] : [process.execPath];
      const r = spawnSync(argv[0]!, [...argv.slice(1), cli, 'db', 'backup', target, '--db', readable], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 6, r.stderr);
      assert.equal(r.stderr, `phasewise: ${target}: the folder ${folder} cannot be written (EACCES); back up into a folder this user may write\n`);
      assert.deepEqual(readdirSync(folder), ['phasewise.sqlite'], 'nothing written beside it');
    } finally {
      chmodSync(folder, 0o755);
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('db backup: the target folder, a missing folder, an empty name and the source itself are refused before anything is written (exit 2)', () => {
    const before = sha(source);
    const targets = [[dir, /is a folder/], [join(dir, 'missing', 'copy.sqlite'), /the folder .* does not exist; create it first/], ['', /needs a file name/], [source, /never overwrites/]] as const;
    for (const [target, message] of targets) {
      const r = run('db', 'backup', target, '--db', source);
      assert.equal(r.status, 2, `${target}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.equal(sha(source), before);
    assert.ok(!existsSync(join(dir, 'missing')));
  });

  test('db check and db backup of a WAL database in a folder this user may not write (no -shm there): read from a private copy, '
    + 'a -wal left by a crash included; nothing written beside it (they failed: "attempt to write a readonly database")', () => {
    // Root writes any folder: the commands then run as nobody (setpriv), as an operator's own user would.
    const asRoot = process.getuid?.() === 0;
    const folder = mkdtempSync(join(tmpdir(), 'phasewise-db-ro-'));
    const out = mkdtempSync(join(tmpdir(), 'phasewise-db-ro-out-'));
    const temp = mkdtempSync(join(tmpdir(), 'phasewise-db-ro-tmp-'));
    try {
      chmodSync(out, 0o777);
      chmodSync(temp, 0o777);
      const file = join(folder, 'phasewise.sqlite');
      writeFileSync(file, readFileSync(source));
      // A Phasewise that crashed: its last commit only in the -wal (no checkpoint), the -shm gone with the machine's reboot.
      const crash = "const D = require('better-sqlite3'); const db = new D(process.argv[1]); db.pragma('wal_autocheckpoint = 0');"
        + " db.exec(\"INSERT INTO meta VALUES ('only-in-wal', 'yes')\"); process.kill(process.pid, 'SIGKILL');";
      spawnSync(process.execPath, ['-e', crash, file], { cwd: root });
      assert.ok(existsSync(`${file}-wal`), 'the crash left a -wal');
      rmSync(`${file}-shm`, { force: true });
      chmodSync(folder, 0o555);
      const before = { files: readdirSync(folder).sort(), db: sha(file), wal: sha(`${file}-wal`) };
      const as = (...args: string[]) => {
        const argv = asRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, ...args] : [process.execPath, cli, ...args];
        const r = spawnSync(argv[0]!, argv.slice(1), { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, TMPDIR: temp } });
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        return r;
      };
      const check = as('db', 'check', '--db', file, '--json');
      assert.equal(check.status, 0, check.stderr);
      const report = JSON.parse(check.stdout) as { ok: boolean; file: string };
      assert.equal(report.ok, true);
      assert.equal(report.file, file, 'the report names the file given, not the copy');
      const copy = join(out, 'copy.sqlite');
      const backup = as('db', 'backup', copy, '--db', file);
      assert.equal(backup.status, 0, backup.stderr);
      assert.match(backup.stdout, new RegExp(`backed up ${file} to ${copy}`));
      const db = new Database(copy, { readonly: true });
      try {
        assert.deepEqual(db.prepare("SELECT value FROM meta WHERE key = 'only-in-wal'").get(), { value: 'yes' }, 'the commit in the -wal is in the backup');
      } finally {
        db.close();
      }
      assert.deepEqual({ files: readdirSync(folder).sort(), db: sha(file), wal: sha(`${file}-wal`) }, before, 'nothing written beside the database, nothing changed');
      assert.deepEqual(readdirSync(temp), [], 'the private copy is removed');
    } finally {
      chmodSync(folder, 0o755);
      for (const d of [folder, out, temp]) rmSync(d, { recursive: true, force: true });
    }
  });
  test('db check and db backup of a database with a journal a crash left, in a folder this user may not write: the journal applied to a private copy, '
    + 'nothing written beside it (it was opened for writing to apply the journal in place: exit 6)', () => {
    const asRoot = process.getuid?.() === 0;
    const folder = mkdtempSync(join(tmpdir(), 'phasewise-db-ro-journal-'));
    const out = mkdtempSync(join(tmpdir(), 'phasewise-db-ro-journal-out-'));
    const temp = mkdtempSync(join(tmpdir(), 'phasewise-db-ro-journal-tmp-'));
    try {
      for (const d of [out, temp]) chmodSync(d, 0o777);
      const file = join(folder, 'phasewise.sqlite');
      writeFileSync(file, readFileSync(source));
      // A sim killed with group commits in its journal: the journal's id in meta, one record (a meta row) not yet applied.
      const id = 'c'.repeat(32);
      const db = new Database(file);
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(JOURNAL_ID_KEY, id);
      db.close();
      const journal = new JournalFile(journalPath(file), id, true);
      journal.append(1, serialize([[STATEMENT_NAMES.indexOf('putMeta'), 2, 'only-in-journal', 'yes'], []]));
      journal.close(false);
      rmSync(`${file}-shm`, { force: true });
      chmodSync(file, 0o444);
      chmodSync(folder, 0o555);
      const listing = () => readdirSync(folder).sort().map((f) => `${f} ${sha(join(folder, f))}`);
      const before = listing();
      const as = (...args: string[]) => {
        const argv = asRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, ...args] : [process.execPath, cli, ...args];
        const r = spawnSync(argv[0]!, argv.slice(1), { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, TMPDIR: temp } });
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        return r;
      };
      const check = as('db', 'check', '--db', file, '--json');
      assert.equal(check.status, 0, check.stderr);
      const report = JSON.parse(check.stdout) as { ok: boolean; file: string };
      assert.equal(report.ok, true);
      assert.equal(report.file, file, 'the report names the file given, not the copy');
      const copy = join(out, 'copy.sqlite');
      const backup = as('db', 'backup', copy, '--db', file);
      assert.equal(backup.status, 0, backup.stderr);
      const b = new Database(copy, { readonly: true });
      try {
        assert.deepEqual(b.prepare("SELECT value FROM meta WHERE key = 'only-in-journal'").get(), { value: 'yes' }, 'the journal\'s group is in the backup');
        assert.equal(b.prepare('SELECT value FROM meta WHERE key = ?').get(JOURNAL_ID_KEY), undefined, 'the backup names no journal');
      } finally {
        b.close();
      }
      assert.deepEqual(listing(), before, 'nothing written beside the database, nothing changed');
      assert.deepEqual(readdirSync(temp), [], 'the private copy is removed');
    } finally {
      chmodSync(folder, 0o755);
      for (const d of [folder, out, temp]) rmSync(d, { recursive: true, force: true });
    }
  });
});
