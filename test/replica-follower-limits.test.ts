/**
 * A replica that does not lead reads every request body itself before it queues or forwards it
 * (src/server/replicas/follower.ts): the same bound as the leader's API holds there, so a body that stops
 * arriving closes its connection after BODY_IDLE_MS instead of holding it (and its buffer) for ever.
 * What it forwards goes to the leader's address only, whatever the request target names.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { BODY_IDLE_MS } from '../src/api/agent/body-idle.js';
import { Authenticator } from '../src/api/arm/auth.js';
import { buildFollowerServer } from '../src/server/replicas/follower.js';
import type { WritePath } from '../src/server/replicas/write-path.js';

const tls = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tls');
const cert = readFileSync(join(tls, 'cert.pem'), 'utf8');
const TOKEN = 'follower-test-token-0123456789';

test(`a follower closes a connection whose request body stops arriving for ${BODY_IDLE_MS / 1000} s (agent channel, ARM write, no token)`, async () => {
  const app = buildFollowerServer({
    https: { cert, key: readFileSync(join(tls, 'key.pem'), 'utf8'), ca: cert, requestCert: true, rejectUnauthorized: false },
    vouch: () => ({}), maxBodyBytes: 1 << 20, logLevel: 'silent',
    auth: new Authenticator([{ name: 'operator', token: TOKEN, roles: ['contributor'] }]),
    // Never reached: no stalled body is complete, so nothing is queued or forwarded.
    writes: { client: null, waiter: null, seal: null, publicUrl: null, retryAfterSeconds: 1 } as unknown as WritePath,
    leader: async () => null, health: () => ({ store: 'postgres', leader: false, ready: true }), reads: null,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const stall = async (method: string, path: string, auth: string): Promise<number> => {
    const sock = connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost' });
    await new Promise((r) => sock.once('secureConnect', r));
    sock.on('error', () => undefined);
    sock.on('data', () => undefined);
    const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now())));
    const t0 = Date.now();
    sock.write(`${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"ver`);
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), BODY_IDLE_MS + 10_000))]);
    sock.destroy();
    assert.notEqual(at, -1, `${method} ${path}: the connection is still open ${BODY_IDLE_MS + 10_000} ms later`);
    return at - t0;
  };
  try {
    const times = await Promise.all([
      stall('PUT', '/v1/agents/a1/status', ''),
      stall('POST', '/v1/enroll', ''),
      stall('PUT', '/subscriptions/s/resourceGroups/rg?api-version=2021-04-01', `Authorization: Bearer ${TOKEN}\r\n`),
    ]);
    for (const ms of times) assert.ok(ms >= BODY_IDLE_MS - 100 && ms < BODY_IDLE_MS + 5_000, `closed after ${ms} ms`);
  } finally {
    await app.close();
  }
});

test('a follower forwards to its leader only: a request target naming another host (`//host:port/x`, `https://host/x`) reaches no other address', async () => {
  const key = readFileSync(join(tls, 'key.pem'), 'utf8');
  const leaderSaw: string[] = [];
  const leader = createHttpsServer({ cert, key }, (req, res) => { leaderSaw.push(req.url!); res.writeHead(404).end(); });
  await new Promise<void>((r) => leader.listen(0, '127.0.0.1', r));
  // What the client names instead: any connection to it is the defect (it used to get a TLS hello).
  let elsewhere = 0;
  const other = createTcpServer((sock) => { elsewhere++; sock.destroy(); });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  const otherPort = (other.address() as { port: number }).port;
  const app = buildFollowerServer({
    https: { cert, key, ca: cert, requestCert: true, rejectUnauthorized: false },
    vouch: () => ({}), maxBodyBytes: 1 << 20, logLevel: 'silent',
    auth: new Authenticator([{ name: 'operator', token: TOKEN, roles: ['reader'] }]),
    writes: { retryAfterSeconds: 1 } as unknown as WritePath,
    leader: async () => ({ holder: 'leader', url: `https://127.0.0.1:${(leader.address() as { port: number }).port}`, cert }),
    health: () => ({ store: 'postgres', leader: false, ready: true }), reads: null,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const get = async (target: string): Promise<number> => {
    const sock = connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost' });
    await new Promise((r) => sock.once('secureConnect', r));
    let text = '';
    sock.on('data', (d) => { text += d; });
    sock.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    await new Promise((r) => sock.once('close', r));
    return Number(text.split(' ')[1]);
  };
  try {
    // Without a token: the leader answers what it is asked (here 404); the follower connects nowhere else.
    assert.equal(await get(`//127.0.0.1:${otherPort}/x`), 404);
    assert.equal(await get(`//localhost:${otherPort}/subscriptions`), 404);
    assert.deepEqual(leaderSaw, [`//127.0.0.1:${otherPort}/x`, `//localhost:${otherPort}/subscriptions`]);
    // The absolute form is refused here, before anything is forwarded.
    assert.equal(await get(`https://127.0.0.1:${otherPort}/x`), 400);
    assert.equal(leaderSaw.length, 2);
    assert.equal(elsewhere, 0, 'the follower connected to the address the request named');
  } finally {
    await app.close();
    leader.close();
    other.close();
  }
});

test('a follower answers an HTTP/1.1 request without Host (400) and an unmet Expect (417) as ARM errors, forwarding nothing', async () => {
  const key = readFileSync(join(tls, 'key.pem'), 'utf8');
  const app = buildFollowerServer({
    https: { cert, key, ca: cert, requestCert: true, rejectUnauthorized: false },
    vouch: () => ({}), maxBodyBytes: 1 << 20, logLevel: 'silent',
    auth: new Authenticator([{ name: 'operator', token: TOKEN, roles: ['contributor'] }]),
    // Never reached: both are refused before a write is queued or a read forwarded.
    writes: { retryAfterSeconds: 1 } as unknown as WritePath,
    leader: async () => { throw new Error('nothing may be forwarded'); },
    health: () => ({ store: 'postgres', leader: false, ready: true }), reads: null,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const exchange = async (request: string): Promise<{ status: number; head: string; body: string }> => {
    const sock = connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost' });
    await new Promise((r) => sock.once('secureConnect', r));
    let text = '';
    sock.on('data', (d) => { text += d; });
    sock.write(request);
    await new Promise((r) => sock.once('close', r));
    const at = text.indexOf('\r\n\r\n');
    return { status: Number(text.split(' ')[1]), head: text.slice(0, at).toLowerCase(), body: text.slice(at + 4) };
  };
  try {
    const noHost = await exchange(`GET /subscriptions/s?api-version=2021-04-01 HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    assert.equal(noHost.status, 400);
    assert.match(noHost.body, /"code":"BadRequest"/);
    assert.match(noHost.head, /x-ms-request-id: /);
    const body = '{"location":"westus"}';
    const expect = await exchange(`PUT /subscriptions/s/resourceGroups/rg?api-version=2021-04-01 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\n`
      + `Content-Type: application/json\r\nExpect: 200-ok\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.equal(expect.status, 417);
    assert.match(expect.body, /"code":"ExpectationFailed"/);
    assert.match(expect.head, /x-ms-request-id: /);
  } finally {
    await app.close();
  }
});
