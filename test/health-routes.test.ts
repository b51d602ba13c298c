/**
 * `GET /healthz` and `GET /readyz` on `serve` (SQLite): open without a token; every other path still
 * needs one. (/readyz on a halted engine: test/store-fault.test.ts; on replicas: test/serve-replicas.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(async () => {
  await s?.close();
});

test('health checks need no token and say that this process runs the engine', async () => {
  const h = await fetch(`${s.url}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { serving: true, store: 'sqlite', leader: true, ready: true });
  const r = await fetch(`${s.url}/readyz`);
  assert.equal(r.status, 200);
  // Other paths still need the token.
  assert.equal((await fetch(`${s.url}/phasewise/rollouts`)).status, 401);
});
