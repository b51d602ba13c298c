/**
 * If-Match / If-None-Match on a POST action (a rolling upgrade's start or cancel, `manualupgrade`): the action's
 * URL has no GET to judge them against, so they are refused (`400 UnsupportedConditionalRequest`) before
 * anything runs, as on every other route without a GET (docs/api.md#conditional-requests). POST was not judged
 * at all: `If-Match: "<stale etag>"` started the upgrade the caller had made conditional.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const AV = 'api-version=2024-07-01';
const RG = '/subscriptions/sub1/resourceGroups/rg1';
const SS = `${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss1`;

describe('conditional POST actions', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `${RG}?${AV}`, { location: 'westus' })).status, 201);
    const set = { location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 2 }, properties: { upgradePolicy: { mode: 'Rolling' } } };
    assert.ok((await call(s.url, 'PUT', `${SS}?${AV}`, set)).status < 300);
  });
  after(async () => s?.stop());

  const post = (path: string, headers: Record<string, string>) =>
    fetch(`${s.url}${path}?${AV}`, { method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, ...headers } });

  test('If-Match or If-None-Match on an action answers 400 UnsupportedConditionalRequest, and the action does not run', async () => {
    for (const [action, headers] of [
      ['extensionRollingUpgrade', { 'if-match': '"stale"' }], ['extensionRollingUpgrade', { 'if-match': '*' }], ['extensionRollingUpgrade', { 'if-none-match': '*' }],
      ['rollingUpgrades/cancel', { 'if-match': '"x"' }], ['manualupgrade', { 'if-match': '*' }],
    ] as const) {
      const r = await post(`${SS}/${action}`, headers);
      const text = await r.text();
      const body = (text ? JSON.parse(text) : {}) as { error?: { code?: string; target?: string } };
      assert.equal(r.status, 400, `${action} ${JSON.stringify(headers)}: ${JSON.stringify(body)}`);
      assert.equal(body.error?.code, 'UnsupportedConditionalRequest');
      assert.equal(r.headers.get('azure-asyncoperation'), null, 'no operation started');
    }
    assert.equal((await call(s.url, 'GET', `${SS}/rollingUpgrades/latest?${AV}`)).status, 404, 'no rolling upgrade ran');
    // Without them the action runs.
    const ran = await post(`${SS}/extensionRollingUpgrade`, {});
    assert.equal(ran.status, 202);
    assert.ok(ran.headers.get('azure-asyncoperation'));
  });
});
