/**
 * Microsoft.Maintenance over HTTPS: maintenance configurations (window and per-scope limits checked, R70,
 * R71) and their assignments to virtual machines, scale sets and Arc machines. Every rejected request
 * leaves the stored state as it was.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { call, READER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2023-10-01-preview';
const RG = `/subscriptions/${SUB}/resourceGroups/rg1`;
const CFG = `${RG}/providers/Microsoft.Maintenance/maintenanceConfigurations`;
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines`;
const VMSS = `${RG}/providers/Microsoft.Compute/virtualMachineScaleSets`;
const ARC = `${RG}/providers/Microsoft.HybridCompute/machines`;
const ASSIGN = '/providers/Microsoft.Maintenance/configurationAssignments';

const window = (over: Record<string, unknown> = {}) => ({
  startDateTime: '2026-04-30 08:00', expirationDateTime: '9999-12-31 00:00', duration: '05:00', timeZone: 'Pacific Standard Time', recurEvery: 'Week Saturday,Sunday', ...over,
});
const config = (scope: string, over: Record<string, unknown> = {}) => ({
  location: 'westus', tags: { team: 'ops' },
  properties: { maintenanceScope: scope, namespace: 'Microsoft.Maintenance', visibility: 'Custom', extensionProperties: {}, maintenanceWindow: window(over) },
});

let s: TestServer;

before(async () => {
  s = await startTestServer();
  assert.equal((await call(s.url, 'PUT', `${RG}?${AV}`, { location: 'westus' })).status, 201);
});
after(async () => {
  await s.stop();
});

/** Sends a request that must fail with `status`/`code`, naming `target`; the GETs in `watch` answer as before. */
async function rejected(method: string, path: string, body: unknown, status: number, code: string, target: string | null, watch: string[], message?: RegExp): Promise<void> {
  const before = await Promise.all(watch.map((w) => call(s.url, 'GET', `${w}?${AV}`)));
  const r = await call(s.url, method, `${path}?${AV}`, body);
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error.code, code);
  if (target !== null) {
    assert.equal(r.body.error.target, target);
    assert.ok(r.body.error.message.includes(target), r.body.error.message);
  }
  if (message) assert.match(r.body.error.message, message);
  const afterwards = await Promise.all(watch.map((w) => call(s.url, 'GET', `${w}?${AV}`)));
  assert.deepEqual(afterwards.map((a) => [a.status, a.body]), before.map((b) => [b.status, b.body]), 'the stored state is unchanged');
}

describe('maintenance configurations', () => {
  test('CRUD round trip: PUT 201 then 200, GET, PATCH, list by subscription and resource group, DELETE 200 then 204', async () => {
    const put = await call(s.url, 'PUT', `${CFG}/crud?${AV}`, config('OSImage'));
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.id, `${CFG}/crud`);
    assert.equal(put.body.name, 'crud');
    assert.equal(put.body.type, 'Microsoft.Maintenance/maintenanceConfigurations');
    assert.equal(put.body.location, 'westus');
    assert.deepEqual(put.body.tags, { team: 'ops' });
    assert.deepEqual(put.body.properties.maintenanceWindow, window());
    assert.equal(put.body.properties.maintenanceScope, 'OSImage');
    assert.equal(put.body.properties.visibility, 'Custom');
    assert.deepEqual((await call(s.url, 'GET', `${CFG}/crud?${AV}`)).body, put.body);
    // Lower-case resourcegroups, as some clients send it.
    assert.deepEqual((await call(s.url, 'GET', `/subscriptions/${SUB}/resourcegroups/rg1/providers/microsoft.maintenance/maintenanceconfigurations/crud?${AV}`)).body, put.body);

    const update = await call(s.url, 'PUT', `${CFG}/crud?${AV}`, config('OSImage', { duration: '06:00' }));
    assert.equal(update.status, 200);
    assert.equal(update.body.properties.maintenanceWindow.duration, '06:00');

    const patch = await call(s.url, 'PATCH', `${CFG}/crud?${AV}`, { tags: { team: 'infra' }, properties: { maintenanceWindow: { recurEvery: 'Day' } } });
    assert.equal(patch.status, 200, JSON.stringify(patch.body));
    assert.deepEqual(patch.body.tags, { team: 'infra' });
    assert.deepEqual(patch.body.properties.maintenanceWindow, window({ duration: '06:00', recurEvery: 'Day' }));
    assert.deepEqual((await call(s.url, 'GET', `${CFG}/crud?${AV}`)).body, patch.body);

    const host = await call(s.url, 'PUT', `${CFG}/crud-host?${AV}`, { location: 'westus', properties: { maintenanceScope: 'Host' } });
    assert.equal(host.status, 201, JSON.stringify(host.body));
    assert.equal(host.body.properties.maintenanceWindow, undefined);
    assert.equal(host.body.properties.namespace, 'Microsoft.Maintenance');

    const bySub = await call(s.url, 'GET', `/subscriptions/${SUB}/providers/Microsoft.Maintenance/maintenanceConfigurations?${AV}`);
    assert.equal(bySub.status, 200);
    assert.equal(bySub.body.nextLink, undefined);
    assert.ok(bySub.body.value.some((c: { name: string }) => c.name === 'crud') && bySub.body.value.some((c: { name: string }) => c.name === 'crud-host'));
    const byRg = await call(s.url, 'GET', `${CFG}?${AV}`);
    assert.deepEqual(byRg.body.value.find((c: { name: string }) => c.name === 'crud'), patch.body);
    assert.equal((await call(s.url, 'GET', `/subscriptions/nosuch/providers/Microsoft.Maintenance/maintenanceConfigurations?${AV}`)).status, 404);
    assert.equal((await call(s.url, 'GET', `/subscriptions/${SUB}/resourceGroups/nosuch/providers/Microsoft.Maintenance/maintenanceConfigurations?${AV}`)).body.error.code, 'ResourceGroupNotFound');

    const del = await call(s.url, 'DELETE', `${CFG}/crud?${AV}`);
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, patch.body);
    assert.equal((await call(s.url, 'DELETE', `${CFG}/crud?${AV}`)).status, 204);
    const gone = await call(s.url, 'GET', `${CFG}/crud?${AV}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'ResourceNotFound');
    assert.equal((await call(s.url, 'PATCH', `${CFG}/crud?${AV}`, { tags: {} })).status, 404);
    assert.equal((await call(s.url, 'DELETE', `${CFG}/crud-host?${AV}`)).status, 200);
  });

  test('writes need the contributor role, reads any role; the resource group must exist', async () => {
    const reader = await call(s.url, 'PUT', `${CFG}/roles?${AV}`, config('Host'), READER_TOKEN);
    assert.equal(reader.status, 403);
    assert.equal(reader.body.error.code, 'AuthorizationFailed');
    assert.equal((await call(s.url, 'PUT', `${CFG}/roles?${AV}`, config('Host'))).status, 201);
    assert.equal((await call(s.url, 'GET', `${CFG}/roles?${AV}`, undefined, READER_TOKEN)).status, 200);
    assert.equal((await call(s.url, 'DELETE', `${CFG}/roles?${AV}`, undefined, READER_TOKEN)).status, 403);
    assert.equal((await call(s.url, 'DELETE', `${CFG}/roles?${AV}`)).status, 200);
    await rejected('PUT', `/subscriptions/${SUB}/resourceGroups/nosuch/providers/Microsoft.Maintenance/maintenanceConfigurations/x`, config('Host'), 404, 'ResourceGroupNotFound', null, []);
  });

  describe('bad input is a 400 naming the field; nothing is stored', () => {
    const watch = [`${CFG}/bad`, `${CFG}/bad-new`];
    before(async () => {
      assert.equal((await call(s.url, 'PUT', `${CFG}/bad?${AV}`, config('Extension', { duration: '06:00' }))).status, 201);
    });

    for (const name of ['bad', 'bad-new']) {
      const path = `${CFG}/${name}`;
      const verb = name === 'bad' ? 'update' : 'create';
      test(`unknown time zone (${verb})`, async () => {
        await rejected('PUT', path, config('Extension', { duration: '06:00', timeZone: 'Mars Standard Time' }), 400, 'InvalidParameter', 'properties.maintenanceWindow.timeZone', watch, /time zone/);
      });
      test(`unparseable recurrence (${verb})`, async () => {
        await rejected('PUT', path, config('Extension', { duration: '06:00', recurEvery: 'Fortnightly' }), 400, 'InvalidParameter', 'properties.maintenanceWindow.recurEvery', watch, /expected/);
      });
      test(`expiration before start (${verb})`, async () => {
        await rejected('PUT', path, config('Extension', { duration: '06:00', expirationDateTime: '2026-04-01 08:00' }), 400, 'InvalidParameter', 'properties.maintenanceWindow.expirationDateTime', watch, /after startDateTime/);
      });
      test(`duration not HH:mm (${verb})`, async () => {
        await rejected('PUT', path, config('Extension', { duration: '5 hours' }), 400, 'InvalidParameter', 'properties.maintenanceWindow.duration', watch, /HH:mm/);
      });
      test(`R71: a window shorter than 5 h for OSImage and Extension (${verb})`, async () => {
        for (const scope of ['OSImage', 'Extension']) {
          await rejected('PUT', path, config(scope, { duration: '04:59' }), 400, 'InvalidParameter', 'properties.maintenanceWindow.duration', watch, /at least 05:00.*minDuration/);
        }
      });
      test(`R71: recurrence rarer than weekly for Extension (${verb})`, async () => {
        for (const recurEvery of ['2Weeks', 'Month Last Sunday', '8Days']) {
          await rejected('PUT', path, config('Extension', { duration: '06:00', recurEvery }), 400, 'InvalidParameter', 'properties.maintenanceWindow.recurEvery', watch, /maxRecurrenceInterval/);
        }
      });
      test(`InGuestPatch window longer than 3 h 55 min; unknown scope; wrong types; missing window (${verb})`, async () => {
        await rejected('PUT', path, config('InGuestPatch', { duration: '04:00' }), 400, 'InvalidParameter', 'properties.maintenanceWindow.duration', watch, /maxDuration/);
        await rejected('PUT', path, config('Everything'), 400, 'InvalidParameter', 'properties.maintenanceScope', watch);
        await rejected('PUT', path, { ...config('Host'), properties: { ...config('Host').properties, visibility: 'Secret' } }, 400, 'InvalidParameter', 'properties.visibility', watch);
        await rejected('PUT', path, config('Host', { duration: 5 }), 400, 'InvalidParameter', 'properties.maintenanceWindow.duration', watch);
        await rejected('PUT', path, { location: 'westus', properties: { maintenanceScope: 'OSImage' } }, 400, 'InvalidParameter', 'properties.maintenanceWindow', watch);
      });
    }

    test('a PATCH that breaks a limit is refused and changes nothing', async () => {
      await rejected('PATCH', `${CFG}/bad`, { properties: { maintenanceWindow: { duration: '02:00' } } }, 400, 'InvalidParameter', 'properties.maintenanceWindow.duration', watch, /minDuration/);
      await rejected('PATCH', `${CFG}/bad`, { location: 'eastus' }, 409, 'PropertyChangeNotAllowed', null, watch);
    });
  });
});

describe('configuration assignments', () => {
  const host = `${CFG}/host-cfg`;
  const os = `${CFG}/os-cfg`;
  before(async () => {
    assert.equal((await call(s.url, 'PUT', `${host}?${AV}`, { location: 'westus', properties: { maintenanceScope: 'Host', maintenanceWindow: window({ duration: '03:00' }) } })).status, 201);
    assert.equal((await call(s.url, 'PUT', `${os}?${AV}`, config('OSImage'))).status, 201);
    assert.equal((await call(s.url, 'PUT', `${VM}/vm1?${AV}`, { location: 'westus' })).status, 201);
    const ss = await call(s.url, 'PUT', `${VMSS}/ss1?${AV}`, { location: 'westus', sku: { capacity: 1 }, properties: { virtualMachineProfile: { osProfile: { computerNamePrefix: 'ss' } } } });
    assert.equal(ss.status, 201, JSON.stringify(ss.body));
    assert.equal((await call(s.url, 'PUT', `${ARC}/arc1?${AV}`, { location: 'westus' })).status, 201);
  });

  test('PUT 201 then 200, GET, list, DELETE 200 then 204 on a VM, a scale set and an Arc machine', async () => {
    for (const [resource, cfg] of [[`${VM}/vm1`, host], [`${VMSS}/ss1`, os], [`${ARC}/arc1`, host]] as const) {
      const path = `${resource}${ASSIGN}/a1`;
      const put = await call(s.url, 'PUT', `${path}?${AV}`, { location: 'westus', properties: { maintenanceConfigurationId: cfg } });
      assert.equal(put.status, 201, JSON.stringify(put.body));
      assert.deepEqual(put.body, { id: path, name: 'a1', type: 'Microsoft.Maintenance/configurationAssignments', location: 'westus', properties: { maintenanceConfigurationId: cfg, resourceId: resource } });
      assert.equal((await call(s.url, 'PUT', `${path}?${AV}`, { location: 'westus', properties: { maintenanceConfigurationId: cfg } })).status, 200);
      assert.deepEqual((await call(s.url, 'GET', `${path}?${AV}`)).body, put.body);
      const list = await call(s.url, 'GET', `${resource}${ASSIGN}?${AV}`);
      assert.deepEqual(list.body, { value: [put.body] });
      assert.equal((await call(s.url, 'DELETE', `${path}?${AV}`, undefined, READER_TOKEN)).status, 403);
      const del = await call(s.url, 'DELETE', `${path}?${AV}`);
      assert.equal(del.status, 200);
      assert.deepEqual(del.body, put.body);
      assert.equal((await call(s.url, 'DELETE', `${path}?${AV}`)).status, 204);
      assert.equal((await call(s.url, 'GET', `${path}?${AV}`)).status, 404);
      assert.deepEqual((await call(s.url, 'GET', `${resource}${ASSIGN}?${AV}`)).body, { value: [] });
    }
  });

  test('to a resource that does not exist: 400 naming resourceId (reads: 404); to a missing configuration: 400 naming properties.maintenanceConfigurationId', async () => {
    const watch = [`${VM}/vm1${ASSIGN}`, `${VM}/vm1${ASSIGN}/a2`];
    await rejected('PUT', `${VM}/nosuch${ASSIGN}/a2`, { location: 'westus', properties: { maintenanceConfigurationId: host } }, 400, 'InvalidParameter', 'resourceId', watch, /virtual machine '.*\/nosuch' does not exist/);
    await rejected('PUT', `${VMSS}/nosuch${ASSIGN}/a2`, { location: 'westus', properties: { maintenanceConfigurationId: os } }, 400, 'InvalidParameter', 'resourceId', watch, /scale set '.*\/nosuch' does not exist/);
    await rejected('PUT', `${ARC}/vm1${ASSIGN}/a2`, { location: 'westus', properties: { maintenanceConfigurationId: host } }, 400, 'InvalidParameter', 'resourceId', watch, /Arc machine/);
    await rejected('PUT', `/subscriptions/${SUB}/resourceGroups/nogroup/providers/Microsoft.Compute/virtualMachines/vm1${ASSIGN}/a2`, { location: 'westus', properties: { maintenanceConfigurationId: host } }, 404, 'ResourceGroupNotFound', null, watch);
    assert.equal((await call(s.url, 'GET', `${VM}/nosuch${ASSIGN}?${AV}`)).status, 404);
    await rejected('PUT', `${VM}/vm1${ASSIGN}/a2`, { location: 'westus', properties: { maintenanceConfigurationId: `${CFG}/nosuch` } }, 400, 'InvalidParameter', 'properties.maintenanceConfigurationId', watch, /does not exist/);
    await rejected('PUT', `${VM}/vm1${ASSIGN}/a2`, { location: 'westus', properties: { maintenanceConfigurationId: `${VM}/vm1` } }, 400, 'InvalidParameter', 'properties.maintenanceConfigurationId', watch);
    await rejected('PUT', `${VM}/vm1${ASSIGN}/a2`, { location: 'westus', properties: {} }, 400, 'InvalidParameter', 'properties.maintenanceConfigurationId', watch);
  });

  test('an OSImage configuration is assigned only to scale sets', async () => {
    for (const resource of [`${VM}/vm1`, `${ARC}/arc1`]) {
      await rejected('PUT', `${resource}${ASSIGN}/a3`, { location: 'westus', properties: { maintenanceConfigurationId: os } }, 400, 'InvalidParameter', 'properties.maintenanceConfigurationId', [`${resource}${ASSIGN}`], /OSImage.*scale set/);
    }
  });

  test('a configuration that changes must still suit its assignments (scope, installPatches): 409 MaintenanceConfigurationInUse and nothing changed otherwise', async () => {
    const linux = { classificationsToInclude: ['Critical'] };
    const shapes: Record<string, Record<string, unknown>> = {
      Host: { maintenanceScope: 'Host', maintenanceWindow: window({ duration: '03:00' }) },
      Extension: { maintenanceScope: 'Extension', maintenanceWindow: window() },
      OSImage: { maintenanceScope: 'OSImage', maintenanceWindow: window() },
      PatchLinux: { maintenanceScope: 'InGuestPatch', maintenanceWindow: window({ duration: '03:00' }), installPatches: { rebootSetting: 'IfRequired', linuxParameters: linux } },
      PatchWindows: { maintenanceScope: 'InGuestPatch', maintenanceWindow: window({ duration: '03:00' }), installPatches: { rebootSetting: 'IfRequired', windowsParameters: linux } },
      PatchBoth: {
        maintenanceScope: 'InGuestPatch', maintenanceWindow: window({ duration: '03:00' }),
        installPatches: { rebootSetting: 'IfRequired', linuxParameters: linux, windowsParameters: linux },
      },
    };
    const osOf = (id: string) => s.runtime.engine.state.fleet.machines.get(id.toLowerCase())?.os;
    // Who is assigned, and (written here independently of the server's code) which shapes suit it.
    const holders: Array<{ name: string; start: string; assign: (cfg: string, n: string) => [string, unknown]; suits: (shape: string) => boolean }> = [
      ...[`${VM}/vm1`, `${ARC}/arc1`].map((m) => ({
        name: m, start: 'Extension', assign: (cfg: string, n: string): [string, unknown] => [`${m}${ASSIGN}/${n}`, { properties: { maintenanceConfigurationId: cfg } }],
        suits: (shape: string) => shape !== 'OSImage' && (!shape.startsWith('Patch') || shape === 'PatchBoth' || shape === (osOf(m) === 'windows' ? 'PatchWindows' : 'PatchLinux')),
      })),
      { name: `${VMSS}/ss1`, start: 'Extension', assign: (cfg, n) => [`${VMSS}/ss1${ASSIGN}/${n}`, { properties: { maintenanceConfigurationId: cfg } }], suits: (shape) => !shape.startsWith('Patch') },
      ...(['Linux', 'Windows'] as const).map((os) => ({
        name: `dynamic scope (${os})`, start: 'PatchBoth',
        assign: (cfg: string, n: string): [string, unknown] => [`/subscriptions/${SUB}${ASSIGN}/${n}`, { properties: { maintenanceConfigurationId: cfg, filter: { osTypes: [os] } } }],
        suits: (shape: string) => shape === 'PatchBoth' || shape === `Patch${os}`,
      })),
    ];
    let n = 0;
    await fc.assert(fc.asyncProperty(fc.constantFrom(...holders), fc.constantFrom(...Object.keys(shapes)), fc.boolean(), async (holder, shape, patch) => {
      const cfg = `${CFG}/chg-${++n}`;
      assert.equal((await call(s.url, 'PUT', `${cfg}?${AV}`, { location: 'westus', properties: shapes[holder.start] })).status, 201);
      const [assignment, body] = holder.assign(cfg, `chg-${n}`);
      const a = await call(s.url, 'PUT', `${assignment}?${AV}`, body);
      assert.equal(a.status, 201, JSON.stringify(a.body));
      // A PATCH merges into what is stored: installPatches it does not name stay, which only an InGuestPatch configuration may have (refused by itself, tested elsewhere).
      const change = patch ? { properties: { ...shapes[shape], installPatches: shapes[shape]!.installPatches } } : { location: 'westus', properties: shapes[shape] };
      const selfValid = !patch || shape.startsWith('Patch') || shapes[holder.start]!.installPatches === undefined;
      if (!selfValid) {
        assert.equal((await call(s.url, 'PATCH', `${cfg}?${AV}`, change)).status, 400);
      } else if (holder.suits(shape)) {
        const r = await call(s.url, patch ? 'PATCH' : 'PUT', `${cfg}?${AV}`, change);
        assert.equal(r.status, 200, `${holder.name} → ${shape}: ${JSON.stringify(r.body)}`);
      } else {
        await rejected(patch ? 'PATCH' : 'PUT', cfg, change, 409, 'MaintenanceConfigurationInUse', null, [cfg, assignment], new RegExp(`chg-${n}`));
      }
      assert.equal((await call(s.url, 'DELETE', `${assignment}?${AV}`)).status, 200);
      assert.equal((await call(s.url, 'DELETE', `${cfg}?${AV}`)).status, 200);
    }), { seed: 1600, numRuns: 60, endOnFailure: true });
  });

  test('a configuration with assignments cannot be deleted (409) until they are gone', async () => {
    const path = `${VMSS}/ss1${ASSIGN}/keep`;
    assert.equal((await call(s.url, 'PUT', `${path}?${AV}`, { properties: { maintenanceConfigurationId: os } })).status, 201);
    await rejected('DELETE', os, undefined, 409, 'MaintenanceConfigurationInUse', null, [os, path], /keep/);
    assert.equal((await call(s.url, 'DELETE', `${path}?${AV}`)).status, 200);
    assert.equal((await call(s.url, 'DELETE', `${os}?${AV}`)).status, 200);
  });
});
