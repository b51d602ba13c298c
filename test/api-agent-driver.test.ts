/**
 * The agent driver end to end over the wire: the engine's actions become goal-state changes, a
 * scripted agent's reports become action results and health, a silent machine turns Disconnected on
 * the wall clock (platform unhealthy), and a scheduled event approved by the machine reaches the
 * engine (R83). No simulated fleet answers for these machines.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GoalState, GoalStateExtension, StatusReport } from '../src/protocol/agent-wire.js';
import { call, eventually, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { handlerZip, statusReport, TestAgent, uploadPackage } from './helpers/agent-client.js';

const SUB = 'sub1';
const AV = 'api-version=2024-07-01';
const ENROLL = 'enroll-token-0123456789abcdef';
const ARC = `/subscriptions/${SUB}/resourceGroups/arc/providers/Microsoft.HybridCompute/machines`;
const TYPES = '/phasewise/publishers/Contoso/extensionTypes';

async function publish(s: TestServer, version: string, withPackage: boolean): Promise<void> {
  if (withPackage) assert.equal((await uploadPackage(s, 'Contoso', 'Monitor', version, await handlerZip(version))).status, 201);
  assert.equal((await call(s.url, 'PUT', `${TYPES}/Monitor/versions/${version}`, { os: ['linux'] }, PUBLISHER_TOKEN)).status, 201);
}

/** Polls the goal state until `pick` finds the entry wanted. */
async function goalEntry(a: TestAgent, pick: (e: GoalStateExtension) => boolean, what: string): Promise<{ gs: GoalState; e: GoalStateExtension }> {
  return eventually(async () => {
    const gs = (await a.goalState()).json as GoalState;
    const e = gs.extensions.find(pick);
    return e ? { gs, e } : null;
  }, 20_000, what);
}

const events = async (s: TestServer) => (await call(s.url, 'GET', '/phasewise/events?limit=1000')).body.value as Array<Record<string, any>>;

describe('R25: the agent driver turns goal states and reports into the engine\'s actions and observations', () => {
  let s: TestServer;
  let a: TestAgent;
  let report: (r: StatusReport) => Promise<void>;
  before(async () => {
    s = await startTestServer({ agentStatusIntervalSeconds: 1, enrollmentTokens: [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' }] });
    assert.equal((await call(s.url, 'PUT', `${TYPES}/Monitor`, { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN)).status, 201);
    await publish(s, '1.0.0.0', true);
    a = await TestAgent.enroll(s.url, ENROLL, { name: 'real-1' });
    report = async (r) => assert.equal((await a.status(r)).status, 204);
  });
  after(async () => {
    a?.close();
    await s?.stop();
  });

  test('an install and an upgrade run through the scripted agent: the engine sees each result and health, and the rollout completes', async () => {
    await report(statusReport());
    const ext = { location: 'westus', properties: { publisher: 'Contoso', type: 'Monitor', typeHandlerVersion: '1.0', enableAutomaticUpgrade: false } };
    const put = await call(s.url, 'PUT', `${ARC}/real-1/extensions/mon?${AV}`, ext);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const install = await goalEntry(a, (e) => e.version === '1.0.0.0', 'the install in the goal state');
    // The same goal state read again carries the same operation: nothing new to do.
    assert.equal(((await a.goalState()).json as GoalState).extensions[0]!.operationId, install.e.operationId);
    await report(statusReport({ goalStateId: install.gs.goalStateId, ext: { 'Contoso.Monitor': { version: '1.0.0.0', op: { id: install.e.operationId, outcome: 'succeeded' } } } }));
    await eventually(async () => (await call(s.url, 'GET', `${ARC}/real-1/extensions/mon?${AV}`)).body.properties.provisioningState === 'Succeeded', 20_000, 'the install to succeed');
    const view = (await call(s.url, 'GET', `${ARC}/real-1/extensions/mon?${AV}`)).body.properties.instanceView;
    assert.equal(view.typeHandlerVersion, '1.0.0.0', 'the instance view comes from the agent\'s report');
    assert.equal(view.status.message, 'enabled');

    await publish(s, '1.1.0.0', true);
    const up = await call(s.url, 'POST', `${ARC}/real-1/upgradeExtensions?${AV}`, { extensionTargets: { 'Contoso.Monitor': { targetVersion: '1.1' } } });
    assert.equal(up.status, 202, JSON.stringify(up.body));
    const upgrade = await goalEntry(a, (e) => e.version === '1.1.0.0', 'the upgrade in the goal state');
    assert.ok(upgrade.e.settingsSeqNo > install.e.settingsSeqNo, 'settingsSeqNo bumped with the version');
    assert.notEqual(upgrade.e.operationId, install.e.operationId);
    const started = (await events(s)).find((e) => e.type === 'instance.upgrade.started' && e.toVersion === '1.1.0.0');
    assert.ok(started, 'the engine started the upgrade');
    const done = statusReport({ goalStateId: upgrade.gs.goalStateId, ext: { 'Contoso.Monitor': { version: '1.1.0.0', op: { id: upgrade.e.operationId, outcome: 'succeeded' } } } });
    await report(done);
    await report(done); // a report sent twice answers the action once
    await eventually(async () => (await events(s)).some((e) => e.type === 'rollout.completed' && e.rolloutId === started.rolloutId), 30_000, 'the rollout to complete');
    const ev = await events(s);
    assert.equal(ev.filter((e) => e.type === 'instance.upgrade.succeeded' && e.rolloutId === started.rolloutId).length, 1);
    const inst = s.runtime.engine.state.fleet.instances.get('extension:contoso.monitor')!.get(s.runtime.engine.state.fleet.machines.values().next().value!.id)!;
    assert.equal(inst.installedVersion, '1.1.0.0');
    assert.equal(inst.lastKnownGoodVersion, '1.1.0.0');
  });

  test('a version without an uploaded package is never sent: the action fails with the reason and the goal state keeps the old version', async () => {
    await publish(s, '1.2.0.0', false);
    const before = (await a.goalState()).json as GoalState;
    const up = await call(s.url, 'POST', `${ARC}/real-1/upgradeExtensions?${AV}`, { extensionTargets: { 'Contoso.Monitor': { targetVersion: '1.2' } } });
    assert.equal(up.status, 202);
    const failed = await eventually(async () => (await events(s)).find((e) => e.type === 'instance.upgrade.failed' && e.toVersion === '1.2.0.0'), 20_000, 'the upgrade to fail');
    assert.match(failed.reason, /no package is uploaded for Contoso\.Monitor 1\.2\.0\.0/);
    // R22: the engine rolls back to last-known-good; the goal state asks for it under a new key, the agent answers.
    const rollback = await goalEntry(a, (e) => e.operationId !== before.extensions[0]!.operationId, 'the rollback in the goal state');
    assert.equal(rollback.e.version, before.extensions[0]!.version, 'the goal state never asked for 1.2.0.0');
    await report(statusReport({ goalStateId: rollback.gs.goalStateId, ext: { 'Contoso.Monitor': { version: '1.1.0.0', op: { id: rollback.e.operationId, outcome: 'succeeded' } } } }));
    await eventually(async () => (await events(s)).some((e) => e.type === 'instance.rollback.succeeded' && e.toVersion === '1.1.0.0'), 20_000, 'the rollback to succeed');
  });

  test('R25: a machine that stops reporting is Disconnected after three status intervals (wall clock): platform unhealthy; a report reconnects it', async () => {
    await report(statusReport({ ext: { 'Contoso.Monitor': { version: '1.1.0.0' } } }));
    const machineId = s.agents.driver.agent(a.agentId)!.machineId;
    await eventually(async () => (await call(s.url, 'GET', `${ARC}/real-1?${AV}`)).body.properties.status === 'Disconnected', 15_000, 'Disconnected');
    await eventually(async () => s.runtime.engine.state.fleet.health.get(machineId)?.platform === false, 5_000, 'the engine to see platform unhealthy');
    assert.ok(s.runtime.engine.state.fleet.unhealthy.has(machineId));
    await report(statusReport({ ext: { 'Contoso.Monitor': { version: '1.1.0.0' } } }));
    await eventually(async () => (await call(s.url, 'GET', `${ARC}/real-1?${AV}`)).body.properties.status === 'Connected', 5_000, 'Connected');
    await eventually(async () => !s.runtime.engine.state.fleet.unhealthy.has(machineId), 5_000, 'healthy again');
  });

  test('R25: application health from the agent feeds the engine: Unhealthy is application false', async () => {
    const machineId = s.agents.driver.agent(a.agentId)!.machineId;
    await report(statusReport({ ext: { 'Contoso.Monitor': { version: '1.1.0.0' } }, app: 'Unhealthy' }));
    await eventually(async () => s.runtime.engine.state.fleet.health.get(machineId)?.application === false, 5_000, 'application unhealthy');
    await report(statusReport({ ext: { 'Contoso.Monitor': { version: '1.1.0.0' } }, app: 'Healthy' }));
    await eventually(async () => !s.runtime.engine.state.fleet.unhealthy.has(machineId), 5_000, 'healthy again');
  });
});

describe('R83: scheduled events on agent machines', () => {
  let s: TestServer;
  const VMSS = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;
  const UBUNTU = '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server/versions';
  const ubuntu = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' };
  const publishImage = async (version: string) => {
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/${version}`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/${version}/replications/westus`, undefined, PUBLISHER_TOKEN)).status, 201);
  };
  before(async () => {
    s = await startTestServer({ enrollmentTokens: [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' }] });
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
    await publishImage('24.04.202601010');
    const r = await call(s.url, 'PUT', `${VMSS}/deferred?${AV}`, {
      location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 1 },
      properties: {
        upgradePolicy: { mode: 'Manual', automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true, osRollingUpgradeDeferral: true } },
        virtualMachineProfile: { storageProfile: { imageReference: ubuntu } },
      },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });
  after(async () => s?.stop());

  test('R83: the announced re-image is a scheduled event in the goal state; the machine\'s approval reaches the engine; the re-image itself is refused on an agent machine', async () => {
    const a = await TestAgent.enroll(s.url, ENROLL, { resourceId: `${VMSS}/deferred/virtualMachines/0` });
    try {
      await publishImage('24.04.202602010');
      const gs = await eventually(async () => {
        const g = (await a.goalState()).json as GoalState;
        return g.scheduledEvents.Events.length > 0 ? g : null;
      }, 30_000, 'the scheduled event');
      const ev = gs.scheduledEvents.Events[0]!;
      assert.equal(ev.EventType, 'Reimage');
      assert.equal(ev.EventStatus, 'Scheduled');
      assert.equal(ev.NotBefore, '', 'deferred: no deadline');
      assert.ok(gs.scheduledEvents.DocumentIncarnation > 0);
      const bad = await a.call('POST', `/v1/agents/${a.agentId}/scheduledevents`, { StartRequests: [{ EventId: 'not-an-event' }] });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.target, 'StartRequests[0].EventId');
      const ok = await a.call('POST', `/v1/agents/${a.agentId}/scheduledevents`, { StartRequests: [{ EventId: ev.EventId }] });
      assert.equal(ok.status, 204, ok.text);
      const approved = await eventually(async () => (await events(s)).find((e) => e.type === 'instance.notice.approved'), 20_000, 'the approval');
      assert.equal(approved.caller.toLowerCase(), a.enrolled.resourceId.toLowerCase());
      const failed = await eventually(async () => (await events(s)).find((e) => e.type === 'instance.upgrade.failed' && e.artifact.kind === 'osImage'), 20_000, 'the re-image answer');
      assert.match(failed.reason, /re-image is not supported on agent-managed machines/);
      const after = (await a.goalState()).json as GoalState;
      assert.deepEqual(after.scheduledEvents.Events, [], 'the event is gone once started');
    } finally {
      a.close();
    }
  });
});

describe('R83: a platform patch baseline\'s reboot notice on an agent machine', () => {
  let s: TestServer;
  // The engine's clock at real speed: the 15-minute notice outlasts the test, so only the approval can end it.
  before(async () => { s = await startTestServer({ clockFactor: 1, enrollmentTokens: [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' }] }); });
  after(async () => s?.stop());

  test('R76, R83: the announced reboot is a Reboot scheduled event with the log\'s EventId; the machine\'s approval starts the installation at once, under that EventId', async () => {
    const a = await TestAgent.enroll(s.url, ENROLL, { name: 'patched-1' });
    try {
      const machineId = s.agents.driver.agent(a.agentId)!.machineId;
      const engine = s.runtime.engine;
      engine.setPlatformPatching(machineId, { rebootSetting: 'IfRequired' });
      // Critical: the fast lane may bypass the off-peak hours, so the notice comes whatever the hour (R72).
      engine.publishPatchBaseline('linux', '2026.3.1', true, 'test');
      s.runtime.kick();
      const gs = await eventually(async () => {
        const g = (await a.goalState()).json as GoalState;
        return g.scheduledEvents.Events.some((e) => e.EventType === 'Reboot') ? g : null;
      }, 20_000, 'the reboot notice in the goal state');
      const ev = gs.scheduledEvents.Events.find((e) => e.EventType === 'Reboot')!;
      const announced = (await events(s)).find((e) => e.type === 'machine.reboot.announced' && e.machineId === machineId)!;
      assert.ok(announced, 'the notice is in the event log');
      assert.equal(ev.EventId, announced.eventId);
      // IMDS's NotBefore is an HTTP date (whole seconds).
      assert.equal(Date.parse(ev.NotBefore), Math.floor(Date.parse(announced.notBefore) / 1000) * 1000);
      assert.ok(Date.parse(ev.NotBefore) - Date.now() > 10 * 60_000, 'about 15 minutes ahead');
      assert.deepEqual(gs.patchOperations ?? [], [], 'nothing is installed before the notice ends');

      const ok = await a.call('POST', `/v1/agents/${a.agentId}/scheduledevents`, { StartRequests: [{ EventId: ev.EventId }] });
      assert.equal(ok.status, 204, ok.text);
      const approved = await eventually(async () => (await events(s)).find((e) => e.type === 'instance.notice.approved' && e.artifact?.kind === 'guestPatch'), 20_000, 'the approval');
      assert.equal(approved.caller.toLowerCase(), a.enrolled.resourceId.toLowerCase());
      const after = await eventually(async () => {
        const g = (await a.goalState()).json as GoalState;
        return (g.patchOperations ?? []).length > 0 ? g : null;
      }, 20_000, 'the installation in the goal state');
      assert.deepEqual(after.scheduledEvents.Events.filter((e) => e.EventType === 'Reboot'), [], 'the notice is gone once the installation started');
      const op = after.patchOperations![0]!;
      assert.equal(op.kind, 'install');
      assert.deepEqual(op.install!.classificationsToInclude, ['Critical', 'Security']);
      assert.equal(op.install!.rebootEventId, ev.EventId, 'the machine\'s own reboot is the announced event');
    } finally {
      a.close();
    }
  });
});
