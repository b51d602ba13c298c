/**
 * Phasewise's publisher API for OS images (not ARM; no api-version): platform image versions, galleries
 * with image definitions and versions, and the replication of a version to a region, which is the
 * instant it becomes available there (R64). Writes need the `publisher` role; reads any role.
 *
 *   PUT /phasewise/images/publishers/{p}/offers/{o}/skus/{s}/versions/{v}                   publish (immutable)
 *   PUT /phasewise/images/publishers/{p}/offers/{o}/skus/{s}/versions/{v}/replications/{region}
 *   PUT /phasewise/subscriptions/{sub}/resourceGroups/{rg}/galleries/{g}                    a gallery
 *   PUT …/galleries/{g}/images/{def}                                                        an image definition
 *   PUT …/galleries/{g}/images/{def}/versions/{v}[/replications/{region}]
 *   GET the same paths, and GET /phasewise/images/publishers (every platform image)
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { isoOf } from '../../../engine/clock.js';
import { isImageVersion } from '../../../model/image-version.js';
import type { ImageRef } from '../../../model/image-reference.js';
import type {
  Gallery, GalleryImageDefinition, ImageVersionRecord, Outcome, PlatformImage, Replication,
} from '../../../catalog/images.js';
import { regionKey } from '../../../catalog/images.js';
import type { ArmContext } from '../context.js';
import { mustHaveGroup, writer } from '../context.js';
import { invalidParameter, notFound } from '../errors.js';
import { locationName, parseBody } from '../validation.js';

const PLATFORM = '/phasewise/images/publishers/:publisher/offers/:offer/skus/:sku/versions';
const GALLERY = '/phasewise/subscriptions/:sub/resourceGroups/:rg/galleries/:gallery';

/** Publisher, offer and sku names as Azure has them (`Canonical`, `ubuntu-24_04-lts`, `server`). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Azure's gallery names: letters, digits, dots and underscores (no hyphens). */
const GALLERY_NAME = /^[A-Za-z0-9][A-Za-z0-9._]{0,79}$/;
const DEFINITION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

const osType = z.enum(['Linux', 'Windows']);
const hyperVGeneration = z.enum(['V1', 'V2']).default('V2');
const platformVersionBody = z.object({ osType, hyperVGeneration, automaticOSUpgradeSupported: z.boolean().default(true) }).strict();
const galleryBody = z.object({ location: locationName }).strict();
const identifier = z.object({ publisher: z.string().regex(NAME, 'expected a name'), offer: z.string().regex(NAME, 'expected a name'), sku: z.string().regex(NAME, 'expected a name') }).strict();
const definitionBody = z.object({ osType, hyperVGeneration, identifier }).strict();
const galleryVersionBody = z.object({ excludeFromLatest: z.boolean().default(false) }).strict();
/** No `completedAt`: completed now; an instant: completed then (past or future); null: under way. */
const replicationBody = z.object({ completedAt: z.iso.datetime({ offset: true, message: 'expected an ISO 8601 instant such as 2026-01-01T00:00:00Z, or null' }).nullable().optional() }).strict();

type PlatformParams = { publisher: string; offer: string; sku: string; version?: string; region?: string };
type GalleryParams = { sub: string; rg: string; gallery: string; image?: string; version?: string; region?: string };

function checkName(target: string, value: string, re = NAME): void {
  if (!re.test(value)) throw invalidParameter(target, `'${value}' is not a valid name: letters, digits${re === GALLERY_NAME ? ", '.' and '_'" : ", '.', '-' and '_'"}, starting with a letter or digit.`);
}

function checkVersion(version: string): void {
  if (!isImageVersion(version)) throw invalidParameter('version', `'${version}' is not an image version: expected three dot-separated integers such as 22.04.202601010.`);
}

function checkRegion(region: string): void {
  if (!locationName.safeParse(region).success) throw invalidParameter('region', `'${region}' is not a location name such as westus.`);
}

const statusOf = (o: Outcome) => (o === 'created' ? 201 : 200);

// ---- records as the publisher API shows them ----------------------------------------------------------

export function replicationRecord(r: Replication, nowMs: number): Record<string, unknown> {
  const done = r.completedAtMs !== null && r.completedAtMs <= nowMs;
  return { region: r.region, state: done ? 'Completed' : 'InProgress', completedAt: r.completedAtMs === null ? null : isoOf(r.completedAtMs) };
}

/** Whether an operator withdrew a version of the image (`latest` never stands for it again). */
type Withdrawn = (version: string) => boolean;

function versionRecord(v: ImageVersionRecord, nowMs: number, withdrawn: Withdrawn): Record<string, unknown> {
  const { replications, publishedAtMs, ...rest } = v;
  return { ...rest, withdrawn: withdrawn(v.version), publishedAt: isoOf(publishedAtMs), replications: replications.map((r) => replicationRecord(r, nowMs)) };
}

function platformRecord(i: PlatformImage, nowMs: number, withdrawn: Withdrawn): Record<string, unknown> {
  return { publisher: i.publisher, offer: i.offer, sku: i.sku, versions: i.versions.map((v) => versionRecord(v, nowMs, withdrawn)) };
}

function definitionRecord(d: GalleryImageDefinition, nowMs: number, withdrawn: Withdrawn): Record<string, unknown> {
  return { name: d.name, osType: d.osType, hyperVGeneration: d.hyperVGeneration, identifier: { ...d.identifier }, versions: d.versions.map((v) => versionRecord(v, nowMs, withdrawn)) };
}

function galleryRecord(g: Gallery, nowMs: number, withdrawnIn: (d: GalleryImageDefinition) => Withdrawn): Record<string, unknown> {
  return { subscription: g.subscription, resourceGroup: g.resourceGroup, name: g.name, location: g.location, images: g.images.map((d) => definitionRecord(d, nowMs, withdrawnIn(d))) };
}

// ---- routes ------------------------------------------------------------------------------------------

export function registerImagePublisherRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const catalog = () => ctx.images.catalog;
  const now = () => ctx.runtime.clock.now();
  const platformWithdrawn = (i: { publisher: string; offer: string; sku: string }): Withdrawn =>
    (version) => catalog().isWithdrawn({ kind: 'platform', publisher: i.publisher, offer: i.offer, sku: i.sku, version }, version);
  const galleryWithdrawn = (g: Gallery) => (d: GalleryImageDefinition): Withdrawn =>
    (version) => catalog().isWithdrawn({ kind: 'gallery', subscription: g.subscription, resourceGroup: g.resourceGroup, gallery: g.name, image: d.name, version }, version);

  // ---- platform images ----

  app.get('/phasewise/images/publishers', async () => ({ value: catalog().platformImages().map((i) => platformRecord(i, now(), platformWithdrawn(i))) }));

  app.get(PLATFORM, async (req) => {
    const p = req.params as PlatformParams;
    return { value: catalog().versionsOf({ kind: 'platform', ...p, version: 'latest' }).map((v) => versionRecord(v, now(), platformWithdrawn(p))) };
  });

  app.get(`${PLATFORM}/:version`, async (req) => {
    const p = req.params as Required<PlatformParams>;
    const v = catalog().versionsOf({ kind: 'platform', ...p }).find((x) => x.version.toLowerCase() === p.version.toLowerCase());
    if (!v) throw notFound('VersionNotFound', `Version '${p.version}' of ${p.publisher}:${p.offer}:${p.sku} is not published.`);
    // The names as published, whatever the request's casing (names are case-insensitive).
    const key = (i: PlatformParams) => `${i.publisher}:${i.offer}:${i.sku}`.toLowerCase();
    const i = catalog().platformImages().find((x) => key(x) === key(p)) ?? p;
    return { publisher: i.publisher, offer: i.offer, sku: i.sku, ...versionRecord(v, now(), platformWithdrawn(i)) };
  });

  app.put(`${PLATFORM}/:version`, async (req, reply) => {
    const p = req.params as Required<PlatformParams>;
    writer(req, 'Phasewise/images/versions/write', 'publisher');
    for (const f of ['publisher', 'offer', 'sku'] as const) checkName(f, p[f]);
    checkVersion(p.version);
    const body = parseBody(platformVersionBody, req.body);
    const r = ctx.images.change((c, at) => c.publishPlatformVersion(p, p.version, body, at));
    return reply.status(statusOf(r.outcome)).send({ publisher: r.image.publisher, offer: r.image.offer, sku: r.image.sku, ...versionRecord(r.version, now(), platformWithdrawn(r.image)) });
  });

  app.put(`${PLATFORM}/:version/replications/:region`, async (req, reply) => {
    const p = req.params as Required<PlatformParams>;
    writer(req, 'Phasewise/images/versions/replications/write', 'publisher');
    const ref: ImageRef = { kind: 'platform', publisher: p.publisher, offer: p.offer, sku: p.sku, version: p.version };
    return replicate(ctx, reply, ref, p, req.body);
  });

  // ---- galleries ----

  const galleryOf = (p: GalleryParams) => {
    const g = catalog().gallery(p.sub, p.rg, p.gallery);
    if (!g) throw notFound('GalleryNotFound', `There is no gallery '${p.gallery}' in resource group '${p.rg}'.`);
    return g;
  };
  const definitionOf = (p: GalleryParams) => {
    const g = galleryOf(p);
    const d = g.images.find((x) => x.name.toLowerCase() === p.image!.toLowerCase());
    if (!d) throw notFound('ImageDefinitionNotFound', `The gallery '${g.name}' has no image definition '${p.image}'.`);
    return { g, d };
  };

  app.get(GALLERY, async (req) => {
    const g = galleryOf(req.params as GalleryParams);
    return galleryRecord(g, now(), galleryWithdrawn(g));
  });
  app.put(GALLERY, async (req, reply) => {
    const p = req.params as GalleryParams;
    writer(req, 'Phasewise/galleries/write', 'publisher');
    mustHaveGroup(ctx, p.sub, p.rg); // as every other resource: a gallery lives in a resource group that exists
    checkName('galleryName', p.gallery, GALLERY_NAME);
    const body = parseBody(galleryBody, req.body);
    const r = ctx.images.change((c) => c.putGallery({ subscription: p.sub, resourceGroup: p.rg, name: p.gallery, location: body.location }));
    return reply.status(statusOf(r.outcome)).send(galleryRecord(r.gallery, now(), galleryWithdrawn(r.gallery)));
  });

  app.get(`${GALLERY}/images/:image`, async (req) => {
    const { g, d } = definitionOf(req.params as GalleryParams);
    return definitionRecord(d, now(), galleryWithdrawn(g)(d));
  });
  app.put(`${GALLERY}/images/:image`, async (req, reply) => {
    const p = req.params as Required<GalleryParams>;
    writer(req, 'Phasewise/galleries/images/write', 'publisher');
    checkName('galleryImageName', p.image, DEFINITION_NAME);
    const body = parseBody(definitionBody, req.body);
    const r = ctx.images.change((c) => c.putGalleryImage({ subscription: p.sub, resourceGroup: p.rg, gallery: p.gallery }, p.image, body));
    return reply.status(statusOf(r.outcome)).send(definitionRecord(r.image, now(), galleryWithdrawn(r.gallery)(r.image)));
  });

  app.get(`${GALLERY}/images/:image/versions`, async (req) => {
    const { g, d } = definitionOf(req.params as GalleryParams);
    return { value: d.versions.map((v) => versionRecord(v, now(), galleryWithdrawn(g)(d))) };
  });
  app.get(`${GALLERY}/images/:image/versions/:version`, async (req) => {
    const p = req.params as Required<GalleryParams>;
    const { g, d } = definitionOf(p);
    const v = d.versions.find((x) => x.version.toLowerCase() === p.version.toLowerCase());
    if (!v) throw notFound('VersionNotFound', `Version '${p.version}' of image '${p.image}' is not published.`);
    return versionRecord(v, now(), galleryWithdrawn(g)(d));
  });
  app.put(`${GALLERY}/images/:image/versions/:version`, async (req, reply) => {
    const p = req.params as Required<GalleryParams>;
    writer(req, 'Phasewise/galleries/images/versions/write', 'publisher');
    checkVersion(p.version);
    const body = parseBody(galleryVersionBody, req.body);
    const r = ctx.images.change((c, at) => c.publishGalleryVersion({ subscription: p.sub, resourceGroup: p.rg, gallery: p.gallery, image: p.image }, p.version, body, at));
    const d = r.gallery.images.find((x) => x.name.toLowerCase() === p.image.toLowerCase())!;
    return reply.status(statusOf(r.outcome)).send(versionRecord(r.version, now(), galleryWithdrawn(r.gallery)(d)));
  });
  app.put(`${GALLERY}/images/:image/versions/:version/replications/:region`, async (req, reply) => {
    const p = req.params as Required<GalleryParams>;
    writer(req, 'Phasewise/galleries/images/versions/replications/write', 'publisher');
    const ref: ImageRef = { kind: 'gallery', subscription: p.sub, resourceGroup: p.rg, gallery: p.gallery, image: p.image, version: p.version };
    return replicate(ctx, reply, ref, p, req.body);
  });
}

/**
 * The most regions one version is replicated to through the API: more than any cloud has, and a bound on what
 * a publisher's script (or a loop of invented names) adds to one version record, which every catalog read
 * carries. Regions need not be the fleet's (docs/api-catalog.md: a new region's first set needs its image there).
 */
export const MAX_REPLICATIONS_PER_VERSION = 200;

function replicate(ctx: ArmContext, reply: FastifyReply, ref: ImageRef, p: { version: string; region: string }, rawBody: unknown) {
  checkVersion(p.version);
  checkRegion(p.region);
  // No body at all means "completed now"; a JSON null is a body of the wrong type.
  const body = parseBody(replicationBody, rawBody === undefined ? {} : rawBody);
  const have = ctx.images.catalog.versionsOf(ref).find((v) => v.version.toLowerCase() === p.version.toLowerCase())?.replications ?? [];
  if (have.length >= MAX_REPLICATIONS_PER_VERSION && !have.some((r) => r.region === regionKey(p.region))) {
    const why = `the most one version may be (${MAX_REPLICATIONS_PER_VERSION}); '${p.region.slice(0, 100)}' was not added`;
    throw invalidParameter('region', `Version '${p.version}' is replicated to ${have.length} regions already, ${why}.`);
  }
  const nowMs = ctx.runtime.clock.now();
  const completedAtMs = body.completedAt === undefined ? nowMs : body.completedAt === null ? null : Date.parse(body.completedAt);
  // A completion in the future is when the engine looks at `latest` again (R64).
  const r = ctx.images.change((c) => c.replicate(ref, p.region, completedAtMs));
  return reply.status(statusOf(r.outcome)).send({ version: r.version.version, ...replicationRecord(r.replication, nowMs) });
}
