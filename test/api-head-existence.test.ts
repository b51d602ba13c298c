/**
 * HEAD of a resource's id is ARM's checkExistence (`resources.checkExistenceById`): 204 when it exists, 404
 * when not; its spec lists nothing else. Resource groups answered so (api-serve19); every other resource
 * answered the GET's 200 with its headers. Lists and Phasewise's own paths keep the GET's answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const AV = 'api-version=2024-07-01';
const RG = '/subscriptions/sub1/resourceGroups/rg1';
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines`;
const VMSS = `${RG}/providers/Microsoft.Compute/virtualMachineScaleSets`;
const CFG = `${RG}/providers/Microsoft.Maintenance/maintenanceConfigurations`;

describe('HEAD of a resource id (checkExistence)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `${RG}?${AV}`, { location: 'westus' })).status, 201);
    assert.equal((await call(s.url, 'PUT', `${VM}/vm1?${AV}`, { location: 'westus' })).status, 201);
    const set = { location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 1 }, properties: { upgradePolicy: { mode: 'Manual' } } };
    assert.ok((await call(s.url, 'PUT', `${VMSS}/ss1?${AV}`, set)).status < 300);
    assert.equal((await call(s.url, 'PUT', `${CFG}/c1?api-version=2023-04-01`, { location: 'westus', properties: { maintenanceScope: 'Host' } })).status, 201);
  });
  after(async () => s?.stop());

  const head = async (path: string) => {
    const r = await fetch(`${s.url}${path}`, { method: 'HEAD', headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    return { status: r.status, length: r.headers.get('content-length') };
  };

  test('a VM, a scale set, one of its instances and a maintenance configuration: 204 when they exist, in any casing; 404 when not', async () => {
    for (const path of [`${VM}/vm1?${AV}`, `${VM.toUpperCase()}/VM1?${AV}`, `${VMSS}/ss1?${AV}`, `${VMSS}/ss1/virtualMachines/0?${AV}`, `${CFG}/c1?api-version=2023-04-01`]) {
      const r = await head(path);
      assert.equal(r.status, 204, path);
      assert.ok(r.length === null || r.length === '0', `${path}: no body announced (${r.length})`);
    }
    for (const path of [`${VM}/nosuch?${AV}`, `${VMSS}/ss1/virtualMachines/9?${AV}`, `${CFG}/nosuch?api-version=2023-04-01`]) assert.equal((await head(path)).status, 404, path);
    assert.equal((await call(s.url, 'GET', `${VM}/vm1?${AV}`)).status, 200, 'a GET still answers the VM');
  });

  test('a list and Phasewise\'s own paths keep the GET\'s 200', async () => {
    assert.equal((await head(`${VM}?${AV}`)).status, 200);
    assert.equal((await head('/phasewise/rollouts')).status, 200);
  });
});
