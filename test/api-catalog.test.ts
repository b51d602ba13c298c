/**
 * The catalog read the way Azure serves it, the publisher API, subscription enrollment through the
 * features API (R7) and the activity log (R82), over HTTPS against a real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, eventually, READER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2026-03-01';
const AMA = '/phasewise/publishers/Microsoft.Azure.Monitor/extensionTypes/AzureMonitorLinuxAgent';
const VMSS = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;

describe('catalog, publisher API, enrollment and activity log', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' });
    assert.equal((await call(s.url, 'PUT', AMA, { supportsAutomaticUpgrade: true })).status, 201);
    for (const v of ['1.30.0.0', '1.30.2.0']) assert.equal((await call(s.url, 'PUT', `${AMA}/versions/${v}`, { os: ['linux'] })).status, 201);
  });
  after(async () => s?.stop());

  test('publisher API: bad input is refused with the field named, and nothing is published', async () => {
    const notVersion = await call(s.url, 'PUT', `${AMA}/versions/1.x`, { os: ['linux'] });
    assert.equal(notVersion.status, 400);
    assert.equal(notVersion.body.error.code, 'InvalidParameter');
    const badOs = await call(s.url, 'PUT', `${AMA}/versions/1.31.0.0`, { os: ['solaris'] });
    assert.equal(badOs.status, 400);
    assert.match(badOs.body.error.message, /os/);
    const unknownType = await call(s.url, 'PUT', '/phasewise/publishers/Nobody/extensionTypes/Nothing/versions/1.0.0.0', { os: ['linux'] });
    assert.equal(unknownType.status, 404);
    assert.equal(unknownType.body.error.code, 'ArtifactNotFound');
    const again = await call(s.url, 'PUT', `${AMA}/versions/1.30.0.0`, { os: ['linux'] });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'VersionAlreadyPublished');
    const reader = await call(s.url, 'PUT', `${AMA}/versions/1.31.0.0`, { os: ['linux'] }, READER_TOKEN);
    assert.equal(reader.status, 403);
    const versions = await call(s.url, 'GET', `/subscriptions/${SUB}/providers/Microsoft.Compute/locations/westus/publishers/Microsoft.Azure.Monitor/artifacttypes/vmextension/types/AzureMonitorLinuxAgent/versions?${AV}`);
    assert.deepEqual(versions.body.map((v: { name: string }) => v.name), ['1.30.0.0', '1.30.2.0'], 'none of the refused versions appeared');
  });

  test('the compute catalog answers bare arrays, ordered and limited; a missing version is ArtifactNotFound', async () => {
    const base = `/subscriptions/${SUB}/providers/Microsoft.Compute/locations/westus/publishers/Microsoft.Azure.Monitor/artifacttypes/vmextension/types`;
    const top = await call(s.url, 'GET', `${base}/AzureMonitorLinuxAgent/versions?${AV}&$orderby=name%20desc&$top=1`);
    assert.equal(top.status, 200);
    assert.deepEqual(top.body.map((v: { name: string }) => v.name), ['1.30.2.0']);
    const one = await call(s.url, 'GET', `${base}/AzureMonitorLinuxAgent/versions/1.30.0.0?${AV}`);
    assert.equal(one.body.name, '1.30.0.0');
    const missing = await call(s.url, 'GET', `${base}/AzureMonitorLinuxAgent/versions/9.9.9.9?${AV}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'ArtifactNotFound');
    const arc = await call(s.url, 'GET', `/subscriptions/${SUB}/providers/Microsoft.HybridCompute/locations/westus/publishers/Microsoft.Azure.Monitor/extensionTypes/AzureMonitorLinuxAgent/versions?api-version=2024-07-10`);
    assert.deepEqual(arc.body.value.map((v: { properties: { version: string } }) => v.properties.version).sort(), ['1.30.0.0', '1.30.2.0']);
  });

  test('R7: enrolling the subscription makes a scale set follow new minor versions of extensions with autoUpgradeMinorVersion', async () => {
    const put = await call(s.url, 'PUT', `${VMSS}/enrolled?${AV}`, {
      location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 5 },
      properties: { upgradePolicy: { mode: 'Automatic' }, virtualMachineProfile: { extensionProfile: { extensions: [{ name: 'ama', properties: { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent', typeHandlerVersion: '1.30', autoUpgradeMinorVersion: true } }] } } },
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const ext0 = `${VMSS}/enrolled/virtualMachines/0/extensions/ama?${AV}&$expand=instanceView`;
    await eventually(async () => (await call(s.url, 'GET', ext0)).body.properties.provisioningState === 'Succeeded', 20_000, 'the install');
    assert.equal((await call(s.url, 'GET', ext0)).body.properties.automaticUpgradeState, 'Disabled');
    assert.equal((await call(s.url, 'PUT', `${AMA}/versions/1.31.0.0`, { os: ['linux'] })).status, 201);
    const feature = `/subscriptions/${SUB}/providers/Microsoft.Features/providers/Microsoft.Compute/features/VMSSExtensionAutomaticUpgrade`;
    assert.equal((await call(s.url, 'GET', `${feature}?api-version=2021-07-01`)).body.properties.state, 'NotRegistered');
    // Not enrolled and not opted in: the new version does not reach the set.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await call(s.url, 'GET', ext0)).body.properties.instanceView.typeHandlerVersion, '1.30.2.0');
    const reg = await call(s.url, 'POST', `${feature}/register?api-version=2021-07-01`);
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.equal(reg.body.properties.state, 'Registered');
    assert.equal((await call(s.url, 'GET', ext0)).body.properties.automaticUpgradeState, 'Enabled');
    await eventually(async () => (await call(s.url, 'GET', `${VMSS}/enrolled/rollingUpgrades/latest?${AV}`)).body.properties?.runningStatus?.code === 'Completed', 30_000, 'the enrolled set to follow 1.31');
    assert.equal((await call(s.url, 'GET', ext0)).body.properties.instanceView.typeHandlerVersion, '1.31.0.0');
  });

  test('R82: every upgrade attempt is in the activity log with its operation and who started it, filterable by both', async () => {
    const range = `eventTimestamp ge '2000-01-01T00:00:00Z' and eventTimestamp le '2999-01-01T00:00:00Z'`;
    const url = (extra: string) => `/subscriptions/${SUB}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter=${encodeURIComponent(range + extra)}`;
    const platform = await call(s.url, 'GET', url(` and caller eq 'Azure Regional Service Manager'`));
    assert.equal(platform.status, 200, JSON.stringify(platform.body));
    const entries = platform.body.value as Array<{ caller: string; operationName: { value: string }; resourceId: string; status: { value: string } }>;
    assert.ok(entries.length >= 10, `expected the enrolled set's automatic attempts, got ${entries.length}`);
    assert.ok(entries.every((e) => e.caller === 'Azure Regional Service Manager'));
    assert.ok(entries.some((e) => e.operationName.value === 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions/write' && /virtualMachineScaleSets\/enrolled\/virtualMachines\/\d+$/i.test(e.resourceId) && e.status.value === 'Succeeded'));
    const byOperation = await call(s.url, 'GET', url(` and operationName eq 'Microsoft.HybridCompute/machines/upgradeExtensions/action'`));
    assert.equal(byOperation.body.value.length, 0, 'no Arc attempts in this test');
    const bad = await call(s.url, 'GET', `/subscriptions/${SUB}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter=${encodeURIComponent("caller eq 'x'")}`);
    assert.equal(bad.status, 400);
    assert.ok(bad.body.code && bad.body.message, 'the activity log answers a flat {code, message}');
  });

  test('R82: a range reaching before 1970 or past 9999 reads what lies within it (it was a 500); one wholly outside is empty', async () => {
    // The event log's readers take 1970 to 9999 (event-log-reader.ts) and refused the filter's wider range with an error.
    const url = (from: string, to: string) => `/subscriptions/${SUB}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01`
      + `&$filter=${encodeURIComponent(`eventTimestamp ge '${from}' and eventTimestamp le '${to}'`)}&$select=eventTimestamp,operationName`;
    const all = await call(s.url, 'GET', url('2000-01-01T00:00:00Z', '2999-01-01T00:00:00Z'));
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.ok(all.body.value.length > 0);
    for (const [from, to] of [['0001-01-01', '9999-12-31'], ['1969-12-31T23:00:00-02:00', '9999-12-31T23:00:00-05:00'], ['1000-01-01', '9999-12-31T23:59:59.999Z']] as Array<[string, string]>) {
      const r = await call(s.url, 'GET', url(from, to));
      assert.equal(r.status, 200, `${from} .. ${to}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body.value, all.body.value, `${from} .. ${to}`);
    }
    for (const [from, to] of [['0001-01-01', '1969-12-31T23:59:59Z'], ['9999-12-31T23:30:00-05:00', '9999-12-31T23:40:00-05:00']] as Array<[string, string]>) {
      const outside = await call(s.url, 'GET', url(from, to));
      assert.equal(outside.status, 200, `${from} .. ${to}: ${JSON.stringify(outside.body)}`);
      assert.deepEqual(outside.body.value, [], `${from} .. ${to}`);
    }
  });
});
