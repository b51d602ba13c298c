/** Everything a route handler works with. */
import type Database from 'better-sqlite3';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Engine } from '../../engine/engine.js';
import type { Machine, ScaleSet } from '../../model/fleet.js';
import type { EngineRuntime } from '../../server/runtime.js';
import { isoOf } from '../../engine/clock.js';
import type { Authenticator, Principal, Role } from './auth.js';
import { requireRole } from './auth.js';
import type { Documents } from './documents.js';
import { badRequest, invalidParameter, notFound } from './errors.js';
import { compareSplit, firstAbove, pageAfter, splitKey } from './keyed-page.js';
import { LIST_PARAMETERS } from './query-parameters.js';
import type { ArmError } from './errors.js';
import type { FleetIndex } from './fleet-index.js';
import type { ImageStore } from './image-store.js';
import type { Operations, Track } from './operations.js';
import { setOperationHeaders } from './operations.js';
import type { SecretBox } from './secrets.js';
import type { AgentServices } from '../agent/services.js';
import type { PackageStore } from '../agent/package-store.js';
import type { PatchDriver } from '../../engine/driver.js';
import type { EventLogReader } from '../../store/event-log-reader.js';

export interface ArmContext {
  engine: Engine;
  runtime: EngineRuntime;
  /** The engine's database (the API's own tables beside the engine's). */
  db: Database.Database;
  /** The engine's event log, read the same way on SQLite and PostgreSQL (every route reads events through it). */
  eventLog: EventLogReader;
  docs: Documents;
  ops: Operations;
  secrets: SecretBox;
  index: FleetIndex;
  /** The image catalog (platform and gallery images), persisted in `docs`. */
  images: ImageStore;
  auth: Authenticator;
  /** Configured public base URL, or null to use the Host the client called. */
  publicUrl: string | null;
  retryAfterSeconds: number;
  pageSize: number;
  /** Guest OS patching of the machines (issue 16), through the engine's driver. */
  patches?: PatchDriver;
  /** The agent API (real machines); absent where only the ARM surface runs. */
  agents?: AgentServices;
  /** The uploaded packages, where the agent API is absent but package records are known (a replica's read snapshot). */
  packages?: Pick<PackageStore, 'get'>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** Longest api-version accepted; it is echoed into operation URLs, so it is bounded (docs/api.md#limits). */
export const MAX_API_VERSION_LENGTH = 64;
const API_VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * ARM reads query parameter names without regard to case (`API-Version`, `Api-Version`): the value of the
 * first name that is `api-version` in any casing, the exact spelling first; the first of repeated values.
 */
export function apiVersionParameter(query: Record<string, unknown>): unknown {
  const key = Object.hasOwn(query, 'api-version') ? 'api-version' : Object.keys(query).find((k) => k.toLowerCase() === 'api-version');
  if (key === undefined) return undefined;
  const raw = query[key];
  return Array.isArray(raw) ? raw[0] : raw;
}

/**
 * The api-version a request carries; ARM requires one. Any date-like value is accepted and echoed; one
 * longer than MAX_API_VERSION_LENGTH or with other characters is refused (it would be copied into headers).
 */
export function apiVersionOf(req: FastifyRequest): string {
  const v = apiVersionParameter(req.query as Record<string, unknown>);
  if (typeof v !== 'string' || v === '') throw badRequest('MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
  if (v.length > MAX_API_VERSION_LENGTH || !API_VERSION.test(v)) {
    const shown = JSON.stringify(v.slice(0, MAX_API_VERSION_LENGTH)) + (v.length > MAX_API_VERSION_LENGTH ? '…' : '');
    const rule = `at most ${MAX_API_VERSION_LENGTH} letters, digits, dots and dashes, such as 2024-07-01`;
    throw badRequest('InvalidApiVersionParameter', `The api-version ${shown} is invalid: expected ${rule} (limit maxApiVersionLength).`, 'api-version');
  }
  return v;
}

export function baseUrlOf(ctx: ArmContext, req: FastifyRequest): string {
  return baseUrlFor(ctx.publicUrl, req.headers.host);
}

/** The configured public URL, else https:// and the Host the client called. */
export function baseUrlFor(publicUrl: string | null, hostHeader: string | undefined): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  const host = hostHeader ?? '';
  // Only a well-formed host[:port] goes into URLs handed back; anything else falls back to localhost.
  // Bounded too (a DNS name is at most 253 characters): it is copied into Location headers.
  return `https://${host.length <= 260 && /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(host) ? host : 'localhost'}`;
}

export function nowIso(ctx: ArmContext): string {
  return isoOf(ctx.runtime.clock.now());
}

/** Checks the caller's role for a change and returns the caller's name (recorded on what it starts). */
export function writer(req: FastifyRequest, action: string, role: Role = 'contributor'): string {
  requireRole(req.principal, role, action);
  return req.principal.name;
}

export function mustHaveGroup(ctx: ArmContext, sub: string, rg: string): void {
  if (!ctx.index.hasSubscription(sub)) throw notFound('SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
  if (!ctx.index.hasGroup(sub, rg) && !ctx.docs.get(`/subscriptions/${sub}/resourceGroups/${rg}`)) throw notFound('ResourceGroupNotFound', `Resource group '${rg}' could not be found.`);
}

/** A subscription-wide list (`listAll`, `listBySubscription`) needs a subscription that exists. */
export function mustHaveSubscription(ctx: ArmContext, sub: string): void {
  if (!ctx.index.hasSubscription(sub)) throw notFound('SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
}

/** The error for a resource that is not there: the group's or subscription's absence first, as ARM answers. */
export function resourceMissing(ctx: ArmContext, sub: string, rg: string, type: string, name: string): ArmError {
  mustHaveGroup(ctx, sub, rg);
  return notFound('ResourceNotFound', `The Resource '${type}/${name}' under resource group '${rg}' was not found.`);
}

/**
 * The operation of an update (PATCH) of a VM, scale set or extension: the instances it waits for, or none (done).
 * An update hands one out even when nothing waits, as Compute does: answered without Azure-AsyncOperation, the
 * SDK keeps no request in a saved poller's state, and restorePoller threw 'Invalid serialized state'.
 */
export const updateTrack = (items: Array<{ machineId: string; artifactKey: string }>): Track =>
  items.length ? { kind: 'instances', items } : { kind: 'done' };

/** Starts a long-running operation and sets its headers; `location` adds the monitor URL (POST/DELETE). */
export function startOperation(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, sub: string, provider: string, location: string, track: Track, withLocation: boolean): void {
  const { path } = ctx.ops.create(sub, provider, location, track, nowIso(ctx));
  setOperationHeaders(reply, baseUrlOf(ctx, req), path, apiVersionOf(req), ctx.retryAfterSeconds, withLocation);
}

/**
 * A boolean query parameter (`?forceExtensionUpgrade=true`): `true` or `false` in any casing, absent is
 * `fallback`; anything else is refused, not read as false (which would start what the caller did not ask).
 */
export function booleanQuery(req: FastifyRequest, name: string, fallback: boolean): boolean {
  const v = queryOf(req)[name.toLowerCase()];
  if (v === undefined) return fallback;
  if (/^true$/i.test(v)) return true;
  if (/^false$/i.test(v)) return false;
  throw invalidParameter(name, `'${v.slice(0, 100)}' is not a boolean; expected true or false.`);
}

/** Query parameters as strings (fastify leaves repeated ones as arrays). */
export function queryOf(req: FastifyRequest): Record<string, string> {
  // No prototype: a parameter named `constructor` or `__proto__` is only ever a parameter.
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) {
    const key = k.toLowerCase();
    // Repeats of other parameters have one value (query-parameters.ts refused two); list ones add up.
    if (LIST_PARAMETERS.has(key)) out[key] = [out[key], ...(Array.isArray(v) ? v : [v])].filter((x) => x !== undefined).map(String).join(',');
    else out[key] = Array.isArray(v) ? String(v[0]) : String(v);
  }
  return out;
}

const SKIP_TOKEN_READ = Symbol('skipTokenRead');

/** The request's `$skiptoken`, as a paged list reads it (marked read: see `unreadSkipTokenError`). */
export function skipTokenParameter(req: FastifyRequest): string | undefined {
  (req as unknown as Record<symbol, boolean>)[SKIP_TOKEN_READ] = true;
  return queryOf(req).$skiptoken;
}

/**
 * A list that returns everything at once issues no `$skiptoken`, so one sent to it is a token this server did
 * not issue: refused as a paged list refuses one (`?$skiptoken=garbage` on resource groups was a 200 with the
 * whole list). Judged on the answer of a GET (it changed nothing): a `{value: […]}` whose route never read
 * the parameter.
 */
export function unreadSkipTokenError(req: FastifyRequest, payload: unknown): ArmError | null {
  if (req.method !== 'GET' && req.method !== 'HEAD') return null;
  if ((req as unknown as Record<symbol, boolean>)[SKIP_TOKEN_READ] === true || !/skiptoken/i.test(req.url)) return null;
  if (typeof payload !== 'object' || payload === null || !Array.isArray((payload as { value?: unknown }).value)) return null;
  const token = queryOf(req).$skiptoken;
  if (token === undefined || token === '') return null;
  return invalidParameter('$skiptoken', `'${token.slice(0, 100)}' is not a $skiptoken this server issued: this list is not paged (it answers every item at once); leave $skiptoken out.`);
}

/**
 * The offset a `$skiptoken` stands for: only the whole numbers this server puts in nextLinks. Anything else
 * is refused rather than read as 0 (or `1e9` as 1): a client that mangled its nextLink would get a wrong page.
 */
export function skipTokenOf(req: FastifyRequest): number {
  const token = skipTokenParameter(req);
  if (token === undefined || token === '') return 0;
  if (!/^\d{1,15}$/.test(token)) throw invalidParameter('$skiptoken', `'${token.slice(0, 100)}' is not a $skiptoken this server issued; follow nextLink as given.`);
  return Number(token);
}

/** Orders keys as people read them: case aside, digit runs by value (`ss2` before `ss10`, instance `9` before `10`). */
export function compareKeys(a: string, b: string): number {
  return compareSplit(splitKey(a), splitKey(b));
}

const KEY_TOKEN = /^k\.([A-Za-z0-9_-]{1,1400})$/;

/** A collection the fleet index keeps in key order (see `indexedPage`). */
export interface IndexedCollection<T> {
  /** Names the collection in the index's cache (`members:<setId>`, `vm:<sub>` …). */
  name: string;
  /** Every item of the collection: read only when the index does not know its order (after a change). */
  all: () => readonly T[];
  keyOf: (item: T) => string;
  idOf: (item: T) => string;
  /** The item now, by id (undefined: gone). */
  itemOf: (id: string) => T | undefined;
  /** A list's filter: items it refuses are passed over (a page still holds up to pageSize of those it keeps). */
  keep?: (item: T) => boolean;
}

/**
 * `page` with a key, for a collection the fleet index keeps sorted: a page is a binary search for the key
 * after the last one served and a slice, O(log n + page), where `page` passed over the whole list (and the
 * route had first listed it, filtering every machine of the fleet). The same answers and nextLinks as `page`.
 */
export function indexedPage<T, V>(ctx: ArmContext, req: FastifyRequest, c: IndexedCollection<T>, view: (item: T) => V): { value: V[]; nextLink?: string } {
  const raw = skipTokenParameter(req);
  const keyed = raw === undefined ? null : KEY_TOKEN.exec(raw);
  // An offset (a nextLink from before keys): as `page` answers it.
  if (raw !== undefined && raw !== '' && !keyed) return page(ctx, req, c.keep ? c.all().filter(c.keep) : c.all(), c.keyOf, view);
  const entries = ctx.index.sortedKeys.entries(c.name, () => c.all().map((item) => ({ key: splitKey(c.keyOf(item)), id: c.idOf(item) })));
  const after = keyed ? splitKey(Buffer.from(keyed[1]!, 'base64url').toString('utf8')) : null;
  const served: T[] = [];
  let i = firstAbove(entries, after);
  let last: string | null = null;
  for (; i < entries.length && served.length < ctx.pageSize; i++) {
    const item = c.itemOf(entries[i]!.id);
    if (item === undefined) continue; // removed since the order was taken (the index forgets it at the next change)
    if (c.keep && !c.keep(item)) {
      last = entries[i]!.key.raw; // the next page starts after it, even when this page ends with no item kept
      continue;
    }
    served.push(item);
    last = entries[i]!.key.raw;
  }
  const value = served.map(view);
  if (i >= entries.length || last === null) return { value };
  return { value, nextLink: nextLinkAfter(ctx, req, last) };
}

/** `itemOf` for collections of machines and of scale sets. */
export const machineById = (ctx: ArmContext) => (id: string): Machine | undefined => ctx.engine.state.fleet.machines.get(id);
export const setById = (ctx: ArmContext) => (id: string): ScaleSet | undefined => ctx.engine.state.fleet.scaleSets.get(id);

function nextLinkAfter(ctx: ArmContext, req: FastifyRequest, lastKey: string): string {
  const url = new URL(`${baseUrlOf(ctx, req)}${req.url}`);
  for (const k of [...url.searchParams.keys()]) if (k.toLowerCase() === '$skiptoken') url.searchParams.delete(k);
  url.searchParams.set('$skiptoken', `k.${Buffer.from(lastKey, 'utf8').toString('base64url')}`);
  return url.toString();
}

/**
 * One page of a list with a nextLink to the rest. With `keyOf`, the list is ordered by key and the nextLink
 * names the last key served, not an offset: resources created or deleted between two pages (the SDKs' `byPage`,
 * a saved continuationToken) then never make a page skip or repeat one that existed throughout. A keyed page
 * is picked without sorting the list (keyed-page.ts); `view` is applied to the items served only.
 */
export function page<T, V = T>(ctx: ArmContext, req: FastifyRequest, items: readonly T[], keyOf?: (item: T) => string, view?: (item: T) => V): { value: V[]; nextLink?: string } {
  const raw = skipTokenParameter(req);
  const keyed = keyOf && raw !== undefined ? KEY_TOKEN.exec(raw) : null;
  const shown = (list: readonly T[]) => (view ? list.map(view) : list as unknown as V[]);
  let served: T[];
  let more: boolean;
  let skip = 0;
  if (keyOf && (keyed || raw === undefined || raw === '')) {
    const after = keyed ? Buffer.from(keyed[1]!, 'base64url').toString('utf8') : null;
    ({ value: served, more } = pageAfter(items, keyOf, after, ctx.pageSize));
  } else {
    skip = skipTokenOf(req);
    // An offset on a keyed list (this server issues keys for those): the sorted list's slice, as before.
    const list = keyOf ? [...items].sort((a, b) => compareKeys(keyOf(a), keyOf(b))) : items;
    served = list.slice(skip, skip + ctx.pageSize);
    more = skip + ctx.pageSize < list.length;
  }
  if (!more) return { value: shown(served) };
  const url = new URL(`${baseUrlOf(ctx, req)}${req.url}`);
  for (const k of [...url.searchParams.keys()]) if (k.toLowerCase() === '$skiptoken') url.searchParams.delete(k);
  url.searchParams.set('$skiptoken', keyOf ? `k.${Buffer.from(keyOf(served[served.length - 1]!), 'utf8').toString('base64url')}` : String(skip + ctx.pageSize));
  return { value: shown(served), nextLink: url.toString() };
}
