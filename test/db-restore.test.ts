/**
 * `phasewise db restore BACKUP --db FILE` for SQLite, against a real `serve` process. There was no way
 * back from a SQLite backup but copying it over the database by hand, and that is a trap: the `-wal` a
 * killed `serve` leaves beside the file is replayed onto the copy at the next open (the "restored"
 * database shows the later state, or a mix of both). The restore refuses a database a running serve
 * holds (exit 5) and one it was not told to replace (exit 2), changing nothing; with --replace it puts
 * the backup in place with no WAL or journal of the old file left, and serve starts on it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cli, ROOT, startServe, stopServe } from './helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'phasewise-db-restore-'));
const data = join(root, 'data');
const db = join(data, 'phasewise.sqlite');
const backup = join(root, 'backup.sqlite');
after(() => rmSync(root, { recursive: true, force: true }));
// examples/small.yaml with its release published 6 simulated hours in (about 11 s at 2000×): the backup is taken before it.
const scenario = join(root, 'small-later.yaml');
writeFileSync(scenario, readFileSync(join(ROOT, 'examples/small.yaml'), 'utf8').replace('{ at: PT1H, publish:', '{ at: PT6H, publish:'));

const serve = () => startServe(['--scenario', scenario, '--data-dir', data, '--port', '0', '--clock-factor', '2000']);

/** `db check --json` of a file: its event count (the database's state, as a reader sees it). */
async function eventsIn(file: string): Promise<number> {
  const r = await cli('db', 'check', '--db', file, '--json');
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { counts: { events: number } }).counts.events;
}

describe('db restore of a SQLite backup', () => {
  test('refused while serve runs and without --replace; with it the backup is what serve finds, no old WAL applied', async () => {
    let server = await serve();
    try {
      assert.equal((await cli('db', 'backup', backup, '--db', db)).status, 0, 'a backup while serve runs');
      const saved = await eventsIn(backup);
      // The fleet moves on after the backup: its release is published and the canary phase runs.
      const deadline = Date.now() + 90_000;
      while ((await eventsIn(db)) <= saved + 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
      assert.ok((await eventsIn(db)) > saved + 10, 'the database moved past the backup');

      const live = await cli('db', 'restore', backup, '--db', db, '--replace');
      assert.equal(live.status, 5, live.stderr);
      assert.match(live.stderr, /in use by another running Phasewise \(pid \d+\); stop it first/);

      await stopServe(server, 'SIGKILL'); // as a crash leaves it: the WAL beside the file
      const before = await eventsIn(db);
      assert.ok(before > saved);
      const unasked = await cli('db', 'restore', backup, '--db', db);
      assert.equal(unasked.status, 2, unasked.stderr);
      assert.match(unasked.stderr, /exists; give --replace .*nothing was changed/);
      assert.equal(await eventsIn(db), before, 'nothing changed');
      assert.equal((await cli('db', 'restore', backup)).status, 2, 'never a default database');

      const done = await cli('db', 'restore', backup, '--db', db, '--replace');
      assert.equal(done.status, 0, done.stderr);
      assert.match(done.stdout, /^restored .* \(\d+ pages; the database there and its WAL and journal files were replaced\)\n$/);
      for (const f of [`${db}-wal`, `${db}-shm`, `${db}-phasewise-journal`]) assert.equal(existsSync(f), false, `${f} of the old database is gone`);
      assert.equal(await eventsIn(db), saved, 'the database is the backup, not the backup with the old WAL replayed onto it');
      assert.deepEqual(await eventsIn(backup), saved, 'the backup is left as it was');

      server = await serve(); // serve takes the restored file and goes on from it
      await stopServe(server, 'SIGTERM');
      assert.ok((await eventsIn(db)) >= saved);
    } finally {
      await stopServe(server, 'SIGTERM');
    }
  });

  test('a backup that is not a Phasewise database, a folder, a missing file: exit 2, no file created', async () => {
    const target = join(root, 'new.sqlite');
    for (const [what, source] of [['missing', join(root, 'nope.sqlite')], ['folder', root], ['not a database', join(ROOT, 'package.json')]] as const) {
      const r = await cli('db', 'restore', source, '--db', target);
      assert.equal(r.status, 2, `${what}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(existsSync(target), false, what);
    }
  });
});
