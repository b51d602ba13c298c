/**
 * The command queue replicas put API writes in (src/server/replicas/api-commands.ts), on a real
 * embedded PostgreSQL: a queued write is durable at once and its response reaches whoever waits for it
 * (through NOTIFY, or the poll when the notification is lost); the queue is bounded; done commands are
 * pruned after their time; internal headers never travel in a command.
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
import { INTERNAL_HEADERS, pruneDone, QueueFull, requestHeaders, ResponseWaiter, responseOf, submit } from '../src/server/replicas/api-commands.js';
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

const request = (n: number): ApiRequest => ({
  method: 'PUT', url: `/subscriptions/s/resourcegroups/rg-${n}?api-version=2021-04-01`, headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ location: 'eastus', n }), principal: { name: 'operator', roles: ['contributor'] } as never,
});

async function finish(id: number, response: ApiResponse, notify: boolean): Promise<void> {
  await client.query(markDoneSql(id, response) + (notify ? `; SELECT pg_notify('phasewise_command_done', ${literal(String(id))})` : ''));
}

test('a queued write is stored at once and its response reaches the waiter, notified or not', async () => {
  const waiter = new ResponseWaiter(client, listener);
  await waiter.start();
  try {
    const id = await submit(client, request(1));
    assert.deepEqual(await responseOf(client, id), { found: true, response: null }, 'queued, no response yet');
    const response: ApiResponse = { status: 201, headers: { 'content-type': 'application/json' }, body: '{"n":1}' };
    const waiting = waiter.wait(id, 10_000);
    await finish(id, response, true);
    assert.deepEqual(await waiting, { ...response, version: 0 }, 'the response, and the commit version that holds it');
    // A lost notification only delays: the poll finds the response.
    const id2 = await submit(client, request(2));
    const waiting2 = waiter.wait(id2, 10_000);
    await finish(id2, { ...response, body: '{"n":2}' }, false);
    assert.equal((await waiting2)?.body, '{"n":2}');
    // No response in time: null (the replica answers 202 with the command's address).
    const id3 = await submit(client, request(3));
    assert.equal(await waiter.wait(id3, 300), null);
    assert.deepEqual(await responseOf(client, 999_999), { found: false, response: null });
  } finally {
    waiter.close();
  }
});

test('the queue is bounded: beyond the bound a write is refused and nothing is stored', async () => {
  await client.query('DELETE FROM commands');
  for (let i = 0; i < 5; i++) await submit(client, request(i), 5);
  await assert.rejects(submit(client, request(6), 5), QueueFull);
  assert.equal(Number((await client.query('SELECT count(*) AS n FROM commands')).rows[0].n), 5);
  // Once one ran, there is room again.
  const { rows } = await client.query<{ id: number }>('SELECT id FROM commands ORDER BY id LIMIT 1');
  await finish(Number(rows[0]!.id), { status: 200, headers: {}, body: '' }, false);
  await submit(client, request(7), 5);
});

test('done commands are pruned after their time; waiting ones never are', async () => {
  await client.query('DELETE FROM commands');
  const old = await submit(client, request(1));
  const recent = await submit(client, request(2));
  const open = await submit(client, request(3));
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
