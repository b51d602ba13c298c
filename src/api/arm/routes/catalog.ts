/**
 * The extension catalog read the way Azure serves it: Compute's `artifacttypes/vmextension` (bare JSON
 * arrays) and HybridCompute's extension-type versions (`{"value":[...]}`, subscription-scoped v1 and
 * tenant-level v2). Only versions visible at the engine clock and available in the location are shown.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ExtensionType, PublishedVersion } from '../../../catalog/catalog.js';
import { compareVersions } from '../../../model/version.js';
import type { OsType } from '../../../model/fleet.js';
import type { ArmContext } from '../context.js';
import { queryOf } from '../context.js';
import { invalidParameter, notFound } from '../errors.js';
import { normalizeLocation } from '../locations.js';

const COMPUTE = '/subscriptions/:sub/providers/Microsoft.Compute/locations/:location/publishers/:publisher/artifacttypes/vmextension/types';
const HYBRID_V1 = '/subscriptions/:sub/providers/Microsoft.HybridCompute/locations/:location/publishers/:publisher/extensionTypes/:type/versions';
const HYBRID_V2 = '/providers/Microsoft.HybridCompute/locations/:location/publishers/:publisher/extensionTypes/:type/versions';

const OS_NAME: Record<OsType, 'Linux' | 'Windows'> = { linux: 'Linux', windows: 'Windows' };

export { normalizeLocation } from '../locations.js';

/** Versions of a type visible at `nowMs` and available in a location (any OS), oldest first. */
export function visibleVersions(t: ExtensionType, location: string, nowMs: number): PublishedVersion[] {
  const loc = normalizeLocation(location);
  return t.versions.filter((v) => v.publishedAtMs <= nowMs && (v.regions === null || v.regions.some((r) => normalizeLocation(r) === loc)));
}

/** The OS an Azure catalog item names: the first the version was published for. */
const osOf = (v: PublishedVersion) => OS_NAME[v.os[0] ?? 'linux'];

function notFoundArtifact(what: string): never {
  throw notFound('ArtifactNotFound', `${what} was not found.`);
}

function typesOf(ctx: ArmContext, publisher: string): ExtensionType[] {
  const p = publisher.toLowerCase();
  const out = ctx.engine.state.catalog.listTypes().filter((t) => t.publisher.toLowerCase() === p);
  if (out.length === 0) notFoundArtifact(`The publisher '${publisher}'`);
  return out;
}

function typeOf(ctx: ArmContext, publisher: string, type: string): ExtensionType {
  const t = ctx.engine.state.catalog.getType(publisher, type);
  if (!t) notFoundArtifact(`The extension type '${publisher}.${type}'`);
  return t;
}

function versionOf(versions: PublishedVersion[], t: ExtensionType, version: string, location: string): PublishedVersion {
  const v = versions.find((x) => x.version === version);
  if (!v) notFoundArtifact(`The version '${version}' of '${t.publisher}.${t.type}' in location '${location}'`);
  return v;
}

const now = (ctx: ArmContext) => ctx.runtime.clock.now();

// ---- Compute: artifacttypes/vmextension -------------------------------------------------------------

function computeTypeId(sub: string, location: string, t: ExtensionType): string {
  return `/Subscriptions/${sub}/Providers/Microsoft.Compute/Locations/${location}/Publishers/${t.publisher}/ArtifactTypes/VMExtension/Types/${t.type}`;
}

function computeVersionItem(sub: string, location: string, t: ExtensionType, v: PublishedVersion): Record<string, unknown> {
  return {
    id: `${computeTypeId(sub, location, t)}/Versions/${v.version}`,
    name: v.version,
    location,
    properties: {
      operatingSystem: osOf(v),
      computeRole: 'IaaS',
      handlerSchema: '',
      vmScaleSetEnabled: true,
      supportsMultipleExtensions: false,
      urgencyLevel: v.critical ? 'Critical' : 'Normal',
    },
  };
}

/** `$filter` on versions: `startswith(name,'1.3')` or `name eq '1.30.2.0'`; anything else is ignored. */
export function versionFilter(text: string | undefined): (version: string) => boolean {
  if (!text) return () => true;
  const starts = /^\s*startswith\s*\(\s*name\s*,\s*'([^']*)'\s*\)\s*$/i.exec(text);
  if (starts) return (v) => v.startsWith(starts[1]!);
  const eq = /^\s*name\s+eq\s+'([^']*)'\s*$/i.exec(text);
  if (eq) return (v) => v === eq[1];
  return () => true;
}

/** Applies `$filter`, `$orderby=name [asc|desc]` (by version order) and `$top` to versions. */
export function listVersions(versions: PublishedVersion[], q: Record<string, string>): PublishedVersion[] {
  const keep = versionFilter(q.$filter);
  let out = versions.filter((v) => keep(v.version));
  const orderby = q.$orderby?.trim();
  let desc = false;
  if (orderby !== undefined && orderby !== '') {
    const m = /^name(?:\s+(asc|desc))?$/i.exec(orderby);
    if (!m) throw invalidParameter('$orderby', `'${orderby}' is not supported; use 'name asc' or 'name desc'.`);
    desc = m[1]?.toLowerCase() === 'desc';
  }
  out = [...out].sort((a, b) => compareVersions(a.version, b.version) * (desc ? -1 : 1));
  const top = q.$top;
  if (top !== undefined && top !== '') {
    if (!/^\d{1,9}$/.test(top) || Number(top) < 1) throw invalidParameter('$top', `'${top}' is not a positive whole number.`);
    out = out.slice(0, Number(top));
  }
  return out;
}

// ---- HybridCompute: extensionTypes/{type}/versions --------------------------------------------------

function hybridItem(idBase: string, t: ExtensionType, v: PublishedVersion, v2: boolean): Record<string, unknown> {
  const properties: Record<string, unknown> = { version: v.version, extensionType: t.type, publisher: t.publisher };
  if (v2) Object.assign(properties, { extensionUris: [], extensionSignatureUri: '', operatingSystem: osOf(v), architecture: ['amd64'] });
  return {
    id: `${idBase}/${v.version}`,
    name: v.version,
    type: 'Microsoft.HybridCompute/locations/publishers/extensionTypes/versions',
    properties,
  };
}

interface HybridParams {
  sub?: string;
  location: string;
  publisher: string;
  type: string;
  version?: string;
}

function hybridIdBase(p: HybridParams, t: ExtensionType): string {
  const scope = p.sub ? `/subscriptions/${p.sub}` : '';
  return `${scope}/providers/Microsoft.HybridCompute/locations/${p.location}/publishers/${t.publisher}/extensionTypes/${t.type}/versions`;
}

function hybridList(ctx: ArmContext, req: FastifyRequest, v2: boolean): { value: Array<Record<string, unknown>> } {
  const p = req.params as HybridParams;
  const t = typeOf(ctx, p.publisher, p.type);
  const base = hybridIdBase(p, t);
  return { value: visibleVersions(t, p.location, now(ctx)).map((v) => hybridItem(base, t, v, v2)) };
}

function hybridGet(ctx: ArmContext, req: FastifyRequest, v2: boolean): Record<string, unknown> {
  const p = req.params as Required<Omit<HybridParams, 'sub'>> & { sub?: string };
  const t = typeOf(ctx, p.publisher, p.type);
  const v = versionOf(visibleVersions(t, p.location, now(ctx)), t, p.version, p.location);
  return hybridItem(hybridIdBase(p, t), t, v, v2);
}

export function registerCatalogRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.get(COMPUTE, async (req) => {
    const { sub, location, publisher } = req.params as { sub: string; location: string; publisher: string };
    const at = now(ctx);
    return typesOf(ctx, publisher)
      .filter((t) => visibleVersions(t, location, at).length > 0)
      .sort((a, b) => a.type.localeCompare(b.type))
      .map((t) => ({ id: computeTypeId(sub, location, t), name: t.type, location }));
  });

  app.get(`${COMPUTE}/:type/versions`, async (req) => {
    const { sub, location, publisher, type } = req.params as { sub: string; location: string; publisher: string; type: string };
    const t = typeOf(ctx, publisher, type);
    return listVersions(visibleVersions(t, location, now(ctx)), queryOf(req)).map((v) => computeVersionItem(sub, location, t, v));
  });

  app.get(`${COMPUTE}/:type/versions/:version`, async (req) => {
    const { sub, location, publisher, type, version } = req.params as { sub: string; location: string; publisher: string; type: string; version: string };
    const t = typeOf(ctx, publisher, type);
    return computeVersionItem(sub, location, t, versionOf(visibleVersions(t, location, now(ctx)), t, version, location));
  });

  app.get(HYBRID_V1, async (req) => hybridList(ctx, req, false));
  app.get(`${HYBRID_V1}/:version`, async (req) => hybridGet(ctx, req, false));
  app.get(HYBRID_V2, async (req) => hybridList(ctx, req, true));
  app.get(`${HYBRID_V2}/:version`, async (req) => hybridGet(ctx, req, true));
}
