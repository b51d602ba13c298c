/**
 * Query parameter names in any casing, and 405 for a routed path asked with a method it does not take,
 * on the agent channel and the ARM routes alike:
 * - `?Wait=` / `?WAIT=` on the goal state is read (it was read lowercase only on the Fastify route: a
 *   wrong value was a 200, the wait ignored), whichever path serves the request;
 * - `?Monitor=True` reads the operation's monitor as `?monitor=true` does; a value that is no boolean is a 400;
 * - DELETE on a goal state, GET on /v1/enroll, POST on a status…: 405 with `Allow` and an ARM error body
 *   (they were 404 NotFound, as if nothing were there); a path no route has stays 404.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, eventually, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { rawRequest, TestAgent } from './helpers/agent-client.js';

const ENROLL = 'enroll-token-query-methods-0123456';
const tokens = [{ token: ENROLL, subscriptionId: 'sub1', resourceGroup: 'arc', location: 'westus' }];
const SUB = 'sub1';
const AV = 'api-version=2026-03-01';

describe('query parameter names and methods', () => {
  let s: TestServer;
  let a: TestAgent;
  before(async () => {
    s = await startTestServer({ enrollmentTokens: tokens });
    a = await TestAgent.enroll(s.url, ENROLL, { name: 'qm-1' });
  });
  after(async () => {
    a?.close();
    await s?.stop();
  });

  test('?Wait= and ?WAIT= are read on the goal state, on the lean handler and the Fastify route', async () => {
    const first = await a.call('GET', `/v1/agents/${a.agentId}/goalstate`);
    const etag = first.headers.etag as string;
    // '/goalstate' is the lean handler's; '/goalstate/' and a second parameter go to Fastify's route.
    for (const base of [`/v1/agents/${a.agentId}/goalstate`, `/v1/agents/${a.agentId}/goalstate/`]) {
      for (const name of ['Wait', 'WAIT', 'wAiT']) {
        const bad = await a.call('GET', `${base}?${name}=99999`);
        assert.equal(bad.status, 400, `${base}?${name}=99999: ${bad.text}`);
        assert.equal(bad.json.error.code, 'InvalidParameter');
        assert.equal(bad.json.error.target, 'wait');
        const ok = await a.call('GET', `${base}?${name}=1`, undefined, { 'if-none-match': etag });
        assert.equal(ok.status, 304, `${base}?${name}=1`);
      }
    }
    const two = await a.call('GET', `/v1/agents/${a.agentId}/goalstate?x=1&Wait=abc`);
    assert.equal(two.status, 400, two.text);
    const dup = await a.call('GET', `/v1/agents/${a.agentId}/goalstate?wait=1&WAIT=2`);
    assert.equal(dup.status, 400, dup.text);
    assert.equal(dup.json.error.code, 'DuplicateQueryParameter');
  });

  test('405 with Allow and an ARM error on agent routes asked with another method; unknown paths stay 404', async () => {
    const cases: Array<[string, string, string]> = [
      ['DELETE', `/v1/agents/${a.agentId}/goalstate`, 'GET, HEAD'],
      ['POST', `/v1/agents/${a.agentId}/goalstate`, 'GET, HEAD'],
      ['POST', `/v1/agents/${a.agentId}/status`, 'PUT'],
      ['GET', `/v1/agents/${a.agentId}/status`, 'PUT'],
      ['PATCH', `/v1/agents/${a.agentId}/status/`, 'PUT'],
      ['GET', `/v1/agents/${a.agentId}/scheduledevents`, 'POST'],
      ['GET', '/v1/enroll', 'POST'],
      ['PUT', '/V1/ENROLL', 'POST'],
      ['DELETE', `/v1/packages/${'0'.repeat(64)}`, 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await a.call(method, path, method === 'GET' || method === 'DELETE' ? undefined : '{}');
      assert.equal(r.status, 405, `${method} ${path}: ${r.text}`);
      assert.equal(r.headers.allow, allow, `${method} ${path}`);
      assert.equal(r.json.error.code, 'MethodNotAllowed');
      assert.match(r.json.error.message, new RegExp(`does not support http method '${method}'`));
    }
    const none = await rawRequest(s.url, 'GET', '/v1/agents/x/nothing');
    assert.equal(none.status, 404);
    assert.equal(none.json.error.code, 'NotFound');
    assert.equal(none.headers.allow, undefined);
  });

  test('ARM routes answer 405 the same way; ?Monitor=True reads the monitor, ?monitor=maybe is a 400', async () => {
    await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' });
    await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent', { supportsAutomaticUpgrade: true });
    await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.0.0.0', { os: ['linux'] });
    await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1?${AV}`, { location: 'westus' });
    const ext = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1/extensions/agent?${AV}`;
    const put = await call(s.url, 'PUT', ext, { properties: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0' } });
    assert.equal(put.status, 201);
    const path = put.headers.get('azure-asyncoperation')!.replace(/^https:\/\/[^/]+/, '');
    await eventually(async () => (await call(s.url, 'GET', path)).body.status === 'Succeeded', 60_000, 'the install to finish');
    const status = await call(s.url, 'GET', path);
    assert.equal(status.body.status, 'Succeeded');
    for (const q of ['monitor=true', 'Monitor=True', 'MONITOR=TRUE']) {
      const m = await call(s.url, 'GET', path.replace('?', `?${q}&`));
      assert.equal(m.status, 200, q);
      assert.equal(m.body.startTime, undefined, `${q} is the monitor, not the status: ${JSON.stringify(m.body)}`);
    }
    const notMonitor = await call(s.url, 'GET', path.replace('?', '?Monitor=False&'));
    assert.equal(notMonitor.body.status, 'Succeeded');
    const bad = await call(s.url, 'GET', path.replace('?', '?monitor=maybe&'));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'InvalidParameter');

    const del = await call(s.url, 'DELETE', path);
    assert.equal(del.status, 405, JSON.stringify(del.body));
    assert.equal(del.headers.get('allow'), 'GET, HEAD');
    assert.equal(del.body.error.code, 'MethodNotAllowed');
    const rg = await call(s.url, 'DELETE', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`);
    assert.equal(rg.status, 405, JSON.stringify(rg.body));
    assert.equal(rg.headers.get('allow'), 'GET, HEAD, PUT', 'docs/api.md: resource groups cannot be deleted');
    assert.equal((await call(s.url, 'GET', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`)).status, 200, 'the group is still there');
  });
});
