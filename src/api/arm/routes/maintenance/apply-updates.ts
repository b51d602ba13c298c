/** R73: a resource's pending updates, applying them all now and that application's status; the platform's host updates. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { HostUpdate } from '../../../../model/maintenance.js';
import type { ArmContext } from '../../context.js';
import { writer } from '../../context.js';
import { badRequest, conflict, invalidParameter, notFound } from '../../errors.js';
import { RESOURCE_NAME } from '../../ids.js';
import { knownRegionName } from '../../locations.js';
import { parseBody } from '../../validation.js';
import { TARGETS, resourceOf } from './targets.js';

export function registerApplyUpdateRoutes(app: FastifyInstance, ctx: ArmContext): void {
  for (const t of TARGETS) {
    const resourceBase = `/subscriptions/:sub/resourceGroups/:rg/providers/${t.provider}/${t.type}/:resourceName/providers/Microsoft.Maintenance`;

    app.get(`${resourceBase}/updates`, async (req) => {
      const { resourceId, machines } = resourceOf(ctx, req, t);
      const members = machines();
      return { value: updatesView(ctx, resourceId, members.map((m) => m.id)) };
    });

    app.put(`${resourceBase}/applyUpdates/:name`, async (req, reply) => {
      const caller = writer(req, 'Microsoft.Maintenance/applyUpdates/write');
      const { p, resourceId, machines } = resourceOf(ctx, req, t);
      if (!RESOURCE_NAME.test(p.name!)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid apply-update name.`, 'applyUpdateName');
      const id = `${resourceId}/providers/Microsoft.Maintenance/applyUpdates/${p.name}`;
      const existing = ctx.docs.get<ApplyUpdateDoc>(id);
      const ids = machines().map((m) => m.id);
      const stored = ctx.docs.atomically(() => {
        const applied = ctx.engine.applyUpdates(ids, caller);
        const doc: ApplyUpdateDoc = { resourceId, rolloutIds: applied.rollouts.map((r) => r.id), hostApplied: applied.hostApplied, at: new Date(ctx.runtime.clock.now()).toISOString() };
        ctx.docs.put(id, resourceId, 'applyUpdate', doc);
        return doc;
      });
      return reply.status(existing?.kind === 'applyUpdate' ? 200 : 201).send(applyUpdateView(ctx, id, stored));
    });

    app.get(`${resourceBase}/applyUpdates/:name`, async (req) => {
      const { p, resourceId } = resourceOf(ctx, req, t);
      const id = `${resourceId}/providers/Microsoft.Maintenance/applyUpdates/${p.name}`;
      const d = ctx.docs.get<ApplyUpdateDoc>(id);
      if (!d || d.kind !== 'applyUpdate') throw notFound('ResourceNotFound', `The apply update '${p.name}' of '${resourceId}' was not found.`);
      return applyUpdateView(ctx, d.id, d.body);
    });
  }

  // The platform's host updates (R73), published like extension versions (publisher role).
  app.put('/phasewise/hostUpdates/:id', async (req, reply) => {
    const caller = writer(req, 'Phasewise/hostUpdates/write', 'publisher');
    const { id } = req.params as { id: string };
    if (!RESOURCE_NAME.test(id)) throw badRequest('InvalidParameter', `'${id}' is not a valid host update name (letters, digits, '-', '_' and '.').`, 'id');
    const body = parseBody(hostUpdateBody, req.body ?? {});
    // Names compare as ARM names, without regard to case: `HU1` after `hu1` is the same update published twice.
    const existing = ctx.engine.state.maintenance.hostUpdates.find((u) => u.id.toLowerCase() === id.toLowerCase());
    if (existing) {
      throw conflict('HostUpdateExists', `Host update '${existing.id}' was already published at ${new Date(existing.publishedAtMs).toISOString()}; host updates are immutable.`);
    }
    // Regions as ARM reads locations (`EastUS`, `East US`), stored as the fleet spells them, each once.
    const regions = body.regions === undefined ? null : [...new Set(body.regions.map((r, i) => {
      const name = knownRegionName(ctx.engine.state.fleet.regions, r);
      if (name === undefined) throw invalidParameter(`regions[${i}]`, `unknown region '${r}'`);
      return name;
    }))];
    const u = ctx.engine.publishHostUpdate({ id, regions, impactType: body.impactType ?? 'Freeze', impactDurationSec: body.impactDurationInSec ?? 30 }, caller);
    return reply.status(201).send(hostUpdateView(u));
  });

  app.get('/phasewise/hostUpdates', async () => ({ value: ctx.engine.state.maintenance.hostUpdates.map(hostUpdateView) }));
}

const hostUpdateBody = z.object({
  regions: z.array(z.string().min(1)).optional(),
  impactType: z.enum(['None', 'Freeze', 'Restart', 'Redeploy']).optional(),
  impactDurationInSec: z.number().int().min(0).max(86_400).optional(),
});

function hostUpdateView(u: HostUpdate) {
  return { name: u.id, regions: u.regions, impactType: u.impactType, impactDurationInSec: u.impactDurationSec, publishedAt: new Date(u.publishedAtMs).toISOString() };
}

interface ApplyUpdateDoc { resourceId: string; rolloutIds: string[]; hostApplied: number; at: string }

/** InProgress while a rollout it started runs; Completed after (also when nothing was pending). */
function applyUpdateView(ctx: ArmContext, id: string, d: ApplyUpdateDoc) {
  const running = d.rolloutIds.some((r) => ctx.engine.state.rollouts.get(r)?.status === 'running');
  const ended = d.rolloutIds.map((r) => ctx.engine.state.rollouts.get(r)).filter((r) => r !== undefined && r.status !== 'running');
  const last = Math.max(Date.parse(d.at), ...ended.map((r) => r!.endedAtMs ?? 0));
  return {
    id, name: id.slice(id.lastIndexOf('/') + 1), type: 'Microsoft.Maintenance/applyUpdates',
    properties: { status: running ? 'InProgress' : 'Completed', resourceId: d.resourceId, lastUpdateTime: new Date(last).toISOString() },
  };
}

/** Azure's Update objects for what waits for the resource's machines, one per scope (the earliest notBefore). */
function updatesView(ctx: ArmContext, resourceId: string, machineIds: string[]) {
  const byScope = new Map<string, { maintenanceScope: string; impactType: string; status: string; impactDurationInSec: number; notBefore: string; properties: { resourceId: string } }>();
  for (const u of ctx.engine.pendingUpdates(machineIds)) {
    const prev = byScope.get(u.scope);
    const notBefore = new Date(u.notBeforeMs).toISOString();
    if (!prev) byScope.set(u.scope, { maintenanceScope: u.scope, impactType: u.impactType, status: u.status, impactDurationInSec: u.impactDurationSec, notBefore, properties: { resourceId } });
    else {
      if (notBefore < prev.notBefore) prev.notBefore = notBefore;
      if (u.status === 'InProgress') prev.status = 'InProgress';
      prev.impactDurationInSec = Math.max(prev.impactDurationInSec, u.impactDurationSec);
    }
  }
  return [...byScope.values()];
}
