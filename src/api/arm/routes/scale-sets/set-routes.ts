/** A scale set itself: create or replace (PUT), update (PATCH), read, list, delete, its instance view and OS upgrade history. */
import type { FastifyInstance } from 'fastify';
import { checkRemoveMachine } from '../../../../engine/fleet/machines.js';
import { COLLECTIONS } from '../../fleet-index.js';
import type { ArmContext } from '../../context.js';
import { indexedPage, mustHaveGroup, mustHaveSubscription, page, setById, startOperation, writer } from '../../context.js';
import type { ScaleSet } from '../../../../model/fleet.js';
import { badRequest } from '../../errors.js';
import { instancesOf } from '../../extensions.js';
import { RESOURCE_NAME, scaleSetId } from '../../ids.js';
import { osUpgradeHistory } from '../../rolling-upgrades.js';
import { parseBody } from '../../validation.js';
import { SCALE_SETS as base, setOf } from './lookup.js';
import { patchBody, putBody } from './schemas.js';
import type { P } from './schemas.js';
import { createSet, updateSet } from './set-writes.js';
import { setView } from './views.js';

export function registerSetRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.put(`${base}/:name`, async (req, reply) => {
    const p = req.params as P;
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/write');
    mustHaveGroup(ctx, p.sub, p.rg);
    if (!RESOURCE_NAME.test(p.name)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid scale set name.`, 'vmScaleSetName');
    const body = parseBody(putBody, req.body);
    const existing = ctx.index.scaleSet(scaleSetId(p.sub, p.rg, p.name));
    if (existing) return updateSet(ctx, req, reply, existing, { ...body, properties: body.properties }, caller, true);
    return createSet(ctx, req, reply, p, body, caller);
  });
  app.patch(`${base}/:name`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/write');
    const { set } = setOf(ctx, req);
    const body = parseBody(patchBody, req.body);
    return updateSet(ctx, req, reply, set, body, caller, false);
  });
  app.get(`${base}/:name`, async (req) => {
    const { set } = setOf(ctx, req);
    return setView(ctx, set);
  });
  app.get(base, async (req) => {
    const p = req.params as P;
    mustHaveGroup(ctx, p.sub, p.rg);
    const name = COLLECTIONS.sets(p.sub, p.rg);
    const collection = { name, all: () => ctx.index.setsIn(name), keyOf: (s: ScaleSet) => s.name, idOf: (s: ScaleSet) => s.id, itemOf: setById(ctx) };
    return indexedPage(ctx, req, collection, (s) => setView(ctx, s));
  });
  // The SDKs' listAll: every scale set of the subscription, by id (resource group, then name).
  app.get('/subscriptions/:sub/providers/Microsoft.Compute/virtualMachineScaleSets', async (req) => {
    const { sub } = req.params as P;
    mustHaveSubscription(ctx, sub);
    const name = COLLECTIONS.sets(sub);
    const collection = { name, all: () => ctx.index.setsIn(name), keyOf: (s: ScaleSet) => ctx.index.armIdOfSet(s), idOf: (s: ScaleSet) => s.id, itemOf: setById(ctx) };
    return indexedPage(ctx, req, collection, (s) => setView(ctx, s));
  });
  app.delete(`${base}/:name`, async (req, reply) => {
    writer(req, 'Microsoft.Compute/virtualMachineScaleSets/delete');
    const p = req.params as P;
    const set = ctx.index.scaleSet(scaleSetId(p.sub, p.rg, p.name));
    if (!set) return reply.status(204).send();
    const members = ctx.index.members(set.id);
    for (const m of members) checkRemoveMachine(ctx.engine.state, m.id);
    ctx.docs.atomically(() => {
      for (const m of members) {
        ctx.docs.delete(ctx.index.armIdOfMachine(m));
        ctx.engine.removeMachine(m.id);
      }
      ctx.docs.delete(ctx.index.armIdOfSet(set));
      ctx.engine.removeScaleSet(set.id);
      // Done already, but with the operation headers a saved SDK poller (restorePoller, resumeFrom) can be resumed.
      startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    });
    for (const m of members) ctx.index.removeMachine(m);
    ctx.index.removeSet(set);
    ctx.runtime.kick();
    return reply.status(200).send();
  });
  app.get(`${base}/:name/instanceView`, async (req) => {
    const { set } = setOf(ctx, req);
    const members = ctx.index.members(set.id);
    const byExt = new Map<string, Map<string, number>>();
    for (const m of members) for (const i of instancesOf(ctx, m.id)) {
      let counts = byExt.get(i.name);
      if (!counts) byExt.set(i.name, (counts = new Map()));
      const code = `ProvisioningState/${i.status.toLowerCase()}`;
      counts.set(code, (counts.get(code) ?? 0) + 1);
    }
    return {
      virtualMachine: { statusesSummary: members.length ? [{ code: 'ProvisioningState/succeeded', count: members.length }] : [] },
      extensions: [...byExt].map(([name, counts]) => ({ name, statusesSummary: [...counts].map(([code, count]) => ({ code, count })) })),
      statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded' }],
    };
  });
  app.get(`${base}/:name/osUpgradeHistory`, async (req) => page(ctx, req, osUpgradeHistory(ctx, setOf(ctx, req).set)));
}
