/**
 * The official SDKs driven the way their users drive them (task K, session 14): paging with `byPage` and a saved
 * continuationToken while resources come and go, long-running operations resumed from a saved poller state, PATCH
 * against PUT with tags, errors as RestError, and many clients at once. Real SDKs against a real `serve`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ComputeManagementClient, restorePoller } from '@azure/arm-compute';
import { HybridComputeManagementClient } from '@azure/arm-hybridcompute';
import type { TokenCredential } from '@azure/core-auth';
import type { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { call, eventually, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import { fill, lift } from './helpers/store-full.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const RG = 'rg1';
const CV = 'api-version=2026-03-01';
const ARC = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.HybridCompute/machines`;
const VMS = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines`;
const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };
const AMA = { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent' };
const setBody = (capacity: number, tags?: Record<string, string>) =>
  ({ location: 'westus', sku: { name: 'Standard_D2s_v5', capacity }, upgradePolicy: { mode: 'Manual' }, ...(tags ? { tags } : {}) }) as never;
const isRest = (status: number, code: string) => (e: { name?: string; statusCode?: number; code?: string }) => {
  assert.equal(e.name, 'RestError', String(e));
  assert.equal(e.statusCode, status, String(e));
  assert.equal(e.code, code, String(e));
  return true;
};

describe('Azure SDK usage patterns against a real server', () => {
  let s: TestServer;
  let compute: ComputeManagementClient;
  let arc: HybridComputeManagementClient;
  before(async () => {
    s = await startTestServer({ pageSize: 3 });
    compute = new ComputeManagementClient(credential, SUB, { endpoint: s.url, updateIntervalInMs: 20 } as never);
    arc = new HybridComputeManagementClient(credential, SUB, { endpoint: s.url });
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'westus' })).status, 201);
    assert.equal((await call(s.url, 'PUT', `/phasewise/publishers/${AMA.publisher}/extensionTypes/${AMA.type}`, { supportsAutomaticUpgrade: true })).status, 201);
    assert.equal((await call(s.url, 'PUT', `/phasewise/publishers/${AMA.publisher}/extensionTypes/${AMA.type}/versions/1.30.0.0`, { os: ['linux', 'windows'] })).status, 201);
  });
  after(async () => s?.stop());

  test('byPage across several pages: a set deleted or created between pages never makes another one skipped or repeated', async () => {
    for (let i = 0; i < 9; i++) await compute.virtualMachineScaleSets.createOrUpdate(RG, `pg${i}`, setBody(1));
    const seen: string[] = [];
    let n = 0;
    for await (const p of compute.virtualMachineScaleSets.list(RG).byPage({ maxPageSize: 3 } as never)) {
      seen.push(...p.map((x) => x.name!));
      // After the first page: one set already served and one not yet served go away, a new one comes.
      if (n++ === 0) {
        await compute.virtualMachineScaleSets.delete(RG, 'pg0');
        await compute.virtualMachineScaleSets.delete(RG, 'pg5');
        await compute.virtualMachineScaleSets.createOrUpdate(RG, 'pg10', setBody(1));
      }
    }
    assert.ok(n >= 3, `several pages (${n})`);
    assert.deepEqual(seen, ['pg0', 'pg1', 'pg2', 'pg3', 'pg4', 'pg6', 'pg7', 'pg8', 'pg10']);

    // A saved continuationToken resumes after the last set served, even once that set is gone.
    const first = (await compute.virtualMachineScaleSets.list(RG).byPage().next()).value as Array<{ name?: string }> & { continuationToken?: string };
    assert.deepEqual(first.map((x) => x.name), ['pg1', 'pg2', 'pg3']);
    await compute.virtualMachineScaleSets.delete(RG, 'pg3');
    const rest: string[] = [];
    for await (const p of compute.virtualMachineScaleSets.list(RG).byPage({ continuationToken: first.continuationToken })) rest.push(...p.map((x) => x.name!));
    assert.deepEqual(rest, ['pg4', 'pg6', 'pg7', 'pg8', 'pg10']);
    for (const name of ['pg1', 'pg2', 'pg4', 'pg6', 'pg7', 'pg8', 'pg10']) await compute.virtualMachineScaleSets.delete(RG, name);
  });

  test('for await over a set of 12 instances lists 0…11 in order, over four pages; Arc machines page by name', async () => {
    await compute.virtualMachineScaleSets.createOrUpdate(RG, 'twelve', setBody(12));
    const ids: string[] = [];
    for await (const vm of compute.virtualMachineScaleSetVMs.list(RG, 'twelve')) ids.push(vm.instanceId!);
    assert.deepEqual(ids, Array.from({ length: 12 }, (_, i) => String(i)));
    for (const i of [3, 1, 2, 0, 4]) {
      const r = await call(s.url, 'PUT', `${ARC}/m${i}?api-version=2021-05-20`, { location: 'westus', properties: { osType: 'linux' } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const names: string[] = [];
    for await (const m of arc.machines.listByResourceGroup(RG)) names.push(m.name!);
    assert.deepEqual(names, ['m0', 'm1', 'm2', 'm3', 'm4']);
    await compute.virtualMachineScaleSets.delete(RG, 'twelve');
  });

  test('subscription-wide lists (listAll, listBySubscription) page across resource groups; an unknown subscription is a RestError 404', async () => {
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourcegroups/rg2?api-version=2021-04-01`, { location: 'westus' })).status, 201);
    for (const [rg, name] of [['rg2', 'all1'], [RG, 'all2'], ['rg2', 'all3'], [RG, 'all4']] as const) {
      await compute.virtualMachineScaleSets.createOrUpdate(rg, name, setBody(1));
      assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachines/v${name}?${CV}`, { location: 'westus' })).status, 201);
      const arcPath = `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.HybridCompute/machines/a${name}?api-version=2021-05-20`;
      assert.equal((await call(s.url, 'PUT', arcPath, { location: 'westus', properties: { osType: 'linux' } })).status, 201);
    }
    const sets: string[] = [];
    for await (const x of compute.virtualMachineScaleSets.listAll()) sets.push(x.name!);
    assert.deepEqual(sets.filter((n) => n.startsWith('all')), ['all2', 'all4', 'all1', 'all3'], 'by resource group, then name');
    const vms: string[] = [];
    for await (const x of compute.virtualMachines.listAll()) vms.push(x.name!);
    assert.deepEqual(vms.filter((n) => n.startsWith('vall')), ['vall2', 'vall4', 'vall1', 'vall3']);
    const arcs: string[] = [];
    for await (const x of arc.machines.listBySubscription()) arcs.push(x.name!);
    assert.deepEqual(arcs.filter((n) => n.startsWith('aall')), ['aall2', 'aall4', 'aall1', 'aall3']);
    const other = new ComputeManagementClient(credential, 'nosuchsub', { endpoint: s.url } as never);
    await assert.rejects(async () => { for await (const _ of other.virtualMachineScaleSets.listAll()) break; }, isRest(404, 'SubscriptionNotFound'));
    for (const [rg, name] of [['rg2', 'all1'], [RG, 'all2'], ['rg2', 'all3'], [RG, 'all4']] as const) {
      await compute.virtualMachineScaleSets.delete(rg, name);
      await compute.virtualMachines.delete(rg, `v${name}`);
      await arc.machines.delete(rg, `a${name}`);
    }
  });

  test('a delete resumed from a saved poller state (restorePoller) completes: the deletes hand out operation headers', async () => {
    await compute.virtualMachineScaleSets.createOrUpdate(RG, 'resumed', setBody(2));
    const poller = compute.virtualMachineScaleSets.delete(RG, 'resumed');
    await poller.submitted();
    const saved = await poller.serialize();
    await restorePoller(compute, saved, compute.virtualMachineScaleSets.delete).pollUntilDone();
    await assert.rejects(compute.virtualMachineScaleSets.get(RG, 'resumed'), isRest(404, 'ResourceNotFound'));

    assert.equal((await call(s.url, 'PUT', `${VMS}/vmr?${CV}`, { location: 'westus' })).status, 201);
    const vmDelete = compute.virtualMachines.delete(RG, 'vmr');
    await vmDelete.submitted();
    await restorePoller(compute, await vmDelete.serialize(), compute.virtualMachines.delete).pollUntilDone();
    assert.equal((await call(s.url, 'GET', `${VMS}/vmr?${CV}`)).status, 404);

    await compute.virtualMachineScaleSets.createOrUpdate(RG, 'modelext', setBody(1));
    await compute.virtualMachineScaleSetExtensions.createOrUpdate(RG, 'modelext', 'ama', { publisher: AMA.publisher, typePropertiesType: AMA.type, typeHandlerVersion: '1.30' } as never);
    const extDelete = compute.virtualMachineScaleSetExtensions.delete(RG, 'modelext', 'ama');
    await extDelete.submitted();
    await restorePoller(compute, await extDelete.serialize(), compute.virtualMachineScaleSetExtensions.delete).pollUntilDone();
    await assert.rejects(compute.virtualMachineScaleSetExtensions.get(RG, 'modelext', 'ama'), (e: { statusCode?: number }) => e.statusCode === 404);
    await compute.virtualMachineScaleSets.delete(RG, 'modelext');
  });

  test('an update that changes only tags resumes from a saved poller state (restorePoller): every update hands out operation headers', async () => {
    // An update that left the engine nothing to wait for answered 200 with no Azure-AsyncOperation; the SDK
    // then keeps no request in the poller's state, and restorePoller threw 'Invalid serialized state'.
    await compute.virtualMachineScaleSets.createOrUpdate(RG, 'tagonly', setBody(1));
    const setUpdate = compute.virtualMachineScaleSets.update(RG, 'tagonly', { tags: { a: '1' } } as never);
    await setUpdate.submitted();
    const set = await restorePoller(compute, await setUpdate.serialize(), compute.virtualMachineScaleSets.update).pollUntilDone();
    assert.deepEqual(set.tags, { a: '1' });

    assert.equal((await call(s.url, 'PUT', `${VMS}/tagonly?${CV}`, { location: 'westus' })).status, 201);
    const vmUpdate = compute.virtualMachines.update(RG, 'tagonly', { tags: { b: '2' } } as never);
    await vmUpdate.submitted();
    const vm = await restorePoller(compute, await vmUpdate.serialize(), compute.virtualMachines.update).pollUntilDone();
    assert.deepEqual(vm.tags, { b: '2' });

    const ext = { location: 'westus', publisher: AMA.publisher, typePropertiesType: AMA.type, typeHandlerVersion: '1.30' };
    await compute.virtualMachineExtensions.createOrUpdate(RG, 'tagonly', 'ama', ext as never);
    const extUpdate = compute.virtualMachineExtensions.update(RG, 'tagonly', 'ama', { tags: { c: '3' } } as never);
    await extUpdate.submitted();
    const done = await restorePoller(compute, await extUpdate.serialize(), compute.virtualMachineExtensions.update).pollUntilDone();
    assert.deepEqual(done.tags, { c: '3' });
    await compute.virtualMachineScaleSets.delete(RG, 'tagonly');
    await compute.virtualMachines.delete(RG, 'tagonly');
  });

  test('an extension create resumed after its machine was deleted ends in RestError 404, without hanging', async () => {
    assert.equal((await call(s.url, 'PUT', `${VMS}/gone?${CV}`, { location: 'westus' })).status, 201);
    const ext = { location: 'westus', publisher: AMA.publisher, typePropertiesType: AMA.type, typeHandlerVersion: '1.30' };
    const create = compute.virtualMachineExtensions.createOrUpdate(RG, 'gone', 'ama', ext as never);
    await create.submitted();
    const saved = await create.serialize();
    await compute.virtualMachines.delete(RG, 'gone');
    const resumed = restorePoller(compute, saved, compute.virtualMachineExtensions.createOrUpdate);
    await assert.rejects(resumed.pollUntilDone(), (e: { statusCode?: number }) => e.statusCode === 404);
  });

  test('Arc: beginCreateOrUpdate saved with toString() and resumed with resumeFrom', async () => {
    const ext = { location: 'westus', properties: { publisher: AMA.publisher, type: AMA.type, typeHandlerVersion: '1.30' } };
    const first = await arc.machineExtensions.beginCreateOrUpdate(RG, 'm0', 'ama', ext, { updateIntervalInMs: 20 });
    await first.poll(); // this engine (core-lro 2) sends the PUT on the first poll
    const resumed = await arc.machineExtensions.beginCreateOrUpdate(RG, 'm0', 'ama', { location: 'westus' }, { resumeFrom: first.toString(), updateIntervalInMs: 20 });
    const done = await resumed.pollUntilDone();
    assert.equal(done.properties?.provisioningState, 'Succeeded');
    await arc.machineExtensions.beginDeleteAndWait(RG, 'm0', 'ama', { updateIntervalInMs: 20 });
  });

  test('PATCH changes only what it names (tags kept or replaced, model untouched); PUT replaces the tags', async () => {
    await compute.virtualMachineScaleSets.createOrUpdate(RG, 'tags', setBody(1, { env: 'dev', team: 'a' }));
    const patched = await compute.virtualMachineScaleSets.update(RG, 'tags', { tags: { env: 'prod' } } as never);
    assert.deepEqual(patched.tags, { env: 'prod' });
    assert.equal(patched.sku?.capacity, 1);
    const untagged = await compute.virtualMachineScaleSets.update(RG, 'tags', { sku: { capacity: 2 } } as never);
    assert.deepEqual(untagged.tags, { env: 'prod' }, 'a PATCH without tags keeps them');
    const put = await compute.virtualMachineScaleSets.createOrUpdate(RG, 'tags', setBody(2));
    assert.deepEqual(put.tags ?? {}, {}, 'a PUT without tags clears them');
    await compute.virtualMachineScaleSets.delete(RG, 'tags');

    assert.equal((await call(s.url, 'PUT', `${VMS}/vmtags?${CV}`, { location: 'westus' })).status, 201);
    const ext = { location: 'westus', publisher: AMA.publisher, typePropertiesType: AMA.type, typeHandlerVersion: '1.30' };
    await compute.virtualMachineExtensions.createOrUpdate(RG, 'vmtags', 'ama', { ...ext, tags: { owner: 'x' } } as never);
    const extPatched = await compute.virtualMachineExtensions.update(RG, 'vmtags', 'ama', { enableAutomaticUpgrade: false } as never);
    assert.deepEqual(extPatched.tags, { owner: 'x' }, 'an extension PATCH without tags keeps them');
    const extPut = await compute.virtualMachineExtensions.createOrUpdate(RG, 'vmtags', 'ama', ext as never);
    assert.deepEqual(extPut.tags ?? {}, {}, 'an extension PUT without tags clears them');
  });

  test('VMs: update (PATCH) keeps what it does not name; availability sets: createOrUpdate, update, list, delete', async () => {
    await compute.virtualMachines.createOrUpdate(RG, 'vmp', { location: 'westus', tags: { a: '1' } } as never);
    const patched = await compute.virtualMachines.update(RG, 'vmp', { tags: { b: '2' } } as never);
    assert.deepEqual(patched.tags, { b: '2' });
    assert.equal((patched as { storageProfile?: { osDisk?: { osType?: string } } }).storageProfile?.osDisk?.osType, 'Linux');
    assert.deepEqual((await compute.virtualMachines.update(RG, 'vmp', {} as never)).tags, { b: '2' }, 'a PATCH without tags keeps them');
    await assert.rejects(compute.virtualMachines.update(RG, 'vmp', { zones: ['2'] } as never), isRest(409, 'PropertyChangeNotAllowed'));
    await assert.rejects(compute.virtualMachines.update(RG, 'novm', { tags: {} } as never), isRest(404, 'ResourceNotFound'));

    // The SDK accepts only 200 from an availability set's PUT, a create included.
    for (const n of ['av3', 'av1', 'av2', 'av10']) assert.equal((await compute.availabilitySets.createOrUpdate(RG, n, { location: 'westus' } as never)).name, n);
    assert.deepEqual((await compute.availabilitySets.update(RG, 'av1', { tags: { t: '1' } } as never)).tags, { t: '1' });
    await assert.rejects(compute.availabilitySets.update(RG, 'av1', { platformFaultDomainCount: 3 } as never), isRest(409, 'PropertyChangeNotAllowed'));
    const names: string[] = [];
    for await (const a of compute.availabilitySets.list(RG)) names.push(a.name!);
    assert.deepEqual(names, ['av1', 'av2', 'av3', 'av10']);
    const av1 = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/availabilitySets/av1`;
    await compute.virtualMachines.createOrUpdate(RG, 'inav', { location: 'westus', availabilitySet: { id: av1 } } as never);
    await assert.rejects(compute.availabilitySets.delete(RG, 'av1'), isRest(409, 'OperationNotAllowed'));
    assert.deepEqual((await compute.availabilitySets.get(RG, 'av1')).tags, { t: '1' }, 'the refused delete changed nothing');
    await compute.virtualMachines.delete(RG, 'inav');
    for (const n of ['av1', 'av2', 'av3', 'av10']) await compute.availabilitySets.delete(RG, n);
    await compute.availabilitySets.delete(RG, 'av1'); // already gone: 204
    await assert.rejects(compute.availabilitySets.get(RG, 'av1'), isRest(404, 'ResourceNotFound'));
    await compute.virtualMachines.delete(RG, 'vmp');
  });

  test('virtualMachineScaleSetVMs.delete removes one instance and shrinks the capacity; its id is never reused', async () => {
    await compute.virtualMachineScaleSets.createOrUpdate(RG, 'shrink', setBody(3));
    await compute.virtualMachineScaleSetVMs.delete(RG, 'shrink', '1');
    await compute.virtualMachineScaleSetVMs.delete(RG, 'shrink', '1'); // already gone: 204, idempotent
    await assert.rejects(compute.virtualMachineScaleSetVMs.get(RG, 'shrink', '1'), (e: { statusCode?: number }) => e.statusCode === 404);
    assert.equal((await compute.virtualMachineScaleSets.get(RG, 'shrink')).sku?.capacity, 2);
    await compute.virtualMachineScaleSets.update(RG, 'shrink', { sku: { capacity: 3 } } as never);
    const ids: string[] = [];
    for await (const vm of compute.virtualMachineScaleSetVMs.list(RG, 'shrink')) ids.push(vm.instanceId!);
    assert.deepEqual(ids, ['0', '2', '3']);
    await compute.virtualMachineScaleSets.delete(RG, 'shrink');
  });

  test('virtualMachineScaleSetVMs.update: tags and the instance\'s own properties change; what the set decides is refused, naming it', async () => {
    await compute.virtualMachineScaleSets.createOrUpdate(RG, 'tagged', setBody(2));
    const vm = await compute.virtualMachineScaleSetVMs.get(RG, 'tagged', '1');
    // Instance protection would be kept but not enforced (a scale-in or an upgrade would still reach it): refused.
    for (const protectionPolicy of [{ protectFromScaleIn: true }, { protectFromScaleSetActions: true }]) {
      await assert.rejects(compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '1', { ...vm, tags: { owner: 'web' }, protectionPolicy } as never),
        (e: { message?: string }) => isRest(400, 'InstanceProtectionNotSupported')(e as never) && new RegExp(Object.keys(protectionPolicy)[0]!).test(e.message ?? ''));
    }
    await assert.rejects(compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '1', { ...vm, hardwareProfile: { vmSize: 'Standard_E64s_v5' } } as never),
      (e: { message?: string }) => isRest(409, 'PropertyChangeNotAllowed')(e as never) && /hardwareProfile\.vmSize/.test(e.message ?? ''));
    assert.equal((await compute.virtualMachineScaleSetVMs.get(RG, 'tagged', '1')).tags, undefined, 'the refused requests changed nothing');
    const body = { ...vm, tags: { owner: 'web' }, protectionPolicy: { protectFromScaleIn: false }, licenseType: 'RHEL_BYOS' };
    const updated = await compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '1', body as never);
    assert.deepEqual(updated.tags, { owner: 'web' });
    const read = await compute.virtualMachineScaleSetVMs.get(RG, 'tagged', '1');
    assert.deepEqual(read.tags, { owner: 'web' });
    assert.equal(read.protectionPolicy?.protectFromScaleIn, false, 'no protection asked: kept as sent');
    assert.equal(read.licenseType, 'RHEL_BYOS', 'what the engine has no use for is kept as sent');
    assert.equal(read.instanceId, '1');
    assert.equal(read.latestModelApplied, true, 'computed properties stay the server\'s');
    assert.equal((await compute.virtualMachineScaleSetVMs.get(RG, 'tagged', '0')).tags, undefined, 'the other instance is untouched');
    const listed: Array<Record<string, string> | undefined> = [];
    for await (const x of compute.virtualMachineScaleSetVMs.list(RG, 'tagged')) listed.push(x.tags);
    assert.deepEqual(listed, [undefined, { owner: 'web' }]);

    await assert.rejects(compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '1', { ...read, location: 'eastus' } as never), isRest(409, 'PropertyChangeNotAllowed'));
    const image = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' };
    await assert.rejects(compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '1', { ...read, tags: {}, storageProfile: { imageReference: image } } as never),
      (e: { message?: string }) => isRest(409, 'PropertyChangeNotAllowed')(e as never) && /imageReference/.test(e.message ?? ''));
    await assert.rejects(compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '1', { location: 'westus', tags: { owner: 'y'.repeat(300) } } as never), isRest(400, 'InvalidTagValueLength'));
    await assert.rejects(compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '7', { location: 'westus' } as never), (e: { statusCode?: number }) => e.statusCode === 404);
    assert.deepEqual((await compute.virtualMachineScaleSetVMs.get(RG, 'tagged', '1')).tags, { owner: 'web' }, 'the refused requests changed nothing');
    // A raw client sending back read-only values as read: accepted; other values for them: refused, naming the property.
    const url = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/tagged/virtualMachines/1?${CV}`;
    const raw = (await call(s.url, 'GET', url)).body as Record<string, unknown>;
    assert.equal((await call(s.url, 'PUT', url, raw)).status, 200);
    const secret = await call(s.url, 'PUT', url, { ...raw, properties: { ...(raw.properties as object), osProfile: { adminPassword: 'Secret-123' } } });
    assert.equal(secret.status, 409);
    assert.match(secret.body.error.message, /'properties\.osProfile'/);
    const zoned = await call(s.url, 'PUT', url, { ...raw, instanceId: '5' });
    assert.equal(zoned.status, 409);
    assert.match(zoned.body.error.message, /'instanceId'/);
    // A PUT without tags clears them, as on every type.
    await compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '1', { location: 'westus' } as never);
    assert.equal((await compute.virtualMachineScaleSetVMs.get(RG, 'tagged', '1')).tags, undefined);
    // An instance removed by a smaller capacity takes what the update kept with it.
    await compute.virtualMachineScaleSetVMs.update(RG, 'tagged', '1', { location: 'westus', tags: { owner: 'web' } } as never);
    const kept = () => (s.store.database.prepare("SELECT count(*) AS n FROM arm_documents WHERE kind = 'scaleSetVm'").get() as { n: number }).n;
    assert.equal(kept(), 1);
    await compute.virtualMachineScaleSets.update(RG, 'tagged', { sku: { capacity: 1 } } as never);
    await assert.rejects(compute.virtualMachineScaleSetVMs.get(RG, 'tagged', '1'), (e: { statusCode?: number }) => e.statusCode === 404);
    assert.equal(kept(), 0);
    await compute.virtualMachineScaleSets.delete(RG, 'tagged');
  });

  test('errors: 404, 409, 412 (ifMatch), 400 surface as RestError with the ARM code', async () => {
    await assert.rejects(compute.virtualMachineScaleSets.get(RG, 'none'), isRest(404, 'ResourceNotFound'));
    await compute.virtualMachineScaleSets.createOrUpdate(RG, 'errs', setBody(1));
    await assert.rejects(compute.virtualMachineScaleSets.createOrUpdate(RG, 'errs', { ...(setBody(1) as object), location: 'eastus' } as never), isRest(409, 'PropertyChangeNotAllowed'));
    await assert.rejects(compute.virtualMachineScaleSets.update(RG, 'errs', { tags: { a: 'b' } } as never, { ifMatch: '"v1"' }), isRest(412, 'PreconditionFailed'));
    await assert.rejects(compute.virtualMachineScaleSets.createOrUpdate(RG, 'errs', { location: 'westus', sku: { capacity: -1 } } as never), isRest(400, 'InvalidParameter'));
    assert.deepEqual((await compute.virtualMachineScaleSets.get(RG, 'errs')).tags ?? {}, {}, 'the refused requests changed nothing');
    await compute.virtualMachineScaleSets.delete(RG, 'errs');
  });

  test('50 clients create one name at once: one set of the asked capacity; with ifNoneMatch only one wins; 50 names: 50 sets', async () => {
    const clients = Array.from({ length: 50 }, () => new ComputeManagementClient(credential, SUB, { endpoint: s.url, updateIntervalInMs: 20 } as never));
    const same = await Promise.allSettled(clients.map((c) => c.virtualMachineScaleSets.createOrUpdate(RG, 'crowd', setBody(2))));
    assert.deepEqual(same.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
    const ids: string[] = [];
    for await (const vm of compute.virtualMachineScaleSetVMs.list(RG, 'crowd')) ids.push(vm.instanceId!);
    assert.deepEqual(ids, ['0', '1']);

    const once = await Promise.allSettled(clients.map((c) => c.virtualMachineScaleSets.createOrUpdate(RG, 'once', setBody(1), { ifNoneMatch: '*' })));
    assert.equal(once.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of once) if (r.status === 'rejected') isRest(412, 'PreconditionFailed')(r.reason);

    const many = await Promise.allSettled(clients.map((c, i) => c.virtualMachineScaleSets.createOrUpdate(RG, `crowd${i}`, setBody(1))));
    assert.deepEqual(many.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
    const names: string[] = [];
    for await (const set of compute.virtualMachineScaleSets.list(RG)) names.push(set.name!);
    assert.deepEqual(names.filter((n) => /^crowd\d+$/.test(n)), Array.from({ length: 50 }, (_, i) => `crowd${i}`));
  });
});

describe('Azure SDK against a server that cannot write (503 with Retry-After)', () => {
  test('the SDK waits Retry-After between its few retries, then throws RestError 503 ServiceUnavailable; nothing was applied', async () => {
    const s = await startTestServer({ retryAfterSeconds: 1 });
    try {
      assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'westus' })).status, 201);
      const client = new ComputeManagementClient(credential, SUB, { endpoint: s.url, updateIntervalInMs: 20 } as never);
      const sent: number[] = [];
      client.pipeline.addPolicy({ name: 'countAttempts', sendRequest: (r, next) => { sent.push(Date.now()); return next(r); } }, { afterPhase: 'Retry' });
      fill(s.store as SqliteStore);
      try {
        // Tags that need a page of their own (the pages there may have room left for a small row).
        const tags = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`tag${i}`, 'v'.repeat(200)]));
        await assert.rejects(client.virtualMachineScaleSets.createOrUpdate(RG, 'full', setBody(1, tags)), isRest(503, 'ServiceUnavailable'));
      } finally {
        lift(s.store as SqliteStore);
      }
      assert.ok(sent.length >= 2 && sent.length <= 4, `a few attempts, not a storm (${sent.length})`);
      for (let i = 1; i < sent.length; i++) assert.ok(sent[i]! - sent[i - 1]! >= 900, `attempt ${i} waited Retry-After (${sent[i]! - sent[i - 1]!} ms)`);
      await eventually(async () => s.runtime.engine.haltedBecause === null, 20_000, 'the engine to resynchronise');
      await assert.rejects(client.virtualMachineScaleSets.get(RG, 'full'), isRest(404, 'ResourceNotFound'));
      assert.equal((await client.virtualMachineScaleSets.createOrUpdate(RG, 'full', setBody(1))).name, 'full', 'with room again the same call works');
    } finally {
      await s.stop();
    }
  });
});
