/**
 * Replicas run as a PostgreSQL user that may only read and write rows (no CREATE in the schema), the tables
 * created and the fleet imported once by the database's owner: a common managed-database setup. Before
 * session 22 every start ran `CREATE TABLE IF NOT EXISTS phasewise_schema` first, which PostgreSQL refuses
 * to such a user even when the table exists: no replica could start. A database that still needs migrating
 * is refused with a sentence saying what to do, nothing changed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../src/server/config.js';
import { startReplica } from '../src/server/replicas/replica.js';
import { connect } from '../src/store/postgres/connect.js';
import { createDatabase, usePgServer } from './helpers/pg-databases.js';
import { sleep, waitFor } from './helpers/poll.js';

const pgs = usePgServer('leastpriv');
const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const SHARED = { tokens: [{ token: 'least-privilege-token-0123456789', name: 'op', roles: ['reader' as const, 'contributor' as const] }], secretKey: 'c0'.repeat(32) };
const TLS = { cert: join(process.cwd(), 'test/fixtures/tls/cert.pem'), key: join(process.cwd(), 'test/fixtures/tls/key.pem') };

/** A role that may read and write the rows of `url`'s tables and nothing more; its URL. */
async function rowsOnlyUser(url: string, role: string): Promise<string> {
  const c = await connect(url);
  try {
    await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-${role}'`);
    await c.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    await c.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
    await c.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
  } finally {
    await c.end();
  }
  return url.replace(/\/\/[^@]*@/, `//${role}:pw-${role}@`);
}

async function leads(url: string, dir: string): Promise<void> {
  const config = loadConfig(undefined, {}, {
    ...SHARED, store: url, port: 0, host: '127.0.0.1', dataDir: dir, tls: TLS, logLevel: 'silent', leaseMs: 2000,
    scenario: join(process.cwd(), 'examples/small.yaml'), clockFactor: 3600,
  });
  const replica = await startReplica(config);
  try {
    assert.ok(await waitFor(() => replica.role() === 'leader', 60_000), 'it leads');
    // The leader's API opens on the port just after the follower's closes: asked until it answers.
    let last = '';
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const health = await fetch(`${replica.url}/readyz`).catch((err: Error) => err);
      if (!(health instanceof Error)) {
        const body = await health.text();
        if (health.status === 200 && /"leader":true/.test(body)) break;
        last = `${health.status} ${body}`;
      } else last = health.message;
      await sleep(200);
    }
    assert.ok(Date.now() < until, `ready as the leader: ${last}`);
  } finally {
    await replica.close();
  }
}

describe('replicas as a user without CREATE rights', () => {
  test('on a database its owner migrated and imported: the replica starts, leads and is ready', { timeout: 180_000 }, async () => {
    const url = await createDatabase(pgs.server().url, 'owned');
    await leads(url, join(pgs.tempDir(), 'owner'));
    const app = await rowsOnlyUser(url, 'rows_only');
    await leads(app, join(pgs.tempDir(), 'app'));
  });

  test('on a database that needs migrating: refused with what to do (exit 6), the password never shown, nothing created', { timeout: 120_000 }, async () => {
    const url = await createDatabase(pgs.server().url, 'unmigrated');
    const app = await rowsOnlyUser(url, 'rows_only_2');
    const r = spawnSync(process.execPath, [CLI, 'serve', '--store', app, '--port', '0', '--data-dir', join(pgs.tempDir(), 'x')], {
      env: { ...process.env, PHASEWISE_TOKEN: SHARED.tokens[0]!.token, PHASEWISE_SECRET_KEY: SHARED.secretKey }, encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(r.status, 6, r.stderr);
    assert.match(r.stderr, /may not migrate it .*permission denied.*: start one replica once with the URL of a user that owns the database/);
    assert.doesNotMatch(r.stderr, /pw-rows_only_2/);
    const c = await connect(url);
    try {
      assert.equal((await c.query("SELECT to_regclass('phasewise_schema') AS t")).rows[0].t, null, 'nothing created');
    } finally {
      await c.end();
    }
  });
});
