/**
 * The lean handler for the agent channel's hot requests (src/api/agent/agent-fast-path.ts) answers as
 * the Fastify routes do: the same goal state, ETag and 304, the same 204 after the commit, the same ARM
 * errors; the routes still serve URLs of other forms (a trailing slash). It checks the certificate before
 * it reads a body, and its requests count in /metrics under the route patterns.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LIMITS } from '../src/protocol/agent-wire.js';
import { call, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { rawRequest, statusReport, TestAgent } from './helpers/agent-client.js';

const ENROLL = 'enroll-token-0123456789abcdef';
const tokens = [{ token: ENROLL, subscriptionId: 'sub1', resourceGroup: 'arc', location: 'westus' }];

const storedGoalStateId = (s: TestServer, agentId: string) => {
  const row = s.store.database.prepare('SELECT report FROM agent_status WHERE agent_id = ?').get(agentId) as { report: string } | undefined;
  return row ? (JSON.parse(row.report) as { goalStateId: number }).goalStateId : null;
};

describe('the lean agent handler and the Fastify routes', () => {
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  before(async () => {
    s = await startTestServer({ enrollmentTokens: tokens });
    a = await TestAgent.enroll(s.url, ENROLL, { name: 'fp-1' });
    b = await TestAgent.enroll(s.url, ENROLL, { name: 'fp-2' });
  });
  after(async () => {
    a?.close();
    b?.close();
    await s?.stop();
  });

  // '/goalstate' is the lean handler's; '/goalstate/' (ignoreTrailingSlash) is left to Fastify's router.
  const forms = (id: string, what: 'goalstate' | 'status') => [`/v1/agents/${id}/${what}`, `/v1/agents/${id}/${what}/`];

  test('goal state: the same body, ETag and 304 either way, with a request id', async () => {
    const [lean, routed] = await Promise.all(forms(a.agentId, 'goalstate').map((p) => a.call('GET', p)));
    assert.equal(lean!.status, 200);
    assert.equal(routed!.status, 200);
    assert.equal(lean!.headers.etag, routed!.headers.etag);
    assert.equal(lean!.text, routed!.text);
    assert.match(String(lean!.headers['content-type']), /^application\/json/);
    assert.match(String(lean!.headers['x-ms-request-id']), /^[0-9a-f-]{36}$/);
    for (const p of forms(a.agentId, 'goalstate')) {
      const r = await a.call('GET', p, undefined, { 'if-none-match': lean!.headers.etag as string });
      assert.equal(r.status, 304, p);
      assert.equal(r.headers.etag, lean!.headers.etag);
      assert.equal(r.headers['cache-control'], 'no-cache');
      const wait = await a.call('GET', `${p}?wait=1`, undefined, { 'if-none-match': lean!.headers.etag as string });
      assert.equal(wait.status, 304, `${p}?wait=1`);
    }
    const bad = await a.call('GET', `/v1/agents/${a.agentId}/goalstate?wait=99999`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'InvalidParameter');
  });

  test('status: 204 after the commit either way; the same ARM errors for a wrong shape, another agent, no certificate', async () => {
    let seq = 100;
    for (const p of forms(a.agentId, 'status')) {
      const r = await a.call('PUT', p, statusReport({ goalStateId: ++seq }));
      assert.equal(r.status, 204, `${p}: ${r.text}`);
      assert.equal(storedGoalStateId(s, a.agentId), seq, 'committed before the answer');
    }
    const answers = async (paths: string[], send: (p: string) => Promise<{ status: number; json: any }>) => Promise.all(paths.map(async (p) => {
      const r = await send(p);
      return { status: r.status, error: r.json?.error };
    }));
    const [leanShape, routedShape] = await answers(forms(a.agentId, 'status'), (p) => a.call('PUT', p, { ...statusReport(), version: '9.9' }));
    assert.equal(leanShape!.status, 400);
    assert.deepEqual(leanShape, routedShape);
    assert.equal(leanShape!.error.target, 'version');
    const [leanOther, routedOther] = await answers(forms(b.agentId, 'status'), (p) => a.call('PUT', p, statusReport()));
    assert.equal(leanOther!.status, 403);
    assert.equal(leanOther!.error.code, 'AuthorizationFailed');
    assert.deepEqual(leanOther, routedOther);
    const [leanNone, routedNone] = await answers(forms(a.agentId, 'goalstate'), (p) => rawRequest(s.url, 'GET', p));
    assert.equal(leanNone!.status, 401);
    assert.deepEqual(leanNone, routedNone);
    assert.equal(storedGoalStateId(s, a.agentId), seq, 'nothing changed');
  });

  test('the certificate is checked before the body is read: without one a malformed body is a 401 (the router parses it first: 400)', async () => {
    const [lean, routed] = await Promise.all(forms(a.agentId, 'status').map((p) => rawRequest(s.url, 'PUT', p, { body: '{"version": ' })));
    assert.equal(lean!.status, 401);
    assert.equal(lean!.json.error.code, 'AuthenticationFailed');
    assert.equal(routed!.status, 400);
  });

  test('bodies: over the limit (declared or streamed), not JSON, empty: ARM errors, nothing stored', async () => {
    const before = storedGoalStateId(s, a.agentId);
    const big = JSON.stringify({ ...statusReport(), pad: 'x'.repeat(LIMITS.statusReportBytes) });
    const path = `/v1/agents/${a.agentId}/status`;
    const cases: Array<[string, Promise<{ status: number; json: any }>, number, string]> = [
      ['declared too large', a.call('PUT', path, big, { 'content-length': String(Buffer.byteLength(big)) }), 413, 'RequestEntityTooLarge'],
      ['streamed too large (chunked)', a.call('PUT', path, big), 413, 'RequestEntityTooLarge'],
      ['not JSON', a.call('PUT', path, 'version=1.1', { 'content-type': 'text/plain' }), 415, 'UnsupportedMediaType'],
      ['empty', a.call('PUT', path), 400, 'InvalidRequestContent'],
      ['blank JSON', a.call('PUT', path, '   '), 400, 'InvalidRequestContent'],
      ['too deep', a.call('PUT', path, `{"a":${'['.repeat(LIMITS.jsonDepth)}${']'.repeat(LIMITS.jsonDepth)}}`), 400, 'JsonTooDeep'],
    ];
    for (const [what, pending, status, code] of cases) {
      const r = await pending;
      assert.equal(r.status, status, what);
      assert.equal(r.json.error.code, code, what);
    }
    assert.equal(storedGoalStateId(s, a.agentId), before);
    // The connection is still good after each refusal.
    assert.equal((await a.status(statusReport({ goalStateId: 500 }))).status, 204);
  });

  test('a report marked compressed or in another charset is 415 on both paths, as on the ARM routes; nothing stored', async () => {
    // The lean handler used to take these (204) and store the body as if it were plain UTF-8, while the
    // Fastify route (the same URL with a trailing slash) refused them: the same report, two answers.
    const before = storedGoalStateId(s, a.agentId);
    const body = JSON.stringify(statusReport({ goalStateId: 777 }));
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['gzip', { 'content-encoding': 'gzip' }, /Content-Encoding 'gzip' is not supported/],
      ['br', { 'content-encoding': 'br' }, /Content-Encoding 'br' is not supported/],
      ['latin1', { 'content-type': 'application/json; charset=latin1' }, /charset 'latin1' is not supported/],
      ['utf-16', { 'content-type': 'application/json; charset="utf-16"' }, /charset 'utf-16' is not supported/],
    ];
    for (const [what, headers, message] of cases) {
      for (const p of forms(a.agentId, 'status')) {
        const r = await a.call('PUT', p, body, headers);
        assert.equal(r.status, 415, `${what} ${p}: ${r.text}`);
        assert.equal(r.json.error.code, 'UnsupportedMediaType', `${what} ${p}`);
        assert.match(r.json.error.message, message, `${what} ${p}`);
      }
    }
    assert.equal(storedGoalStateId(s, a.agentId), before, 'nothing of them was stored');
    // Identity and UTF-8 are the body as sent: accepted on both.
    for (const p of forms(a.agentId, 'status')) {
      const r = await a.call('PUT', p, body, { 'content-encoding': 'identity', 'content-type': 'application/json; charset=UTF-8' });
      assert.equal(r.status, 204, `${p}: ${r.text}`);
    }
    assert.equal(storedGoalStateId(s, a.agentId), 777);
  });

  test('its requests count in /metrics under the route patterns', async () => {
    await a.goalState();
    const lines = String((await call(s.url, 'GET', '/metrics')).body).split('\n');
    const counted = (route: string, status: number) => lines.some((l) => l.startsWith('phasewise_http_request_duration_seconds_count')
      && l.includes(`route="${route}"`) && l.includes(`status="${status}"`) && !/ 0$/.test(l));
    assert.ok(counted('/v1/agents/:agentId/goalstate', 200));
    assert.ok(counted('/v1/agents/:agentId/goalstate', 304));
    assert.ok(counted('/v1/agents/:agentId/status', 204));
    assert.ok(counted('/v1/agents/:agentId/status', 413));
  });
});
