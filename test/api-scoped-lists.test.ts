/**
 * Lists scoped to a resource group or a subscription (session 19): each is paged like the other lists
 * (nextLink with a keyed $skiptoken) and holds exactly the scope's items, from the fleet index's scopes
 * rather than a filter of the whole fleet per request. Two items per page.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ComputeManagementClient } from '@azure/arm-compute';
import type { TokenCredential } from '@azure/core-auth';
import { call, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2026-03-01';
const MAINT_AV = 'api-version=2023-04-01';
const RGS = `/subscriptions/${SUB}/resourcegroups`;
const vms = (rg: string) => `${RGS}/${rg}/providers/Microsoft.Compute/virtualMachines`;

/** Every page of a list, following nextLink: the names served, and the number of pages. */
async function allPages(s: TestServer, first: string): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  let path: string | undefined = first;
  let pages = 0;
  while (path !== undefined) {
    const r = await call(s.url, 'GET', path);
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    assert.ok(r.body.value.length <= 2, 'a page holds at most pageSize items');
    names.push(...r.body.value.map((x: { name: string }) => x.name));
    pages++;
    const link = r.body.nextLink as string | undefined;
    if (link !== undefined) assert.match(link, /(\$|%24)skiptoken=k\./, 'a keyed token');
    path = link === undefined ? undefined : link.slice(link.indexOf('/subscriptions/'));
    assert.ok(pages < 20, 'the pages end');
  }
  return { names, pages };
}

describe('lists scoped to a resource group or subscription are paged and hold only their scope', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ pageSize: 2, subscriptions: [SUB, 'sub10'] });
    for (const rg of ['rgA', 'rgB', 'rg10', 'rg2', 'rgE']) assert.equal((await call(s.url, 'PUT', `${RGS}/${rg}?${AV}`, { location: 'westus' })).status, 201);
    for (const n of ['vm10', 'vm2', 'vm1', 'vm3', 'vm20']) assert.equal((await call(s.url, 'PUT', `${vms('rgA')}/${n}?${AV}`, { location: 'westus' })).status, 201);
    for (const n of ['other1', 'other2']) assert.equal((await call(s.url, 'PUT', `${vms('rgB')}/${n}?${AV}`, { location: 'westus' })).status, 201);
  });
  after(async () => s?.stop());

  test('a resource group\'s VMs: pages of 2 by name, only that group\'s, in any casing of the group (it was one unpaged answer)', async () => {
    const a = await allPages(s, `${vms('rgA')}?${AV}`);
    assert.deepEqual(a.names, ['vm1', 'vm2', 'vm3', 'vm10', 'vm20']);
    assert.equal(a.pages, 3);
    assert.deepEqual((await allPages(s, `${vms('RGA')}?${AV}`)).names, a.names);
    assert.deepEqual((await allPages(s, `${vms('rgB')}?${AV}`)).names, ['other1', 'other2']);
    assert.deepEqual((await allPages(s, `${vms('rgE')}?${AV}`)).names, []);
  });

  test('a group\'s VMs: one created between pages is served in its place, one deleted is not', async () => {
    const first = await call(s.url, 'GET', `${vms('rgB')}?${AV}`);
    assert.deepEqual(first.body.value.map((x: { name: string }) => x.name), ['other1', 'other2']);
    assert.equal(first.body.nextLink, undefined);
    for (const n of ['other3', 'other4']) assert.equal((await call(s.url, 'PUT', `${vms('rgB')}/${n}?${AV}`, { location: 'westus' })).status, 201);
    const again = await call(s.url, 'GET', `${vms('rgB')}?${AV}`);
    assert.ok(again.body.nextLink);
    assert.equal((await call(s.url, 'DELETE', `${vms('rgB')}/other3?${AV}`)).status, 200);
    const second = await call(s.url, 'GET', again.body.nextLink.slice(again.body.nextLink.indexOf('/subscriptions/')));
    assert.deepEqual(second.body.value.map((x: { name: string }) => x.name), ['other4']);
    // The subscription's list still holds both groups' VMs.
    const sub = await allPages(s, `/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${AV}`);
    assert.deepEqual(sub.names.sort(), ['other1', 'other2', 'other4', 'vm1', 'vm10', 'vm2', 'vm20', 'vm3']);
  });

  test('resource groups of a subscription: pages of 2 by name (it was one unpaged answer)', async () => {
    const r = await allPages(s, `${RGS}?${AV}`);
    assert.deepEqual(r.names, ['rg2', 'rg10', 'rgA', 'rgB', 'rgE']);
    assert.equal(r.pages, 3);
  });

  test('maintenance configurations of a group and of the subscription: paged; the subscription\'s hold no other subscription\'s', async () => {
    const cfg = (rg: string) => `${RGS}/${rg}/providers/Microsoft.Maintenance/maintenanceConfigurations`;
    for (const [rg, n] of [['rgA', 'c1'], ['rgA', 'c2'], ['rgA', 'c3'], ['rgB', 'c4']] as const) {
      const r = await call(s.url, 'PUT', `${cfg(rg)}/${n}?${MAINT_AV}`, { location: 'westus', properties: { maintenanceScope: 'Host' } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    // Another subscription whose id starts with this one's: its configuration is not this one's.
    assert.equal((await call(s.url, 'PUT', `/subscriptions/sub10/resourcegroups/rgA?${AV}`, { location: 'westus' })).status, 201);
    const other = `/subscriptions/sub10/resourcegroups/rgA/providers/Microsoft.Maintenance/maintenanceConfigurations/c9?${MAINT_AV}`;
    assert.equal((await call(s.url, 'PUT', other, { location: 'westus', properties: { maintenanceScope: 'Host' } })).status, 201);
    assert.deepEqual((await allPages(s, `${cfg('rgA')}?${MAINT_AV}`)).names, ['c1', 'c2', 'c3']);
    const sub = await allPages(s, `/subscriptions/${SUB}/providers/Microsoft.Maintenance/maintenanceConfigurations?${MAINT_AV}`);
    assert.deepEqual(sub.names, ['c1', 'c2', 'c3', 'c4']);
    assert.equal(sub.pages, 2);
  });

  test('an availability set lists its VMs (from the index, not a pass over the fleet), and the group\'s sets are paged', async () => {
    const AVS = `${RGS}/rgE/providers/Microsoft.Compute/availabilitySets`;
    for (const n of ['as1', 'as2', 'as3']) assert.equal((await call(s.url, 'PUT', `${AVS}/${n}?${AV}`, { location: 'westus' })).status, 200);
    const ref = { id: `/subscriptions/${SUB}/resourceGroups/rgE/providers/Microsoft.Compute/availabilitySets/as2` };
    for (const n of ['m1', 'm2']) {
      assert.equal((await call(s.url, 'PUT', `${vms('rgE')}/${n}?${AV}`, { location: 'westus', properties: { availabilitySet: ref } })).status, 201);
    }
    const as2 = await call(s.url, 'GET', `${AVS}/as2?${AV}`);
    assert.deepEqual(as2.body.properties.virtualMachines.map((v: { id: string }) => v.id.split('/').pop()), ['m1', 'm2']);
    assert.equal((await call(s.url, 'DELETE', `${vms('rgE')}/m1?${AV}`)).status, 200);
    assert.deepEqual((await call(s.url, 'GET', `${AVS}/as2?${AV}`)).body.properties.virtualMachines.map((v: { id: string }) => v.id.split('/').pop()), ['m2']);
    assert.deepEqual((await allPages(s, `${AVS}?${AV}`)).names, ['as1', 'as2', 'as3']);
  });

  test('Compute\'s SDK lists a group\'s VMs and availability sets across the pages (its pager follows nextLink; byPage gives pages of 2)', async () => {
    const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const compute = new ComputeManagementClient(credential, SUB, { endpoint: s.url } as never);
    const names: string[] = [];
    for await (const vm of compute.virtualMachines.list('rgA')) names.push(vm.name!);
    assert.deepEqual(names, ['vm1', 'vm2', 'vm3', 'vm10', 'vm20']);
    const sizes: number[] = [];
    for await (const page of compute.virtualMachines.list('rgA').byPage()) sizes.push(page.length);
    assert.deepEqual(sizes, [2, 2, 1]);
    const sets: string[] = [];
    for await (const a of compute.availabilitySets.list('rgE')) sets.push(a.name!);
    assert.deepEqual(sets, ['as1', 'as2', 'as3']);
  });
});
