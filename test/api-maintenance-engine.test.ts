/**
 * Microsoft.Maintenance drives the engine (R70, R72, R73): configurations and assignments made over
 * HTTPS confine automatic upgrades, a critical release bypasses where the configuration allows it and
 * the activity log says so, pending `updates` are listed, `applyUpdates` applies them and reports its
 * status, and the platform's host updates wait for Host-scope windows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { EngineEvent } from '../src/model/events.js';
import { call, eventually, PUBLISHER_TOKEN, READER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2023-10-01-preview';
const CAV = 'api-version=2024-07-01';
const RG = `/subscriptions/${SUB}/resourceGroups/rg1`;
const CFG = `${RG}/providers/Microsoft.Maintenance/maintenanceConfigurations`;
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines`;
const VMSS = `${RG}/providers/Microsoft.Compute/virtualMachineScaleSets`;
const MAINT = '/providers/Microsoft.Maintenance';

/** A daily window that first opens in 2030: closed for as long as these tests run. */
const later = (scope: string, extensionProperties: Record<string, string> = {}) => ({
  location: 'westus',
  properties: { maintenanceScope: scope, extensionProperties, maintenanceWindow: { startDateTime: '2030-01-01 00:00', duration: '05:00', timeZone: 'UTC', recurEvery: 'Day' } },
});

let s: TestServer;
const engine = () => s.runtime.engine;

async function events(): Promise<EngineEvent[]> {
  const out: EngineEvent[] = [];
  let after = 0;
  for (;;) {
    const r = await call(s.url, 'GET', `/phasewise/events?after=${after}&limit=1000`);
    out.push(...(r.body.value as EngineEvent[]));
    if (r.body.value.length < 1000) return out;
    after = out[out.length - 1]!.seq;
  }
}

/** A scale set of `n` instances with the agent at 1.0.0.0 and automatic upgrade on. */
async function scaleSet(name: string, n: number): Promise<void> {
  const ext = { name: 'agent', properties: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } };
  const r = await call(s.url, 'PUT', `${VMSS}/${name}?${CAV}`, { location: 'westus', sku: { capacity: n }, properties: { upgradePolicy: { mode: 'Automatic' }, virtualMachineProfile: { osProfile: { computerNamePrefix: name }, extensionProfile: { extensions: [ext] } } } });
  assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
  await eventually(async () => {
    const vms = (await call(s.url, 'GET', `${VMSS}/${name}/virtualMachines?${CAV}&$expand=instanceView`)).body.value as Array<{ properties: { instanceView?: { extensions?: Array<{ statuses: Array<{ code: string }> }> } } }>;
    return vms.length === n && vms.every((v) => v.properties.instanceView?.extensions?.[0]?.statuses.some((x) => x.code === 'ProvisioningState/succeeded'));
  }, 30_000, `the agent installed on ${name}`);
}

const setIdOf = (name: string) => [...engine().state.fleet.scaleSets.values()].find((x) => x.name === name)!.id;

before(async () => {
  s = await startTestServer();
  assert.equal((await call(s.url, 'PUT', `${RG}?${AV}`, { location: 'westus' })).status, 201);
  await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent', { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN);
  await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.0.0.0', { os: ['linux'] }, PUBLISHER_TOKEN);
  await scaleSet('waits', 5);
  await scaleSet('urgent', 5);
});
after(async () => {
  await s.stop();
});

describe('configurations and assignments reach the engine', () => {
  test('R70: a configuration with a window is the engine\'s; EmergencyBypass=Allow lets critical releases through (R72); bad values are a 400', async () => {
    assert.equal((await call(s.url, 'PUT', `${CFG}/later?${AV}`, later('Extension'))).status, 201);
    assert.equal((await call(s.url, 'PUT', `${CFG}/later-allow?${AV}`, later('Extension', { EmergencyBypass: 'Allow' }))).status, 201);
    const m = engine().state.maintenance;
    const id = `${CFG}/later`.toLowerCase();
    assert.equal(m.configs.get(id)?.scope, 'Extension');
    assert.equal(m.configs.get(id)?.emergencyBypass, false);
    assert.equal(m.configs.get(`${CFG}/later-allow`.toLowerCase())?.emergencyBypass, true);

    const bad = await call(s.url, 'PUT', `${CFG}/later?${AV}`, later('Extension', { emergencyBypass: 'sometimes' }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.target, 'properties.extensionProperties.emergencyBypass');
    assert.match(bad.body.error.message, /Allow/);
    assert.equal(m.configs.get(id)?.emergencyBypass, false, 'nothing changed');
    assert.deepEqual((await call(s.url, 'GET', `${CFG}/later?${AV}`)).body.properties.extensionProperties, {});
  });

  test('R70: assigning, re-pointing and deleting an assignment changes the engine\'s view of the set', async () => {
    const path = `${VMSS}/waits${MAINT}/configurationAssignments/a1`;
    const assigned = () => [...(engine().state.maintenance.assignments.get(setIdOf('waits')) ?? [])];
    assert.equal((await call(s.url, 'PUT', `${path}?${AV}`, { properties: { maintenanceConfigurationId: `${CFG}/later-allow` } })).status, 201);
    assert.deepEqual(assigned(), [`${CFG}/later-allow`.toLowerCase()]);
    assert.equal((await call(s.url, 'PUT', `${path}?${AV}`, { properties: { maintenanceConfigurationId: `${CFG}/later` } })).status, 200);
    assert.deepEqual(assigned(), [`${CFG}/later`.toLowerCase()]);
    assert.equal((await call(s.url, 'DELETE', `${path}?${AV}`)).status, 200);
    assert.deepEqual(assigned(), []);
    assert.equal((await call(s.url, 'PUT', `${path}?${AV}`, { properties: { maintenanceConfigurationId: `${CFG}/later` } })).status, 201);
    assert.deepEqual(assigned(), [`${CFG}/later`.toLowerCase()]);
    const log = (await events()).filter((e) => e.type === 'maintenance.changed');
    assert.ok(log.some((e) => e.type === 'maintenance.changed' && e.action === 'unassign' && e.caller === 'alice@contoso.com'));
  });
});

describe('windows, the emergency lane and applyUpdates over the API', () => {
  test('R70, R73: a standard release waits for the set\'s window; updates lists it; applyUpdates applies it now and reports Completed', async () => {
    // 'waits' is assigned 'later' (previous describe); 'urgent' gets the configuration that allows bypasses.
    assert.equal((await call(s.url, 'PUT', `${VMSS}/urgent${MAINT}/configurationAssignments/a1?${AV}`, { properties: { maintenanceConfigurationId: `${CFG}/later-allow` } })).status, 201);
    assert.equal((await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.1.0.0', { os: ['linux'] }, PUBLISHER_TOKEN)).status, 201);
    await eventually(async () => (await events()).filter((e) => e.type === 'window.waiting').length >= 2, 30_000, 'both sets to wait for their windows');
    const all = await events();
    assert.equal(all.filter((e) => e.type === 'instance.upgrade.started').length, 0, 'nothing upgraded outside the windows');
    const waiting = all.filter((e) => e.type === 'window.waiting');
    assert.ok(waiting.every((e) => e.type === 'window.waiting' && e.opensAt === '2030-01-01T00:00:00.000Z'), JSON.stringify(waiting));

    const rolloutId = (waiting[0] as Extract<EngineEvent, { type: 'window.waiting' }>).rolloutId;
    const rollout = (await call(s.url, 'GET', `/phasewise/rollouts/${rolloutId}`)).body;
    assert.deepEqual(rollout.waitingForWindows.map((w: { opensAt: string }) => w.opensAt), ['2030-01-01T00:00:00.000Z', '2030-01-01T00:00:00.000Z']);
    assert.ok(rollout.estimate.windowedBatches >= 10, JSON.stringify(rollout.estimate));
    assert.equal(rollout.estimate.fitsBound, false, 'a window years away cannot meet the eight-week bound (R40), and the plan says so');
    assert.ok(rollout.estimate.notes.some((n: string) => /R40/.test(n)));
    assert.ok(rollout.estimate.expectedEnd >= '2030-01-01');
    // R40 from the moment the risk appears: the rollout's own outlook and the plan's say the bound is at risk, and why.
    for (const o of [rollout.boundAtRisk, rollout.estimate.boundAtRisk]) {
      assert.equal(o.atRisk, true, JSON.stringify(o));
      assert.ok(o.projectedEnd >= '2030-01-01', JSON.stringify(o));
      assert.equal(o.bound, new Date(Date.parse(rollout.createdAt) + 56 * 86_400_000).toISOString());
      assert.match(o.reason, /after 1\d{3}(\.\d)? days|days after the bound/);
    }
    assert.match(rollout.boundAtRisk.reason, /maintenance windows \(R70\)/);

    const updates = await call(s.url, 'GET', `${VMSS}/waits${MAINT}/updates?${AV}`);
    assert.equal(updates.status, 200);
    assert.deepEqual(updates.body.value, [{ maintenanceScope: 'Extension', impactType: 'None', status: 'Pending', impactDurationInSec: 0, notBefore: '2030-01-01T00:00:00.000Z', properties: { resourceId: `${VMSS}/waits` } }]);

    assert.equal((await call(s.url, 'PUT', `${VMSS}/waits${MAINT}/applyUpdates/default?${AV}`, undefined, READER_TOKEN)).status, 403);
    const apply = await call(s.url, 'PUT', `${VMSS}/waits${MAINT}/applyUpdates/default?${AV}`);
    assert.equal(apply.status, 201, JSON.stringify(apply.body));
    assert.equal(apply.body.type, 'Microsoft.Maintenance/applyUpdates');
    assert.equal(apply.body.name, 'default');
    assert.equal(apply.body.properties.resourceId, `${VMSS}/waits`);
    assert.equal(apply.body.properties.status, 'InProgress');
    await eventually(async () => (await call(s.url, 'GET', `${VMSS}/waits${MAINT}/applyUpdates/default?${AV}`)).body.properties.status === 'Completed', 60_000, 'applyUpdates to complete');
    const vms = (await call(s.url, 'GET', `${VMSS}/waits/virtualMachines?${CAV}&$expand=instanceView`)).body.value as Array<{ properties: { instanceView: { extensions: Array<{ typeHandlerVersion: string }> } } }>;
    assert.ok(vms.every((v) => v.properties.instanceView.extensions[0]!.typeHandlerVersion === '1.1.0.0'), JSON.stringify(vms.map((v) => v.properties.instanceView.extensions)));
    assert.deepEqual((await call(s.url, 'GET', `${VMSS}/waits${MAINT}/updates?${AV}`)).body.value, []);
    assert.equal((await call(s.url, 'GET', `${VMSS}/waits${MAINT}/applyUpdates/other?${AV}`)).status, 404);
    // The other set still waits: applyUpdates was for one resource.
    assert.equal((await call(s.url, 'GET', `${VMSS}/urgent${MAINT}/updates?${AV}`)).body.value.length, 1);
  });

  test('R72: a critical release starts outside the window where the configuration allows it, and the activity log records each bypass', async () => {
    assert.equal((await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.2.0.0', { os: ['linux'], critical: true }, PUBLISHER_TOKEN)).status, 201);
    await eventually(async () => (await events()).some((e) => e.type === 'window.bypassed'), 30_000, 'a bypass');
    const all = await events();
    const bypass = all.find((e) => e.type === 'window.bypassed')!;
    assert.ok(bypass.type === 'window.bypassed' && bypass.scope.setId === setIdOf('urgent'));
    // 'waits' has no consent: none of its batches bypassed.
    assert.ok(all.filter((e) => e.type === 'window.bypassed').every((e) => e.type === 'window.bypassed' && e.scope.setId === setIdOf('urgent')));
    const from = new Date(Date.parse(bypass.time) - 60_000).toISOString();
    const to = new Date(Date.parse(bypass.time) + 60_000).toISOString();
    const filter = encodeURIComponent(`eventTimestamp ge '${from}' and eventTimestamp le '${to}' and resourceUri eq '${VMSS}/urgent'`);
    const log = await call(s.url, 'GET', `/subscriptions/${SUB}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=${filter}`);
    assert.equal(log.status, 200, JSON.stringify(log.body));
    const entries = (log.body.value as Array<{ operationName: { value: string }; level: string; properties: Record<string, string> }>).filter((x) => x.operationName.value === 'Microsoft.Maintenance/maintenanceConfigurations/bypass/action');
    assert.ok(entries.length >= 1, JSON.stringify(log.body.value.map((x: { operationName: { value: string } }) => x.operationName.value)));
    assert.equal(entries[0]!.level, 'Warning');
    assert.match(entries[0]!.properties.reason!, /R72/);
  });
});

describe('R73: host updates over the API', () => {
  test('R73: a published host update waits for a VM\'s Host window, shows in updates, and applyUpdates applies it', async () => {
    assert.equal((await call(s.url, 'PUT', `${VM}/hostvm?${CAV}`, { location: 'westus' })).status, 201);
    assert.equal((await call(s.url, 'PUT', `${CFG}/host-later?${AV}`, { location: 'westus', properties: { maintenanceScope: 'Host', maintenanceWindow: { startDateTime: '2030-01-01 00:00', duration: '02:00', timeZone: 'UTC', recurEvery: 'Day' } } })).status, 201);
    assert.equal((await call(s.url, 'PUT', `${VM}/hostvm${MAINT}/configurationAssignments/h?${AV}`, { properties: { maintenanceConfigurationId: `${CFG}/host-later` } })).status, 201);

    assert.equal((await call(s.url, 'PUT', '/phasewise/hostUpdates/hu-1', { impactType: 'Restart', impactDurationInSec: 300 }, READER_TOKEN)).status, 403);
    const bad = await call(s.url, 'PUT', '/phasewise/hostUpdates/hu-1', { regions: ['atlantis'] }, PUBLISHER_TOKEN);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.target, 'regions[0]');
    const pub = await call(s.url, 'PUT', '/phasewise/hostUpdates/hu-1', { impactType: 'Restart', impactDurationInSec: 300 }, PUBLISHER_TOKEN);
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    assert.equal((await call(s.url, 'PUT', '/phasewise/hostUpdates/hu-1', {}, PUBLISHER_TOKEN)).status, 409);
    assert.deepEqual((await call(s.url, 'GET', '/phasewise/hostUpdates')).body.value.map((u: { name: string }) => u.name), ['hu-1']);

    // The window opens only in 2030: the 35-day deferral limit since the VM came under the configuration comes first.
    const vmId = [...engine().state.fleet.machines.values()].find((m) => m.name === 'hostvm')!.id;
    const since = engine().state.maintenance.hostApplied.get(vmId)!.lastMs;
    const updates = (await call(s.url, 'GET', `${VM}/hostvm${MAINT}/updates?${AV}`)).body.value;
    assert.deepEqual(updates, [{ maintenanceScope: 'Host', impactType: 'Restart', status: 'Pending', impactDurationInSec: 300, notBefore: new Date(since + 35 * 86_400_000).toISOString(), properties: { resourceId: `${VM}/hostvm` } }]);
    const apply = await call(s.url, 'PUT', `${VM}/hostvm${MAINT}/applyUpdates/default?${AV}`);
    assert.equal(apply.status, 201);
    assert.equal(apply.body.properties.status, 'Completed');
    assert.deepEqual((await call(s.url, 'GET', `${VM}/hostvm${MAINT}/updates?${AV}`)).body.value, []);
    const applied = (await events()).filter((e) => e.type === 'host.update.applied');
    assert.equal(applied.length, 1);
    assert.ok(applied[0]!.type === 'host.update.applied' && applied[0]!.caller === 'alice@contoso.com' && applied[0]!.updates[0] === 'hu-1');
    // A second application finds nothing to do and says Completed at once.
    const again = await call(s.url, 'PUT', `${VM}/hostvm${MAINT}/applyUpdates/default?${AV}`);
    assert.equal(again.status, 200);
    assert.equal(again.body.properties.status, 'Completed');
  });

  test('R73: host update names compare without case, and regions are read as ARM reads locations', async () => {
    const before = (await call(s.url, 'GET', '/phasewise/hostUpdates')).body.value.length;
    // `HU-1` is hu-1 published again: it used to be a second update, applied a second time.
    const again = await call(s.url, 'PUT', '/phasewise/hostUpdates/HU-1', {}, PUBLISHER_TOKEN);
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'HostUpdateExists');
    assert.match(again.body.error.message, /'hu-1'/);
    // `WestUS` and `West US` are the fleet's westus (they were refused as unknown regions), stored once.
    const pub = await call(s.url, 'PUT', '/phasewise/hostUpdates/hu-2', { regions: ['WestUS', 'West US', 'westus'] }, PUBLISHER_TOKEN);
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    assert.deepEqual(pub.body.regions, ['westus']);
    const bad = await call(s.url, 'PUT', '/phasewise/hostUpdates/hu-3', { regions: ['westus', 'atlantis'] }, PUBLISHER_TOKEN);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.target, 'regions[1]');
    assert.equal((await call(s.url, 'GET', '/phasewise/hostUpdates')).body.value.length, before + 1);
  });
});
