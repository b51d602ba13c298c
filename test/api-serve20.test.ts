/**
 * `serve` from outside, session 20: operation status records expire (a poll of one removed answers 404),
 * `GET /phasewise/events` refuses parameters it does not take, and the image catalog's quotas. Each bad
 * request is checked to change nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImageCatalog, IMAGE_QUOTAS } from '../src/catalog/images.js';
import type { ImageCatalogError, ImageCatalogJson } from '../src/catalog/images.js';
import { OPERATION_RETENTION_MS } from '../src/api/arm/operations.js';
import { call, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2026-03-01';
const RG = `/subscriptions/${SUB}/resourcegroups/rg1`;
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines`;
const GALLERIES = `/phasewise/subscriptions/${SUB}/resourceGroups/rg1/galleries`;

describe('serve from outside: session 20', () => {
  let s: TestServer;
  let wall = Date.now();
  before(async () => {
    s = await startTestServer({ wallNow: () => wall });
    assert.equal((await call(s.url, 'PUT', `${RG}?${AV}`, { location: 'westus' })).status, 201);
  });
  after(async () => s?.stop());

  test('a finished operation is polled for a day; then, at the next write, it is removed and its status and monitor URLs answer 404 OperationNotFound', async () => {
    assert.equal((await call(s.url, 'PUT', `${VM}/gone1?${AV}`, { location: 'westus' })).status, 201);
    const del = await call(s.url, 'DELETE', `${VM}/gone1?${AV}`);
    assert.equal(del.status, 200);
    const status = del.headers.get('azure-asyncoperation')!.slice(s.url.length);
    const monitor = del.headers.get('location')!.slice(s.url.length);
    assert.equal((await call(s.url, 'GET', status)).body.status, 'Succeeded');
    wall += OPERATION_RETENTION_MS - 60_000;
    // A write within the day sweeps (the last sweep was more than a minute ago) and keeps it.
    assert.equal((await call(s.url, 'PUT', `${VM}/gone2?${AV}`, { location: 'westus' })).status, 201);
    assert.equal((await call(s.url, 'DELETE', `${VM}/gone2?${AV}`)).status, 200);
    assert.equal((await call(s.url, 'GET', status)).body.status, 'Succeeded', 'within its retention');
    wall += 2 * 60_000;
    assert.equal((await call(s.url, 'PUT', `${VM}/gone3?${AV}`, { location: 'westus' })).status, 201);
    const del3 = await call(s.url, 'DELETE', `${VM}/gone3?${AV}`);
    assert.equal(del3.status, 200);
    for (const url of [status, monitor]) {
      const gone = await call(s.url, 'GET', url);
      assert.equal(gone.status, 404, url);
      assert.equal(gone.body.error.code, 'OperationNotFound');
    }
    // The newer operations are still there.
    assert.equal((await call(s.url, 'GET', del3.headers.get('azure-asyncoperation')!.slice(s.url.length))).body.status, 'Succeeded');
  });

  test('events: a parameter the route does not take is refused by name (`?afer=5` read the log from its start); names in any casing are taken', async () => {
    const typo = await call(s.url, 'GET', '/phasewise/events?afer=5');
    assert.equal(typo.status, 400);
    assert.equal(typo.body.error.code, 'InvalidQueryParameter');
    assert.equal(typo.body.error.target, 'afer');
    assert.match(typo.body.error.message, /'?"afer"'? is not one GET \/phasewise\/events takes; it takes after, limit, rolloutId/);
    const mixed = await call(s.url, 'GET', '/phasewise/events?After=1&LIMIT=2&rolloutid=ro-none&api-version=2026-03-01');
    assert.equal(mixed.status, 200, JSON.stringify(mixed.body));
    assert.deepEqual(mixed.body.value, []);
    const zero = await call(s.url, 'GET', '/phasewise/events?LIMIT=0');
    assert.equal(zero.body.error?.target, 'limit', 'LIMIT is read as limit (0 is below its range)');
    const proto = await call(s.url, 'GET', '/phasewise/events?__proto__=1');
    assert.equal(proto.status, 400);
    const long = await call(s.url, 'GET', `/phasewise/events?${'x'.repeat(500)}=1`);
    assert.equal(long.status, 400);
    assert.ok(long.body.error.message.length < 400, 'the name is shown cut');
  });

  test('rollouts and machines: a parameter they do not take is refused by name (`?statu=running` listed every rollout, `?prefx=` the first machines)', async () => {
    for (const [path, name] of [['/phasewise/rollouts?statu=running', 'statu'], ['/phasewise/machines?prefx=vm', 'prefx'], ['/phasewise/machines?Top=5&x=1', 'x']]) {
      const r = await call(s.url, 'GET', path!);
      assert.equal(r.status, 400, path);
      assert.equal(r.body.error.code, 'InvalidQueryParameter');
      assert.equal(r.body.error.target, name);
    }
    for (const path of ['/phasewise/rollouts?status=running&$skiptoken=0&api-version=1', '/phasewise/machines?Prefix=vm&TOP=5']) {
      assert.equal((await call(s.url, 'GET', path)).status, 200, path);
    }
  });

  test('galleries: at most 100 per subscription and region; the 101st is 409 QuotaExceeded and not stored; a repeat and another region are taken', async () => {
    const put = (name: string, location = 'westus') => call(s.url, 'PUT', `${GALLERIES}/${name}`, { location }, PUBLISHER_TOKEN);
    for (let i = 0; i < IMAGE_QUOTAS.galleriesPerSubscriptionRegion; i++) assert.equal((await put(`g${i}`)).status, 201, `g${i}`);
    const over = await put('gOver', 'West US');
    assert.equal(over.status, 409, JSON.stringify(over.body));
    assert.equal(over.body.error.code, 'QuotaExceeded');
    assert.match(over.body.error.message, /has 100 galleries in westus, the most it may \(100\); gallery 'gOver' was not created/);
    assert.equal((await call(s.url, 'GET', `${GALLERIES}/gOver`, undefined, PUBLISHER_TOKEN)).status, 404, 'nothing stored');
    assert.equal((await put('g0')).status, 200, 'a repeat of what exists is not refused');
    assert.equal((await put('gEast', 'eastus')).status, 201, 'the quota is per region');
  });
});

// ---- the catalog's quotas, on catalogs built at the bound (publishing 10,000 versions one by one is slow) ----

const version = (i: number) => ({ version: `1.0.${i}`, publishedAtMs: 0, replications: [], excludeFromLatest: false });
const definition = (name: string, versions: number) => ({
  name, osType: 'Linux' as const, hyperVGeneration: 'V2' as const, identifier: { publisher: 'p', offer: 'o', sku: name }, versions: Array.from({ length: versions }, (_, i) => version(i)),
});
const gallery = (name: string, location: string, images: ReturnType<typeof definition>[]) => ({ subscription: 'sub1', resourceGroup: 'rg', name, location, images });

function refusedForQuota(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => (err as ImageCatalogError).code === 'QuotaExceeded' && message.test((err as Error).message));
}

test('image definitions: at most 1,000 per subscription and region over all its galleries; the next is QuotaExceeded and the catalog is unchanged', () => {
  const defs = (g: number) => Array.from({ length: 500 }, (_, i) => definition(`d${g}-${i}`, 0));
  const json: ImageCatalogJson = { platform: [], galleries: [gallery('a', 'westus', defs(0)), gallery('b', 'westus', defs(1)), gallery('c', 'eastus', [])] };
  const c = ImageCatalog.fromJSON(json);
  const before = JSON.stringify(c.toJSON());
  const content = { osType: 'Linux' as const, hyperVGeneration: 'V2' as const, identifier: { publisher: 'p', offer: 'o', sku: 's' } };
  refusedForQuota(() => c.putGalleryImage({ subscription: 'sub1', resourceGroup: 'rg', gallery: 'a' }, 'one-more', content), /has 1000 image definitions in westus/);
  assert.equal(JSON.stringify(c.toJSON()), before);
  assert.equal(c.putGalleryImage({ subscription: 'sub1', resourceGroup: 'rg', gallery: 'a' }, 'd0-0', { ...content, identifier: { publisher: 'p', offer: 'o', sku: 'd0-0' } }).outcome, 'unchanged');
  assert.equal(c.putGalleryImage({ subscription: 'sub1', resourceGroup: 'rg', gallery: 'c' }, 'elsewhere', content).outcome, 'created', 'another region');
});

test('gallery image versions: at most 10,000 per subscription and region; the next is QuotaExceeded and the catalog is unchanged', () => {
  const json: ImageCatalogJson = { platform: [], galleries: [gallery('a', 'westus', [definition('x', 6_000), definition('y', 4_000)])] };
  const c = ImageCatalog.fromJSON(json);
  const before = JSON.stringify(c.toJSON());
  const y = { subscription: 'sub1', resourceGroup: 'rg', gallery: 'a', image: 'y' };
  refusedForQuota(() => c.publishGalleryVersion(y, '2.0.0', { excludeFromLatest: false }, 1), /has 10000 gallery image versions in westus/);
  assert.equal(JSON.stringify(c.toJSON()), before);
  assert.equal(c.publishGalleryVersion({ subscription: 'sub1', resourceGroup: 'rg', gallery: 'a', image: 'y' }, '1.0.7', { excludeFromLatest: false }, 1).outcome, 'unchanged');
});

test('platform images: at most 10,000 versions per image and 10,000 images; the next is QuotaExceeded and the catalog is unchanged', () => {
  const content = { osType: 'Linux' as const, hyperVGeneration: 'V2' as const, automaticOSUpgradeSupported: true };
  const full = { publisher: 'Canonical', offer: 'ubuntu', sku: 'server', versions: Array.from({ length: IMAGE_QUOTAS.versionsPerPlatformImage }, (_, i) => ({ ...version(i), ...content })) };
  const c = ImageCatalog.fromJSON({ platform: [full], galleries: [] });
  refusedForQuota(() => c.publishPlatformVersion(full, '2.0.0', content, 1), /has 10000 versions/);
  assert.equal(c.platformImage('Canonical', 'ubuntu', 'server')!.versions.length, IMAGE_QUOTAS.versionsPerPlatformImage);
  const many = Array.from({ length: IMAGE_QUOTAS.platformImages }, (_, i) => ({ publisher: 'P', offer: 'O', sku: `s${i}`, versions: [] }));
  const d = ImageCatalog.fromJSON({ platform: many, galleries: [] });
  refusedForQuota(() => d.publishPlatformVersion({ publisher: 'P', offer: 'O', sku: 'new' }, '1.0.0', content, 1), /holds 10000 platform images/);
  assert.equal(d.platformImages().length, IMAGE_QUOTAS.platformImages);
  assert.equal(d.publishPlatformVersion({ publisher: 'P', offer: 'O', sku: 's1' }, '1.0.0', content, 1).outcome, 'created', 'a version of an image already there');
});

test('a version published as 01.0.0 asked as 1.0.0: the conflict names the spelling, not "other content" (it said the content differed)', () => {
  const c = ImageCatalog.fromJSON({ platform: [], galleries: [gallery('a', 'westus', [definition('x', 0)])] });
  const ref = { subscription: 'sub1', resourceGroup: 'rg', gallery: 'a', image: 'x' };
  assert.equal(c.publishGalleryVersion(ref, '01.0.0', { excludeFromLatest: false }, 1).outcome, 'created');
  assert.throws(() => c.publishGalleryVersion(ref, '1.0.0', { excludeFromLatest: false }, 1),
    (err: unknown) => (err as ImageCatalogError).code === 'Conflict' && /'1\.0\.0' of image 'x' in gallery 'a' is published as '01\.0\.0'/.test((err as Error).message));
  assert.throws(() => c.publishGalleryVersion(ref, '01.0.0', { excludeFromLatest: true }, 1), /already published with other content/);
  const content = { osType: 'Linux' as const, hyperVGeneration: 'V2' as const, automaticOSUpgradeSupported: true };
  c.publishPlatformVersion({ publisher: 'P', offer: 'O', sku: 'S' }, '22.04.1', content, 1);
  assert.throws(() => c.publishPlatformVersion({ publisher: 'P', offer: 'O', sku: 'S' }, '22.4.1', content, 1), /'22\.4\.1' of P:O:S is published as '22\.04\.1'/);
  assert.equal(c.versionsOf({ kind: 'gallery', ...ref, version: 'latest' }).length, 1, 'nothing stored');
});
