/** `phasewise sim --store sqlite:FILE` and `phasewise db check | backup`, run as real processes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION } from '../src/store/sqlite/schema.js';

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
    assert.match(again.stderr, /already exists/);
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
