/**
 * OS image upgrades over HTTPS and through `@azure/arm-compute` (R50, R60, R64–R66): a new image version
 * replicated to a set's region re-images the set when its automatic OS upgrade is on; with it off,
 * `osRollingUpgrade` does it by hand; `rollingUpgrades/latest` and `osUpgradeHistory` report it; an
 * instance behind the newest image reports `latestModelApplied: false`; `rollingUpgrades/cancel` cancels
 * an OS rolling upgrade the user started.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ComputeManagementClient } from '@azure/arm-compute';
import type { TokenCredential } from '@azure/core-auth';
import { call, eventually, PUBLISHER_TOKEN, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2024-07-01';
const UBUNTU = '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server/versions';
const VMSS = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;
const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };
const ubuntu = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' };

async function publish(s: TestServer, version: string): Promise<void> {
  assert.equal((await call(s.url, 'PUT', `${UBUNTU}/${version}`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
  assert.equal((await call(s.url, 'PUT', `${UBUNTU}/${version}/replications/westus`, undefined, PUBLISHER_TOKEN)).status, 201);
}

async function createSet(s: TestServer, name: string, capacity: number, enableAutomaticOSUpgrade: boolean, osRollingUpgradeDeferral = false): Promise<void> {
  const r = await call(s.url, 'PUT', `${VMSS}/${name}?${AV}`, {
    location: 'westus', sku: { name: 'Standard_D2s_v5', capacity },
    properties: { upgradePolicy: { mode: 'Manual', automaticOSUpgradePolicy: { enableAutomaticOSUpgrade, osRollingUpgradeDeferral } }, virtualMachineProfile: { storageProfile: { imageReference: ubuntu } } },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

type Vm = { instanceId: string; properties: { latestModelApplied: boolean; storageProfile: { imageReference?: { exactVersion?: string } } } };
const instances = async (s: TestServer, name: string) => (await call(s.url, 'GET', `${VMSS}/${name}/virtualMachines?${AV}`)).body.value as Vm[];

describe('OS image upgrades through the API and the SDK', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
    await publish(s, '24.04.202601010');
    await createSet(s, 'auto', 5, true);
    await createSet(s, 'byhand', 5, false);
    await createSet(s, 'deferred', 2, true, true);
  });
  after(async () => s?.stop());

  test('R60, R64, R66: a version replicated to the region re-images a set with automatic OS upgrade on; the history says so', async () => {
    assert.ok((await instances(s, 'auto')).every((v) => v.properties.storageProfile.imageReference?.exactVersion === '24.04.202601010' && v.properties.latestModelApplied));
    await publish(s, '24.04.202602010');
    await eventually(async () => (await instances(s, 'auto')).every((v) => v.properties.storageProfile.imageReference?.exactVersion === '24.04.202602010'), 60_000, 'the set to be re-imaged');
    const set = (await call(s.url, 'GET', `${VMSS}/auto?${AV}`)).body;
    assert.equal(set.properties.virtualMachineProfile.storageProfile.imageReference.exactVersion, '24.04.202602010');
    // The last instance may still be in its health wait (R21) when its image version changed.
    const history = await eventually(async () => {
      const value = (await call(s.url, 'GET', `${VMSS}/auto/osUpgradeHistory?${AV}`)).body.value;
      return value[0]?.properties.runningStatus.code === 'Completed' ? value : null;
    }, 60_000, 'the upgrade to complete');
    assert.equal(history.length, 1);
    const h = history[0].properties;
    assert.equal(h.runningStatus.code, 'Completed');
    assert.equal(h.startedBy, 'Platform');
    assert.deepEqual(h.targetImageReference, { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: '24.04.202602010' });
    assert.deepEqual(h.progress, { successfulInstanceCount: 5, failedInstanceCount: 0, inProgressInstanceCount: 0, pendingInstanceCount: 0 });
    assert.deepEqual(h.rollbackInfo, { successfullyRolledbackInstanceCount: 0, failedRolledbackInstanceCount: 0 });
    // The extension views know nothing of the OS image instance.
    assert.deepEqual((await call(s.url, 'GET', `${VMSS}/auto/virtualMachines/0?${AV}`)).body.resources, []);
  });

  test('R84: each re-imaged instance reads its re-image in its Microsoft.ResourceHealth availability statuses', async () => {
    const statuses = `${VMSS}/auto/virtualMachines/0/providers/Microsoft.ResourceHealth/availabilityStatuses`;
    const list = await call(s.url, 'GET', `${statuses}?api-version=2025-05-01`);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.equal(list.body.value[0].name, 'current');
    assert.equal(list.body.value[0].id, `${statuses}/current`);
    const reimages = list.body.value.filter((h: any) => h.properties.detailedStatus === 'Reimage' && h.name !== 'current');
    assert.equal(reimages.length, 1, JSON.stringify(list.body.value));
    assert.equal(reimages[0].properties.reasonType, 'Planned');
    assert.match(reimages[0].properties.summary, /24\.04\.202602010/);
    assert.deepEqual((await call(s.url, 'GET', `${statuses}/${reimages[0].name}?api-version=2025-05-01`)).body, reimages[0]);
    // The set's 404, then the instance's.
    assert.equal((await call(s.url, 'GET', `${VMSS}/ghost/virtualMachines/0/providers/Microsoft.ResourceHealth/availabilityStatuses/current?api-version=2025-05-01`)).status, 404);
    assert.equal((await call(s.url, 'GET', `${VMSS}/auto/virtualMachines/99/providers/Microsoft.ResourceHealth/availabilityStatuses/current?api-version=2025-05-01`)).status, 404);
  });

  test('R83: with osRollingUpgradeDeferral the re-image waits until the workload approves it through the SDK', async () => {
    // 24.04.202602010 was published by the previous test; the deferred set was announced its re-images.
    const events = async () => (await call(s.url, 'GET', '/phasewise/events?limit=1000')).body.value as Array<{ type: string; machineId?: string; deferred?: boolean }>;
    // Batches of one instance (20% of two): the first batch's re-image waits for its approval, and the set with it.
    await eventually(async () => (await events()).filter((e) => e.type === 'instance.notice.scheduled' && e.deferred).length === 1, 30_000, 'the first notice');
    assert.ok((await instances(s, 'deferred')).every((v) => v.properties.storageProfile.imageReference?.exactVersion === '24.04.202601010'), 'not re-imaged before approval');
    const bad = await call(s.url, 'POST', `${VMSS}/deferred/approveRollingUpgrade?${AV}`, { instanceIds: ['7'] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.target, 'instanceIds[0]');
    const client = new ComputeManagementClient(credential, SUB, { endpoint: s.url } as never);
    await client.virtualMachineScaleSets.beginApproveRollingUpgradeAndWait('rg1', 'deferred', { vmInstanceIDs: { instanceIds: ['0'] }, updateIntervalInMs: 50 } as never);
    await eventually(async () => (await instances(s, 'deferred')).find((v) => v.instanceId === '0')!.properties.storageProfile.imageReference?.exactVersion === '24.04.202602010', 30_000, 'instance 0 re-imaged');
    await eventually(async () => (await events()).filter((e) => e.type === 'instance.notice.scheduled' && e.deferred).length === 2, 30_000, 'the second notice');
    assert.equal((await instances(s, 'deferred')).find((v) => v.instanceId === '1')!.properties.storageProfile.imageReference?.exactVersion, '24.04.202601010', 'instance 1 waits for its own approval');
    const approved = (await events()).filter((e) => e.type === 'instance.notice.approved');
    assert.equal(approved.length, 1);
  });

  test('R50, R65, R66: with automatic OS upgrade off the set stays behind (latestModelApplied false) until the SDK starts an OS rolling upgrade', async () => {
    const behind = await instances(s, 'byhand');
    assert.ok(behind.every((v) => v.properties.storageProfile.imageReference?.exactVersion === '24.04.202601010'));
    assert.ok(behind.every((v) => v.properties.latestModelApplied === false), 'R50: the newest image is not applied');
    assert.deepEqual((await call(s.url, 'GET', `${VMSS}/byhand/osUpgradeHistory?${AV}`)).body.value, []);

    const client = new ComputeManagementClient(credential, SUB, { endpoint: s.url, updateIntervalInMs: 50 } as never);
    await client.virtualMachineScaleSetRollingUpgrades.beginStartOSUpgradeAndWait('rg1', 'byhand', { updateIntervalInMs: 50 } as never);
    const latest = await client.virtualMachineScaleSetRollingUpgrades.getLatest('rg1', 'byhand');
    assert.equal(latest.runningStatus?.code, 'Completed');
    assert.equal(latest.progress?.successfulInstanceCount, 5);
    const after = await instances(s, 'byhand');
    assert.ok(after.every((v) => v.properties.storageProfile.imageReference?.exactVersion === '24.04.202602010' && v.properties.latestModelApplied));
    const history = [];
    for await (const h of client.virtualMachineScaleSets.listOSUpgradeHistory('rg1', 'byhand')) history.push(h);
    assert.equal(history.length, 1);
    assert.equal(history[0]!.properties?.startedBy, 'User');
    assert.equal(history[0]!.properties?.targetImageReference?.version, '24.04.202602010');
    assert.equal(history[0]!.properties?.runningStatus?.code, 'Completed');
  });
});

describe('cancelling an OS rolling upgrade', () => {
  let s: TestServer;
  // A slow clock: a re-image (about five simulated minutes) takes seconds, so the upgrade is still running when cancelled.
  before(async () => {
    s = await startTestServer({ clockFactor: 20 });
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
    await publish(s, '24.04.202601010');
    await createSet(s, 'slow', 10, false);
    await publish(s, '24.04.202602010');
  });
  after(async () => s?.stop());

  test('R66: after rollingUpgrades/cancel (R65) the history shows the OS upgrade Cancelled with the instances left pending', async () => {
    const start = await call(s.url, 'POST', `${VMSS}/slow/osRollingUpgrade?${AV}`);
    assert.equal(start.status, 202);
    const again = await call(s.url, 'POST', `${VMSS}/slow/osRollingUpgrade?${AV}`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'RollingUpgradeInProgress');
    const client = new ComputeManagementClient(credential, SUB, { endpoint: s.url } as never);
    await client.virtualMachineScaleSetRollingUpgrades.beginCancelAndWait('rg1', 'slow', { updateIntervalInMs: 50 } as never);
    const history = (await call(s.url, 'GET', `${VMSS}/slow/osUpgradeHistory?${AV}`)).body.value;
    assert.equal(history.length, 1);
    assert.equal(history[0].properties.runningStatus.code, 'Cancelled');
    assert.ok(history[0].properties.progress.pendingInstanceCount > 0, JSON.stringify(history[0].properties.progress));
    assert.equal(history[0].properties.startedBy, 'User');
    const latest = (await call(s.url, 'GET', `${VMSS}/slow/rollingUpgrades/latest?${AV}`)).body;
    assert.equal(latest.properties.runningStatus.code, 'Cancelled');
  });

  test('R65: rollingUpgrades/cancel on a set the platform is re-imaging cancels that set\'s part', async () => {
    await createSet(s, 'platform-a', 10, true);
    await createSet(s, 'platform-b', 10, true);
    await publish(s, '24.04.202603010');
    await eventually(async () => (await call(s.url, 'GET', `${VMSS}/platform-a/osUpgradeHistory?${AV}`)).body.value[0]?.properties.runningStatus.code === 'RollingForward', 30_000, 'the platform upgrade to start');
    const cancel = await call(s.url, 'POST', `${VMSS}/platform-a/rollingUpgrades/cancel?${AV}`);
    // The reference's answer for a long-running POST: 202 with both operation headers and Retry-After.
    assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
    for (const h of ['azure-asyncoperation', 'location', 'retry-after']) assert.ok(cancel.headers.get(h), `${h} header`);
    const op = await call(s.url, 'GET', new URL(cancel.headers.get('azure-asyncoperation')!).pathname + `?${AV}`);
    assert.equal(op.body.status, 'Succeeded');
    const h = (await call(s.url, 'GET', `${VMSS}/platform-a/osUpgradeHistory?${AV}`)).body.value[0].properties;
    assert.equal(h.runningStatus.code, 'Cancelled');
    assert.equal(h.startedBy, 'Platform');
    // The other set's part goes on.
    const other = (await call(s.url, 'GET', `${VMSS}/platform-b/osUpgradeHistory?${AV}`)).body.value[0].properties;
    assert.notEqual(other.runningStatus.code, 'Cancelled');
  });
});
