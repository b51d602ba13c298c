/**
 * The command queue replicas put API writes in (src/server/replicas/api-commands.ts), on a real
 * embedded PostgreSQL: a queued write is durable at once and its response reaches whoever waits for it
 * (through NOTIFY, or the poll when the notification is lost); the queue is bounded; done commands are
 * pruned after their time; internal headers never travel in a command; requests and responses are
 * stored sealed, and a command's response is only the sender's to read.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { connect } from '../src/store/postgres/connect.js';
import { markDoneSql } from '../src/store/postgres/commands.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import type { EmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { CommandSeal, INTERNAL_HEADERS, pruneDone, QueueFull, requestHeaders, ResponseWaiter, responseOf, submit } from '../src/server/replicas/api-commands.js';
import { SecretBox } from '../src/api/arm/secrets.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Authenticator } from '../src/api/arm/auth.js';
import { buildFollowerServer } from '../src/server/replicas/follower.js';
import type { ApiRequest, ApiResponse } from '../src/server/replicas/api-commands.js';
import { literal } from '../src/store/postgres/sql-batch.js';

let server: EmbeddedPostgres;
let client: pg.Client;
let listener: pg.Client;

before(async () => {
  server = await startEmbeddedPostgres();
  (await PgStore.open(server.url)).close(); // migrates
  client = await connect(server.url);
  listener = await connect(server.url);
});
after(async () => {
  await client?.end();
  await listener?.end();
  await server?.stop();
});

const seal = new CommandSeal(new SecretBox(Buffer.alloc(32, 7)));

const request = (n: number): ApiRequest => ({
  method: 'PUT', url: `/subscriptions/s/resourcegroups/rg-${n}?api-version=2021-04-01`, headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ location: 'eastus', n }), principal: { name: 'operator', roles: ['contributor'] } as never,
});

async function finish(id: number, response: ApiResponse, notify: boolean): Promise<void> {
  await client.query(markDoneSql(id, seal.response(response)) + (notify ? `; SELECT pg_notify('phasewise_command_done', ${literal(String(id))})` : ''));
}

test('a queued write is stored at once and its response reaches the waiter, notified or not', async () => {
  const waiter = new ResponseWaiter(client, listener, seal);
  await waiter.start();
  try {
    const id = await submit(client, seal, request(1));
    assert.deepEqual(await responseOf(client, seal, id, 'operator'), { found: true, response: null }, 'queued, no response yet');
    const response: ApiResponse = { status: 201, headers: { 'content-type': 'application/json' }, body: '{"n":1}' };
    const waiting = waiter.wait(id, 10_000);
    await finish(id, response, true);
    assert.deepEqual(await waiting, { ...response, version: 0 }, 'the response, and the commit version that holds it');
    // A lost notification only delays: the poll finds the response.
    const id2 = await submit(client, seal, request(2));
    const waiting2 = waiter.wait(id2, 10_000);
    await finish(id2, { ...response, body: '{"n":2}' }, false);
    assert.equal((await waiting2)?.body, '{"n":2}');
    // No response in time: null (the replica answers 202 with the command's address).
    const id3 = await submit(client, seal, request(3));
    assert.equal(await waiter.wait(id3, 300), null);
    assert.deepEqual(await responseOf(client, seal, 999_999, 'operator'), { found: false, response: null });
  } finally {
    waiter.close();
  }
});

test('the queue is bounded: beyond the bound a write is refused and nothing is stored', async () => {
  await client.query('DELETE FROM commands');
  for (let i = 0; i < 5; i++) await submit(client, seal, request(i), 5);
  await assert.rejects(submit(client, seal, request(6), 5), QueueFull);
  assert.equal(Number((await client.query('SELECT count(*) AS n FROM commands')).rows[0].n), 5);
  // Once one ran, there is room again.
  const { rows } = await client.query<{ id: number }>('SELECT id FROM commands ORDER BY id LIMIT 1');
  await finish(Number(rows[0]!.id), { status: 200, headers: {}, body: '' }, false);
  await submit(client, seal, request(7), 5);
});

test('done commands are pruned after their time; waiting ones never are', async () => {
  await client.query('DELETE FROM commands');
  const old = await submit(client, seal, request(1));
  const recent = await submit(client, seal, request(2));
  const open = await submit(client, seal, request(3));
  await finish(old, { status: 200, headers: {}, body: '' }, false);
  await finish(recent, { status: 200, headers: {}, body: '' }, false);
  await client.query(`UPDATE commands SET done_at = clock_timestamp() - interval '2 days' WHERE id = ${old}`);
  assert.equal(await pruneDone(client), 1);
  const left = (await client.query<{ id: number }>('SELECT id FROM commands ORDER BY id')).rows.map((r) => Number(r.id));
  assert.deepEqual(left, [recent, open]);
});

test('headers only replicas may set never travel in a command, whatever their case', () => {
  fc.assert(fc.property(fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), fc.string({ maxLength: 30 })), fc.subarray([...INTERNAL_HEADERS]), (plain, internal) => {
    const raw: Record<string, string> = { ...plain, authorization: 'Bearer secret' };
    for (const h of internal) raw[h.toUpperCase()] = 'forged';
    const kept = requestHeaders(raw);
    for (const name of Object.keys(kept)) assert.ok(!INTERNAL_HEADERS.has(name) && name !== 'authorization', name);
    for (const [k, v] of Object.entries(plain)) if (!INTERNAL_HEADERS.has(k) && !['connection', 'keep-alive', 'content-length', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer'].includes(k)) assert.equal(kept[k], v);
  }));
});

test('requests and responses are stored sealed: a secret in either is never in the database in clear, and a row not sealed with the replicas\' key is nobody\'s', async () => {
  await client.query('DELETE FROM commands');
  const secret = 'protected-' + 'x'.repeat(12) + '-value';
  const req: ApiRequest = { ...request(1), body: JSON.stringify({ properties: { protectedSettings: { password: secret } } }) };
  const id = await submit(client, seal, req);
  await finish(id, { status: 201, headers: {}, body: JSON.stringify({ token: secret }) }, false);
  const { rows } = await client.query<{ body: string; result: string }>('SELECT body, result FROM commands WHERE id = $1', [id]);
  assert.ok(!rows[0]!.body.includes(secret) && !rows[0]!.result.includes(secret), 'nothing in clear');
  assert.equal(seal.openRequest(JSON.parse(rows[0]!.body)).body, req.body, 'the runner opens the request');
  assert.equal((await responseOf(client, seal, id, 'operator')).response?.body, JSON.stringify({ token: secret }));
  // Another key (a replica with another secretKey, or a row written into the database by hand): not opened.
  const other = new CommandSeal(new SecretBox(Buffer.alloc(32, 8)));
  assert.throws(() => other.openRequest(JSON.parse(rows[0]!.body)), /unsupported state|authenticate/);
  assert.deepEqual(await responseOf(client, other, id, 'operator'), { found: false, response: null });
  const forged = await client.query<{ id: number }>("INSERT INTO commands (kind, body) VALUES ('api-request', $1) RETURNING id", [JSON.stringify(request(2))]);
  assert.throws(() => seal.openRequest(JSON.parse(JSON.stringify(request(2)))), /not sealed/);
  assert.deepEqual(await responseOf(client, seal, Number(forged.rows[0]!.id), 'operator'), { found: false, response: null });
});

test('a command\'s response is the sender\'s alone: to any other caller it is not found, whether it waits or ran', async () => {
  await client.query('DELETE FROM commands');
  const mine = await submit(client, seal, request(1));
  assert.deepEqual(await responseOf(client, seal, mine, 'someone-else'), { found: false, response: null }, 'queued');
  await finish(mine, { status: 201, headers: {}, body: '{"token":"t"}' }, false);
  assert.deepEqual(await responseOf(client, seal, mine, 'someone-else'), { found: false, response: null }, 'done');
  assert.equal((await responseOf(client, seal, mine, 'operator')).response?.status, 201);
});

test('GET /phasewise/commands/{id} on a replica: the sender gets the response (202 while it waits); a reader or another contributor gets 404; no token 401; a bad id 400', async () => {
  await client.query('DELETE FROM commands');
  const tls = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tls');
  const cert = readFileSync(join(tls, 'cert.pem'), 'utf8');
  const waiter = new ResponseWaiter(client, listener, seal);
  const app = buildFollowerServer({
    https: { cert, key: readFileSync(join(tls, 'key.pem'), 'utf8'), ca: cert, requestCert: true, rejectUnauthorized: false },
    vouch: () => ({}), maxBodyBytes: 1 << 20, logLevel: 'silent',
    auth: new Authenticator([
      { name: 'operator', token: 'operator-token', roles: ['contributor'] },
      { name: 'colleague', token: 'colleague-token', roles: ['contributor', 'publisher'] },
      { name: 'auditor', token: 'auditor-token', roles: ['reader'] },
    ]),
    writes: { client, waiter, seal, publicUrl: null, retryAfterSeconds: 1 },
    leader: async () => null, health: () => ({ store: 'postgres', leader: false, ready: true }), reads: null,
  });
  try {
    const id = await submit(client, seal, request(1)); // request(1) is the operator's
    const get = (token: string | null, path = `/phasewise/commands/${id}`) =>
      app.inject({ method: 'GET', url: path, headers: token ? { authorization: `Bearer ${token}` } : {} });
    assert.equal((await get('operator-token')).statusCode, 202, 'queued');
    await finish(id, { status: 201, headers: { 'content-type': 'application/json' }, body: '{"token":"enrollment-secret"}' }, false);
    const own = await get('operator-token');
    assert.deepEqual([own.statusCode, own.body], [201, '{"token":"enrollment-secret"}']);
    for (const other of ['auditor-token', 'colleague-token']) {
      const r = await get(other);
      assert.equal(r.statusCode, 404, other);
      assert.ok(!r.body.includes('enrollment-secret'));
      assert.equal(r.json().error.code, 'NotFound');
    }
    assert.equal((await get(null)).statusCode, 401);
    assert.equal((await get('operator-token', '/phasewise/commands/1x')).statusCode, 400);
  } finally {
    waiter.close();
    await app.close();
  }
});
