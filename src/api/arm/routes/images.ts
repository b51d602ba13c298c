/**
 * The image catalog read the way Azure serves it (`reference/azure-api.md` §7): Compute's
 * `artifacttypes/vmimage` paths (bare JSON arrays; only what is replicated to the location by now, R64),
 * the location's publishers (extension and image publishers alike), and the gallery image definitions
 * and versions under `Microsoft.Compute/galleries` (ARM resources; lists are `{"value":[...]}`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {
  Gallery, GalleryImageDefinition, GalleryImageVersion, PlatformImage, PlatformImageVersion,
} from '../../../catalog/images.js';
import { availableVersions, regionKey } from '../../../catalog/images.js';
import { compareImageVersions } from '../../../model/image-version.js';
import { galleryIdOf } from '../../../model/image-reference.js';
import { isoOf } from '../../../engine/clock.js';
import type { ArmContext } from '../context.js';
import { queryOf } from '../context.js';
import { invalidParameter, notFound } from '../errors.js';
import { visibleVersions } from './catalog.js';

const LOCATION = '/subscriptions/:sub/providers/Microsoft.Compute/locations/:location/publishers';
const VMIMAGE = `${LOCATION}/:publisher/artifacttypes/vmimage/offers`;
const GALLERIES = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/galleries/:gallery';

type Params = { sub: string; location: string; publisher: string; offer: string; skus: string; version: string };

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const artifactMissing = (what: string) => notFound('ArtifactNotFound', `${what} was not found in this location.`);

// ---- Compute: artifacttypes/vmimage ---------------------------------------------------------------------

const publisherId = (p: Pick<Params, 'sub' | 'location'>, publisher: string) => `/Subscriptions/${p.sub}/Providers/Microsoft.Compute/Locations/${p.location}/Publishers/${publisher}`;
const offerId = (p: Params, i: PlatformImage) => `${publisherId(p, i.publisher)}/ArtifactTypes/VMImage/Offers/${i.offer}`;
const skuId = (p: Params, i: PlatformImage) => `${offerId(p, i)}/Skus/${i.sku}`;

/** The platform images of a publisher with at least one version available in the location now. */
function visibleImages(ctx: ArmContext, p: Params): PlatformImage[] {
  const now = ctx.runtime.clock.now();
  const images = ctx.images.catalog.platformImages().filter((i) => same(i.publisher, p.publisher) && availableVersions(i.versions, p.location, now).length > 0);
  if (images.length === 0) throw artifactMissing(`Artifact: VMImage of publisher '${p.publisher}'`);
  return images;
}

function versionItem(p: Params, i: PlatformImage, v: PlatformImageVersion, withProperties: boolean): Record<string, unknown> {
  return {
    id: `${skuId(p, i)}/Versions/${v.version}`,
    name: v.version,
    location: regionKey(p.location),
    ...(withProperties ? { properties: versionProperties(v) } : {}),
  };
}

function versionProperties(v: PlatformImageVersion): Record<string, unknown> {
  return {
    osDiskImage: { operatingSystem: v.osType },
    dataDiskImages: [],
    automaticOSUpgradeProperties: { automaticOSUpgradeSupported: v.automaticOSUpgradeSupported },
    hyperVGeneration: v.hyperVGeneration,
    architecture: 'x64',
    imageDeprecationStatus: { imageState: 'Active' },
  };
}

/** `$orderby=name [asc|desc]` (version order) and `$top`; other options are ignored, as Azure does. */
function orderAndTop<T extends { version: string }>(versions: readonly T[], q: Record<string, string>): T[] {
  let desc = false;
  const orderby = q.$orderby?.trim();
  if (orderby) {
    const m = /^name(?:\s+(asc|desc))?$/i.exec(orderby);
    if (!m) throw invalidParameter('$orderby', `'${orderby}' is not supported; use 'name asc' or 'name desc'.`);
    desc = m[1]?.toLowerCase() === 'desc';
  }
  const out = [...versions].sort((a, b) => compareImageVersions(a.version, b.version) * (desc ? -1 : 1));
  const top = q.$top;
  if (top === undefined || top === '') return out;
  if (!/^\d{1,9}$/.test(top) || Number(top) < 1) throw invalidParameter('$top', `'${top}' is not a positive whole number.`);
  return out.slice(0, Number(top));
}

function unique<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const t of items) if (!seen.has(key(t).toLowerCase())) seen.set(key(t).toLowerCase(), t);
  return [...seen.values()].sort((a, b) => key(a).toLowerCase().localeCompare(key(b).toLowerCase()));
}

function registerVmImageRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.get(LOCATION, async (req) => {
    const p = req.params as Params;
    const now = ctx.runtime.clock.now();
    const names = [
      ...ctx.engine.state.catalog.listTypes().filter((t) => visibleVersions(t, p.location, now).length > 0).map((t) => t.publisher),
      ...ctx.images.catalog.platformImages().filter((i) => availableVersions(i.versions, p.location, now).length > 0).map((i) => i.publisher),
    ];
    return unique(names, (n) => n).map((name) => ({ id: publisherId(p, name), name, location: regionKey(p.location) }));
  });

  app.get(VMIMAGE, async (req) => {
    const p = req.params as Params;
    return unique(visibleImages(ctx, p), (i) => i.offer).map((i) => ({ id: offerId(p, i), name: i.offer, location: regionKey(p.location) }));
  });

  app.get(`${VMIMAGE}/:offer/skus`, async (req) => {
    const p = req.params as Params;
    const images = visibleImages(ctx, p).filter((i) => same(i.offer, p.offer));
    if (images.length === 0) throw artifactMissing(`Artifact: VMImage offer '${p.publisher}:${p.offer}'`);
    return unique(images, (i) => i.sku).map((i) => ({ id: skuId(p, i), name: i.sku, location: regionKey(p.location) }));
  });

  const imageOf = (p: Params) => {
    const i = ctx.images.catalog.platformImage(p.publisher, p.offer, p.skus);
    if (!i) throw artifactMissing(`Artifact: VMImage '${p.publisher}:${p.offer}:${p.skus}'`);
    return i;
  };

  app.get(`${VMIMAGE}/:offer/skus/:skus/versions`, async (req: FastifyRequest) => {
    const p = req.params as Params;
    const q = queryOf(req);
    const i = imageOf(p);
    // `$expand=properties` (listWithProperties) adds each version's properties.
    const expand = (q.$expand ?? '').toLowerCase().split(',').map((s) => s.trim()).includes('properties');
    return orderAndTop(availableVersions(i.versions, p.location, ctx.runtime.clock.now()), q).map((v) => versionItem(p, i, v, expand));
  });

  app.get(`${VMIMAGE}/:offer/skus/:skus/versions/:version`, async (req) => {
    const p = req.params as Params;
    const i = imageOf(p);
    const versions = availableVersions(i.versions, p.location, ctx.runtime.clock.now());
    const v = p.version.toLowerCase() === 'latest' ? versions[versions.length - 1] : versions.find((x) => x.version === p.version);
    if (!v) throw artifactMissing(`Artifact: VMImage '${p.publisher}:${p.offer}:${p.skus}:${p.version}'`);
    return versionItem(p, i, v, true);
  });
}

// ---- Microsoft.Compute/galleries ---------------------------------------------------------------------

type GalleryParams = { sub: string; rg: string; gallery: string; image: string; version: string };

function galleryArmId(g: Gallery): string {
  return galleryIdOf(g.subscription, g.resourceGroup, g.name);
}

function galleryView(g: Gallery): Record<string, unknown> {
  return { id: galleryArmId(g), name: g.name, type: 'Microsoft.Compute/galleries', location: g.location, tags: {}, properties: { provisioningState: 'Succeeded', identifier: { uniqueName: `${g.subscription}-${g.name}` } } };
}

function definitionView(g: Gallery, d: GalleryImageDefinition): Record<string, unknown> {
  return {
    id: `${galleryArmId(g)}/images/${d.name}`, name: d.name, type: 'Microsoft.Compute/galleries/images', location: g.location, tags: {},
    properties: { osType: d.osType, osState: 'Generalized', hyperVGeneration: d.hyperVGeneration, identifier: { ...d.identifier }, provisioningState: 'Succeeded' },
  };
}

/** A gallery image version with its target regions and their replication state at `nowMs`. */
function galleryVersionView(g: Gallery, d: GalleryImageDefinition, v: GalleryImageVersion, nowMs: number): Record<string, unknown> {
  const summary = v.replications.map((r) => {
    const done = r.completedAtMs !== null && r.completedAtMs <= nowMs;
    return { region: r.region, state: done ? 'Completed' : 'Replicating', progress: done ? 100 : 0, details: '' };
  });
  return {
    id: `${galleryArmId(g)}/images/${d.name}/versions/${v.version}`, name: v.version, type: 'Microsoft.Compute/galleries/images/versions', location: g.location, tags: {},
    properties: {
      publishingProfile: {
        targetRegions: v.replications.map((r) => ({ name: r.region, regionalReplicaCount: 1, storageAccountType: 'Standard_LRS', excludeFromLatest: v.excludeFromLatest })),
        replicaCount: 1, excludeFromLatest: v.excludeFromLatest, publishedDate: isoOf(v.publishedAtMs), storageAccountType: 'Standard_LRS',
      },
      storageProfile: { osDiskImage: { hostCaching: 'ReadWrite' } },
      provisioningState: 'Succeeded',
      replicationStatus: { aggregatedState: summary.every((s) => s.state === 'Completed') ? 'Completed' : 'InProgress', summary },
    },
  };
}

function registerGalleryRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const missing = (type: string, name: string, rg: string) => notFound('ResourceNotFound', `The Resource '${type}/${name}' under resource group '${rg}' was not found.`);
  const galleryOf = (p: GalleryParams) => {
    const g = ctx.images.catalog.gallery(p.sub, p.rg, p.gallery);
    if (!g) throw missing('Microsoft.Compute/galleries', p.gallery, p.rg);
    return g;
  };
  const definitionOf = (p: GalleryParams) => {
    const g = galleryOf(p);
    const d = g.images.find((x) => same(x.name, p.image));
    if (!d) throw missing('Microsoft.Compute/galleries/images', `${p.gallery}/${p.image}`, p.rg);
    return { g, d };
  };

  app.get(GALLERIES, async (req) => galleryView(galleryOf(req.params as GalleryParams)));
  app.get(`${GALLERIES}/images`, async (req) => {
    const g = galleryOf(req.params as GalleryParams);
    return { value: g.images.map((d) => definitionView(g, d)) };
  });
  app.get(`${GALLERIES}/images/:image`, async (req) => {
    const { g, d } = definitionOf(req.params as GalleryParams);
    return definitionView(g, d);
  });
  app.get(`${GALLERIES}/images/:image/versions`, async (req) => {
    const { g, d } = definitionOf(req.params as GalleryParams);
    const now = ctx.runtime.clock.now();
    return { value: d.versions.map((v) => galleryVersionView(g, d, v, now)) };
  });
  app.get(`${GALLERIES}/images/:image/versions/:version`, async (req) => {
    const p = req.params as GalleryParams;
    const { g, d } = definitionOf(p);
    const v = d.versions.find((x) => x.version === p.version);
    if (!v) throw missing('Microsoft.Compute/galleries/images/versions', `${p.gallery}/${p.image}/${p.version}`, p.rg);
    return galleryVersionView(g, d, v, ctx.runtime.clock.now());
  });
}

export function registerImageRoutes(app: FastifyInstance, ctx: ArmContext): void {
  registerVmImageRoutes(app, ctx);
  registerGalleryRoutes(app, ctx);
}
