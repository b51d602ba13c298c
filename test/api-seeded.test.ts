/**
 * Resources seeded from a scenario read and write through ARM exactly as if a client had created them:
 * the demo's scale sets show the image the engine follows, keep it across any PATCH, and take
 * `osRollingUpgrade` with a history to show for it (R65, R66).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const AV = 'api-version=2026-03-01';
const VMSS = '/subscriptions/contoso-prod/resourceGroups/rg-contoso-prod/providers/Microsoft.Compute/virtualMachineScaleSets';
const UBUNTU = '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server/versions';

describe('scale sets seeded from the demo scenario', () => {
  let s: TestServer;
  // Real time: the scenario's own events (days in) do not happen during the test.
  before(async () => { s = await startTestServer({ scenario: 'examples/demo.yaml', clockFactor: 1, subscriptions: [] }); });
  after(async () => s?.stop());

  const engineImage = () => [...s.runtime.engine.state.fleet.scaleSets.values()].find((x) => x.name === 'api-eus')?.image;

  test('R60: the ARM document names the image the engine follows', async () => {
    const r = await call(s.url, 'GET', `${VMSS}/api-eus?${AV}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const ref = r.body.properties.virtualMachineProfile.storageProfile.imageReference;
    assert.deepEqual({ publisher: ref.publisher, offer: ref.offer, sku: ref.sku, version: ref.version }, { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' });
  });

  test('R60: a tags-only PATCH keeps the image, in the document and in the engine', async () => {
    assert.ok(engineImage());
    const p = await call(s.url, 'PATCH', `${VMSS}/api-eus?${AV}`, { tags: { team: 'web' } });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.properties.virtualMachineProfile.storageProfile.imageReference.offer, 'ubuntu-24_04-lts');
    assert.deepEqual(engineImage(), { kind: 'platform', publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' });
    const again = await call(s.url, 'GET', `${VMSS}/api-eus?${AV}`);
    assert.equal(again.body.tags.team, 'web');
    assert.equal(again.body.properties.virtualMachineProfile.storageProfile.imageReference.sku, 'server');
  });

  test('R65, R66: osRollingUpgrade on a seeded set starts, and its history shows it', async () => {
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202612010`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202612010/replications/eastus`, undefined, PUBLISHER_TOKEN)).status, 201);
    const start = await call(s.url, 'POST', `${VMSS}/api-eus/osRollingUpgrade?${AV}`);
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const history = await call(s.url, 'GET', `${VMSS}/api-eus/osUpgradeHistory?${AV}`);
    assert.equal(history.status, 200);
    assert.ok(history.body.value.length >= 1, JSON.stringify(history.body));
    assert.equal(history.body.value[0].properties.targetImageReference.version, '24.04.202612010');
  });
});
