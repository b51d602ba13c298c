/**
 * Files Phasewise owns are written whole or not at all (temp, fsync, rename), and the database lock
 * names its owner by pid and start time, so a reused pid does not block a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createFileExclusive, readOrCreate, writeFileAtomic } from '../src/util/atomic-file.js';
import { selfIdentity, startTimeOf } from '../src/util/process-identity.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { StoreError } from '../src/store/sqlite/database.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-atomic-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('atomic files', () => {
  test('writeFileAtomic replaces the content whole, with the mode asked for, and leaves no temporary file', () => {
    const f = join(dir, 'token');
    writeFileAtomic(f, 'one\n', { mode: 0o600 });
    writeFileAtomic(f, 'two\n', { mode: 0o600 });
    assert.equal(readFileSync(f, 'utf8'), 'two\n');
    assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
  });

  test('createFileExclusive never replaces an existing file', () => {
    const f = join(dir, 'excl');
    assert.equal(createFileExclusive(f, 'first'), true);
    assert.equal(createFileExclusive(f, 'second'), false);
    assert.equal(readFileSync(f, 'utf8'), 'first');
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
  });

  test('readOrCreate keeps a good file and replaces an empty one left by a crash mid-write', () => {
    const f = join(dir, 'secret.key');
    writeFileSync(f, ''); // what a crash between open and write used to leave
    const made = readOrCreate(f, () => 'fresh\n', (t) => t.trim() !== '');
    assert.equal(made, 'fresh\n');
    assert.equal(readFileSync(f, 'utf8'), 'fresh\n');
    assert.equal(readOrCreate(f, () => 'other\n', (t) => t.trim() !== ''), 'fresh\n', 'an existing good file is kept');
  });
});

describe('the database lock', () => {
  test('records pid and start time', () => {
    const file = join(dir, 'a.sqlite');
    const s = SqliteStore.open(file, { mode: 'new' });
    try {
      assert.deepEqual(JSON.parse(readFileSync(`${file}.lock`, 'utf8')), selfIdentity());
    } finally {
      s.close();
    }
  });

  test('a lock naming a running process by pid and start time refuses a second open', () => {
    const file = join(dir, 'b.sqlite');
    SqliteStore.open(file, { mode: 'new' }).close();
    const parent = { pid: process.ppid, start: startTimeOf(process.ppid) };
    writeFileSync(`${file}.lock`, JSON.stringify(parent));
    assert.throws(() => SqliteStore.open(file, { mode: 'existing' }), (e: unknown) => e instanceof StoreError && e.code === 'STORE_LOCKED');
  });

  test('a stale lock whose pid was reused by another process does not block a restart', { skip: startTimeOf(process.pid) === null ? 'no /proc' : false }, () => {
    const file = join(dir, 'c.sqlite');
    SqliteStore.open(file, { mode: 'new' }).close();
    // The parent process is alive, but it is not the process that wrote this lock (another start time).
    writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.ppid, start: '1' }));
    const s = SqliteStore.open(file, { mode: 'existing' });
    s.close();
  });
});
