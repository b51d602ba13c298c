/**
 * The official Azure SDKs, unchanged, against a real Phasewise server over HTTPS: the scale-set,
 * VM-extension, Arc and rolling-upgrade round trips the ARM contract promises (reference/azure-api.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ComputeManagementClient } from '@azure/arm-compute';
import { HybridComputeManagementClient } from '@azure/arm-hybridcompute';
import type { TokenCredential } from '@azure/core-auth';
import { call, eventually, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const RG = 'rg1';
const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };
const AMA = { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent' };
const ARC_AGENT = { publisher: 'Contoso.Arc', type: 'Inventory' };

async function publish(s: TestServer, t: { publisher: string; type: string }, version: string, extra: Record<string, unknown> = {}) {
  const r = await call(s.url, 'PUT', `/phasewise/publishers/${t.publisher}/extensionTypes/${t.type}/versions/${version}`, { os: ['linux', 'windows'], ...extra });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function setUp(s: TestServer) {
  assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'westus' })).status, 201);
  for (const t of [AMA, { publisher: 'Microsoft.Azure.Extensions', type: 'CustomScript' }]) {
    const r = await call(s.url, 'PUT', `/phasewise/publishers/${t.publisher}/extensionTypes/${t.type}`, { supportsAutomaticUpgrade: true });
    assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
  }
  await publish(s, AMA, '1.30.0.0');
  await publish(s, { publisher: 'Microsoft.Azure.Extensions', type: 'CustomScript' }, '2.1.0.0');
  // The Arc test's type does not support automatic upgrade, so only upgradeExtensions moves it.
  assert.equal((await call(s.url, 'PUT', `/phasewise/publishers/${ARC_AGENT.publisher}/extensionTypes/${ARC_AGENT.type}`, { supportsAutomaticUpgrade: false })).status, 201);
  for (const v of ['1.0.0.0', '1.1.0.0']) await publish(s, ARC_AGENT, v);
}

function compute(s: TestServer) {
  return new ComputeManagementClient(credential, SUB, { endpoint: s.url, updateIntervalInMs: 20 } as never);
}

describe('Azure SDK round trips over HTTPS', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ simulatedFailures: { '1.32.0.0': { unhealthyAfterUpgrade: 1 } } });
    await setUp(s);
  });
  after(async () => s?.stop());

  test('R1, R81: a scale set with enableAutomaticUpgrade follows a newer minor version; getLatest goes to Completed', async () => {
    const client = compute(s);
    const vmss = await client.virtualMachineScaleSets.createOrUpdate(RG, 'web', {
      location: 'westus', zones: ['1', '2'], sku: { name: 'Standard_D2s_v5', capacity: 10 },
      upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { maxBatchInstancePercent: 20 } },
      virtualMachineProfile: {
        storageProfile: { imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' } },
        extensionProfile: { extensions: [{ name: 'ama', publisher: AMA.publisher, typePropertiesType: AMA.type, typeHandlerVersion: '1.30', enableAutomaticUpgrade: true, autoUpgradeMinorVersion: true, protectedSettings: { key: 'secret-value' } } as never] },
      },
    } as never);
    assert.equal((vmss as { provisioningState?: string }).provisioningState, 'Succeeded');
    const vms: Array<{ instanceId?: string; latestModelApplied?: boolean }> = [];
    for await (const vm of client.virtualMachineScaleSetVMs.list(RG, 'web')) vms.push(vm as never);
    assert.equal(vms.length, 10);
    assert.ok(vms.every((v) => v.latestModelApplied === true));
    await assert.rejects(client.virtualMachineScaleSetRollingUpgrades.getLatest(RG, 'web'), (e: { statusCode?: number }) => e.statusCode === 404);

    await publish(s, AMA, '1.31.0.0');
    const latest = await eventually(async () => {
      const l = await client.virtualMachineScaleSetRollingUpgrades.getLatest(RG, 'web') as { runningStatus?: { code?: string }; progress?: { successfulInstanceCount?: number } };
      return l.runningStatus?.code === 'Completed' ? l : undefined;
    }, 30_000, 'the rolling upgrade to complete');
    assert.equal(latest.progress?.successfulInstanceCount, 10);
    for (let i = 0; i < 10; i++) {
      const ext = await client.virtualMachineScaleSetVMExtensions.get(RG, 'web', String(i), 'ama', { expand: 'instanceView' }) as { instanceView?: { typeHandlerVersion?: string }; protectedSettings?: unknown };
      assert.equal(ext.instanceView?.typeHandlerVersion, '1.31.0.0', `instance ${i}`);
      assert.equal(ext.protectedSettings, undefined, 'protected settings are never returned');
    }
  });

  test('R6: an extension rolling upgrade started by hand can be cancelled', async () => {
    const client = compute(s);
    await client.virtualMachineScaleSets.createOrUpdate(RG, 'manual', {
      // Long pauses between batches keep the upgrade running while the test looks at it and cancels it.
      location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 10 }, upgradePolicy: { mode: 'Manual', rollingUpgradePolicy: { pauseTimeBetweenBatches: 'PT6H' } },
      virtualMachineProfile: { extensionProfile: { extensions: [{ name: 'cse', publisher: 'Microsoft.Azure.Extensions', typePropertiesType: 'CustomScript', typeHandlerVersion: '2.1' } as never] } },
    } as never);
    await publish(s, { publisher: 'Microsoft.Azure.Extensions', type: 'CustomScript' }, '2.2.0.0');
    // Opted out of automatic upgrade: nothing moves until someone asks.
    const poller = await client.virtualMachineScaleSetRollingUpgrades.beginStartExtensionUpgrade(RG, 'manual');
    const running = await client.virtualMachineScaleSetRollingUpgrades.getLatest(RG, 'manual') as { runningStatus?: { code?: string } };
    assert.equal(running.runningStatus?.code, 'RollingForward');
    await client.virtualMachineScaleSetRollingUpgrades.beginCancelAndWait(RG, 'manual');
    const cancelled = await client.virtualMachineScaleSetRollingUpgrades.getLatest(RG, 'manual') as { runningStatus?: { code?: string; lastAction?: string } };
    assert.equal(cancelled.runningStatus?.code, 'Cancelled');
    assert.equal(cancelled.runningStatus?.lastAction, 'Cancel');
    await assert.rejects(poller.pollUntilDone(), /cancel/i);
  });

  test('R23: the health gate stops a scale set, visible through getLatest', async () => {
    const client = compute(s);
    await client.virtualMachineScaleSets.createOrUpdate(RG, 'gated', {
      location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 20 }, upgradePolicy: { mode: 'Rolling' },
      virtualMachineProfile: { extensionProfile: { extensions: [{ name: 'ama', publisher: AMA.publisher, typePropertiesType: AMA.type, typeHandlerVersion: '1.31', enableAutomaticUpgrade: true } as never] } },
    } as never);
    await eventually(async () => {
      for await (const vm of client.virtualMachineScaleSetVMs.list(RG, 'gated')) if ((vm as { provisioningState?: string }).provisioningState !== 'Succeeded') return false;
      return true;
    }, 20_000, 'the instances to be provisioned');
    await publish(s, AMA, '1.32.0.0'); // the simulated fleet turns every machine unhealthy on this version
    const faulted = await eventually(async () => {
      const l = await client.virtualMachineScaleSetRollingUpgrades.getLatest(RG, 'gated') as { runningStatus?: { code?: string }; error?: { code?: string }; progress?: { successfulInstanceCount?: number; pendingInstanceCount?: number } };
      return l.runningStatus?.code === 'Faulted' ? l : undefined;
    }, 30_000, 'the set to be stopped');
    assert.equal(faulted.error?.code, 'MaxUnhealthyUpgradedInstancePercentExceeded');
    assert.equal(faulted.progress?.successfulInstanceCount, 0);
    assert.ok((faulted.progress?.pendingInstanceCount ?? 0) > 0, 'the rest of the set was never attempted');
  });

  test('VM extensions: create, update, list and delete through the SDK', async () => {
    const client = compute(s);
    const vm = await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2026-03-01`, { location: 'westus', zones: ['1'] });
    assert.equal(vm.status, 201, JSON.stringify(vm.body));
    const created = await client.virtualMachineExtensions.createOrUpdate(RG, 'vm1', 'ama', { location: 'westus', publisher: AMA.publisher, typePropertiesType: AMA.type, typeHandlerVersion: '1.30', autoUpgradeMinorVersion: false } as never) as { provisioningState?: string; enableAutomaticUpgrade?: boolean };
    assert.equal(created.provisioningState, 'Succeeded');
    assert.equal(created.enableAutomaticUpgrade, false, 'R3: off by default on VMs');
    const got = await client.virtualMachineExtensions.get(RG, 'vm1', 'ama', { expand: 'instanceView' }) as { instanceView?: { typeHandlerVersion?: string } };
    assert.equal(got.instanceView?.typeHandlerVersion, '1.30.0.0');
    const updated = await client.virtualMachineExtensions.update(RG, 'vm1', 'ama', { enableAutomaticUpgrade: true } as never) as { enableAutomaticUpgrade?: boolean };
    assert.equal(updated.enableAutomaticUpgrade, true);
    const list = await client.virtualMachineExtensions.list(RG, 'vm1') as { value?: unknown[] };
    assert.equal(list.value?.length, 1);
    // Opting in caught the instance up to the newest 1.x; a delete waits until that attempt settles (409 meanwhile).
    await eventually(async () => {
      await client.virtualMachineExtensions.delete(RG, 'vm1', 'ama');
      return true;
    }, 20_000, 'the delete to be accepted');
    await assert.rejects(client.virtualMachineExtensions.get(RG, 'vm1', 'ama'), (e: { statusCode?: number }) => e.statusCode === 404);
  });

  test('a 404 and a 400 surface as RestError with the ARM code', async () => {
    const client = compute(s);
    await assert.rejects(client.virtualMachineExtensions.get(RG, 'nope', 'ama'), (e: { statusCode?: number; code?: string; name?: string }) => e.name === 'RestError' && e.statusCode === 404 && e.code === 'ResourceNotFound');
    await assert.rejects(
      client.virtualMachineExtensions.createOrUpdate(RG, 'vm1', 'bad', { location: 'westus', publisher: AMA.publisher, typePropertiesType: AMA.type, typeHandlerVersion: 'one.two' } as never),
      (e: { statusCode?: number; code?: string; name?: string; message?: string }) => e.name === 'RestError' && e.statusCode === 400 && e.code === 'InvalidParameter' && /typeHandlerVersion/.test(e.message ?? ''),
    );
  });

  test('ifNoneMatch "*" creates a scale set once and never replaces it; ifMatch "*" never creates one (RestError 412)', async () => {
    const client = compute(s);
    const body = (capacity: number) => ({ location: 'westus', sku: { name: 'Standard_D2s_v5', capacity }, upgradePolicy: { mode: 'Manual' } }) as never;
    await client.virtualMachineScaleSets.createOrUpdate(RG, 'once', body(1), { ifNoneMatch: '*' });
    const is412 = (e: { statusCode?: number; code?: string; name?: string }) => e.name === 'RestError' && e.statusCode === 412 && e.code === 'PreconditionFailed';
    await assert.rejects(client.virtualMachineScaleSets.createOrUpdate(RG, 'once', body(3), { ifNoneMatch: '*' }), is412);
    assert.equal((await client.virtualMachineScaleSets.get(RG, 'once')).sku?.capacity, 1, 'the refused create-only PUT replaced nothing');
    await assert.rejects(client.virtualMachineScaleSets.createOrUpdate(RG, 'absent', body(1), { ifMatch: '*' }), is412);
    await assert.rejects(client.virtualMachineScaleSets.get(RG, 'absent'), (e: { statusCode?: number }) => e.statusCode === 404);
  });

  test('R3, Arc: extensions default to automatic upgrade; create, update, list, delete; upgradeExtensions', async () => {
    const reg = await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.HybridCompute/machines/arc1?api-version=2021-05-20`, { location: 'westus', properties: { osType: 'linux' } });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const arc = new HybridComputeManagementClient(credential, SUB, { endpoint: s.url });
    const created = await arc.machineExtensions.beginCreateOrUpdateAndWait(RG, 'arc1', 'ama', { location: 'westus', properties: { publisher: ARC_AGENT.publisher, type: ARC_AGENT.type, typeHandlerVersion: '1.0' } }, { updateIntervalInMs: 20 });
    assert.equal(created.properties?.provisioningState, 'Succeeded');
    const raw = await call(s.url, 'GET', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.HybridCompute/machines/arc1/extensions/ama?api-version=2021-05-20`);
    assert.equal(raw.body.properties.enableAutomaticUpgrade, true, 'R3: on by default on Arc, although SDK 3.0.0 cannot send it');
    assert.equal(raw.body.properties.instanceView.status.code, 'success');
    assert.equal(raw.body.properties.automaticUpgradeState, 'NotSupported', 'R80: the type does not support it (yet)');
    await arc.machineExtensions.beginUpdateAndWait(RG, 'arc1', 'ama', { properties: { settings: { workspace: 'w1' } } }, { updateIntervalInMs: 20 });
    const names: string[] = [];
    for await (const e of arc.machineExtensions.list(RG, 'arc1')) names.push(e.name!);
    assert.deepEqual(names, ['ama']);

    await arc.beginUpgradeExtensionsAndWait(RG, 'arc1', { extensionTargets: { [`${ARC_AGENT.publisher}.${ARC_AGENT.type}`]: { targetVersion: '1.1' } } }, { updateIntervalInMs: 20 });
    const after = await call(s.url, 'GET', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.HybridCompute/machines/arc1/extensions/ama?api-version=2021-05-20`);
    assert.equal(after.body.properties.instanceView.typeHandlerVersion, '1.1.0.0');

    await arc.machineExtensions.beginDeleteAndWait(RG, 'arc1', 'ama', { updateIntervalInMs: 20 });
    const gone = await call(s.url, 'GET', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.HybridCompute/machines/arc1/extensions/ama?api-version=2021-05-20`);
    assert.equal(gone.status, 404);
  });
});
