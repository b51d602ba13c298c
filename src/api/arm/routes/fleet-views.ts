/**
 * Read views for operators (the CLI and the dashboard), aggregated on the server so that a client
 * never holds the whole fleet: the fleet per extension (versions in use, the automatic-upgrade state
 * of R80), one machine with its extensions and history, and a bounded machine search.
 *
 *   GET /phasewise/fleet                       per extension type: machines, versions in use, R80 states
 *   GET /phasewise/machines?prefix=&top=       at most `top` (≤ 100) machines whose id starts with prefix
 *   GET /phasewise/machines/{id}               one machine (ids with '/' are URL-encoded), its extensions, its last events
 */
import type { FastifyInstance } from 'fastify';
import { autoUpgradeState } from '../../../catalog/catalog.js';
import { isoOf } from '../../../engine/clock.js';
import { isEnrolled } from '../../../engine/state.js';
import type { EngineEvent } from '../../../model/events.js';
import type { Machine } from '../../../model/fleet.js';
import type { ArmContext } from '../context.js';
import { queryOf } from '../context.js';
import { fleetStopView } from '../fleet-stop.js';
import { FleetSummary } from '../fleet-summary.js';
import { invalidParameter, notFound } from '../errors.js';
import { unknownParameterError } from '../query-parameters.js';

const HISTORY = 200;

function machineRecord(ctx: ArmContext, m: Machine): Record<string, unknown> {
  const state = ctx.engine.state;
  const extensions = [];
  for (const [key, byMachine] of state.fleet.instances) {
    const inst = byMachine.get(m.id);
    if (!inst) continue;
    const t = state.catalog.getType(inst.publisher, inst.type);
    extensions.push({
      artifactKey: key, name: inst.name, publisher: inst.publisher, type: inst.type,
      installedVersion: inst.installedVersion, desiredVersion: inst.desiredVersion, lastKnownGoodVersion: inst.lastKnownGoodVersion,
      status: inst.status, blockedReason: inst.blockedReason, autoUpgrade: autoUpgradeState(inst, t, isEnrolled(state, m)),
    });
  }
  return {
    id: m.id, name: m.name, kind: m.kind, os: m.os, resourceGroup: m.resourceGroup, armId: ctx.index.armIdOfMachine(m),
    placement: m.placement, healthy: !state.fleet.unhealthy.has(m.id), extensions,
  };
}

export function registerFleetViewRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const summary = new FleetSummary(() => ctx.engine.state);
  app.addHook('onClose', async () => summary.stop());
  // The first summary is made before the server listens: the first visitor does not wait for it.
  app.addHook('onReady', async () => void summary.get());
  app.get('/phasewise/fleet', async () => {
    const state = ctx.engine.state;
    const cache = summary.get();
    const held = [...state.releases.values()].filter((r) => r.hold).map((r) => ({
      artifact: r.artifact, version: r.toVersion, kind: r.hold!.kind, reason: r.hold!.reason, since: isoOf(r.hold!.sinceMs),
    }));
    return {
      machines: state.fleet.machines.size, unhealthy: state.fleet.unhealthy.size, subscriptions: cache.subscriptions, artifacts: cache.value, releasesHeld: held,
      fleetStop: fleetStopView(ctx.docs),
      // False while the summary is older than the engine's last event: ask again in a moment.
      upToDate: cache.seq === state.eventSeq,
    };
  });

  app.get('/phasewise/machines', async (req) => {
    const unknown = unknownParameterError(req.query as Record<string, unknown>, 'GET /phasewise/machines', ['prefix', 'top']);
    if (unknown) throw unknown; // `?prefx=web` listed the first machines of the fleet
    const q = queryOf(req);
    const prefix = (q.prefix ?? '').toLowerCase();
    if (prefix.length > 200) throw invalidParameter('prefix', 'at most 200 characters');
    const topText = q.top ?? '20';
    if (!/^\d{1,3}$/.test(topText) || Number(topText) < 1 || Number(topText) > 100) throw invalidParameter('top', `'${topText.slice(0, 20)}' is not a whole number from 1 to 100`);
    const top = Number(topText);
    const value: Array<Record<string, unknown>> = [];
    for (const m of ctx.engine.state.fleet.machines.values()) {
      if (prefix !== '' && !m.id.toLowerCase().startsWith(prefix) && !m.name.toLowerCase().startsWith(prefix)) continue;
      value.push({ id: m.id, name: m.name, kind: m.kind, region: m.placement.region, setId: m.placement.setId, subscription: m.placement.subscription });
      if (value.length >= top) break;
    }
    return { value };
  });

  app.get('/phasewise/machines/:id', async (req) => {
    const { id } = req.params as { id: string };
    // Machine ids are ARM ids, which are case-insensitive; the engine keys them lower-cased.
    const m = ctx.engine.state.fleet.machines.get(id) ?? ctx.engine.state.fleet.machines.get(id.toLowerCase());
    if (!m) throw notFound('MachineNotFound', `There is no machine '${id.slice(0, 200)}'.`);
    // The machine's newest events, read through the index events_machine (no scan of the log).
    const history = (await ctx.eventLog.read({ machineId: m.id, order: 'desc', limit: HISTORY })).reverse().map((e) => {
      const x = e as EngineEvent & { rolloutId?: string; fromVersion?: string; toVersion?: string; reason?: string; attempt?: number };
      return {
        seq: e.seq, time: e.time, type: e.type, rolloutId: x.rolloutId ?? null, fromVersion: x.fromVersion ?? null,
        toVersion: x.toVersion ?? null, attempt: x.attempt ?? null, reason: x.reason ?? null,
      };
    });
    return { ...machineRecord(ctx, m), history };
  });
}
