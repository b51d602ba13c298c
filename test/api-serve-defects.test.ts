/**
 * Defects of `serve` found from outside (session 18), against a real server: query parameters given twice,
 * `$skiptoken`s on lists that page nothing, a JSON body with a UTF-8 byte order mark, and extension
 * versions published to regions the fleet does not have. Each answer is checked to change nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { rawRequest } from './helpers/agent-client.js';

const SUB = 'sub1';
const AV = 'api-version=2026-03-01';
const RGS = `/subscriptions/${SUB}/resourcegroups`;
const TYPES = '/phasewise/publishers/Contoso/extensionTypes';

describe('serve from outside: session 18 defects', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    for (const rg of ['rg1', 'rg2', 'rg3']) assert.equal((await call(s.url, 'PUT', `${RGS}/${rg}?${AV}`, { location: 'westus' })).status, 201);
    // A VM in westus gives the fleet its one region.
    const vm = await call(s.url, 'PUT', `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines/vm1?${AV}`, { location: 'West US' });
    assert.equal(vm.status, 201, JSON.stringify(vm.body));
    assert.equal((await call(s.url, 'PUT', `${TYPES}/Agent`, { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN)).status, 201);
  });
  after(async () => s?.stop());

  test('a query parameter the API reads, given twice with different values, is 400 DuplicateQueryParameter naming it, in any casing; nothing changes', async () => {
    const cases: Array<[string, string, string]> = [
      ['GET', `${RGS}/rg1?api-version=2026-03-01&api-version=${'9'.repeat(100)}`, 'api-version'],
      ['GET', `${RGS}/rg1?api-version=2026-03-01&API-Version=2026-03-02`, 'API-Version'],
      ['GET', `${RGS}?${AV}&$skiptoken=0&$skiptoken=garbage`, '$skiptoken'],
      ['GET', `/subscriptions/${SUB}/providers/Microsoft.Compute/locations/westus/publishers/Contoso/artifacttypes/vmextension/types/Agent/versions?${AV}&$top=1&$TOP=999999`, '$TOP'],
      ['GET', `/phasewise/rollouts?status=running&status=bogus`, 'status'],
    ];
    for (const [method, path, name] of cases) {
      const r = await call(s.url, method, path);
      assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'DuplicateQueryParameter', path);
      assert.equal(r.body.error.target, name, path);
    }
    // A write with a repeated parameter is refused before it runs.
    const put = await call(s.url, 'PUT', `${RGS}/rgdup?api-version=2026-03-01&api-version=2021-04-01`, { location: 'westus' });
    assert.equal(put.status, 400);
    assert.equal((await call(s.url, 'GET', `${RGS}/rgdup?${AV}`)).status, 404, 'nothing was created');
    // Parameters the API does not read may repeat, as ARM ignores unknown parameters. The same value twice is one
    // value, and `$expand` adds up: Compute's SDK sends `$expand=Properties` twice (listWithProperties).
    assert.equal((await call(s.url, 'GET', `${RGS}/rg1?${AV}&x=1&x=2`)).status, 200);
    assert.equal((await call(s.url, 'GET', `${RGS}/rg1?${AV}&${AV}`)).status, 200);
    assert.equal((await call(s.url, 'GET', `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines/vm1?${AV}&$expand=instanceView&$expand=userData`)).status, 200);
  });

  test('$skiptoken: a list that pages nothing refuses a token it did not issue (resource groups was a 200 with the whole list)', async () => {
    // Resource groups and a group's VMs are paged since session 19; a VM's extensions still answer at once.
    const EXTS = `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines/vm1/extensions?${AV}`;
    for (const token of ['garbage', '5', 'k.cmcx']) {
      const r = await call(s.url, 'GET', `${EXTS}&$skiptoken=${token}`);
      assert.equal(r.status, 400, `${token}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'InvalidParameter');
      assert.equal(r.body.error.target, '$skiptoken');
    }
    // Other unpaged lists answer the same (extension types); paged ones (resource groups, a group's VMs) refuse garbage.
    for (const path of [`${TYPES}?$skiptoken=garbage`, `${RGS}?${AV}&$skiptoken=garbage`, `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines?${AV}&$skiptoken=garbage`]) {
      const r = await call(s.url, 'GET', path);
      assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.target, '$skiptoken', path);
    }
    // A paged list still refuses garbage and takes what it issued; an empty token is no token.
    const paged = `/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${AV}`;
    assert.equal((await call(s.url, 'GET', `${paged}&$skiptoken=garbage`)).status, 400);
    assert.equal((await call(s.url, 'GET', `${paged}&$skiptoken=0`)).status, 200);
    const all = await call(s.url, 'GET', `${RGS}?${AV}&$skiptoken=`);
    assert.equal(all.status, 200);
    assert.ok(all.body.value.length >= 3);
  });

  test('a JSON body with a UTF-8 byte order mark is read past, as ARM reads it (it was a 400 showing an invisible character)', async () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ location: 'westus', tags: { bom: 'yes' } }))]);
    const r = await rawRequest(s.url, 'PUT', `${RGS}/rgbom?${AV}`, { body, headers: { authorization: 'Bearer test-token-contributor-0123456789', 'content-type': 'application/json' } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual((await call(s.url, 'GET', `${RGS}/rgbom?${AV}`)).body.tags, { bom: 'yes' });
    // A mark anywhere else is not JSON: the message names the character rather than showing it.
    const mid = await call(s.url, 'PUT', `${RGS}/rgbom2?${AV}`, `{"location":"westus",\uFEFF"tags":{}}`);
    assert.equal(mid.status, 400);
    assert.equal(mid.body.error.code, 'InvalidRequestContent');
  });

  test('extension versions: a region the fleet does not know is refused naming it (up to 5,000 were taken); known ones in any spelling', async () => {
    const before = await call(s.url, 'GET', `${TYPES}/Agent/versions`, undefined, PUBLISHER_TOKEN);
    const bad = await call(s.url, 'PUT', `${TYPES}/Agent/versions/1.0.0.0`, { os: ['linux'], regions: ['westus', 'atlantis'] }, PUBLISHER_TOKEN);
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.error.code, 'InvalidParameter');
    assert.equal(bad.body.error.target, 'regions[1]');
    assert.match(bad.body.error.message, /atlantis.*westus/);
    const many = await call(s.url, 'PUT', `${TYPES}/Agent/versions/1.0.0.0`, { os: ['linux'], regions: Array.from({ length: 5000 }, (_, i) => `region${i}`) }, PUBLISHER_TOKEN);
    assert.equal(many.status, 400);
    assert.equal(many.body.error.target, 'regions[0]');
    assert.deepEqual((await call(s.url, 'GET', `${TYPES}/Agent/versions`, undefined, PUBLISHER_TOKEN)).body, before.body, 'nothing was published');
    const ok = await call(s.url, 'PUT', `${TYPES}/Agent/versions/1.0.0.0`, { os: ['linux'], regions: ['West US', 'WESTUS'] }, PUBLISHER_TOKEN);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.regions, ['westus'], 'as the fleet spells it, once');
  });
});

describe('paged lists through the fleet index\'s sorted keys (2 per page)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ pageSize: 2 });
    assert.equal((await call(s.url, 'PUT', `${RGS}/rg1?${AV}`, { location: 'westus' })).status, 201);
  });
  after(async () => s?.stop());

  const names = (body: { value: Array<{ name: string }> }) => body.value.map((x) => x.name);
  const next = async (link: string) => call(s.url, 'GET', link.slice(link.indexOf('/subscriptions/')));

  test('scale-set instances: one deleted and one added between pages; the next page is taken from the list as it is now', async () => {
    const VMSS = `${RGS}/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/web`;
    const body = (capacity: number) => ({ location: 'westus', sku: { name: 'Standard_D2s_v5', capacity }, properties: { upgradePolicy: { mode: 'Manual' } } });
    assert.equal((await call(s.url, 'PUT', `${VMSS}?${AV}`, body(5))).status, 201);
    const first = await call(s.url, 'GET', `${VMSS}/virtualMachines?${AV}`);
    assert.deepEqual(names(first.body), ['web_0', 'web_1']);
    assert.equal((await call(s.url, 'DELETE', `${VMSS}/virtualMachines/2?${AV}`)).status, 200);
    assert.ok([200, 201].includes((await call(s.url, 'PUT', `${VMSS}?${AV}`, body(5))).status), 'back to 5 instances: one new');
    const second = await next(first.body.nextLink);
    assert.deepEqual(names(second.body), ['web_3', 'web_4'], 'the deleted instance is not served');
    const third = await next(second.body.nextLink);
    assert.deepEqual(names(third.body), ['web_5'], 'the instance added after the first page is served');
    assert.equal(third.body.nextLink, undefined);
  });

  test('a subscription\'s VMs: a VM created between pages is served in its place; one deleted is not', async () => {
    const VMS = `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines`;
    for (const n of ['vm1', 'vm3', 'vm5']) assert.equal((await call(s.url, 'PUT', `${VMS}/${n}?${AV}`, { location: 'westus' })).status, 201);
    const first = await call(s.url, 'GET', `/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${AV}`);
    assert.deepEqual(names(first.body), ['vm1', 'vm3']);
    assert.equal((await call(s.url, 'PUT', `${VMS}/vm4?${AV}`, { location: 'westus' })).status, 201);
    assert.equal((await call(s.url, 'DELETE', `${VMS}/vm5?${AV}`)).status, 200);
    const second = await next(first.body.nextLink);
    assert.deepEqual(names(second.body), ['vm4']);
    assert.equal(second.body.nextLink, undefined);
  });
});
