/**
 * Read-only views the dashboard needs, aggregated on the server so the page never holds the fleet:
 *
 *   GET /phasewise/dashboard/rollouts/{id}?unitSkip=&unitTop=   one rollout: regions, a page of its units,
 *       its last batches and gate decisions, units waiting for a window, a chart of outcomes over time
 *   GET /phasewise/dashboard/maintenance                         configurations with their next windows
 *   GET /phasewise/stream                                        server-sent events: what changed, twice a second at most
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isoOf } from '../engine/clock.js';
import type { RolloutState } from '../engine/state.js';
import type { EngineEvent } from '../model/events.js';
import { nextWindowStart, windowAt } from '../schedule/window.js';
import type { ArmContext } from '../api/arm/context.js';
import { nowIso, queryOf } from '../api/arm/context.js';
import { invalidParameter, notFound } from '../api/arm/errors.js';
import { rolloutRecord } from '../api/arm/routes/publisher.js';
import { registerStream } from './event-stream.js';
import { RolloutCharts } from './rollout-chart.js';

const GATE_TYPES = ['gate.held', 'gate.breached', 'gate.cleared', 'gate.excluded', 'gate.released'];

function intParam(q: Record<string, string>, name: string, fallback: number, max: number): number {
  const t = q[name.toLowerCase()];
  if (t === undefined) return fallback;
  if (!/^\d{1,7}$/.test(t) || Number(t) > max) throw invalidParameter(name, `'${t.slice(0, 20)}' is not a whole number from 0 to ${max}`);
  return Number(t);
}

function rolloutOf(ctx: ArmContext, req: FastifyRequest): RolloutState {
  const { id } = req.params as { id: string };
  const r = ctx.engine.state.rollouts.get(id);
  if (!r) throw notFound('RolloutNotFound', `There is no rollout '${id.slice(0, 200)}'.`);
  return r;
}

function regionsOf(r: RolloutState): Array<Record<string, unknown>> {
  const out = new Map<string, Record<string, number | string>>();
  for (const u of r.units.values()) {
    let row = out.get(u.region);
    if (!row) out.set(u.region, (row = { region: u.region, phase: u.phase, units: 0, machines: 0, batchesRun: 0, batchesPlanned: 0 }));
    row.units = (row.units as number) + 1;
    row.machines = (row.machines as number) + u.plan.batches.reduce((n, b) => n + b.machineIds.length, 0);
    row.batchesRun = (row.batchesRun as number) + u.next;
    row.batchesPlanned = (row.batchesPlanned as number) + u.plan.batches.length;
    row[u.status] = ((row[u.status] as number | undefined) ?? 0) + 1;
  }
  return [...out.values()].sort((a, b) => (a.phase as number) - (b.phase as number) || String(a.region).localeCompare(String(b.region)));
}

function unitsPage(r: RolloutState, skip: number, top: number): { total: number; value: Array<Record<string, unknown>> } {
  const value: Array<Record<string, unknown>> = [];
  let i = 0;
  for (const u of r.units.values()) {
    if (i++ < skip) continue;
    if (value.length >= top) break;
    value.push({
      id: u.plan.id, region: u.region, zone: u.plan.zone, setId: u.plan.setId, kind: u.plan.kind, phase: u.phase,
      machines: u.plan.batches.reduce((n, b) => n + b.machineIds.length, 0), batchesRun: u.next, batchesPlanned: u.plan.batches.length,
      status: u.status, upgraded: u.gateRun.upgraded, unhealthyUpgraded: u.gateRun.unhealthyUpgraded,
      stoppedUntil: u.gateRun.stoppedUntil === null ? null : isoOf(u.gateRun.stoppedUntil),
      windowOpensAt: u.windowOpensAt == null ? null : isoOf(u.windowOpensAt),
    });
  }
  return { total: r.units.size, value };
}

export function registerDashboardViews(app: FastifyInstance, ctx: ArmContext): void {
  const recent = (rolloutId: string, types: string[], limit: number): Promise<EngineEvent[]> => ctx.eventLog.read({ rolloutId, types, order: 'desc', limit });

  const charts = new RolloutCharts(ctx.eventLog);
  ctx.engine.onEvents((events) => charts.onEvents(events));
  const chartOf = async (r: RolloutState) => {
    const end = r.endedAtMs ?? ctx.runtime.clock.now();
    return { start: isoOf(r.createdAtMs), end: isoOf(end), ...(await charts.chart(r.id, r.createdAtMs, end)) };
  };

  app.get('/phasewise/dashboard/rollouts/:id', async (req) => {
    const r = rolloutOf(ctx, req);
    const q = queryOf(req);
    const units = unitsPage(r, intParam(q, 'unitSkip', 0, 10_000_000), Math.max(1, intParam(q, 'unitTop', 50, 200)));
    const hold = ctx.engine.state.releases.get(`${r.artifactKey}@${r.toVersion}`)?.hold ?? null;
    return {
      now: nowIso(ctx),
      rollout: rolloutRecord(r, ctx.engine.state, ctx.runtime.clock.now()),
      releaseHold: hold ? { kind: hold.kind, reason: hold.reason, caller: hold.caller, since: isoOf(hold.sinceMs) } : null,
      regions: regionsOf(r),
      units,
      batches: await recent(r.id, ['batch.started', 'batch.completed'], 50),
      gates: await recent(r.id, GATE_TYPES, 100),
      windows: await recent(r.id, ['window.waiting'], 50),
      chart: await chartOf(r),
    };
  });

  app.get('/phasewise/dashboard/maintenance', async () => {
    const now = ctx.runtime.clock.now();
    const m = ctx.engine.state.maintenance;
    const targets = new Map<string, number>();
    for (const ids of m.assignments.values()) for (const id of ids) targets.set(id, (targets.get(id) ?? 0) + 1);
    const value = [...m.configs.values()].map((c) => {
      const open = windowAt(c.parsed, now);
      const next = nextWindowStart(c.parsed, now);
      return {
        id: c.id, scope: c.scope, window: c.window, emergencyBypass: c.emergencyBypass, assignedTargets: targets.get(c.id) ?? 0,
        openNow: open ? { start: isoOf(open.start), end: isoOf(open.end) } : null,
        nextWindowStart: next === null ? null : isoOf(next),
      };
    });
    return { now: isoOf(now), value };
  });

  registerStream(app, ctx);
}
