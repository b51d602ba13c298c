/**
 * The throw-away PostgreSQL the PostgreSQL tests use: it starts from the npm package's binaries (no
 * system PostgreSQL) on a loopback port, answers, and is gone (process and folder) after stop.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { processAlive as alive } from './helpers/poll.js';

test('an embedded PostgreSQL starts on loopback in a temporary folder and is gone after stop', async () => {
  const server = await startEmbeddedPostgres();
  try {
    assert.match(server.url, /^postgres:\/\/phasewise:[^@]+@127\.0\.0\.1:\d+\/phasewise$/);
    const client = new pg.Client(server.url);
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    await client.end();
    assert.match(rows[0]!.v, /^\d+\.\d+/);
    assert.ok(alive(server.pid));
  } finally {
    await server.stop();
  }
  assert.equal(alive(server.pid), false);
  assert.equal(existsSync(server.dir), false);
});
