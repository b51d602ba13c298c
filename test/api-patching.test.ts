/**
 * Guest OS patching over HTTPS (issue 16): patch settings on VMs and Arc machines, and assessPatches /
 * installPatches through the unchanged Compute SDK (its long-running-operation poller), Arc machines
 * through the same ARM paths and protocol by hand (the HybridCompute SDK here lacks these operations).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ComputeManagementClient } from '@azure/arm-compute';
import type { TokenCredential } from '@azure/core-auth';
import { call, eventually, startTestServer, TEST_TOKEN, READER_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const RG = 'rgpatch';
const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };
const VMS = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines`;
const ARC = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.HybridCompute/machines`;
const CV = '?api-version=2024-07-01';
const HV = '?api-version=2024-07-10';

function compute(s: TestServer) {
  return new ComputeManagementClient(credential, SUB, { endpoint: s.url, updateIntervalInMs: 20 } as never);
}

const linuxVm = (patchSettings?: unknown) => ({
  location: 'westus',
  properties: {
    storageProfile: { osDisk: { osType: 'Linux' } },
    osProfile: { computerName: 'x', adminUsername: 'azureuser', linuxConfiguration: { ...(patchSettings ? { patchSettings } : {}) } },
  },
});
const windowsVm = (windowsConfiguration: unknown) => ({
  location: 'westus',
  properties: { storageProfile: { osDisk: { osType: 'Windows' } }, osProfile: { computerName: 'w', adminUsername: 'azureuser', windowsConfiguration } },
});

/** Follows an ARM long-running POST by hand as the Compute SDK does: the status URL until final, then the monitor. */
async function lro(s: TestServer, path: string, body?: unknown): Promise<{ status: string; result: any }> {
  const r = await call(s.url, 'POST', path, body);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const status = r.headers.get('azure-asyncoperation');
  const monitor = r.headers.get('location');
  assert.ok(status !== null && monitor !== null && status.startsWith('https://') && monitor.startsWith('https://'), 'absolute https operation URLs');
  let op: any;
  for (let i = 0; i < 200; i++) {
    op = (await call(s.url, 'GET', status.slice(s.url.length))).body;
    if (op.status !== 'InProgress') break;
    await new Promise((res) => setTimeout(res, 20));
  }
  const final = await call(s.url, 'GET', monitor.slice(s.url.length));
  return { status: op.status, result: final.status === 200 ? final.body : final };
}

describe('guest OS patching over HTTPS', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'westus' })).status, 201);
  });
  after(async () => s?.stop());

  test('patch settings are stored and returned through the SDK', async () => {
    const client = compute(s);
    await client.virtualMachines.beginCreateOrUpdateAndWait(RG, 'lin1', {
      location: 'westus', storageProfile: { osDisk: { osType: 'Linux', createOption: 'FromImage' } },
      osProfile: { computerName: 'lin1', adminUsername: 'azureuser', linuxConfiguration: { patchSettings: { patchMode: 'AutomaticByPlatform', assessmentMode: 'AutomaticByPlatform',
        automaticByPlatformSettings: { rebootSetting: 'IfRequired', bypassPlatformSafetyChecksOnUserSchedule: true } } } },
    } as never);
    const vm = await client.virtualMachines.get(RG, 'lin1');
    const ps = vm.osProfile?.linuxConfiguration?.patchSettings;
    assert.equal(ps?.patchMode, 'AutomaticByPlatform');
    assert.equal(ps?.assessmentMode, 'AutomaticByPlatform');
    assert.equal(ps?.automaticByPlatformSettings?.rebootSetting, 'IfRequired');
    assert.equal(ps?.automaticByPlatformSettings?.bypassPlatformSafetyChecksOnUserSchedule, true);
  });

  test('invalid patch settings are refused naming the field, and change nothing', async () => {
    const cases: Array<[unknown, string]> = [
      [linuxVm({ patchMode: 'AutomaticByOS' }), 'properties.osProfile.linuxConfiguration.patchSettings.patchMode'],
      [linuxVm({ patchMode: 'Sometimes' }), 'properties.osProfile.linuxConfiguration.patchSettings.patchMode'],
      [linuxVm({ assessmentMode: 'Weekly' }), 'properties.osProfile.linuxConfiguration.patchSettings.assessmentMode'],
      [linuxVm({ patchMode: 'ImageDefault', automaticByPlatformSettings: { rebootSetting: 'Never' } }), 'properties.osProfile.linuxConfiguration.patchSettings.automaticByPlatformSettings'],
      [linuxVm({ patchMode: 'AutomaticByPlatform', automaticByPlatformSettings: { rebootSetting: 'Often' } }),
        'properties.osProfile.linuxConfiguration.patchSettings.automaticByPlatformSettings.rebootSetting'],
      [linuxVm({ patchMode: 'AutomaticByPlatform', automaticByPlatformSettings: { bypassPlatformSafetyChecksOnUserSchedule: 'yes' } }),
        'properties.osProfile.linuxConfiguration.patchSettings.automaticByPlatformSettings.bypassPlatformSafetyChecksOnUserSchedule'],
      [{ location: 'westus', properties: { storageProfile: { osDisk: { osType: 'Linux' } }, osProfile: { windowsConfiguration: { patchSettings: { patchMode: 'AutomaticByPlatform' } } } } },
        'properties.osProfile.windowsConfiguration'],
      [windowsVm({ patchSettings: { patchMode: 'ImageDefault' } }), 'properties.osProfile.windowsConfiguration.patchSettings.patchMode'],
      [windowsVm({ enableAutomaticUpdates: false, patchSettings: { patchMode: 'AutomaticByPlatform' } }), 'properties.osProfile.windowsConfiguration.enableAutomaticUpdates'],
      [windowsVm({ enableAutomaticUpdates: true, patchSettings: { patchMode: 'Manual' } }), 'properties.osProfile.windowsConfiguration.enableAutomaticUpdates'],
      [windowsVm({ provisionVMAgent: false, patchSettings: { patchMode: 'AutomaticByPlatform' } }), 'properties.osProfile.windowsConfiguration.provisionVMAgent'],
    ];
    for (const [i, [body, target]] of cases.entries()) {
      const r = await call(s.url, 'PUT', `${VMS}/bad${i}${CV}`, body);
      assert.equal(r.status, 400, `case ${i}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'InvalidParameter');
      assert.equal(r.body.error.target, target, `case ${i}`);
      assert.equal((await call(s.url, 'GET', `${VMS}/bad${i}${CV}`)).status, 404, `case ${i}: nothing created`);
    }
    // An existing VM keeps its settings when an update is refused.
    const bad = await call(s.url, 'PUT', `${VMS}/lin1${CV}`, linuxVm({ patchMode: 'Manual' }));
    assert.equal(bad.status, 400);
    const vm = await call(s.url, 'GET', `${VMS}/lin1${CV}`);
    assert.equal(vm.body.properties.osProfile.linuxConfiguration.patchSettings.patchMode, 'AutomaticByPlatform');
  });

  test('R74: assessPatches through beginAssessPatchesAndWait lists patches with counts that add up', async () => {
    const client = compute(s);
    const a = await client.virtualMachines.beginAssessPatchesAndWait(RG, 'lin1');
    assert.equal(a.status, 'Succeeded');
    assert.ok((a.availablePatches?.length ?? 0) > 0, 'the seeded catalogue offers patches');
    assert.equal((a.criticalAndSecurityPatchCount ?? 0) + (a.otherPatchCount ?? 0), a.availablePatches?.length);
    const cs = a.availablePatches!.filter((p) => p.classifications?.some((c) => c === 'Critical' || c === 'Security')).length;
    assert.equal(a.criticalAndSecurityPatchCount, cs);
    for (const p of a.availablePatches!) {
      assert.ok(p.name && p.patchId && p.version !== undefined && p.classifications?.length, JSON.stringify(p));
      assert.ok(['NeverReboots', 'AlwaysRequiresReboot', 'CanRequestReboot'].includes(p.rebootBehavior!));
      assert.ok(p.publishedDate instanceof Date, 'dates deserialize');
    }
    // Deterministic: the same machine at the same time is offered the same patches.
    const again = await client.virtualMachines.beginAssessPatchesAndWait(RG, 'lin1');
    assert.deepEqual(again.availablePatches!.map((p) => p.patchId), a.availablePatches!.map((p) => p.patchId));
  });

  test('R74: a machine with assessmentMode AutomaticByPlatform is assessed by the platform, one without is not', async () => {
    assert.equal((await call(s.url, 'PUT', `${VMS}/auto1${CV}`, linuxVm({ assessmentMode: 'AutomaticByPlatform' }))).status, 201);
    assert.equal((await call(s.url, 'PUT', `${VMS}/noauto1${CV}`, linuxVm({ assessmentMode: 'ImageDefault' }))).status, 201);
    const view = await eventually(async () => {
      const v = await call(s.url, 'GET', `${VMS}/auto1/instanceView${CV}`);
      return v.body.patchStatus?.availablePatchSummary ? v.body : undefined;
    }, 30_000, 'the periodic assessment');
    const summary = view.patchStatus.availablePatchSummary;
    assert.equal(summary.status, 'Succeeded');
    assert.ok(summary.criticalAndSecurityPatchCount + summary.otherPatchCount > 0);
    // Two hours of the engine's clock later (two scans), the other machine still has no assessment.
    const t = s.runtime.clock.now();
    await eventually(async () => s.runtime.clock.now() > t + 2 * 3_600_000, 30_000, 'two hours');
    assert.equal((await call(s.url, 'GET', `${VMS}/noauto1/instanceView${CV}`)).body.patchStatus, undefined);
  });

  test('R77: installPatches through beginInstallPatchesAndWait installs the selected classifications, respects masks, reboots only if required', async () => {
    const client = compute(s);
    const before = await client.virtualMachines.beginAssessPatchesAndWait(RG, 'lin1');
    const offered = before.availablePatches!;
    const excludedName = offered[0]!.name!;
    const r = await client.virtualMachines.beginInstallPatchesAndWait(RG, 'lin1', {
      maximumDuration: 'PT4H', rebootSetting: 'IfRequired',
      linuxParameters: { classificationsToInclude: ['Critical', 'Security', 'Other'], packageNameMasksToExclude: [excludedName] },
    });
    assert.ok(r.status === 'Succeeded' || r.status === 'CompletedWithWarnings', r.status);
    assert.equal(r.maintenanceWindowExceeded, false);
    const states = new Map(r.patches!.map((p) => [p.patchId, p.installationState]));
    for (const p of offered) {
      if (p.name === excludedName) assert.equal(states.get(p.patchId), 'Excluded', p.name);
      else assert.ok(states.get(p.patchId) === 'Installed' || states.get(p.patchId) === 'Failed', `${p.name}: ${states.get(p.patchId)}`);
    }
    assert.equal(r.installedPatchCount, [...states.values()].filter((x) => x === 'Installed').length);
    // IfRequired: a reboot when an installed patch always requires one, none when no installed patch may.
    const behaviour = new Map(offered.map((p) => [p.patchId, p.rebootBehavior]));
    const installedBehaviours = [...states].filter(([, st]) => st === 'Installed').map(([id]) => behaviour.get(id));
    if (installedBehaviours.includes('AlwaysRequiresReboot')) assert.equal(r.rebootStatus, 'Completed');
    if (installedBehaviours.every((b) => b === 'NeverReboots')) assert.equal(r.rebootStatus, 'NotNeeded');
    assert.equal(r.excludedPatchCount, offered.filter((p) => p.name === excludedName).length);
    // The instance view's summary names the same run, from its start (it named the run by another id, and its end as startTime).
    const summary = (await call(s.url, 'GET', `${VMS}/lin1/instanceView${CV}`)).body.patchStatus.lastPatchInstallationSummary;
    assert.equal(summary.installationActivityId, r.installationActivityId);
    assert.equal(summary.startTime, r.startDateTime!.toISOString());
    assert.equal(summary.installedPatchCount, r.installedPatchCount);
    // What was installed is no longer offered.
    const after = await client.virtualMachines.beginAssessPatchesAndWait(RG, 'lin1');
    const installed = new Set([...states].filter(([, st]) => st === 'Installed').map(([id]) => id));
    assert.ok(installed.size > 0);
    assert.ok(after.availablePatches!.every((p) => !installed.has(p.patchId)));
  });

  test('a short maximumDuration stops installing and reports maintenanceWindowExceeded', async () => {
    const client = compute(s);
    await client.virtualMachines.beginCreateOrUpdateAndWait(RG, 'lin2', { location: 'westus', storageProfile: { osDisk: { osType: 'Linux', createOption: 'FromImage' } } } as never);
    const offered = (await client.virtualMachines.beginAssessPatchesAndWait(RG, 'lin2')).availablePatches!;
    const r = await client.virtualMachines.beginInstallPatchesAndWait(RG, 'lin2', {
      maximumDuration: 'PT30M', rebootSetting: 'Always', linuxParameters: { classificationsToInclude: ['Critical', 'Security', 'Other'] },
    });
    // 30 minutes less 10 for the reboot, at 1–6 minutes a patch: 20 patches at most fit.
    assert.ok(offered.length > 20, `the seeded catalogue offers ${offered.length} patches`);
    assert.equal(r.maintenanceWindowExceeded, true);
    assert.ok((r.pendingPatchCount ?? 0) > 0);
    assert.equal(r.status, 'CompletedWithWarnings');
    assert.equal((r.installedPatchCount ?? 0) + (r.failedPatchCount ?? 0) + (r.pendingPatchCount ?? 0), offered.length);
    assert.equal(r.rebootStatus, 'Completed', 'rebootSetting Always reboots');
  });

  test('bad installPatches bodies are refused naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ rebootSetting: 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical'] } }, 'maximumDuration'],
      [{ maximumDuration: 'four hours', rebootSetting: 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical'] } }, 'maximumDuration'],
      [{ maximumDuration: 'PT10M', rebootSetting: 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical'] } }, 'maximumDuration'],
      [{ maximumDuration: 'PT5H', rebootSetting: 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical'] } }, 'maximumDuration'],
      [{ maximumDuration: 'PT2H', rebootSetting: 'Sometimes', linuxParameters: { classificationsToInclude: ['Critical'] } }, 'rebootSetting'],
      [{ maximumDuration: 'PT2H', rebootSetting: 'Never', linuxParameters: { classificationsToInclude: ['Definition'] } }, 'linuxParameters.classificationsToInclude[0]'],
      [{ maximumDuration: 'PT2H', rebootSetting: 'Never', linuxParameters: { classificationsToInclude: ['Critical'], packageNameMasksToInclude: ['rm -rf /'] } },
        'linuxParameters.packageNameMasksToInclude[0]'],
      // One rule with the agent (src/protocol/package-masks.ts): no < > (shell redirections), no leading -, at most 64 per list.
      [{ maximumDuration: 'PT2H', rebootSetting: 'Never', linuxParameters: { classificationsToInclude: ['Critical'], packageNameMasksToExclude: ['openssl*', 'kernel>=5'] } },
        'linuxParameters.packageNameMasksToExclude[1]'],
      [{ maximumDuration: 'PT2H', rebootSetting: 'Never', linuxParameters: { classificationsToInclude: ['Critical'], packageNameMasksToInclude: ['-oDebug::pkgProblemResolver=1'] } },
        'linuxParameters.packageNameMasksToInclude[0]'],
      [{ maximumDuration: 'PT2H', rebootSetting: 'Never', linuxParameters: { classificationsToInclude: ['Critical'], packageNameMasksToInclude: Array.from({ length: 65 }, (_, i) => `p${i}`) } },
        'linuxParameters.packageNameMasksToInclude'],
      [{ maximumDuration: 'PT2H', rebootSetting: 'Never', linuxParameters: {} }, 'linuxParameters.classificationsToInclude'],
      [{ maximumDuration: 'PT2H', rebootSetting: 'Never', windowsParameters: { classificationsToInclude: ['Critical'] } }, 'windowsParameters'],
      [{ maximumDuration: 'PT2H', rebootSetting: 'Never', linuxParameters: { classificationsToInclude: Array(101).fill('Critical') } }, 'linuxParameters.classificationsToInclude'],
    ];
    for (const [i, [body, target]] of cases.entries()) {
      const r = await call(s.url, 'POST', `${VMS}/lin2/installPatches${CV}`, body);
      assert.equal(r.status, 400, `case ${i}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.target, target, `case ${i}: ${r.body.error.message}`);
      assert.equal(r.headers.get('azure-asyncoperation'), null, 'no operation started');
    }
    const reader = await call(s.url, 'POST', `${VMS}/lin2/assessPatches${CV}`, undefined, READER_TOKEN);
    assert.equal(reader.status, 403);
    assert.equal((await call(s.url, 'POST', `${VMS}/nosuch/assessPatches${CV}`)).status, 404);
  });

  test('a Windows VM whose patch mode is AutomaticByOS refuses installPatches; Manual allows KB selection', async () => {
    const byOs = await call(s.url, 'PUT', `${VMS}/win1${CV}`, windowsVm({ patchSettings: { patchMode: 'AutomaticByOS' } }));
    assert.equal(byOs.status, 201, JSON.stringify(byOs.body));
    const body = { maximumDuration: 'PT2H', rebootSetting: 'Never', windowsParameters: { classificationsToInclude: ['Security'] } };
    const refused = await call(s.url, 'POST', `${VMS}/win1/installPatches${CV}`, body);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'OperationNotAllowed');
    assert.match(refused.body.error.message, /patchMode/);

    assert.equal((await call(s.url, 'PUT', `${VMS}/win2${CV}`, windowsVm({ enableAutomaticUpdates: false, patchSettings: { patchMode: 'Manual' } }))).status, 201);
    const client = compute(s);
    const offered = (await client.virtualMachines.beginAssessPatchesAndWait(RG, 'win2')).availablePatches!;
    assert.ok(offered.every((p) => /^\d+$/.test(p.kbId ?? '')), 'Windows patches carry KB numbers');
    const kb = offered.find((p) => p.classifications?.includes('Definition'))?.kbId ?? offered[0]!.kbId!;
    const r = await client.virtualMachines.beginInstallPatchesAndWait(RG, 'win2', {
      maximumDuration: 'PT4H', rebootSetting: 'Never', windowsParameters: { classificationsToInclude: [], kbNumbersToInclude: [`KB${kb}`] },
    });
    const chosen = r.patches!.filter((p) => p.installationState === 'Installed' || p.installationState === 'Failed');
    assert.deepEqual(chosen.map((p) => p.kbId), [kb]);
    assert.equal(r.notSelectedPatchCount, offered.length - 1);
    assert.ok(r.rebootStatus === 'NotNeeded' || r.rebootStatus === 'Required', `rebootSetting Never never reboots (${r.rebootStatus})`);
    const bad = await call(s.url, 'POST', `${VMS}/win2/installPatches${CV}`, { ...body, windowsParameters: { classificationsToInclude: ['Other'] } });
    assert.equal(bad.body.error.target, 'windowsParameters.classificationsToInclude[0]');
  });

  test('Arc machines: patch settings, assessPatches and installPatches over the ARM long-running protocol', async () => {
    const put = await call(s.url, 'PUT', `${ARC}/arc1${HV}`, { location: 'westus', properties: { osType: 'linux',
      osProfile: { linuxConfiguration: { patchSettings: { patchMode: 'AutomaticByPlatform', assessmentMode: 'AutomaticByPlatform' } } } } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.properties.osProfile.linuxConfiguration.patchSettings.patchMode, 'AutomaticByPlatform');
    const wrong = await call(s.url, 'PUT', `${ARC}/arc2${HV}`, { location: 'westus', properties: { osType: 'linux',
      osProfile: { windowsConfiguration: { patchSettings: { patchMode: 'AutomaticByOS' } } } } });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error.target, 'properties.osProfile.windowsConfiguration');

    const a = await lro(s, `${ARC}/arc1/assessPatches${HV}`);
    assert.equal(a.status, 'Succeeded');
    assert.equal(a.result.status, 'Succeeded');
    assert.equal(a.result.osType, 'Linux');
    const total = Object.values(a.result.availablePatchCountByClassification as Record<string, number>).reduce((x, y) => x + y, 0);
    assert.ok(total > 0);
    const i = await lro(s, `${ARC}/arc1/installPatches${HV}`, { maximumDuration: 'PT4H', rebootSetting: 'Never', linuxParameters: { classificationsToInclude: ['Critical', 'Security'] } });
    assert.equal(i.status, 'Succeeded');
    const installedOrFailed = i.result.installedPatchCount + i.result.failedPatchCount;
    assert.equal(installedOrFailed, (a.result.availablePatchCountByClassification.critical ?? 0) + (a.result.availablePatchCountByClassification.security ?? 0));
    assert.ok(i.result.notSelectedPatchCount >= 0 && typeof i.result.maintenanceWindowExceeded === 'boolean');
    const bad = await call(s.url, 'POST', `${ARC}/arc1/installPatches${HV}`, { maximumDuration: 'PT1M', rebootSetting: 'Never', linuxParameters: { classificationsToInclude: ['Critical'] } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.target, 'maximumDuration');
  });

  test('an assessment the machine never answers fails after its time budget instead of running forever', async () => {
    // The simulated machine goes silent (as a real one offline would): its answer never comes.
    const sim = s.driver.patches;
    const original = sim.assessPatches;
    sim.assessPatches = () => new Promise(() => {});
    try {
      const client = compute(s);
      await assert.rejects(client.virtualMachines.beginAssessPatchesAndWait(RG, 'lin2'), (e: Error) => /PatchOperationTimedOut/.test(e.message));
    } finally {
      sim.assessPatches = original;
    }
    const a = await compute(s).virtualMachines.beginAssessPatchesAndWait(RG, 'lin2');
    assert.equal(a.status, 'Succeeded', 'answered again once the machine is back');
  });
});
