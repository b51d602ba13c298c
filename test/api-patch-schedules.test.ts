/**
 * InGuestPatch schedules over HTTPS (issue 16, R75, R77, R83): configurations with installPatches,
 * assignments to machines and by dynamic scope, runs that start only inside their windows, reboots
 * announced first, and a run that cannot finish reporting maintenanceWindowExceeded. Checked on the
 * engine's event log, as a simulation checker would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, eventually, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { PatchChecker } from '../src/audit/patches.js';
import { REBOOT_NOTICE_MS } from '../src/api/arm/patch-records.js';
import { maintenanceWindow } from '../src/schedule/window.js';

const SUB = 'sub1';
const RG = 'rgsched';
const CV = 'api-version=2024-07-01';
const MV = 'api-version=2023-04-01';
const VMS = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines`;
const CFG = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Maintenance/maintenanceConfigurations`;
const MIN = 60_000;

const scheduled = { patchMode: 'AutomaticByPlatform', automaticByPlatformSettings: { rebootSetting: 'IfRequired', bypassPlatformSafetyChecksOnUserSchedule: true } };
const vm = (os: 'Linux' | 'Windows', patchSettings: unknown, tags: Record<string, string> = {}) => ({
  location: 'westus', tags,
  properties: {
    storageProfile: { osDisk: { osType: os } },
    osProfile: os === 'Linux' ? { linuxConfiguration: { patchSettings } } : { windowsConfiguration: { patchSettings } },
  },
});
/** `YYYY-MM-DD HH:mm` in UTC, rounded down to the minute. */
const local = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
const config = (startMs: number, installPatches: unknown, duration = '02:00') => ({
  location: 'westus',
  properties: {
    maintenanceScope: 'InGuestPatch', extensionProperties: { InGuestPatchMode: 'User' },
    maintenanceWindow: { startDateTime: local(startMs), duration, timeZone: 'UTC', recurEvery: 'Day' },
    ...(installPatches === undefined ? {} : { installPatches }),
  },
});
const linuxPatches = { rebootSetting: 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical', 'Security', 'Other'] } };

async function events(s: TestServer): Promise<any[]> {
  const out: any[] = [];
  let after = 0;
  for (let i = 0; i < 100; i++) {
    const r = await call(s.url, 'GET', `/phasewise/events?after=${after}&limit=1000`);
    out.push(...r.body.value);
    if (!r.body.nextLink) return out;
    after = r.body.lastSeq;
  }
  return out;
}

describe('InGuestPatch schedules', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'westus' })).status, 201);
    for (const [name, body] of [
      ['sched1', vm('Linux', scheduled, { env: 'prod' })], ['sched2', vm('Linux', scheduled)], ['plain1', vm('Linux', undefined, { env: 'prod' })],
      ['win1', vm('Windows', scheduled, { env: 'prod' })],
    ] as const) {
      const r = await call(s.url, 'PUT', `${VMS}/${name}?${CV}`, body);
      assert.equal(r.status, 201, `${name}: ${JSON.stringify(r.body)}`);
    }
  });
  after(async () => s?.stop());

  test('bad configurations and assignments are refused naming the field', async () => {
    const now = s.runtime.clock.now();
    const cases: Array<[unknown, string]> = [
      [config(now, undefined), 'properties.installPatches'],
      [config(now, { rebootSetting: 'Sometimes', linuxParameters: { classificationsToInclude: ['Critical'] } }), 'properties.installPatches.rebootSetting'],
      [config(now, { linuxParameters: { classificationsToInclude: ['Definition'] } }), 'properties.installPatches.linuxParameters.classificationsToInclude[0]'],
      [config(now, { windowsParameters: { kbNumbersToInclude: ['12'] } }), 'properties.installPatches.windowsParameters.kbNumbersToInclude[0]'],
      [config(now, {}), 'properties.installPatches.linuxParameters'],
      [config(now, linuxPatches, '04:00'), 'properties.maintenanceWindow.duration'],
    ];
    for (const [i, [body, target]] of cases.entries()) {
      const r = await call(s.url, 'PUT', `${CFG}/bad${i}?${MV}`, body);
      assert.equal(r.status, 400, `case ${i}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.target, target, `case ${i}: ${r.body.error.message}`);
      assert.equal((await call(s.url, 'GET', `${CFG}/bad${i}?${MV}`)).status, 404);
    }
    const ext = await call(s.url, 'PUT', `${CFG}/ext?${MV}`, { location: 'westus', properties: { maintenanceScope: 'Extension', maintenanceWindow: { startDateTime: local(now), duration: '05:00',
      timeZone: 'UTC', recurEvery: 'Day' }, installPatches: linuxPatches } });
    assert.equal(ext.body.error?.target, 'properties.installPatches');

    // A Linux-only schedule cannot be assigned to a Windows machine, directly or by a dynamic scope for Windows.
    const far = now + 30 * 86_400_000;
    assert.equal((await call(s.url, 'PUT', `${CFG}/linuxonly?${MV}`, config(far, linuxPatches))).status, 201);
    const cfgId = `${CFG}/linuxonly`;
    const wrong = await call(s.url, 'PUT', `${VMS}/win1/providers/Microsoft.Maintenance/configurationAssignments/a?${MV}`, { properties: { maintenanceConfigurationId: cfgId } });
    assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
    assert.equal(wrong.body.error.target, 'properties.maintenanceConfigurationId');
    assert.match(wrong.body.error.message, /Windows/);
    const dyn = await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Maintenance/configurationAssignments/d?${MV}`,
      { properties: { maintenanceConfigurationId: cfgId, filter: { osTypes: ['Windows'] } } });
    assert.equal(dyn.status, 400);
    assert.equal(dyn.body.error.target, 'properties.filter.osTypes[0]');
    const badFilter = await call(s.url, 'PUT', `/subscriptions/${SUB}/providers/Microsoft.Maintenance/configurationAssignments/d?${MV}`,
      { properties: { maintenanceConfigurationId: cfgId, filter: { resourceTypes: ['Microsoft.Compute/virtualMachineScaleSets'] } } });
    assert.equal(badFilter.status, 400);
    assert.equal(badFilter.body.error.target, 'properties.filter.resourceTypes.0');
  });

  test('R75, R77, R83: a run starts when its window opens, never before; reboots are announced ≥ 15 minutes ahead; a dynamic scope picks tagged machines', async () => {
    const opens = Math.ceil((s.runtime.clock.now() + 90 * MIN) / MIN) * MIN;
    assert.equal((await call(s.url, 'PUT', `${CFG}/nightly?${MV}`, config(opens, linuxPatches))).status, 201);
    const cfgId = `${CFG}/nightly`;
    const direct = await call(s.url, 'PUT', `${VMS}/sched1/providers/Microsoft.Maintenance/configurationAssignments/nightly?${MV}`, { properties: { maintenanceConfigurationId: cfgId } });
    assert.equal(direct.status, 201, JSON.stringify(direct.body));
    const dyn = await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Maintenance/configurationAssignments/prod?${MV}`,
      { properties: { maintenanceConfigurationId: cfgId, filter: { osTypes: ['Linux'], locations: ['westus'], tagSettings: { tags: { env: ['prod'] }, filterOperator: 'All' } } } });
    assert.equal(dyn.status, 201, JSON.stringify(dyn.body));
    assert.equal((await call(s.url, 'GET',
      `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Maintenance/configurationAssignments/prod?${MV}`)).body.properties.filter.tagSettings.filterOperator, 'All');

    const done = await eventually(async () => {
      const log = await events(s);
      return log.some((e) => e.type === 'patch.run.completed' && e.runId.startsWith('nightly@')) && log.some((e) => e.type === 'patch.run.skipped' && e.runId.startsWith('nightly@')) ? log : undefined;
    }, 30_000, 'the nightly run');
    const run = done.filter((e) => typeof e.runId === 'string' && e.runId.startsWith('nightly@'));
    const byMachine = (type: string) => new Set(run.filter((e) => e.type === type).map((e) => e.machineId));
    const id = (name: string) => `${VMS}/${name}`.toLowerCase();
    assert.deepEqual([...byMachine('patch.run.started')], [id('sched1')], 'only the scheduled machine installs (sched2 is not assigned, plain1 is not AutomaticByPlatform)');
    assert.deepEqual([...byMachine('patch.run.skipped')], [id('plain1')]);
    assert.match(run.find((e) => e.type === 'patch.run.skipped').reason, /patchMode ImageDefault/);
    const end = opens + 120 * MIN;
    // Checker: no installation outside its window; the reboot announced at least 15 minutes before it starts, and over before the window ends.
    for (const e of run.filter((x) => x.type === 'patch.run.started' || x.type === 'patch.run.completed')) {
      const t = Date.parse(e.time);
      assert.ok(t >= opens && t < end, `${e.type} at ${e.time} is inside [${local(opens)}, ${local(end)})`);
    }
    const announced = run.find((e) => e.type === 'machine.reboot.announced');
    assert.ok(announced, 'rebootSetting IfRequired announces a reboot');
    const completed = run.find((e) => e.type === 'patch.run.completed');
    const reboot = done.find((e) => e.type === 'availability.impact' && e.machineId === id('sched1'));
    if (completed.rebootStatus === 'Completed') {
      assert.ok(reboot, 'a reboot is recorded as an availability impact');
      assert.ok(Date.parse(reboot.startTime) - Date.parse(announced.time) >= 15 * MIN);
      assert.ok(Date.parse(reboot.startTime) + reboot.durationSec * 1000 <= end);
    } else assert.equal(reboot, undefined);
    assert.equal(completed.maintenanceWindowExceeded, false, 'two hours are enough');
    assert.ok(completed.installed > 0);
    const view = await call(s.url, 'GET', `${VMS}/sched1/instanceView?${CV}`);
    assert.equal(view.body.patchStatus.lastPatchInstallationSummary.installedPatchCount, completed.installed);
  });

  test('R75: a run with too little of its window left stops installing and reports maintenanceWindowExceeded', async () => {
    // A server of its own, its clock 10 times slower than the others': the window must still be open when the
    // assignment lands. At 2,000x its last 40 minutes lasted 1.2 s of real time, less than two HTTPS requests take
    // on a loaded machine (then no run started until the next day's window).
    const slow = await startTestServer({ clockFactor: 200 });
    try {
      assert.equal((await call(slow.url, 'PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'westus' })).status, 201);
      assert.equal((await call(slow.url, 'PUT', `${VMS}/sched2?${CV}`, vm('Linux', scheduled))).status, 201);
      // The window opened 80 minutes ago and closes in 40: the run starts at once with what is left.
      const now = slow.runtime.clock.now();
      const opened = Math.floor((now - 80 * MIN) / MIN) * MIN;
      const assign = () => call(slow.url, 'PUT', `${VMS}/sched2/providers/Microsoft.Maintenance/configurationAssignments/late?${MV}`,
        { properties: { maintenanceConfigurationId: `${CFG}/late` } });
      assert.equal((await assign()).status, 400, 'no such configuration yet');
      assert.equal((await call(slow.url, 'PUT', `${CFG}/late?${MV}`, config(opened, linuxPatches))).status, 201);
      assert.equal((await assign()).status, 201);
      const completed = await eventually(async () => (await events(slow)).find((e) => e.type === 'patch.run.completed' && e.runId.startsWith('late@')),
        120_000, 'the late run');
      const log = await events(slow);
      const started = log.find((e) => e.type === 'patch.run.started' && e.runId.startsWith('late@'));
      // What is left of the window, not more: the run started after the window opened and before it closes.
      const windowEnd = opened + 120 * MIN;
      assert.equal(started.windowEnd, new Date(windowEnd).toISOString());
      assert.equal(started.maximumDurationMs, windowEnd - Date.parse(started.time), 'the run may take what is left of its window');
      assert.ok(started.maximumDurationMs <= 40 * MIN && started.maximumDurationMs > 0, `${started.maximumDurationMs / MIN} minutes left`);
      assert.equal(completed.maintenanceWindowExceeded, true);
      assert.ok(completed.pending > 0);
      assert.match(completed.reason, /would not finish before the window closes/);
      const view = await call(slow.url, 'GET', `${VMS}/sched2/instanceView?${CV}`);
      assert.equal(view.body.patchStatus.lastPatchInstallationSummary.maintenanceWindowExceeded, true);
      // The checker finds the run inside its window, with the pending patches reported.
      const w = (await call(slow.url, 'GET', `${CFG}/late?${MV}`)).body.properties.maintenanceWindow;
      const checker = new PatchChecker({ windowOf: (id) => (id === `${CFG}/late`.toLowerCase() ? maintenanceWindow({ ...w, expirationDateTime: null }) : undefined),
        noticeMs: REBOOT_NOTICE_MS });
      checker.onEvents(log);
      assert.deepEqual(checker.violations, []);
      assert.equal(checker.checkedStarts, 1, 'the late run was checked against its window');
    } finally {
      await slow.stop();
    }
  });

  test('R84: a patch reboot is an availability impact: in the availability statuses (current and history) and the activity log', async () => {
    assert.equal((await call(s.url, 'PUT', `${VMS}/rb1?${CV}`, vm('Linux', undefined))).status, 201);
    const r = await call(s.url, 'POST', `${VMS}/rb1/installPatches?${CV}`, { maximumDuration: 'PT2H', rebootSetting: 'Always', linuxParameters: { classificationsToInclude: ['Critical', 'Security',
      'Other'] } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const log = await eventually(async () => {
      const all = await events(s);
      return all.some((e) => e.type === 'availability.impact' && e.machineId === `${VMS}/rb1`.toLowerCase()) ? all : undefined;
    }, 30_000, 'the reboot');
    const mine = log.filter((e) => e.machineId === `${VMS}/rb1`.toLowerCase());
    const announced = mine.find((e) => e.type === 'machine.reboot.announced');
    const impact = mine.find((e) => e.type === 'availability.impact');
    assert.equal(impact.cause, 'Reboot');
    assert.ok(Date.parse(impact.startTime) - Date.parse(announced.time) >= 15 * MIN, 'R83: announced at least 15 minutes ahead');
    const end = Date.parse(impact.startTime) + impact.durationSec * 1000;
    const statuses = `${VMS}/rb1/providers/Microsoft.ResourceHealth/availabilityStatuses`;
    // Once the reboot is over the machine is Available again, with the reboot as recently resolved.
    await eventually(async () => s.runtime.clock.now() > end + MIN, 30_000, 'the reboot to end');
    const current = await call(s.url, 'GET', `${statuses}/current?api-version=2025-05-01`);
    assert.equal(current.status, 200, JSON.stringify(current.body));
    assert.equal(current.body.type, 'Microsoft.ResourceHealth/AvailabilityStatuses');
    assert.equal(current.body.properties.availabilityState, 'Available');
    assert.equal(current.body.properties.recentlyResolved.unavailableOccuredTime, impact.startTime);
    const history = await call(s.url, 'GET', `${statuses}?api-version=2025-05-01`);
    const past = history.body.value.filter((h: any) => h.name !== 'current');
    assert.equal(past.length, 1);
    assert.equal(past[0].properties.availabilityState, 'Unavailable');
    assert.equal(past[0].properties.detailedStatus, 'Reboot');
    assert.equal(past[0].properties.reasonType, 'Planned');
    assert.equal(past[0].properties.occuredTime, impact.startTime);
    assert.deepEqual((await call(s.url, 'GET', `${statuses}/${past[0].name}?api-version=2025-05-01`)).body, past[0]);
    assert.equal((await call(s.url, 'GET', `${statuses}/nosuch?api-version=2025-05-01`)).status, 404);
    assert.equal((await call(s.url, 'GET', `${VMS}/ghost/providers/Microsoft.ResourceHealth/availabilityStatuses/current?api-version=2025-05-01`)).status, 404);

    const from = new Date(Date.parse(announced.time) - MIN).toISOString();
    const to = new Date(Date.parse(impact.time) + MIN).toISOString();
    const filter = encodeURIComponent(`eventTimestamp ge '${from}' and eventTimestamp le '${to}' and resourceUri eq '${VMS}/rb1'`);
    const activity = await call(s.url, 'GET', `/subscriptions/${SUB}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=${filter}`);
    assert.equal(activity.status, 200, JSON.stringify(activity.body));
    const ops = activity.body.value.map((x: any) => x.operationName.value);
    assert.ok(ops.includes('Microsoft.Compute/virtualMachines/installPatches/action'), JSON.stringify(ops));
    assert.ok(ops.includes('Microsoft.Compute/virtualMachines/scheduledEvents/reboot'), JSON.stringify(ops));
    const health = activity.body.value.find((x: any) => x.operationName.value === 'Microsoft.ResourceHealth/availabilityStatuses/current');
    assert.ok(health, JSON.stringify(ops));
    assert.equal(health.category.value, 'ResourceHealth');
    assert.equal(health.properties.cause, 'Reboot');
  });

  test('R75, R83: the whole event log passes the patch checker (windows, notices, pending reported)', async () => {
    const log = await events(s);
    const windows = new Map<string, ReturnType<typeof maintenanceWindow>>();
    for (const name of ['nightly']) {
      const c = await call(s.url, 'GET', `${CFG}/${name}?${MV}`);
      const w = c.body.properties.maintenanceWindow;
      windows.set(`${CFG}/${name}`.toLowerCase(), maintenanceWindow({ ...w, expirationDateTime: null }));
    }
    const checker = new PatchChecker({ windowOf: (id) => windows.get(id), noticeMs: REBOOT_NOTICE_MS });
    checker.onEvents(log);
    assert.deepEqual(checker.violations, []);
    assert.equal(checker.checkedStarts, 1, 'the nightly run was checked against its window (the late run, on a server of its own, in its test)');
    assert.ok(checker.checkedReboots >= 1);
  });

  test('a configuration assigned by dynamic scope cannot be deleted until the assignment is; a deleted VM forgets its patch status', async () => {
    const dyn = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Maintenance/configurationAssignments/prod?${MV}`;
    const inUse = await call(s.url, 'DELETE', `${CFG}/nightly?${MV}`);
    assert.equal(inUse.status, 409);
    assert.equal(inUse.body.error.code, 'MaintenanceConfigurationInUse');
    assert.equal((await call(s.url, 'DELETE', dyn)).status, 200);
    assert.equal((await call(s.url, 'GET', dyn)).status, 404);
    assert.equal((await call(s.url, 'DELETE', dyn)).status, 204);
    assert.equal((await call(s.url, 'DELETE', `${VMS}/sched1/providers/Microsoft.Maintenance/configurationAssignments/nightly?${MV}`)).status, 200);
    assert.equal((await call(s.url, 'DELETE', `${CFG}/nightly?${MV}`)).status, 200);

    assert.ok((await call(s.url, 'GET', `${VMS}/rb1/instanceView?${CV}`)).body.patchStatus);
    assert.equal((await call(s.url, 'DELETE', `${VMS}/rb1?${CV}`)).status, 200);
    assert.equal((await call(s.url, 'PUT', `${VMS}/rb1?${CV}`, vm('Linux', undefined))).status, 201);
    assert.equal((await call(s.url, 'GET', `${VMS}/rb1/instanceView?${CV}`)).body.patchStatus, undefined);
  });
});
