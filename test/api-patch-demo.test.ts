/**
 * The demo fleet takes a patch schedule over the API (issue 16), as docs/patching.md walks through:
 * three of contoso-dev's VMs are set to customer-managed schedules, a nightly InGuestPatch
 * configuration is assigned to the subscription by dynamic scope (Linux, eastus), and when its window
 * opens exactly those three install, the others are skipped with the reason; the log passes the checker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PatchChecker } from '../src/audit/patches.js';
import { REBOOT_NOTICE_MS } from '../src/api/arm/patch-records.js';
import { maintenanceWindow } from '../src/schedule/window.js';
import { allEvents, call, eventually, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'contoso-dev';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-${SUB}`;
const CV = 'api-version=2024-07-01';
const MV = 'api-version=2023-04-01';
const MIN = 60_000;

describe('the demo fleet with a patch schedule', () => {
  let s: TestServer;
  before(async () => { s = await startTestServer({ scenario: 'examples/demo.yaml', clockFactor: 2_000, subscriptions: [] }); });
  after(async () => s?.stop());

  test('R75, R83: a dynamic-scope schedule patches the demo VMs set to customer-managed schedules, in its window, reboots announced', async () => {
    const list = await call(s.url, 'GET', `${RG}/providers/Microsoft.Compute/virtualMachines?${CV}`);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const vms = list.body.value as Array<{ name: string; location: string; zones?: string[] }>;
    assert.equal(vms.length, 30, 'the demo has 30 VMs in contoso-dev');
    const chosen = vms.slice(0, 3);
    for (const vm of chosen) {
      const r = await call(s.url, 'PUT', `${RG}/providers/Microsoft.Compute/virtualMachines/${vm.name}?${CV}`, {
        location: vm.location, ...(vm.zones ? { zones: vm.zones } : {}),
        properties: { osProfile: { linuxConfiguration: { patchSettings: { patchMode: 'AutomaticByPlatform', automaticByPlatformSettings: { bypassPlatformSafetyChecksOnUserSchedule: true } } } } },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const opens = Math.ceil((s.runtime.clock.now() + 60 * MIN) / MIN) * MIN;
    const window = { startDateTime: new Date(opens).toISOString().slice(0, 16).replace('T', ' '), duration: '03:00', timeZone: 'UTC', recurEvery: 'Day' };
    const cfg = await call(s.url, 'PUT', `${RG}/providers/Microsoft.Maintenance/maintenanceConfigurations/dev-nightly?${MV}`, {
      location: 'eastus',
      properties: { maintenanceScope: 'InGuestPatch', maintenanceWindow: window, installPatches: { rebootSetting: 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical', 'Security'] } } },
    });
    assert.equal(cfg.status, 201, JSON.stringify(cfg.body));
    const dyn = await call(s.url, 'PUT', `/subscriptions/${SUB}/providers/Microsoft.Maintenance/configurationAssignments/dev-linux?${MV}`,
      { properties: { maintenanceConfigurationId: cfg.body.id, filter: { osTypes: ['Linux'], locations: ['eastus'] } } });
    assert.equal(dyn.status, 201, JSON.stringify(dyn.body));

    const log = await eventually(async () => {
      const all = await allEvents(s);
      const run = all.filter((e: any) => typeof e.runId === 'string' && e.runId.startsWith('dev-nightly@'));
      return run.filter((e: any) => e.type === 'patch.run.completed').length === 3 ? all : undefined;
    }, 60_000, 'the demo schedule to run');
    const run = log.filter((e: any) => typeof e.runId === 'string' && e.runId.startsWith('dev-nightly@'));
    const names = (type: string) => run.filter((e: any) => e.type === type).map((e: any) => e.machineId).sort();
    // The demo's machines are named by their engine ids.
    assert.deepEqual(names('patch.run.started'), chosen.map((vm) => vm.name).sort());
    assert.equal(names('patch.run.skipped').length, 27, 'the other eastus Linux VMs of the subscription are skipped');
    assert.ok(run.filter((e: any) => e.type === 'patch.run.skipped').every((e: any) => /patchMode ImageDefault/.test(e.reason)));
    const checker = new PatchChecker({ windowOf: (id) => (id === cfg.body.id.toLowerCase() ? maintenanceWindow({ ...window, expirationDateTime: null }) : undefined), noticeMs: REBOOT_NOTICE_MS });
    checker.onEvents(log);
    assert.deepEqual(checker.violations, []);
    assert.equal(checker.checkedStarts, 3);
    assert.equal(run.filter((e: any) => e.type === 'machine.reboot.announced').length, 3);
  });

  test('R75: the demo scenario\'s own nightly schedule runs in serve on its three VMs, in its window (01:00-04:00 Eastern)', async () => {
    const own = await eventually(async () => {
      const all = await allEvents(s);
      const run = all.filter((e: any) => typeof e.runId === 'string' && e.runId.startsWith('dev-linux-nightly@'));
      return run.filter((e: any) => e.type === 'patch.run.completed').length >= 3 ? run : undefined;
    }, 60_000, 'the scenario\'s schedule to run');
    const first = own.find((e: any) => e.type === 'patch.run.started');
    const runId = first.runId;
    const started = own.filter((e: any) => e.type === 'patch.run.started' && e.runId === runId);
    assert.deepEqual(started.map((e: any) => e.machineId).sort(), ['vm-eastus-contoso-dev-0-0', 'vm-eastus-contoso-dev-0-1', 'vm-eastus-contoso-dev-0-2']);
    // 01:00 Eastern Standard Time is 06:00 UTC; the run ends by the window's end, three hours later.
    assert.equal(new Date(first.windowStart).getUTCHours(), 6);
    assert.equal(Date.parse(first.windowEnd) - Date.parse(first.windowStart), 3 * 60 * MIN);
    for (const e of started) assert.ok(Date.parse(e.time) >= Date.parse(e.windowStart) && Date.parse(e.time) < Date.parse(e.windowEnd), `${e.machineId} started in the window`);
  });
});
