/**
 * ARM reads a location without regard to case or spaces: `West US`, `WestUS` and `westus` are one
 * location, answered as `westus`. Phasewise keys its regions by name, and took `West US` for a new region
 * of its own: outside westus's geo-pair and phases, with zones the fleet's region does not have, and a
 * later `PUT` or extension in `westus` was refused as a change of location.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { knownRegionName, normalizeLocation } from '../src/api/arm/locations.js';
import { operationPath, setOperationHeaders } from '../src/api/arm/operations.js';
import { call, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const AV = 'api-version=2024-07-01';
const RG = '/subscriptions/sub1/resourceGroups/rg1';
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines`;
const VMSS = `${RG}/providers/Microsoft.Compute/virtualMachineScaleSets`;
const ARC = `${RG}/providers/Microsoft.HybridCompute/machines`;

let s: TestServer;
const regionNames = () => [...s.runtime.engine.state.fleet.regions.keys()].sort();

before(async () => {
  s = await startTestServer();
  assert.equal((await call(s.url, 'PUT', `${RG}?${AV}`, { location: 'westus' })).status, 201);
  await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent', { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN);
  await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.0.0.0', { os: ['linux'] }, PUBLISHER_TOKEN);
});
after(async () => {
  await s.stop();
});

describe('locations are read as ARM reads them', () => {
  test('`West US`, `WestUS` and `westus` place VMs, scale sets and Arc machines in one region, answered as westus', async () => {
    assert.equal((await call(s.url, 'PUT', `${VM}/plain?${AV}`, { location: 'westus' })).status, 201);
    const spaced = await call(s.url, 'PUT', `${VM}/spaced?${AV}`, { location: 'West US' });
    assert.equal(spaced.status, 201, JSON.stringify(spaced.body));
    assert.equal(spaced.body.location, 'westus');
    assert.equal((await call(s.url, 'PUT', `${ARC}/arc1?${AV}`, { location: 'WestUS', properties: { osType: 'linux' } })).status, 201);
    const set = await call(s.url, 'PUT', `${VMSS}/set1?${AV}`, { location: 'West  US', sku: { capacity: 1 }, properties: { upgradePolicy: { mode: 'Manual' } } });
    assert.equal(set.status, 201, JSON.stringify(set.body));
    assert.equal(set.body.location, 'westus');
    assert.deepEqual(regionNames(), ['westus']);
    const machines = [...s.runtime.engine.state.fleet.machines.values()];
    assert.equal(machines.length, 4);
    assert.deepEqual(machines.map((m) => m.placement.region), ['westus', 'westus', 'westus', 'westus']);
  });

  test('a replace, an update or an extension naming the location in another form is not a change of location', async () => {
    assert.equal((await call(s.url, 'PUT', `${VM}/spaced?${AV}`, { location: 'westus', tags: { a: 'b' } })).status, 200);
    assert.equal((await call(s.url, 'PATCH', `${VM}/plain?${AV}`, { location: 'West US', tags: { a: 'b' } })).status, 200);
    assert.equal((await call(s.url, 'PUT', `${ARC}/arc1?${AV}`, { location: 'West US', properties: { osType: 'linux' } })).status, 200);
    assert.equal((await call(s.url, 'PATCH', `${VMSS}/set1?${AV}`, { location: 'WESTUS', tags: { a: 'b' } })).status, 200);
    const ext = await call(s.url, 'PUT', `${VM}/plain/extensions/agent?${AV}`,
      { location: 'West US', properties: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0' } });
    assert.ok(ext.status === 200 || ext.status === 201, JSON.stringify(ext.body));
    // Another location is still another location.
    assert.equal((await call(s.url, 'PUT', `${VM}/spaced?${AV}`, { location: 'East US' })).status, 409);
    assert.deepEqual(regionNames(), ['westus']);
  });

  test('a resource group or maintenance configuration replaced with its location in another form is not moved', async () => {
    const rg = await call(s.url, 'PUT', `${RG}?${AV}`, { location: 'West US' });
    assert.equal(rg.status, 200, JSON.stringify(rg.body));
    const cfg = `${RG}/providers/Microsoft.Maintenance/maintenanceConfigurations/nights?api-version=2023-04-01`;
    const body = (location: string) => ({ location, properties: { maintenanceScope: 'Host' } });
    assert.equal((await call(s.url, 'PUT', cfg, body('westus'))).status, 201);
    const again = await call(s.url, 'PUT', cfg, body('West US'));
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal((await call(s.url, 'PUT', cfg, body('East US'))).status, 409);
  });

  test('a resource group, maintenance configuration and assignment are answered in the short form, however the location was sent', async () => {
    // They kept the location as sent: `East US 2` was answered (and listed) as such, and a replace in
    // another spelling rewrote it, where every other resource answers `eastus2` as ARM does.
    const group = '/subscriptions/sub1/resourceGroups/spelled';
    const made = await call(s.url, 'PUT', `${group}?${AV}`, { location: 'East US 2' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal(made.body.location, 'eastus2');
    assert.equal((await call(s.url, 'PUT', `${group}?${AV}`, { location: 'EastUS2' })).body.location, 'eastus2');
    assert.equal((await call(s.url, 'GET', `${group}?${AV}`)).body.location, 'eastus2');
    const listed = await call(s.url, 'GET', `/subscriptions/sub1/resourceGroups?${AV}`);
    assert.equal(listed.body.value.find((g: { name: string }) => g.name === 'spelled')?.location, 'eastus2');
    const cfg = `${group}/providers/Microsoft.Maintenance/maintenanceConfigurations/c1?api-version=2023-04-01`;
    const c = await call(s.url, 'PUT', cfg, { location: 'East US 2', properties: { maintenanceScope: 'Host' } });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.location, 'eastus2');
    assert.equal((await call(s.url, 'PATCH', cfg, { location: 'East US 2', tags: { a: 'b' } })).body.location, 'eastus2');
    assert.equal((await call(s.url, 'GET', cfg)).body.location, 'eastus2');
    assert.equal((await call(s.url, 'PUT', `${VM}/spelled-vm?${AV}`, { location: 'westus' })).status, 201);
    const asg = `${VM}/spelled-vm/providers/Microsoft.Maintenance/configurationAssignments/a1?api-version=2023-04-01`;
    const a = await call(s.url, 'PUT', asg, { location: 'West US', properties: { maintenanceConfigurationId: `${group}/providers/Microsoft.Maintenance/maintenanceConfigurations/c1` } });
    assert.ok(a.status === 200 || a.status === 201, JSON.stringify(a.body));
    assert.equal(a.body.location, 'westus');
    assert.equal((await call(s.url, 'GET', asg)).body.location, 'westus');
  });

  test('a VM extension answers its machine\'s location, as Compute does (it answered none, sent or not)', async () => {
    assert.equal((await call(s.url, 'PUT', `${VM}/extloc?${AV}`, { location: 'West US' })).status, 201);
    const body = (location?: string) => ({ ...(location ? { location } : {}), properties: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0' } });
    const made = await call(s.url, 'PUT', `${VM}/extloc/extensions/e1?${AV}`, body('West US'));
    assert.ok(made.status < 300, JSON.stringify(made.body));
    assert.equal(made.body.location, 'westus');
    const replaced = await call(s.url, 'PUT', `${VM}/extloc/extensions/e1?${AV}`, body());
    assert.equal(replaced.body.location, 'westus', JSON.stringify(replaced.body));
    assert.equal((await call(s.url, 'GET', `${VM}/extloc/extensions/e1?${AV}`)).body.location, 'westus');
    const listed = await call(s.url, 'GET', `${VM}/extloc/extensions?${AV}`);
    assert.deepEqual(listed.body.value.map((e: { location?: string }) => e.location), ['westus']);
  });

  test('a location first seen is named in ARM\'s short form', async () => {
    const r = await call(s.url, 'PUT', `${VM}/east?${AV}`, { location: 'East US 2' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.location, 'eastus2');
    assert.equal((await call(s.url, 'PUT', `${VM}/east2?${AV}`, { location: 'eastus2' })).status, 201);
    assert.deepEqual(regionNames(), ['eastus2', 'westus']);
  });
});

describe('knownRegionName', () => {
  test('the short form wins over a stray spelling an older database may hold; no match is undefined', () => {
    assert.equal(knownRegionName(['east us', 'eastus'], 'East US'), 'eastus');
    assert.equal(knownRegionName(['east us'], 'EastUS'), 'east us');
    assert.equal(knownRegionName(['westus'], 'East US'), undefined);
  });

  test('property: the name found is one of the names and the same location; none is found only when none is', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9 ]{1,12}$/);
    fc.assert(fc.property(fc.array(word, { maxLength: 8 }), word, (names, location) => {
      const found = knownRegionName(names, location);
      const same = names.filter((n) => normalizeLocation(n) === normalizeLocation(location));
      if (same.length === 0) return found === undefined;
      return found !== undefined && same.includes(found) && (!same.includes(normalizeLocation(location)) || found === normalizeLocation(location));
    }));
  });

  test('property: given the fleet\'s regions map, the indexed lookup answers as the scan, as regions are added and after a reload', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9 ]{1,8}$/);
    fc.assert(fc.property(fc.array(fc.array(word, { maxLength: 6 }), { minLength: 1, maxLength: 6 }), fc.array(word, { minLength: 1, maxLength: 6 }), (batches, asked) => {
      const regions = new Map<string, unknown>();
      for (const batch of batches) {
        for (const name of batch) regions.set(name, {}); // regions are only added (putRegion)
        for (const location of asked) assert.equal(knownRegionName(regions, location), knownRegionName([...regions.keys()], location), location);
      }
      // A replica's reload empties the map and fills it again with the same regions.
      const names = [...regions.keys()];
      regions.clear();
      for (const name of names.reverse()) regions.set(name, {});
      for (const location of asked) {
        // Several stray spellings of one location may come back in another order: any of them is right, the short form first.
        const found = knownRegionName(regions, location);
        const same = names.filter((n) => normalizeLocation(n) === normalizeLocation(location));
        if (same.length === 0) assert.equal(found, undefined);
        else assert.ok(found !== undefined && same.includes(found) && (!same.includes(normalizeLocation(location)) || found === normalizeLocation(location)), location);
      }
    }));
  });
});

test('an operation in a region named with a space (made by an older version) is handed out as a URL a client can take as it is', () => {
  const headers: Record<string, string> = {};
  const reply = { header: (k: string, v: string) => { headers[k] = v; return reply; } };
  setOperationHeaders(reply as never, 'https://localhost:8443', operationPath('sub1', 'Microsoft.Compute', 'east us', 'op-1'), '2024-07-01', 1, true);
  assert.equal(headers['Azure-AsyncOperation'], 'https://localhost:8443/subscriptions/sub1/providers/Microsoft.Compute/locations/east%20us/operations/op-1?api-version=2024-07-01');
  assert.equal(headers['Location'], 'https://localhost:8443/subscriptions/sub1/providers/Microsoft.Compute/locations/east%20us/operations/op-1?monitor=true&api-version=2024-07-01');
  // The status route reads the segment back decoded: the same operation.
  assert.equal(decodeURIComponent(new URL(headers['Azure-AsyncOperation']!).pathname), operationPath('sub1', 'Microsoft.Compute', 'east us', 'op-1'));
});
