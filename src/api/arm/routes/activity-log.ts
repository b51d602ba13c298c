/**
 * The activity log (R82): `GET /subscriptions/{sub}/providers/microsoft.insights/eventtypes/management/values`,
 * as Azure Monitor serves it (api-version 2015-04-01). Every automatic and manual upgrade attempt,
 * rollback, install and opt-in change of the subscription's machines, newest first, read from the
 * engine's event log. Errors here have Azure Monitor's flat body `{"code","message"}`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EngineEvent } from '../../../model/events.js';
import { artifactKey } from '../../../model/artifact.js';
import type { EventData, EventTarget } from '../activity-log.js';
import {
  ACTIVITY_EVENT_TYPES,
  ActivityLogError,
  applySelect,
  displayCaller,
  matchesFilter,
  parseActivityFilter,
  parseSelect,
  parseSkipToken,
  subscriptionOf,
  targetFromArmId,
  toEventData,
} from '../activity-log.js';
import type { ArmContext } from '../context.js';
import { baseUrlOf, queryOf, skipTokenParameter } from '../context.js';
import { ArmError } from '../errors.js';
import { LATEST_EVENT_MS } from '../../../store/event-log-reader.js';
import type { EventLogReader, EventQuery } from '../../../store/event-log-reader.js';

/** Rows read per query while a page fills up. */
const CHUNK = 500;

export function registerActivityLogRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.get('/subscriptions/:sub/providers/microsoft.insights/eventtypes/management/values', async (req, reply) => {
    try {
      return await readPage(ctx, req); // awaited here, so that its errors reach the catch below
    } catch (err) {
      // Azure Monitor's errors are flat: {"code","message"}.
      if (err instanceof ActivityLogError) return reply.status(err.status).type('application/json').send({ code: err.code, message: err.message });
      if (err instanceof ArmError && err.status < 500) return reply.status(err.status).type('application/json').send({ code: err.code, message: err.message });
      throw err;
    }
  });
}

async function readPage(ctx: ArmContext, req: FastifyRequest): Promise<{ value: Array<Record<string, unknown>>; nextLink?: string }> {
  const { sub } = req.params as { sub: string };
  if (!ctx.index.hasSubscription(sub)) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
  const q = queryOf(req);
  const filter = parseActivityFilter(q.$filter);
  const select = parseSelect(q.$select);
  const before = parseSkipToken(skipTokenParameter(req));
  const wantSub = sub.toLowerCase();

  // Callers of rollouts, read once per page (a few hundred rows at most). The rollouts table, not the event log: still SQLite's.
  const callers = new Map<string, string>();
  for (const r of ctx.db.prepare('SELECT id, caller FROM rollouts').all() as Array<{ id: string; caller: string }>) callers.set(r.id, r.caller);
  for (const r of ctx.engine.state.rollouts.values()) if (!callers.has(r.id)) callers.set(r.id, r.caller);

  // A correlationId that names a rollout reads only that rollout's events (indexed).
  let rolloutId: string | null = null;
  if (filter.clause?.field === 'correlationId') {
    const want = filter.clause.value.toLowerCase();
    rolloutId = [...callers.keys()].find((id) => id.toLowerCase() === want) ?? null;
  }

  // A caller filter reads only the events of that caller's rollouts, and events of no rollout.
  let callerRollouts: string[] | null = null;
  if (filter.clause?.field === 'caller') {
    const want = filter.clause.value.toLowerCase();
    const ids = [...callers].filter(([, c]) => displayCaller(c).toLowerCase() === want).map(([id]) => id);
    if (ids.length <= 500) callerRollouts = ids;
  }

  // The event log's readers take times from 1970 to 9999 (event-log-reader.ts) and refuse others: a range
  // reaching past either end reads what lies within (it was a 500); one wholly outside holds nothing.
  if (filter.toMs < 0 || filter.fromMs > LATEST_EVENT_MS) return { value: [] };
  const query: Omit<EventQuery, 'beforeSeq'> = {
    fromMs: Math.max(filter.fromMs, 0), toMs: Math.min(filter.toMs, LATEST_EVENT_MS), types: ACTIVITY_EVENT_TYPES, order: 'desc', limit: CHUNK,
    ...(rolloutId ? { rolloutId } : {}),
    // Operators' controls of a rollout carry their own caller, whoever started the rollout.
    ...(callerRollouts ? { noRolloutOr: { rolloutIds: callerRollouts, orTypes: OPERATOR_TYPES } } : {}),
  };

  const targets = new Map<string, EventTarget | null>();
  const targetOf = (machineId: string): EventTarget | null => {
    if (targets.has(machineId)) return targets.get(machineId)!;
    const m = ctx.engine.state.fleet.machines.get(machineId);
    const t: EventTarget | null = m ? { kind: m.kind, resourceId: ctx.index.armIdOfMachine(m), resourceGroup: m.resourceGroup } : targetFromArmId(machineId);
    targets.set(machineId, t);
    return t;
  };

  /** A set's resource (window bypasses are recorded on the set their batch belongs to). */
  const setTargetOf = (setId: string | null): EventTarget | null => {
    if (setId === null) return null;
    const ss = ctx.engine.state.fleet.scaleSets.get(setId);
    const id = ss ? ctx.index.armIdOfSet(ss) : ctx.index.availabilitySetArmId(setId);
    return id ? { kind: 'vm', resourceId: id, resourceGroup: ss?.resourceGroup ?? /\/resourceGroups\/([^/]+)/i.exec(id)?.[1] ?? '' } : null;
  };
  const installStarts = installStartFinder(ctx.eventLog);
  const found: Array<{ seq: number; data: EventData }> = [];
  let cursor = before ?? Number.MAX_SAFE_INTEGER;
  const limit = ctx.pageSize + 1;
  while (found.length < limit) {
    const rows = await ctx.eventLog.read({ ...query, beforeSeq: cursor });
    for (const e of rows) {
      cursor = e.seq;
      const target = 'machineId' in e ? targetOf(e.machineId) : e.type === 'window.bypassed' ? setTargetOf(e.scope.setId ?? null) : null;
      // A release held or resumed concerns every subscription's machines: it shows in each log.
      const eventSub = e.type === 'release.halted' || e.type === 'release.resumed' || isOperatorControl(e) ? wantSub : subscriptionOf(e, target);
      if (eventSub === null || eventSub.toLowerCase() !== wantSub) continue;
      const data = toEventData({
        event: e,
        target,
        rolloutCaller: 'rolloutId' in e ? (callers.get(e.rolloutId) ?? null) : null,
        installStartSeq: e.type === 'instance.install.succeeded' || e.type === 'instance.install.failed' ? await installStarts(e) : null,
      });
      if (!data || !matchesFilter(filter, data)) continue;
      found.push({ seq: e.seq, data });
      if (found.length >= limit) break;
    }
    if (rows.length < CHUNK) break;
  }

  const pageItems = found.slice(0, ctx.pageSize);
  const value = pageItems.map((f) => applySelect(f.data, select));
  if (found.length <= ctx.pageSize) return { value };
  const url = new URL(`${baseUrlOf(ctx, req)}${req.url}`);
  for (const k of [...url.searchParams.keys()]) if (k.toLowerCase() === '$skiptoken') url.searchParams.delete(k);
  url.searchParams.set('$skiptoken', String(pageItems[pageItems.length - 1]!.seq));
  return { value, nextLink: url.toString() };
}

const OPERATOR_TYPES = ['rollout.paused', 'rollout.resumed', 'rollout.cancelled'];

/** A pause, resume or cancel an operator asked for: it concerns the whole rollout, shown in every subscription's log. */
function isOperatorControl(e: EngineEvent): boolean {
  return (e.type === 'rollout.paused' || e.type === 'rollout.resumed' || e.type === 'rollout.cancelled') && e.caller !== undefined;
}

/** How far back (in events) the start of an install is looked for; installs end within hours. */
const INSTALL_LOOKBACK = 200_000;

/** Finds the seq of the `instance.install.started` an install's end event belongs to (null when not found). */
function installStartFinder(log: EventLogReader): (e: Extract<EngineEvent, { type: 'instance.install.succeeded' | 'instance.install.failed' }>) => Promise<number | null> {
  return async (e) => {
    const key = artifactKey(e.artifact);
    const starts = await log.read({
      machineId: e.machineId, types: ['instance.install.started'], beforeSeq: e.seq, afterSeq: e.seq - INSTALL_LOOKBACK - 1, order: 'desc', limit: 20,
    });
    for (const start of starts) {
      if (start.type === 'instance.install.started' && artifactKey(start.artifact) === key) return start.seq;
    }
    return null;
  };
}
