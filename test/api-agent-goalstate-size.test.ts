/**
 * A machine's goal state stays under the agent's 1 MiB (LIMITS.goalStateBytes): the settings and
 * protected settings of all its extensions together are bounded where they are written
 * (maxMachineSettingsBytes, src/api/arm/settings-budget.ts). A machine filled to the bound gets its goal
 * state (200, under 1 MiB, protected settings encrypted); the write that would pass it is a 400 ARM
 * error naming the limit, and changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_MACHINE_SETTINGS_BYTES } from '../src/api/arm/settings-budget.js';
import type { GoalState } from '../src/protocol/agent-wire.js';
import { LIMITS } from '../src/protocol/agent-wire.js';
import { call, eventually, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { handlerZip, statusReport, TestAgent, uploadPackage } from './helpers/agent-client.js';

const SUB = 'sub1';
const AV = 'api-version=2024-07-01';
const ENROLL = 'enroll-token-0123456789abcdef';
const ARC = `/subscriptions/${SUB}/resourceGroups/arc/providers/Microsoft.HybridCompute/machines`;
const TYPES = '/phasewise/publishers/Contoso/extensionTypes';

/** A settings object of exactly `bytes` bytes as JSON (strings of at most 30,000 characters: maxStringLength). */
function blob(bytes: number): Record<string, string> {
  const out: Record<string, string> = {};
  let left = bytes - 2; // {}
  for (let i = 0; left > 0; i++) {
    const key = `k${i}`;
    const overhead = key.length + 5 + (i > 0 ? 1 : 0); // "k":"" and a comma
    const n = Math.min(30_000, left - overhead);
    out[key] = 'x'.repeat(n);
    left -= overhead + n;
  }
  assert.equal(Buffer.byteLength(JSON.stringify(out)), bytes);
  return out;
}

describe('goal-state size: bounded where the settings are written', () => {
  let s: TestServer;
  let a: TestAgent;
  const types = ['Mon0', 'Mon1', 'Mon2', 'Mon3', 'Mon4'];
  before(async () => {
    s = await startTestServer({ enrollmentTokens: [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' }] });
    for (const t of types) {
      assert.equal((await call(s.url, 'PUT', `${TYPES}/${t}`, { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN)).status, 201);
      assert.equal((await uploadPackage(s, 'Contoso', t, '1.0.0.0', await handlerZip(t))).status, 201);
      assert.equal((await call(s.url, 'PUT', `${TYPES}/${t}/versions/1.0.0.0`, { os: ['linux'] }, PUBLISHER_TOKEN)).status, 201);
    }
    a = await TestAgent.enroll(s.url, ENROLL, { name: 'big-1' });
    assert.equal((await a.status(statusReport())).status, 204);
  });
  after(async () => {
    a?.close();
    await s?.stop();
  });

  const ext = (type: string, settings: object, protectedSettings?: object) =>
    ({ location: 'westus', properties: { publisher: 'Contoso', type, typeHandlerVersion: '1.0', settings, ...(protectedSettings ? { protectedSettings } : {}) } });

  test('a machine at the bound gets its goal state, under 1 MiB; the write past it is refused and changes nothing', async () => {
    // Four extensions with settings and protected settings each just under 64 KiB: the budget nearly full.
    const each = Math.floor(MAX_MACHINE_SETTINGS_BYTES / 8) - 100;
    for (const t of types.slice(0, 4)) {
      const r = await call(s.url, 'PUT', `${ARC}/big-1/extensions/${t.toLowerCase()}?${AV}`, ext(t, blob(each), blob(each)));
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
    }
    const full = await eventually(async () => {
      const r = await a.goalState();
      const exts = r.status === 200 ? (r.json as GoalState).extensions : [];
      return exts.length === 4 && exts.every((e) => e.settings.protectedSettings !== null) ? r : null;
    }, 30_000, 'the four extensions with their protected settings in the goal state');
    assert.ok(Buffer.byteLength(full.text) < LIMITS.goalStateBytes, `${Buffer.byteLength(full.text)} bytes`);
    const gs = full.json as GoalState;
    assert.ok(gs.extensions.every((e) => !JSON.stringify(e.settings.protectedSettings).includes('x'.repeat(64))), 'protected settings travel encrypted');

    // A fifth extension, or one of the four grown, would pass the bound: 400 naming it, nothing changed.
    const fifth = await call(s.url, 'PUT', `${ARC}/big-1/extensions/mon4?${AV}`, ext('Mon4', blob(4 * 1024)));
    assert.equal(fifth.status, 400);
    assert.equal(fifth.body.error.code, 'InvalidParameter');
    assert.equal(fifth.body.error.target, 'properties.settings');
    assert.match(fifth.body.error.message, /maxMachineSettingsBytes/);
    assert.equal((await call(s.url, 'GET', `${ARC}/big-1/extensions/mon4?${AV}`)).status, 404);
    const grown = await call(s.url, 'PUT', `${ARC}/big-1/extensions/mon0?${AV}`, ext('Mon0', blob(each), blob(each + 4 * 1024)));
    assert.equal(grown.status, 400);
    assert.equal(grown.body.error.target, 'properties.protectedSettings');
    const after = await a.goalState(full.headers.etag as string);
    assert.equal(after.status, 304, 'the goal state did not change');
    // Smaller settings on one extension make room again.
    assert.equal((await call(s.url, 'PUT', `${ARC}/big-1/extensions/mon0?${AV}`, ext('Mon0', {}))).status, 200);
    assert.equal((await call(s.url, 'PUT', `${ARC}/big-1/extensions/mon4?${AV}`, ext('Mon4', blob(4 * 1024)))).status, 200);
  });

  test('a scale set\'s model counts for each instance: a model past the bound is refused', async () => {
    const each = Math.floor(MAX_MACHINE_SETTINGS_BYTES / 8) - 100;
    const model = types.map((t) => ({ name: t.toLowerCase(), properties: { publisher: 'Contoso', type: t, typeHandlerVersion: '1.0', settings: blob(each), protectedSettings: blob(each) } }));
    const body = {
      location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 1 },
      properties: {
        upgradePolicy: { mode: 'Manual' },
        virtualMachineProfile: {
          storageProfile: { imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' }, osDisk: { osType: 'Linux' } },
          extensionProfile: { extensions: model },
        },
      },
    };
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
    const path = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/big?${AV}`;
    const r = await call(s.url, 'PUT', path, body);
    assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
    assert.equal(r.body.error.target, 'properties.virtualMachineProfile.extensionProfile.extensions');
    assert.equal((await call(s.url, 'GET', path)).status, 404);
    body.properties.virtualMachineProfile.extensionProfile.extensions = model.slice(0, 4);
    const ok = await call(s.url, 'PUT', path, body);
    assert.ok(ok.status === 200 || ok.status === 201, JSON.stringify(ok.body).slice(0, 300));
  });
});
