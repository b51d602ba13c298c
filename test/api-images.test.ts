/**
 * The image catalog over HTTPS against a real server: the publisher API (platform images, galleries,
 * replications), Compute's vmimage read paths and the gallery read paths (R64), scale sets whose
 * imageReference is checked against the catalog with the automatic OS upgrade policy apart from the
 * mode (R63), osRollingUpgrade's refusals, the catalog surviving a restart, and the Azure SDK.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ComputeManagementClient } from '@azure/arm-compute';
import type { TokenCredential } from '@azure/core-auth';
import { call, PUBLISHER_TOKEN, READER_TOKEN, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2026-03-01';
const UBUNTU = '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server/versions';
const GALLERY = `/phasewise/subscriptions/${SUB}/resourceGroups/images/galleries/corp_gallery`;
const GALLERY_ID = `/subscriptions/${SUB}/resourceGroups/images/providers/Microsoft.Compute/galleries/corp_gallery`;
const VMIMAGE = (location: string) => `/subscriptions/${SUB}/providers/Microsoft.Compute/locations/${location}/publishers`;
const VMSS = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;
const DAY = 86_400_000;
const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };

const names = (body: Array<{ name: string }>) => body.map((x) => x.name);
const ubuntu = (version = 'latest') => ({ publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version });
const setBody = (imageReference: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}, location = 'westus') => ({
  location, sku: { name: 'Standard_D2s_v5', capacity: 1 },
  properties: { upgradePolicy: { mode: 'Manual', ...extra }, virtualMachineProfile: imageReference ? { storageProfile: { imageReference } } : {} },
});

describe('image catalog over HTTPS', () => {
  let s: TestServer;
  /** The server's simulated clock when the first version was published. */
  let t0 = 0;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
    const first = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010`, { osType: 'Linux' }, PUBLISHER_TOKEN);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    t0 = Date.parse(first.body.publishedAt);
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010/replications/westus`, undefined, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202602010`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202602010/replications/westus`, {}, PUBLISHER_TOKEN)).status, 201);
    // Newer still, but its copy to westus completes only in 30 simulated days.
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202603010`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
    const future = await call(s.url, 'PUT', `${UBUNTU}/24.04.202603010/replications/westus`, { completedAt: new Date(t0 + 30 * DAY).toISOString() }, PUBLISHER_TOKEN);
    assert.equal(future.status, 201);
    assert.equal(future.body.state, 'InProgress');
    // A gallery lives in a resource group that exists, as every resource does.
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/images?${AV}`, { location: 'westus' })).status, 201);
    assert.equal((await call(s.url, 'PUT', GALLERY, { location: 'westus' }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${GALLERY}/images/web`, { osType: 'Linux', identifier: { publisher: 'Contoso', offer: 'web', sku: 'v1' } }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${GALLERY}/images/web/versions/1.0.0`, {}, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${GALLERY}/images/web/versions/1.0.0/replications/westus`, undefined, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${GALLERY}/images/web/versions/1.0.0/replications/eastus`, { completedAt: null }, PUBLISHER_TOKEN)).status, 201);
  });
  after(async () => s?.stop());

  test('publisher API: a repeat is 200, other content 409, bad input 400 naming the field, readers 403; nothing changes', async () => {
    const again = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010`, { osType: 'Linux', hyperVGeneration: 'V2' }, PUBLISHER_TOKEN);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    const other = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010`, { osType: 'Windows' }, PUBLISHER_TOKEN);
    assert.equal(other.status, 409);
    assert.equal(other.body.error.code, 'Conflict');
    const badVersion = await call(s.url, 'PUT', `${UBUNTU}/24.04`, { osType: 'Linux' }, PUBLISHER_TOKEN);
    assert.equal(badVersion.status, 400);
    assert.equal(badVersion.body.error.target, 'version');
    const badOs = await call(s.url, 'PUT', `${UBUNTU}/24.04.202609010`, { osType: 'Solaris' }, PUBLISHER_TOKEN);
    assert.equal(badOs.status, 400);
    assert.equal(badOs.body.error.target, 'osType');
    const unknownField = await call(s.url, 'PUT', `${UBUNTU}/24.04.202609010`, { osType: 'Linux', regions: ['westus'] }, PUBLISHER_TOKEN);
    assert.equal(unknownField.status, 400);
    assert.match(unknownField.body.error.message, /regions/);
    const badInstant = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010/replications/eastus`, { completedAt: 'yesterday' }, PUBLISHER_TOKEN);
    assert.equal(badInstant.status, 400);
    assert.equal(badInstant.body.error.target, 'completedAt');
    const beforePublished = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010/replications/eastus`, { completedAt: '2000-01-01T00:00:00Z' }, PUBLISHER_TOKEN);
    assert.equal(beforePublished.status, 400);
    const moved = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010/replications/westus`, { completedAt: new Date(t0 + DAY).toISOString() }, PUBLISHER_TOKEN);
    assert.equal(moved.status, 409, 'a completed replication is history');
    const missing = await call(s.url, 'PUT', `${UBUNTU}/9.9.9/replications/westus`, {}, PUBLISHER_TOKEN);
    assert.equal(missing.status, 404);
    const noGallery = await call(s.url, 'PUT', `${GALLERY}x/images/web`, { osType: 'Linux', identifier: { publisher: 'a', offer: 'b', sku: 'c' } }, PUBLISHER_TOKEN);
    assert.equal(noGallery.status, 404);
    assert.equal(noGallery.body.error.code, 'GalleryNotFound');
    const hyphen = await call(s.url, 'PUT', `/phasewise/subscriptions/${SUB}/resourceGroups/images/galleries/bad-name`, { location: 'westus' }, PUBLISHER_TOKEN);
    assert.equal(hyphen.status, 400);
    assert.equal((await call(s.url, 'PUT', `/phasewise/subscriptions/nosub/resourceGroups/images/galleries/g`, { location: 'westus' }, PUBLISHER_TOKEN)).status, 404);
    // A gallery in a resource group that does not exist is refused as every other resource is (it was created).
    const noGroup = await call(s.url, 'PUT', `/phasewise/subscriptions/${SUB}/resourceGroups/nogroup/galleries/g`, { location: 'westus' }, PUBLISHER_TOKEN);
    assert.equal(noGroup.status, 404, JSON.stringify(noGroup.body));
    assert.equal(noGroup.body.error.code, 'ResourceGroupNotFound');
    assert.equal((await call(s.url, 'GET', `/phasewise/subscriptions/${SUB}/resourceGroups/nogroup/galleries/g`, undefined, PUBLISHER_TOKEN)).status, 404, 'nothing was created');
    const reader = await call(s.url, 'PUT', `${UBUNTU}/24.04.202609010`, { osType: 'Linux' }, READER_TOKEN);
    assert.equal(reader.status, 403);
    const listed = await call(s.url, 'GET', UBUNTU, undefined, READER_TOKEN);
    assert.deepEqual(listed.body.value.map((v: { version: string }) => v.version), ['24.04.202601010', '24.04.202602010', '24.04.202603010'], 'none of the refused versions appeared');
    assert.equal(listed.body.value[0].osType, 'Linux', 'the repeat did not change the version');
    assert.deepEqual(listed.body.value[0].replications.map((r: { region: string }) => r.region), ['westus']);
  });

  test('R64: the vmimage paths list only versions replicated to the location by now, as bare arrays', async () => {
    const base = `${VMIMAGE('westus')}/Canonical/artifacttypes/vmimage/offers/ubuntu-24_04-lts/skus/server/versions`;
    const all = await call(s.url, 'GET', `${base}?${AV}`);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.deepEqual(names(all.body), ['24.04.202601010', '24.04.202602010'], 'the version whose replication completes in 30 days is not listed yet');
    assert.equal(all.body[0].location, 'westus');
    assert.match(all.body[0].id, /\/Publishers\/Canonical\/ArtifactTypes\/VMImage\/Offers\/ubuntu-24_04-lts\/Skus\/server\/Versions\/24\.04\.202601010$/);
    assert.equal(all.body[0].properties, undefined);
    const top = await call(s.url, 'GET', `${base}?${AV}&$orderby=name%20desc&$top=1&$expand=properties`);
    assert.deepEqual(names(top.body), ['24.04.202602010']);
    assert.equal(top.body[0].properties.osDiskImage.operatingSystem, 'Linux');
    const one = await call(s.url, 'GET', `${base}/24.04.202601010?${AV}`);
    assert.equal(one.body.properties.hyperVGeneration, 'V2');
    assert.equal((await call(s.url, 'GET', `${base}/24.04.202603010?${AV}`)).status, 404, 'not replicated yet');
    assert.equal((await call(s.url, 'GET', `${VMIMAGE('eastus')}/Canonical/artifacttypes/vmimage/offers/ubuntu-24_04-lts/skus/server/versions/24.04.202601010?${AV}`)).body.error.code, 'ArtifactNotFound');
    assert.deepEqual(names((await call(s.url, 'GET', `${VMIMAGE('westus')}/canonical/artifacttypes/vmimage/offers?${AV}`)).body), ['ubuntu-24_04-lts']);
    assert.deepEqual(names((await call(s.url, 'GET', `${VMIMAGE('westus')}/Canonical/artifacttypes/vmimage/offers/ubuntu-24_04-lts/skus?${AV}`)).body), ['server']);
    assert.ok(names((await call(s.url, 'GET', `${VMIMAGE('West US')}?${AV}`)).body).includes('Canonical'));
    assert.equal((await call(s.url, 'GET', `${VMIMAGE('eastus')}/Canonical/artifacttypes/vmimage/offers?${AV}`)).status, 404, 'nothing replicated to eastus');
    assert.equal((await call(s.url, 'GET', `${base}?${AV}&$top=0`)).status, 400);
    assert.equal((await call(s.url, 'GET', `${base}?${AV}&$orderby=date`)).status, 400);
    assert.equal((await call(s.url, 'GET', base)).body.error.code, 'MissingApiVersionParameter');
  });

  test('R64: the gallery version shows its target regions and their replication state', async () => {
    const v = await call(s.url, 'GET', `${GALLERY_ID}/images/web/versions/1.0.0?api-version=2026-03-02`);
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.type, 'Microsoft.Compute/galleries/images/versions');
    assert.deepEqual(v.body.properties.publishingProfile.targetRegions.map((r: { name: string }) => r.name), ['eastus', 'westus']);
    assert.equal(v.body.properties.replicationStatus.aggregatedState, 'InProgress');
    assert.deepEqual(v.body.properties.replicationStatus.summary.map((r: { region: string; state: string }) => `${r.region}:${r.state}`), ['eastus:Replicating', 'westus:Completed']);
    const list = await call(s.url, 'GET', `${GALLERY_ID}/images/web/versions?api-version=2026-03-02`);
    assert.deepEqual(names(list.body.value), ['1.0.0']);
    assert.equal((await call(s.url, 'GET', `${GALLERY_ID}/images/db/versions?api-version=2026-03-02`)).status, 404);
  });

  test('a platform image at latest resolves to the newest version in the region: exactVersion, read-only', async () => {
    const put = await call(s.url, 'PUT', `${VMSS}/latest-set?${AV}`, setBody({ ...ubuntu(), exactVersion: '1.2.3' }));
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.properties.virtualMachineProfile.storageProfile.imageReference.exactVersion, '24.04.202602010');
    const got = await call(s.url, 'GET', `${VMSS}/latest-set?${AV}`);
    assert.deepEqual(got.body.properties.virtualMachineProfile.storageProfile.imageReference, { ...ubuntu(), exactVersion: '24.04.202602010' });
    // A PATCH that leaves the image alone keeps its exactVersion.
    const patch = await call(s.url, 'PATCH', `${VMSS}/latest-set?${AV}`, { tags: { a: 'b' } });
    assert.equal(patch.body.properties.virtualMachineProfile.storageProfile.imageReference.exactVersion, '24.04.202602010');
  });

  test('bad input: an image that does not exist, or is not replicated to the region, is a 404 with the ARM code; nothing is created', async () => {
    const cases: Array<[string, Record<string, unknown>, string, string, RegExp]> = [
      ['unknown-offer', { ...ubuntu(), offer: 'ubuntu-99' }, 'westus', 'PlatformImageNotFound', /Canonical:ubuntu-99:server:latest/],
      ['unknown-version', ubuntu('24.04.1'), 'westus', 'PlatformImageNotFound', /24\.04\.1/],
      ['not-yet-replicated', ubuntu('24.04.202603010'), 'westus', 'PlatformImageNotFound', /not replicated to westus/],
      ['nothing-in-region', ubuntu(), 'eastus', 'PlatformImageNotFound', /eastus/],
      ['gallery-not-replicated', { id: `${GALLERY_ID}/images/web/versions/1.0.0` }, 'eastus', 'GalleryImageNotFound', /not available in eastus region\. Please contact image owner to replicate/],
      ['gallery-latest-not-replicated', { id: `${GALLERY_ID}/images/web` }, 'eastus', 'GalleryImageNotFound', /eastus/],
      ['unknown-gallery', { id: `/subscriptions/${SUB}/resourceGroups/images/providers/Microsoft.Compute/galleries/nope/images/web` }, 'westus', 'GalleryImageNotFound', /nope/],
      ['unknown-definition', { id: `${GALLERY_ID}/images/db/versions/1.0.0` }, 'westus', 'GalleryImageNotFound', /db/],
    ];
    for (const [name, ref, location, code, message] of cases) {
      const r = await call(s.url, 'PUT', `${VMSS}/${name}?${AV}`, setBody(ref, {}, location));
      assert.equal(r.status, 404, `${name}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, name);
      assert.equal(r.body.error.target, 'properties.virtualMachineProfile.storageProfile.imageReference', name);
      assert.match(r.body.error.message, message, name);
      assert.equal((await call(s.url, 'GET', `${VMSS}/${name}?${AV}`)).status, 404, `${name}: nothing was created`);
    }
    const malformed = await call(s.url, 'PUT', `${VMSS}/malformed?${AV}`, setBody({ publisher: 'Canonical', offer: 'ubuntu-24_04-lts' }));
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.target, 'properties.virtualMachineProfile.storageProfile.imageReference.sku');
    const twice = await call(s.url, 'PUT', `${VMSS}/malformed?${AV}`, setBody({ ...ubuntu(), id: `${GALLERY_ID}/images/web` }));
    assert.equal(twice.status, 400);
  });

  test('R64: a gallery image resolves in a region it is replicated to; a bad PATCH changes nothing', async () => {
    const put = await call(s.url, 'PUT', `${VMSS}/gallery-set?${AV}`, setBody({ id: `${GALLERY_ID}/images/web` }));
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.properties.virtualMachineProfile.storageProfile.imageReference.exactVersion, '1.0.0');
    const before = await call(s.url, 'GET', `${VMSS}/gallery-set?${AV}`);
    const bad = await call(s.url, 'PATCH', `${VMSS}/gallery-set?${AV}`, { tags: { changed: 'yes' }, properties: { virtualMachineProfile: { storageProfile: { imageReference: { id: `${GALLERY_ID}/images/web/versions/2.0.0` } } } } });
    assert.equal(bad.status, 404);
    assert.equal(bad.body.error.code, 'GalleryImageNotFound');
    assert.deepEqual((await call(s.url, 'GET', `${VMSS}/gallery-set?${AV}`)).body, before.body, 'nothing changed');
  });

  test('an image of a publisher the catalog does not hold is stored unmanaged: no exactVersion, no automatic OS upgrade', async () => {
    const legacy = { publisher: 'Contoso', offer: 'legacy', sku: 'v1', version: 'latest' };
    const put = await call(s.url, 'PUT', `${VMSS}/legacy-set?${AV}`, setBody(legacy));
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.deepEqual(put.body.properties.virtualMachineProfile.storageProfile.imageReference, legacy);
    const enable = await call(s.url, 'PATCH', `${VMSS}/legacy-set?${AV}`, { properties: { upgradePolicy: { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } } } });
    assert.equal(enable.status, 400);
    assert.equal(enable.body.error.target, 'properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade');
    assert.equal((await call(s.url, 'GET', `${VMSS}/legacy-set?${AV}`)).body.properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade, false);
    const pinned = await call(s.url, 'PUT', `${VMSS}/pinned-auto?${AV}`, setBody(ubuntu('24.04.202601010'), { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } }));
    assert.equal(pinned.status, 400, 'automatic OS upgrade needs latest');
    assert.match(pinned.body.error.message, /latest/);
  });

  test('R63: the automatic OS upgrade policy is stored apart from the upgrade mode, every boolean defaulting to false', async () => {
    const put = await call(s.url, 'PUT', `${VMSS}/auto-os?${AV}`, setBody(ubuntu(), { mode: 'Manual', automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true, osRollingUpgradeDeferral: true } }));
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const policy = (await call(s.url, 'GET', `${VMSS}/auto-os?${AV}`)).body.properties.upgradePolicy;
    assert.equal(policy.mode, 'Manual');
    assert.deepEqual(policy.automaticOSUpgradePolicy, { enableAutomaticOSUpgrade: true, disableAutomaticRollback: false, useRollingUpgradePolicy: false, osRollingUpgradeDeferral: true });
    // Changing the mode leaves the OS policy as it is, and the other way round.
    await call(s.url, 'PATCH', `${VMSS}/auto-os?${AV}`, { properties: { upgradePolicy: { mode: 'Automatic' } } });
    const afterMode = (await call(s.url, 'GET', `${VMSS}/auto-os?${AV}`)).body.properties.upgradePolicy;
    assert.deepEqual([afterMode.mode, afterMode.automaticOSUpgradePolicy.enableAutomaticOSUpgrade], ['Automatic', true]);
    await call(s.url, 'PATCH', `${VMSS}/auto-os?${AV}`, { properties: { upgradePolicy: { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: false } } } });
    const afterOs = (await call(s.url, 'GET', `${VMSS}/auto-os?${AV}`)).body.properties.upgradePolicy;
    assert.deepEqual([afterOs.mode, afterOs.automaticOSUpgradePolicy.enableAutomaticOSUpgrade, afterOs.automaticOSUpgradePolicy.osRollingUpgradeDeferral], ['Automatic', false, true]);
  });

  test('osRollingUpgrade is refused unless the set follows a platform or gallery image at latest (as Azure refuses it)', async () => {
    const managed = await call(s.url, 'PUT', `${VMSS}/managed-image?${AV}`, setBody({ id: `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/images/golden` }));
    assert.equal(managed.status, 201, JSON.stringify(managed.body));
    const notPlatform = await call(s.url, 'POST', `${VMSS}/managed-image/osRollingUpgrade?${AV}`);
    assert.equal(notPlatform.status, 409);
    assert.match(notPlatform.body.error.message, /unless the Virtual Machine Scale Set is using a Platform Image/);
    assert.equal((await call(s.url, 'PUT', `${VMSS}/pinned?${AV}`, setBody(ubuntu('24.04.202601010')))).status, 201);
    const pinned = await call(s.url, 'POST', `${VMSS}/pinned/osRollingUpgrade?${AV}`);
    assert.equal(pinned.status, 409);
    assert.match(pinned.body.error.message, /imageReference\.version set to latest/);
    // A set at latest is accepted (R65); it already runs the newest version, so the operation has nothing to do.
    const latest = await call(s.url, 'POST', `${VMSS}/latest-set/osRollingUpgrade?${AV}`);
    assert.equal(latest.status, 202, JSON.stringify(latest.body));
  });

  test('the Azure SDK lists and gets image versions and reads back exactVersion', async () => {
    const client = new ComputeManagementClient(credential, SUB, { endpoint: s.url, updateIntervalInMs: 20 } as never);
    const listed = await client.virtualMachineImages.list('westus', 'Canonical', 'ubuntu-24_04-lts', 'server', { top: 1, orderby: 'name desc' });
    assert.deepEqual(listed.map((v) => v.name), ['24.04.202602010']);
    const image = await client.virtualMachineImages.get('westus', 'Canonical', 'ubuntu-24_04-lts', 'server', '24.04.202601010');
    assert.equal(image.osDiskImage?.operatingSystem, 'Linux');
    assert.equal(image.automaticOSUpgradeProperties?.automaticOSUpgradeSupported, true);
    const withProperties = await client.virtualMachineImages.listWithProperties('westus', 'Canonical', 'ubuntu-24_04-lts', 'server', 'Properties', { orderby: 'name desc' });
    assert.deepEqual(withProperties.map((v) => [v.name, v.hyperVGeneration]), [['24.04.202602010', 'V2'], ['24.04.202601010', 'V2']]);
    const offers = await client.virtualMachineImages.listOffers('westus', 'Canonical');
    assert.deepEqual(offers.map((o) => o.name), ['ubuntu-24_04-lts']);
    await assert.rejects(client.virtualMachineImages.get('westus', 'Canonical', 'ubuntu-24_04-lts', 'server', '24.04.202603010'), (e: { statusCode?: number }) => e.statusCode === 404);
    const vmss = await client.virtualMachineScaleSets.createOrUpdate('rg1', 'sdk-set', {
      location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 1 },
      upgradePolicy: { mode: 'Manual', automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } },
      virtualMachineProfile: { storageProfile: { imageReference: ubuntu() } },
    } as never) as { virtualMachineProfile?: { storageProfile?: { imageReference?: { exactVersion?: string } } }; upgradePolicy?: { automaticOSUpgradePolicy?: { enableAutomaticOSUpgrade?: boolean } } };
    assert.equal(vmss.virtualMachineProfile?.storageProfile?.imageReference?.exactVersion, '24.04.202602010');
    assert.equal(vmss.upgradePolicy?.automaticOSUpgradePolicy?.enableAutomaticOSUpgrade, true);
    const version = await client.galleryImageVersions.get('images', 'corp_gallery', 'web', '1.0.0') as { replicationStatus?: { summary?: Array<{ region?: string; state?: string }> }; publishingProfile?: { targetRegions?: Array<{ name: string }> } };
    assert.deepEqual(version.publishingProfile?.targetRegions?.map((r) => r.name), ['eastus', 'westus']);
    assert.equal(version.replicationStatus?.summary?.find((r) => r.region === 'westus')?.state, 'Completed');
    await assert.rejects(
      client.virtualMachineScaleSets.createOrUpdate('rg1', 'sdk-bad', { location: 'westus', virtualMachineProfile: { storageProfile: { imageReference: { ...ubuntu(), sku: 'desktop' } } } } as never),
      (e: { statusCode?: number; code?: string }) => e.statusCode === 404 && e.code === 'PlatformImageNotFound',
    );
  });
});

describe('the image catalog survives a restart', () => {
  test('versions, replications and galleries are read back from the database', async () => {
    const first = await startTestServer();
    const dataDir = first.dir;
    let second: TestServer | undefined;
    try {
      assert.equal((await call(first.url, 'PUT', `${UBUNTU}/24.04.202601010`, { osType: 'Linux', hyperVGeneration: 'V1' }, PUBLISHER_TOKEN)).status, 201);
      assert.equal((await call(first.url, 'PUT', `${UBUNTU}/24.04.202601010/replications/westus`, {}, PUBLISHER_TOKEN)).status, 201);
      assert.equal((await call(first.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/images?${AV}`, { location: 'westus' })).status, 201);
      assert.equal((await call(first.url, 'PUT', GALLERY, { location: 'westus' }, PUBLISHER_TOKEN)).status, 201);
      assert.equal((await call(first.url, 'PUT', `${GALLERY}/images/web`, { osType: 'Linux', identifier: { publisher: 'Contoso', offer: 'web', sku: 'v1' } }, PUBLISHER_TOKEN)).status, 201);
      assert.equal((await call(first.url, 'PUT', `${GALLERY}/images/web/versions/1.0.0`, { excludeFromLatest: true }, PUBLISHER_TOKEN)).status, 201);
      const before = [(await call(first.url, 'GET', UBUNTU)).body, (await call(first.url, 'GET', GALLERY)).body];
      await first.close();
      second = await startTestServer({ dataDir });
      const afterRestart = [(await call(second.url, 'GET', UBUNTU)).body, (await call(second.url, 'GET', GALLERY)).body];
      assert.deepEqual(afterRestart, before);
      const listed = await call(second.url, 'GET', `${VMIMAGE('westus')}/Canonical/artifacttypes/vmimage/offers/ubuntu-24_04-lts/skus/server/versions/24.04.202601010?${AV}`);
      assert.equal(listed.body.properties.hyperVGeneration, 'V1');
      assert.equal((await call(second.url, 'PUT', `${UBUNTU}/24.04.202601010`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 409, 'still immutable after the restart');
    } finally {
      await first.close();
      await second?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
