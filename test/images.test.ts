/**
 * The image catalog (src/catalog/images.ts): platform and gallery images, per-region replication and
 * what `latest` means in a region at an instant (R64); image versions; `imageReference` parsing.
 * Tables for the cases, fast-check properties for the rules.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compareImageVersions, isImageVersion } from '../src/model/image-version.js';
import {
  followsLatest, parseImageReference, ImageReferenceFormatError,
} from '../src/model/image-reference.js';
import type { ImageRef } from '../src/model/image-reference.js';
import { ImageCatalog, ImageCatalogError, isAvailable, newestAvailable } from '../src/catalog/images.js';

const LINUX = { osType: 'Linux' as const, hyperVGeneration: 'V2' as const, automaticOSUpgradeSupported: true };
const UBUNTU = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server' };
const platformRef = (version: string): ImageRef => ({ kind: 'platform', ...UBUNTU, version });
const G = { subscription: 'sub1', resourceGroup: 'rg1', gallery: 'gal' };
const galleryRef = (version: string): ImageRef => ({ kind: 'gallery', ...G, image: 'web', version });
const T0 = Date.UTC(2026, 0, 1);
const H = 3_600_000;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ImageCatalogError) return err.code;
    throw err;
  }
  return 'ok';
}

/** Ubuntu 1.0.0 in westus at T0, 1.1.0 in westus at T0+2h and eastus at T0+5h; a gallery image 'web' with 2.0.0 in westus only. */
function sample(): ImageCatalog {
  const c = new ImageCatalog();
  c.publishPlatformVersion(UBUNTU, '1.0.0', LINUX, T0);
  c.replicate(platformRef('1.0.0'), 'westus', T0);
  c.publishPlatformVersion(UBUNTU, '1.1.0', LINUX, T0 + H);
  c.replicate(platformRef('1.1.0'), 'West US', T0 + 2 * H);
  c.replicate(platformRef('1.1.0'), 'eastus', T0 + 5 * H);
  c.putGallery({ subscription: 'sub1', resourceGroup: 'rg1', name: 'gal', location: 'westus' });
  c.putGalleryImage(G, 'web', { osType: 'Linux', hyperVGeneration: 'V2', identifier: { publisher: 'Contoso', offer: 'web', sku: 'v1' } });
  c.publishGalleryVersion({ ...G, image: 'web' }, '2.0.0', { excludeFromLatest: false }, T0);
  c.replicate(galleryRef('2.0.0'), 'westus', T0 + H);
  return c;
}

describe('image versions', () => {
  test('three dot-separated integers, compared numerically, leading zeros allowed', () => {
    for (const v of ['22.04.202601010', '1.0.0', '0.0.0', '2147483647.0.1']) assert.ok(isImageVersion(v), v);
    for (const v of ['1.0', '1.0.0.0', 'latest', '1.a.0', '', '1..0', '2147483648.0.0', ' 1.0.0']) assert.ok(!isImageVersion(v), v);
    assert.ok(compareImageVersions('1.10.0', '1.9.0') > 0);
    assert.ok(compareImageVersions('22.04.202601010', '22.04.202512010') > 0);
    assert.equal(compareImageVersions('22.04.1', '22.4.1'), 0);
  });

  test('the order is the numeric order of the parts (property)', () => {
    const part = fc.integer({ min: 0, max: 2 ** 31 - 1 });
    const version = fc.tuple(part, part, part);
    fc.assert(fc.property(version, version, (a, b) => {
      const sign = Math.sign(compareImageVersions(a.join('.'), b.join('.')));
      const expected = Math.sign(a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
      assert.equal(sign, expected);
      assert.equal(Math.sign(compareImageVersions(b.join('.'), a.join('.'))), -expected);
    }), { seed: 64 });
  });
});

describe('imageReference parsing', () => {
  const cases: Array<[string, object, string]> = [
    ['platform, latest by default', { publisher: 'Canonical', offer: 'o', sku: 's' }, 'platform latest'],
    ['platform, pinned', { publisher: 'Canonical', offer: 'o', sku: 's', version: '1.0.0' }, 'platform 1.0.0'],
    ['gallery definition (latest)', { id: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/d' }, 'gallery latest'],
    ['gallery version, any case', { id: '/SUBSCRIPTIONS/s/resourcegroups/r/providers/microsoft.compute/Galleries/g/Images/d/Versions/1.2.3' }, 'gallery 1.2.3'],
    ['managed image', { id: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/img' }, 'managedImage'],
    ['shared gallery', { sharedGalleryImageId: '/SharedGalleries/x/Images/y/Versions/latest' }, 'sharedGallery'],
    ['community gallery', { communityGalleryImageId: '/CommunityGalleries/x/Images/y/Versions/latest' }, 'communityGallery'],
  ];
  for (const [name, input, expected] of cases) {
    test(`reads ${name}`, () => {
      const ref = parseImageReference(input);
      const version = 'version' in ref ? ` ${ref.version}` : '';
      assert.equal(`${ref.kind}${version}`, expected);
    });
  }

  const bad: Array<[string, object, string]> = [
    ['nothing', {}, 'imageReference'],
    ['two sources', { publisher: 'a', offer: 'b', sku: 'c', id: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/i' }, 'imageReference'],
    ['no sku', { publisher: 'a', offer: 'b' }, 'sku'],
    ['empty offer', { publisher: 'a', offer: '', sku: 'c' }, 'offer'],
    ['an id that is no image', { id: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/x' }, 'id'],
    ['a version beside a gallery id', { id: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/d', version: '1.0.0' }, 'version'],
  ];
  for (const [name, input, field] of bad) {
    test(`refuses ${name}, naming ${field}`, () => {
      assert.throws(() => parseImageReference(input), (e: unknown) => e instanceof ImageReferenceFormatError && e.field === field);
    });
  }

  test('only platform and gallery images at latest follow latest', () => {
    assert.equal(followsLatest(platformRef('LATEST')), true);
    assert.equal(followsLatest(platformRef('1.0.0')), false);
    assert.equal(followsLatest(galleryRef('latest')), true);
    assert.equal(followsLatest({ kind: 'sharedGallery', id: 'x' }), false);
  });
});

describe('image catalog', () => {
  test('R64: a version is available in a region exactly from its replication there', () => {
    const c = sample();
    const v = c.platformImage('canonical', 'UBUNTU-24_04-LTS', 'Server')!.versions[1]!;
    assert.equal(isAvailable(v, 'westus', T0 + 2 * H - 1), false);
    assert.equal(isAvailable(v, 'westus', T0 + 2 * H), true);
    assert.equal(isAvailable(v, 'eastus', T0 + 4 * H), false);
    assert.equal(isAvailable(v, 'northeurope', T0 + 100 * H), false);
  });

  const resolutions: Array<[string, ImageRef, string, number, string]> = [
    ['R64: latest before the newer version reaches the region', platformRef('latest'), 'westus', T0 + H, '1.0.0'],
    ['R64: latest once it has', platformRef('latest'), 'westus', T0 + 2 * H, '1.1.0'],
    ['latest, names in any case', { kind: 'platform', publisher: 'CANONICAL', offer: 'Ubuntu-24_04-LTS', sku: 'SERVER', version: 'Latest' }, 'West US', T0 + 3 * H, '1.1.0'],
    ['a pinned version', platformRef('1.0.0'), 'westus', T0 + 3 * H, '1.0.0'],
    ['R64: a pinned version not yet replicated', platformRef('1.1.0'), 'eastus', T0 + 4 * H, 'NotReplicated'],
    ['R64: latest where nothing is replicated yet', platformRef('latest'), 'eastus', T0 + 4 * H, 'NoVersionInRegion'],
    ['an unknown publisher', { kind: 'platform', publisher: 'Nobody', offer: 'o', sku: 's', version: 'latest' }, 'westus', T0, 'PublisherNotFound'],
    ['an unknown offer', { kind: 'platform', publisher: 'Canonical', offer: 'nope', sku: 's', version: 'latest' }, 'westus', T0, 'OfferNotFound'],
    ['an unknown sku', { kind: 'platform', publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'nope', version: 'latest' }, 'westus', T0, 'SkuNotFound'],
    ['an unknown version', platformRef('9.9.9'), 'westus', T0 + 9 * H, 'VersionNotFound'],
    ['a gallery image at latest', galleryRef('latest'), 'westus', T0 + H, '2.0.0'],
    ['R64: a gallery version not replicated to the region', galleryRef('2.0.0'), 'eastus', T0 + 9 * H, 'NotReplicated'],
    ['R64: a gallery version before its replication completes', galleryRef('2.0.0'), 'westus', T0, 'NotReplicated'],
    ['an unknown gallery', { kind: 'gallery', subscription: 'sub1', resourceGroup: 'rg1', gallery: 'other', image: 'web', version: 'latest' }, 'westus', T0, 'GalleryNotFound'],
    ['an unknown image definition', { kind: 'gallery', ...G, image: 'db', version: 'latest' }, 'westus', T0, 'ImageDefinitionNotFound'],
    ['a shared gallery image', { kind: 'sharedGallery', id: '/SharedGalleries/x/Images/y' }, 'westus', T0, 'UnsupportedReference'],
  ];
  for (const [name, ref, region, at, expected] of resolutions) {
    test(`resolve: ${name} → ${expected}`, () => {
      const c = sample();
      let got: string;
      try {
        got = c.resolve(ref, region, at).version;
      } catch (err) {
        if (!(err instanceof ImageCatalogError)) throw err;
        got = err.code;
      }
      assert.equal(got, expected);
    });
  }

  test('versions are immutable: the same again is unchanged, other content a Conflict', () => {
    const c = sample();
    assert.equal(c.publishPlatformVersion(UBUNTU, '1.0.0', LINUX, T0 + 9 * H).outcome, 'unchanged');
    assert.equal(c.platformImage('Canonical', 'ubuntu-24_04-lts', 'server')!.versions[0]!.publishedAtMs, T0, 'the repeat keeps the first publication');
    assert.equal(codeOf(() => c.publishPlatformVersion(UBUNTU, '1.0.0', { ...LINUX, hyperVGeneration: 'V1' }, T0)), 'Conflict');
    assert.equal(codeOf(() => c.publishPlatformVersion(UBUNTU, '1.00.0', LINUX, T0)), 'Conflict', 'another spelling of a published version');
    assert.equal(codeOf(() => c.publishPlatformVersion(UBUNTU, '1.0', LINUX, T0)), 'InvalidVersion');
    assert.equal(codeOf(() => c.publishGalleryVersion({ ...G, image: 'web' }, '2.0.0', { excludeFromLatest: true }, T0)), 'Conflict');
    assert.equal(codeOf(() => c.putGalleryImage(G, 'WEB', { osType: 'Windows', hyperVGeneration: 'V2', identifier: { publisher: 'Contoso', offer: 'web', sku: 'v1' } })), 'Conflict');
    assert.equal(codeOf(() => c.putGallery({ subscription: 'sub1', resourceGroup: 'rg1', name: 'GAL', location: 'eastus' })), 'Conflict');
    assert.equal(codeOf(() => c.publishGalleryVersion({ ...G, image: 'db' }, '1.0.0', { excludeFromLatest: false }, T0)), 'ImageDefinitionNotFound');
  });

  test('replications: started, then completed once; a completed one cannot move', () => {
    const c = sample();
    assert.equal(c.replicate(platformRef('1.0.0'), 'northeurope', null).outcome, 'created');
    assert.equal(c.replicate(platformRef('1.0.0'), 'northeurope', null).outcome, 'unchanged');
    assert.equal(codeOf(() => c.resolve(platformRef('1.0.0'), 'northeurope', T0 + 99 * H)), 'NotReplicated', 'under way is not available');
    assert.equal(c.replicate(platformRef('1.0.0'), 'North Europe', T0 + 3 * H).outcome, 'updated');
    assert.equal(c.replicate(platformRef('1.0.0'), 'northeurope', T0 + 3 * H).outcome, 'unchanged');
    assert.equal(codeOf(() => c.replicate(platformRef('1.0.0'), 'northeurope', T0 + 4 * H)), 'Conflict');
    assert.equal(codeOf(() => c.replicate(platformRef('1.0.0'), 'northeurope', null)), 'Conflict');
    assert.equal(codeOf(() => c.replicate(platformRef('1.1.0'), 'japaneast', T0)), 'InvalidReplication', 'before its publication');
    assert.equal(codeOf(() => c.replicate(platformRef('latest'), 'japaneast', T0)), 'InvalidVersion');
    assert.equal(codeOf(() => c.replicate(platformRef('3.0.0'), 'japaneast', T0)), 'VersionNotFound');
  });

  test('R64: excludeFromLatest keeps a gallery version out of latest but it can be pinned', () => {
    const c = sample();
    c.publishGalleryVersion({ ...G, image: 'web' }, '3.0.0', { excludeFromLatest: true }, T0);
    c.replicate(galleryRef('3.0.0'), 'westus', T0 + H);
    assert.equal(c.resolve(galleryRef('latest'), 'westus', T0 + 2 * H).version, '2.0.0');
    assert.equal(c.resolve(galleryRef('3.0.0'), 'westus', T0 + 2 * H).version, '3.0.0');
  });

  test('nextAvailabilityAfter names the next completion in the region', () => {
    const c = sample();
    assert.equal(c.nextAvailabilityAfter(platformRef('latest'), 'westus', T0), T0 + 2 * H);
    assert.equal(c.nextAvailabilityAfter(platformRef('latest'), 'eastus', T0), T0 + 5 * H);
    assert.equal(c.nextAvailabilityAfter(platformRef('latest'), 'westus', T0 + 2 * H), null);
  });

  test('toJSON and fromJSON keep everything (through JSON text)', () => {
    const c = sample();
    const back = ImageCatalog.fromJSON(JSON.parse(JSON.stringify(c)));
    assert.deepEqual(back.toJSON(), c.toJSON());
    assert.equal(back.resolve(galleryRef('latest'), 'westus', T0 + H).version, '2.0.0');
  });
});

// ---- properties ----------------------------------------------------------------------------------------

const REGIONS = ['westus', 'eastus', 'northeurope'];
interface Spec { version: [number, number, number]; publishedAt: number; replications: Array<{ region: string; after: number | null }> }
const spec: fc.Arbitrary<Spec> = fc.record({
  version: fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: 3 }), fc.nat({ max: 20 })),
  publishedAt: fc.nat({ max: 100 }),
  replications: fc.uniqueArray(fc.record({ region: fc.constantFrom(...REGIONS), after: fc.option(fc.nat({ max: 100 }), { nil: null }) }), { selector: (r) => r.region, maxLength: 3 }),
});

function build(specs: Spec[]): ImageCatalog {
  const c = new ImageCatalog();
  for (const s of specs) {
    const version = s.version.join('.');
    if (c.publishPlatformVersion(UBUNTU, version, LINUX, T0 + s.publishedAt * H).outcome !== 'created') continue;
    for (const r of s.replications) c.replicate(platformRef(version), r.region, r.after === null ? null : T0 + (s.publishedAt + r.after) * H);
  }
  return c;
}

function latestOrNull(c: ImageCatalog, region: string, atMs: number): string | null {
  try {
    return c.resolve(platformRef('latest'), region, atMs).version;
  } catch (err) {
    if (err instanceof ImageCatalogError && err.code === 'NoVersionInRegion') return null;
    throw err;
  }
}

describe('image catalog properties', () => {
  const instant = fc.nat({ max: 260 }).map((h) => T0 + h * H);

  test('R64: latest never returns a version not yet replicated to the region at that instant', () => {
    fc.assert(fc.property(fc.array(spec, { minLength: 1, maxLength: 8 }), fc.constantFrom(...REGIONS), instant, (specs, region, at) => {
      const c = build(specs);
      const got = latestOrNull(c, region, at);
      const versions = c.platformImage(UBUNTU.publisher, UBUNTU.offer, UBUNTU.sku)!.versions;
      if (got === null) {
        assert.ok(versions.every((v) => !isAvailable(v, region, at)), 'nothing available, so no latest');
        return;
      }
      const v = versions.find((x) => x.version === got)!;
      assert.ok(isAvailable(v, region, at));
      assert.ok(versions.every((x) => !isAvailable(x, region, at) || compareImageVersions(x.version, got) <= 0), 'and it is the newest available');
    }), { seed: 6401, numRuns: 300 });
  });

  test('R64: latest is monotone in time (a later instant never sees an older latest)', () => {
    fc.assert(fc.property(fc.array(spec, { minLength: 1, maxLength: 8 }), fc.constantFrom(...REGIONS), instant, instant, (specs, region, a, b) => {
      const c = build(specs);
      const [early, late] = a <= b ? [a, b] : [b, a];
      const x = latestOrNull(c, region, early);
      const y = latestOrNull(c, region, late);
      if (x !== null) assert.ok(y !== null && compareImageVersions(y, x) >= 0, `${x} at ${early} then ${y} at ${late}`);
    }), { seed: 6402, numRuns: 300 });
  });

  test('R64: latest changes only at a replication completion (nextAvailabilityAfter)', () => {
    fc.assert(fc.property(fc.array(spec, { minLength: 1, maxLength: 8 }), fc.constantFrom(...REGIONS), instant, (specs, region, at) => {
      const c = build(specs);
      const next = c.nextAvailabilityAfter(platformRef('latest'), region, at);
      const until = next === null ? at + 1000 * H : next - 1;
      assert.equal(latestOrNull(c, region, until), latestOrNull(c, region, at));
    }), { seed: 6403, numRuns: 200 });
  });

  test('a catalog read back from JSON answers every query the same', () => {
    fc.assert(fc.property(fc.array(spec, { maxLength: 8 }), fc.constantFrom(...REGIONS), instant, (specs, region, at) => {
      const c = build([{ version: [0, 0, 0], publishedAt: 0, replications: [] }, ...specs]);
      const back = ImageCatalog.fromJSON(JSON.parse(JSON.stringify(c.toJSON())));
      assert.equal(latestOrNull(back, region, at), latestOrNull(c, region, at));
      const versions = c.platformImage(UBUNTU.publisher, UBUNTU.offer, UBUNTU.sku)!.versions;
      assert.equal(newestAvailable(back.platformImage(UBUNTU.publisher, UBUNTU.offer, UBUNTU.sku)!.versions, region, at)?.version, newestAvailable(versions, region, at)?.version);
    }), { seed: 6404, numRuns: 100 });
  });
});
