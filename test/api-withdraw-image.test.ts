/**
 * Withdrawing an OS image version over HTTPS (issue 14): a platform image version a scale set was
 * re-imaged to is withdrawn with rollback, and every instance is re-imaged back to the version before
 * it; `latest` stands for the earlier version again, the publisher API and the fleet page mark it
 * withdrawn, and bad requests change nothing. A gallery image version is withdrawn the same way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, eventually, PUBLISHER_TOKEN, READER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2024-07-01';
const UBUNTU = '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server/versions';
const GALLERY = `/phasewise/subscriptions/${SUB}/resourceGroups/images/galleries/corp_gallery`;
const VMSS = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;
const [V1, V2] = ['24.04.202601010', '24.04.202602010'];

type Vm = { properties: { latestModelApplied: boolean; storageProfile: { imageReference?: { exactVersion?: string } } } };
const versionsOf = async (s: TestServer) => ((await call(s.url, 'GET', `${VMSS}/web/virtualMachines?${AV}`)).body.value as Vm[]).map((v) => v.properties.storageProfile.imageReference?.exactVersion);

async function publish(s: TestServer, version: string): Promise<void> {
  assert.equal((await call(s.url, 'PUT', `${UBUNTU}/${version}`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
  assert.equal((await call(s.url, 'PUT', `${UBUNTU}/${version}/replications/westus`, undefined, PUBLISHER_TOKEN)).status, 201);
}

describe('withdrawing an OS image version through the API', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
    await publish(s, V1);
    const set = await call(s.url, 'PUT', `${VMSS}/web?${AV}`, {
      location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 5 },
      properties: {
        upgradePolicy: { mode: 'Manual', automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } },
        virtualMachineProfile: { storageProfile: { imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' } } },
      },
    });
    assert.equal(set.status, 201, JSON.stringify(set.body));
    await publish(s, V2);
    await eventually(async () => (await versionsOf(s)).every((v) => v === V2), 60_000, 'the set to be re-imaged to the new version');
  });
  after(async () => s?.stop());

  test('bad requests answer ARM errors and change nothing', async () => {
    const path = `${UBUNTU}/${V2}/withdraw`;
    const cases: Array<[string, unknown, string | null, number, string]> = [
      [path, {}, READER_TOKEN, 403, 'AuthorizationFailed'],
      [path, { rollback: 'yes' }, null, 400, 'InvalidParameter'],
      [path, { reason: 'x', extra: 1 }, null, 400, 'InvalidParameter'],
      [`${UBUNTU}/24.04.209901010/withdraw`, {}, null, 404, 'VersionNotFound'],
      [`${UBUNTU}/not-a-version/withdraw`, {}, null, 404, 'VersionNotFound'],
      ['/phasewise/images/publishers/Canonical/offers/nothing/skus/server/versions/1.0.0/withdraw', {}, null, 404, 'VersionNotFound'],
      [`${GALLERY}/images/missing/versions/1.0.0/withdraw`, {}, null, 404, 'VersionNotFound'],
    ];
    for (const [p, body, token, status, code] of cases) {
      const r = token === null ? await call(s.url, 'POST', p, body) : await call(s.url, 'POST', p, body, token);
      assert.equal(r.status, status, `${p} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, p);
    }
    assert.equal((await call(s.url, 'GET', `${UBUNTU}/${V2}`)).body.withdrawn, false, 'nothing withdrawn');
    assert.deepEqual(await versionsOf(s), [V2, V2, V2, V2, V2]);
  });

  test('R60, R64: withdrawn with rollback, every instance is re-imaged to the version before; latest skips it; it is marked', async () => {
    const r = await call(s.url, 'POST', `${UBUNTU}/${V2}/withdraw`, { rollback: true, reason: 'kernel panic on boot' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.artifact, { kind: 'osImage', publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server' });
    assert.equal(r.body.withdrawn, true);
    assert.equal(r.body.rollbackRollouts.length, 1);
    await eventually(async () => (await versionsOf(s)).every((v) => v === V1), 60_000, 'every instance back on the earlier image');
    const rollout = (await call(s.url, 'GET', `/phasewise/rollouts/${r.body.rollbackRollouts[0]}`)).body;
    assert.equal(rollout.toVersion, V1);
    // latest stands for V1 again: the instances run the set's model.
    const vms = (await call(s.url, 'GET', `${VMSS}/web/virtualMachines?${AV}`)).body.value as Vm[];
    assert.ok(vms.every((v) => v.properties.latestModelApplied), 'on the model: latest is the earlier version');
    assert.equal((await call(s.url, 'GET', `${UBUNTU}/${V2}`)).body.withdrawn, true);
    assert.equal((await call(s.url, 'GET', `${UBUNTU}/${V1}`)).body.withdrawn, false);
    const again = await call(s.url, 'POST', `${UBUNTU}/${V2}/withdraw`, {});
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'VersionAlreadyWithdrawn');
    const fleet = await eventually(async () => {
      const f = (await call(s.url, 'GET', '/phasewise/fleet')).body;
      return f.upToDate ? f : null;
    }, 20_000, 'an up-to-date fleet summary');
    const image = fleet.artifacts.find((a: { kind: string }) => a.kind === 'osImage');
    assert.equal(image.withdrawBase, '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server');
    assert.deepEqual(image.versions.map((v: { version: string; withdrawn: boolean }) => [v.version, v.withdrawn]), [[V1, false]]);
    // The activity log names the caller of the withdrawal.
    const events = (await call(s.url, 'GET', '/phasewise/events?limit=1000')).body.value as Array<{ type: string; kind?: string; toVersion?: string }>;
    assert.ok(events.some((e) => e.type === 'release.halted' && e.kind === 'withdrawn' && e.toVersion === V2));
  });

  test('a gallery image version is withdrawn the same way; its version record says so', async () => {
    // A gallery lives in a resource group that exists, as every resource does.
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/images?${AV}`, { location: 'westus' })).status, 201);
    assert.equal((await call(s.url, 'PUT', GALLERY, { location: 'westus' }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${GALLERY}/images/web`, { osType: 'Linux', identifier: { publisher: 'Contoso', offer: 'web', sku: 'v1' } }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${GALLERY}/images/web/versions/1.0.0`, {}, PUBLISHER_TOKEN)).status, 201);
    const r = await call(s.url, 'POST', `${GALLERY}/images/WEB/versions/1.0.0/withdraw`, { reason: 'superseded' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.artifact.publisher, `gallery:${SUB}/images/corp_gallery`);
    assert.equal((await call(s.url, 'GET', `${GALLERY}/images/web/versions/1.0.0`)).body.withdrawn, true);
    assert.equal((await call(s.url, 'GET', `${GALLERY}/images/web`)).body.versions[0].withdrawn, true);
  });
});
