/**
 * Loose ends of session 13, against a real serve: the api-version query parameter in any casing (ARM
 * reads parameter names case-insensitively), enrollment token names compared as ARM names (without
 * regard to case), and long polls capped per agent (one credential cannot hold hundreds open).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_LONG_POLLS_PER_AGENT } from '../src/api/agent/goal-states.js';
import { call, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { rawRequest, enrollBody, machineIdentity, TestAgent } from './helpers/agent-client.js';

const SUB = 'sub1';
const ENROLL = 'enroll-token-loose-ends-0123456789';
const RG = `/subscriptions/${SUB}/resourceGroups/rg1`;

describe('loose ends', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ enrollmentTokens: [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' }] });
    assert.equal((await call(s.url, 'PUT', `${RG}?api-version=2026-03-01`, { location: 'westus' })).status, 201);
  });
  after(async () => s?.stop());

  test('api-version in any casing is the api-version (API-Version, Api-Version): property over casings', async () => {
    const casing = fc.array(fc.boolean(), { minLength: 11, maxLength: 11 }).map((up) => [...'api-version'].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
    await fc.assert(fc.asyncProperty(casing, async (name) => {
      const ok = await call(s.url, 'GET', `${RG}?${name}=2026-03-01`);
      assert.equal(ok.status, 200, `${name}: ${JSON.stringify(ok.body)}`);
      const bad = await call(s.url, 'GET', `${RG}?${name}=${'9'.repeat(100)}`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'InvalidApiVersionParameter', `${name}: the limit holds in every casing`);
    }), { numRuns: 20 });
    for (const name of ['API-Version', 'Api-Version', 'API-VERSION']) assert.equal((await call(s.url, 'GET', `${RG}?${name}=2026-03-01`)).status, 200, name);
    const none = await call(s.url, 'GET', `${RG}?apiversion=2026-03-01`);
    assert.equal(none.status, 400);
    assert.equal(none.body.error.code, 'MissingApiVersionParameter');
  });

  test('enrollment token names are ARM names: PUT Build then build is one token (the first spelling), the old secret is gone, DELETE BUILD removes it', async () => {
    const scope = { subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' };
    const first = await call(s.url, 'PUT', '/phasewise/enrollmentTokens/Build', scope);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const second = await call(s.url, 'PUT', '/phasewise/enrollmentTokens/build', scope);
    assert.equal(second.status, 201);
    assert.equal(second.body.name, 'Build', 'the name keeps its first spelling, as ARM keeps a resource\'s');
    const names = (await call(s.url, 'GET', '/phasewise/enrollmentTokens')).body.value.map((t: { name: string }) => t.name);
    assert.deepEqual(names.filter((n: string) => n.toLowerCase() === 'build'), ['Build']);
    const enroll = (token: string, name: string) => rawRequest(s.url, 'POST', '/v1/enroll', {
      body: JSON.stringify(enrollBody(machineIdentity(), { name })), headers: { authorization: `Bearer ${token}` },
    });
    assert.equal((await enroll(first.body.token, 'case-1')).status, 401, 'the replaced secret no longer enrolls');
    assert.equal((await enroll(second.body.token, 'case-2')).status, 201);
    assert.equal((await call(s.url, 'DELETE', '/phasewise/enrollmentTokens/BUILD')).status, 204);
    assert.equal((await enroll(second.body.token, 'case-3')).status, 401);
  });

  test(`one agent holds at most ${MAX_LONG_POLLS_PER_AGENT} long polls: the older ones are answered at once, the rest wait`, async () => {
    const a = await TestAgent.enroll(s.url, ENROLL, { name: 'poller' });
    try {
      const etag = (await a.goalState()).headers.etag as string;
      const t0 = Date.now();
      const opened = 12;
      const answered: number[] = [];
      const polls = Array.from({ length: opened }, () => a.goalState(etag, 4).then((r) => {
        assert.equal(r.status, 304);
        answered.push(Date.now() - t0);
      }));
      await Promise.all(polls);
      const early = answered.filter((ms) => ms < 3_000).length;
      assert.equal(early, opened - MAX_LONG_POLLS_PER_AGENT, `answered after ${answered.join(', ')} ms`);
      assert.equal(answered.length - early, MAX_LONG_POLLS_PER_AGENT, 'the newest waited their time');
    } finally {
      a.close();
    }
  });
});
