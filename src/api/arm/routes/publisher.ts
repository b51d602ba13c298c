/**
 * Phasewise's own publisher API (not ARM): extension types and their versions, the rollouts they
 * start, and the engine's event log. Writes need the `publisher` role; reads any role.
 *
 *   PUT /phasewise/publishers/{publisher}/extensionTypes/{type}                    register a type / set its support
 *   PUT /phasewise/publishers/{publisher}/extensionTypes/{type}/versions/{version}  publish a version (immutable)
 *   GET /phasewise/publishers/{publisher}/extensionTypes[/{type}[/versions[/{version}]]]
 *   GET /phasewise/rollouts[/{id}], GET /phasewise/events?after=&limit=
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ExtensionType, PublishedVersion } from '../../../catalog/catalog.js';
import { isoOf } from '../../../engine/clock.js';
import type { EngineState, RolloutState } from '../../../engine/state.js';
import { bakeAfter } from '../../../engine/rollouts/lifecycle.js';
import { boundRisk } from '../../../engine/rollouts/bound-risk.js';
import type { BoundOutlook } from '../../../planner/types.js';
import type { DisplayStatus } from '../superseded.js';
import { displayStatus, isSuperseded, successorOf } from '../superseded.js';
import type { OsType } from '../../../model/fleet.js';
import { compareVersions, isVersion } from '../../../model/version.js';
import type { ArmContext } from '../context.js';
import { baseUrlOf, page, queryOf, writer } from '../context.js';
import { conflict, invalidParameter, notFound } from '../errors.js';
import { fullVersion, locationName, parseBody } from '../validation.js';
import { knownRegionName } from '../locations.js';
import { handlerNameProblem } from '../../../protocol/handler-names.js';
import { unknownParameterError } from '../query-parameters.js';

const TYPES = '/phasewise/publishers/:publisher/extensionTypes';

/** Publisher and type names as Azure has them (`Microsoft.Azure.Monitor`, `AzureMonitorLinuxAgent`). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const typeBody = z.object({ supportsAutomaticUpgrade: z.boolean() }).strict();

const versionBody = z
  .object({
    os: z.array(z.enum(['linux', 'windows'])).min(1, 'at least one operating system: "linux" or "windows"'),
    critical: z.boolean().default(false),
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256: followed by 64 lower-case hex digits').optional(),
    regions: z.array(locationName).min(1, 'at least one region; null (or no property) means every region').nullable().default(null),
  })
  .strict();

const ROLLOUT_STATUSES: readonly DisplayStatus[] = ['running', 'completed', 'stopped', 'cancelled', 'superseded'];

function checkName(target: string, value: string): void {
  if (!NAME.test(value)) throw invalidParameter(target, `'${value}' is not a valid name: letters, digits, '.', '-' and '_', starting with a letter or digit, at most 128 characters.`);
}

function mustGetType(ctx: ArmContext, publisher: string, type: string): ExtensionType {
  const t = ctx.engine.state.catalog.getType(publisher, type);
  if (!t) throw notFound('ArtifactNotFound', `The extension type '${publisher}.${type}' is not in the catalog; register it first with PUT /phasewise/publishers/${publisher}/extensionTypes/${type}.`);
  return t;
}

export function versionRecord(v: PublishedVersion): Record<string, unknown> {
  return { version: v.version, os: [...v.os], critical: v.critical, digest: v.digest, regions: v.regions ? [...v.regions] : null, publishedAt: isoOf(v.publishedAtMs) };
}

/** The version record with its package (sha256, size, signature) when one is uploaded. */
function versionWithPackage(ctx: ArmContext, t: ExtensionType, v: PublishedVersion): Record<string, unknown> {
  const pkg = (ctx.agents?.packages ?? ctx.packages)?.get(`extension:${t.publisher}.${t.type}`, v.version);
  return { ...versionRecord(v), package: pkg ? { sha256: pkg.sha256, size: pkg.size, signature: pkg.signature } : null };
}

export function typeRecord(t: ExtensionType): Record<string, unknown> {
  return { publisher: t.publisher, type: t.type, supportsAutomaticUpgrade: t.supportsAutomaticUpgrade, versions: t.versions.map(versionRecord) };
}

/** A rollout as the API shows it: what, why, who, where it is, and its counts. */
/** The plan's estimate as planned (R40, R70): expected phase starts and end, whether it fits the bound, and why. */
function estimateRecord(r: RolloutState): Record<string, unknown> {
  const e = r.plan.estimate;
  const start = e.startMs || r.createdAtMs;
  return {
    expectedEnd: isoOrNull(start + e.totalMs),
    phaseStarts: r.plan.phases.map((p) => isoOrNull(start + p.estimatedStartMs)),
    boundDays: Number.isFinite(e.boundMs) ? e.boundMs / 86_400_000 : null,
    fitsBound: e.fitsBound,
    ...(e.outlook ? { boundAtRisk: boundRecord(e.outlook) } : {}),
    windowedBatches: e.windowedBatches ?? 0,
    notes: e.notes,
  };
}

/** The latest instant a Date holds (±100,000,000 days from 1970). */
const MAX_DATE_MS = 8.64e15;
/**
 * An estimated instant as ISO text, or null when it is none a date can hold: a plan of a set whose
 * pauseTimeBetweenBatches was stored before its bound (P30D) ends that far out, and `toISOString`'s
 * RangeError made every `GET /phasewise/rollouts` a 500.
 */
function isoOrNull(ms: number): string | null {
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? isoOf(ms) : null;
}

/** R40's outlook as the API shows it: instants as ISO strings, an unreachable end as null. */
export function boundRecord(o: BoundOutlook): Record<string, unknown> {
  return {
    atRisk: o.atRisk,
    reason: o.reason,
    projectedEnd: isoOrNull(o.projectedEndMs),
    bound: isoOrNull(o.boundEndMs),
    expectedStops: o.expectedStops,
  };
}

/**
 * A phase waiting for the bake after the one before it: the engine marks it `baking`; shown as
 * `pending` with the instant it opens, since nothing of it has started.
 */
function phaseRecord(r: RolloutState, p: RolloutState['phases'][number], state?: EngineState): Record<string, unknown> {
  const prev = r.phases[p.index - 1];
  const waiting = p.status === 'baking' && prev?.endedAtMs != null;
  return {
    index: p.index,
    status: waiting ? 'pending' : p.status,
    ...(waiting ? { waitingFor: `the bake after phase ${prev.index}`, opensAt: isoOf(prev.endedAtMs! + bakeAfter(r, prev.index, prev.endedAtMs!, state)) } : {}),
    regions: r.plan.phases[p.index]?.regions.map((x) => x.region) ?? [],
    startedAt: p.startedAtMs === null ? null : isoOf(p.startedAtMs),
    endedAt: p.endedAtMs === null ? null : isoOf(p.endedAtMs),
    upgraded: p.upgraded,
    unhealthy: p.unhealthy,
  };
}

/** `now` given (with `state`): the rollout's R40 outlook from its state at that instant (`boundAtRisk`). */
export function rolloutRecord(r: RolloutState, state?: EngineState, now?: number): Record<string, unknown> {
  const attempts: Record<string, number> = {};
  for (const a of r.attempts.values()) attempts[a.status] = (attempts[a.status] ?? 0) + 1;
  let upgraded = 0;
  let unhealthy = 0;
  for (const p of r.phases) {
    upgraded += p.upgraded;
    unhealthy += p.unhealthy;
  }
  return {
    id: r.id,
    artifact: { ...r.artifact },
    toVersion: r.toVersion,
    profile: r.plan.profile.name,
    status: displayStatus(r),
    reason: r.reason,
    ...(state && isSuperseded(r) ? { supersededBy: successorOf(state, r)?.id ?? null } : {}),
    caller: r.caller,
    createdAt: isoOf(r.createdAtMs),
    endedAt: r.endedAtMs === null ? null : isoOf(r.endedAtMs),
    currentPhase: r.currentPhase,
    phases: r.phases.map((p) => phaseRecord(r, p, state)),
    counts: { eligible: r.plan.machines, open: r.open, upgraded, unhealthy, attempts },
    estimate: estimateRecord(r),
    ...(state && now !== undefined ? { boundAtRisk: boundOf(state, r, now) } : {}),
    waitingForWindows: [...r.units.values()].filter((u) => u.status === 'window').map((u) => ({ unit: u.plan.id, opensAt: u.windowOpensAt == null ? null : isoOf(u.windowOpensAt) })),
  };
}

function boundOf(state: EngineState, r: RolloutState, now: number): Record<string, unknown> | null {
  const o = boundRisk(state, r, now);
  return o ? boundRecord(o) : null;
}

/**
 * Region names as the fleet spells them (matched ignoring case and spaces, as ARM matches locations), each
 * once. A region the fleet does not know is refused, as host updates refuse it: a version published only to
 * `westus-typo` (or to 5,000 invented regions) reached no machine and said nothing.
 */
function canonicalRegions(ctx: ArmContext, regions: string[] | null): string[] | null {
  if (regions === null) return null;
  const out = new Set<string>();
  regions.forEach((r, i) => {
    const name = knownRegionName(ctx.engine.state.fleet.regions, r);
    if (name === undefined) throw invalidParameter(`regions[${i}]`, `unknown region '${r.slice(0, 100)}'; the fleet's regions are ${regionList(ctx)}.`);
    out.add(name);
  });
  return [...out];
}

/** The fleet's region names for a message: the first 20, sorted. */
function regionList(ctx: ArmContext): string {
  const names = [...ctx.engine.state.fleet.regions.keys()].sort();
  return names.length === 0 ? '(none yet)' : names.slice(0, 20).join(', ') + (names.length > 20 ? `, … (${names.length} in all)` : '');
}

/** What `GET /phasewise/events` reads (docs/api-catalog.md#events); any other parameter is refused. */
const EVENTS_PARAMETERS = ['after', 'limit', 'rolloutId'] as const;

function intParam(q: Record<string, string>, name: string, fallback: number, min: number, max: number): number {
  const text = q[name];
  if (text === undefined || text === '') return fallback;
  if (!/^\d{1,15}$/.test(text) || Number(text) < min || Number(text) > max) throw invalidParameter(name, `'${text}' is not a whole number from ${min} to ${max}.`);
  return Number(text);
}

export function registerPublisherRoutes(app: FastifyInstance, ctx: ArmContext): void {
  // ---- extension types ----------------------------------------------------------------------------

  app.get(TYPES, async (req) => {
    const { publisher } = req.params as { publisher: string };
    const p = publisher.toLowerCase();
    const value = ctx.engine.state.catalog.listTypes().filter((t) => t.publisher.toLowerCase() === p).sort((a, b) => a.type.localeCompare(b.type)).map(typeRecord);
    return { value };
  });

  app.get(`${TYPES}/:type`, async (req) => {
    const { publisher, type } = req.params as { publisher: string; type: string };
    return typeRecord(mustGetType(ctx, publisher, type));
  });

  app.put(`${TYPES}/:type`, async (req, reply) => {
    const { publisher, type } = req.params as { publisher: string; type: string };
    writer(req, 'Phasewise/publishers/extensionTypes/write', 'publisher');
    checkName('publisher', publisher);
    checkName('type', type);
    // The agent's rule for the handler name it makes folders of (src/protocol/handler-names.ts): a type it would
    // refuse made every goal state of a machine running it refused whole.
    const handlerName = handlerNameProblem(`${publisher}.${type}`);
    if (handlerName !== null) throw invalidParameter('type', handlerName);
    const body = parseBody(typeBody, req.body);
    const isNew = !ctx.engine.state.catalog.getType(publisher, type);
    const started = ctx.engine.setTypeSupport(publisher, type, body.supportsAutomaticUpgrade);
    ctx.runtime.kick();
    const t = mustGetType(ctx, publisher, type);
    return reply.status(isNew ? 201 : 200).send({ ...typeRecord(t), rolloutIds: started.map((r) => r.id) });
  });

  // ---- versions -------------------------------------------------------------------------------------

  app.get(`${TYPES}/:type/versions`, async (req) => {
    const { publisher, type } = req.params as { publisher: string; type: string };
    return { value: mustGetType(ctx, publisher, type).versions.map(versionRecord) };
  });

  app.get(`${TYPES}/:type/versions/:version`, async (req) => {
    const { publisher, type, version } = req.params as { publisher: string; type: string; version: string };
    const t = mustGetType(ctx, publisher, type);
    const v = t.versions.find((x) => x.version === version);
    if (!v) throw notFound('ArtifactNotFound', `Version '${version}' of '${t.publisher}.${t.type}' is not published.`);
    return { publisher: t.publisher, type: t.type, ...versionWithPackage(ctx, t, v) };
  });

  app.put(`${TYPES}/:type/versions/:version`, async (req, reply) => {
    const { publisher, type, version } = req.params as { publisher: string; type: string; version: string };
    writer(req, 'Phasewise/publishers/extensionTypes/versions/write', 'publisher');
    // The engine's versions have no leading zeros (`1.02.0.0` would compare equal to `1.2.0.0`).
    if (!fullVersion.safeParse(version).success || !isVersion(version)) {
      throw invalidParameter('version', `'${version}': expected a four-part version such as 1.31.0.0 (numbers without leading zeros)`);
    }
    const body = parseBody(versionBody, req.body);
    const t = mustGetType(ctx, publisher, type);
    if (t.versions.some((v) => compareVersions(v.version, version) === 0)) {
      throw conflict('VersionAlreadyPublished', `Version '${version}' of '${t.publisher}.${t.type}' is already published; published versions are immutable, publish a new version instead.`);
    }
    // Either order works: a package uploaded before the version must match the digest it is published with.
    const pkg = (ctx.agents?.packages ?? ctx.packages)?.get(`extension:${t.publisher}.${t.type}`, version);
    if (pkg && body.digest && body.digest !== `sha256:${pkg.sha256}`) {
      throw conflict('DigestMismatch', `The package uploaded for version '${version}' is sha256:${pkg.sha256}, not ${body.digest}.`);
    }
    const published: PublishedVersion = {
      version,
      os: [...new Set(body.os)] as OsType[],
      regions: canonicalRegions(ctx, body.regions),
      publishedAtMs: ctx.runtime.clock.now(),
      critical: body.critical,
      digest: body.digest ?? null,
    };
    const rollout = ctx.engine.publishVersion(t.publisher, t.type, published);
    ctx.runtime.kick();
    const stored = t.versions.find((v) => v.version === version) ?? published;
    return reply.status(201).send({ publisher: t.publisher, type: t.type, ...versionRecord(stored), rolloutId: rollout?.id ?? null });
  });

  // ---- rollouts -------------------------------------------------------------------------------------

  app.get('/phasewise/rollouts', async (req) => {
    const unknown = unknownParameterError(req.query as Record<string, unknown>, 'GET /phasewise/rollouts', ['status', '$skiptoken']);
    if (unknown) throw unknown; // `?statu=running` listed every rollout
    const q = queryOf(req);
    const status = q.status;
    if (status !== undefined && !ROLLOUT_STATUSES.includes(status as DisplayStatus)) {
      throw invalidParameter('status', `'${status}' is not a rollout status; use one of ${ROLLOUT_STATUSES.join(', ')}.`);
    }
    const rollouts = [...ctx.engine.state.rollouts.values()]
      .filter((r) => status === undefined || displayStatus(r) === status)
      .sort((a, b) => a.createdAtMs - b.createdAtMs || rolloutNumber(a.id) - rolloutNumber(b.id));
    return page(ctx, req, rollouts.map((r) => rolloutRecord(r, ctx.engine.state, ctx.runtime.clock.now())));
  });

  app.get('/phasewise/rollouts/:id', async (req) => {
    const { id } = req.params as { id: string };
    const r = ctx.engine.state.rollouts.get(id) ?? [...ctx.engine.state.rollouts.values()].find((x) => x.id.toLowerCase() === id.toLowerCase());
    if (!r) throw notFound('RolloutNotFound', `There is no rollout '${id}'.`);
    return rolloutRecord(r, ctx.engine.state, ctx.runtime.clock.now());
  });

  // ---- event log ------------------------------------------------------------------------------------

  app.get('/phasewise/events', async (req: FastifyRequest) => {
    const unknown = unknownParameterError(req.query as Record<string, unknown>, 'GET /phasewise/events', EVENTS_PARAMETERS);
    if (unknown) throw unknown;
    const q = queryOf(req);
    const after = intParam(q, 'after', 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(q, 'limit', ctx.pageSize, 1, 1000);
    const rolloutId = q.rolloutid;
    const rows = await ctx.eventLog.read({ afterSeq: after, ...(rolloutId !== undefined ? { rolloutId } : {}), order: 'asc', limit: limit + 1 });
    const value = rows.slice(0, limit);
    if (value.length === 0) {
      // Nothing after `after`: a cursor past the log's end came from another database or from before a
      // `db restore`. Answering it back would leave its reader waiting for seqs the log will reuse for other
      // events; the log's real end (below `after`) tells it to start again from there.
      const end = await ctx.eventLog.lastSeq();
      return { value, lastSeq: Math.min(after, end) };
    }
    const lastSeq = value[value.length - 1]!.seq;
    if (rows.length <= limit) return { value, lastSeq };
    const url = new URL(`${baseUrlOf(ctx, req)}${req.url}`);
    for (const k of [...url.searchParams.keys()]) if (k.toLowerCase() === 'after') url.searchParams.delete(k);
    url.searchParams.set('after', String(lastSeq));
    return { value, lastSeq, nextLink: url.toString() };
  });
}

function rolloutNumber(id: string): number {
  const m = /(\d+)$/.exec(id);
  return m ? Number(m[1]) : 0;
}
