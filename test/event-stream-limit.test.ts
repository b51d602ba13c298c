/**
 * The live event stream (`GET /phasewise/stream`, the dashboard's feed) bounds its clients: one more than
 * the limit is told to come back later — 429 TooManyStreams with Retry-After, an ARM error, not a 5xx —
 * and a place freed by a client that leaves is taken by the next.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import { MAX_STREAM_CLIENTS } from '../src/dashboard/event-stream.js';
import { call, eventually, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

let s: TestServer;
before(async () => {
  s = await startTestServer({ retryAfterSeconds: 7 });
});
after(async () => s?.stop());

/** Opens a stream; resolves with the response once its head arrived (the body stays open). */
function open(): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = request(`${s.url}/phasewise/stream`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } }, (res) => resolve({ req, res }));
    req.on('error', reject);
    req.end();
  });
}

test('the stream after the last place is 429 TooManyStreams with Retry-After; a freed place is taken again', async () => {
  const streams = [];
  try {
    for (let i = 0; i < MAX_STREAM_CLIENTS; i++) streams.push(await open());
    assert.ok(streams.every((x) => x.res.statusCode === 200));
    const refused = await call(s.url, 'GET', '/phasewise/stream');
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'TooManyStreams');
    assert.equal(refused.headers.get('retry-after'), '7');
    streams.pop()!.req.destroy();
    const again = await eventually(async () => {
      const x = await open();
      if (x.res.statusCode === 200) return x;
      x.res.resume();
      return undefined;
    }, 10_000);
    streams.push(again);
    assert.equal(s.runtime.engine.haltedBecause, null);
  } finally {
    for (const x of streams) x.req.destroy();
  }
});

test('HEAD of the stream answers its headers at once and holds no place (it used to answer nothing, ever, holding one)', async () => {
  const head = () => fetch(`${s.url}/phasewise/stream`, { method: 'HEAD', headers: { authorization: `Bearer ${TEST_TOKEN}` }, signal: AbortSignal.timeout(5_000) });
  // The streams of the test before may take a moment to leave their places.
  await eventually(async () => (await head()).status === 200, 10_000, 'a free place');
  // More HEADs than there are places: each is answered and leaves, so none waits and none is refused.
  for (let i = 0; i < MAX_STREAM_CLIENTS + 5; i++) {
    const res = await head();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  }
  const x = await open();
  assert.equal(x.res.statusCode, 200);
  x.req.destroy();
});
