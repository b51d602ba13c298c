/** Rolling upgrades of a scale set (R81): extension and OS image upgrades, their status, approval of re-images (R83), cancel. */
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../../context.js';
import { booleanQuery, startOperation, writer } from '../../context.js';
import { invalidParameter } from '../../errors.js';
import { cancelRollingUpgrade, extensionRollingUpgrade, latestRollingUpgrade, osRollingUpgrade } from '../../rolling-upgrades.js';
import { parseBody } from '../../validation.js';
import { SCALE_SETS as base, instanceOf, setOf } from './lookup.js';
import { approveBody } from './schemas.js';

export function registerUpgradeRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.get(`${base}/:name/rollingUpgrades/latest`, async (req) => latestRollingUpgrade(ctx, setOf(ctx, req).set));
  app.post(`${base}/:name/extensionRollingUpgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/extensionRollingUpgrade/action');
    const { p, set } = setOf(ctx, req);
    const force = booleanQuery(req, 'forceExtensionUpgrade', false);
    const ids = extensionRollingUpgrade(ctx, set, caller, force);
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'rollouts', ids }, true);
    return reply.status(202).send();
  });
  app.post(`${base}/:name/osRollingUpgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/osRollingUpgrade/action');
    const { p, set, doc } = setOf(ctx, req);
    const ids = osRollingUpgrade(ctx, set, doc.properties.virtualMachineProfile?.storageProfile?.imageReference, caller);
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'rollouts', ids }, true);
    return reply.status(202).send();
  });
  // R83: the workload approves announced (or deferred) re-images: of the listed instances, or of all.
  app.post(`${base}/:name/approveRollingUpgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/approveRollingUpgrade/action');
    const { p, set } = setOf(ctx, req);
    const body = parseBody(approveBody, req.body ?? {});
    const byInstanceId = new Map(ctx.index.members(set.id).map((m) => [ctx.index.instanceIdOf(m), m]));
    const wanted = body.instanceIds ?? [...byInstanceId.keys()];
    const ids = wanted.map((iid, i) => {
      const m = byInstanceId.get(iid);
      if (!m) throw invalidParameter(`instanceIds[${i}]`, `scale set '${set.name}' has no instance '${iid}'`);
      return m.id;
    });
    ctx.engine.approveReimages(ids, caller);
    ctx.runtime.kick();
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    return reply.status(202).send();
  });
  app.post(`${base}/:name/virtualMachines/:iid/approveRollingUpgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/approveRollingUpgrade/action');
    const { set, m } = instanceOf(ctx, req);
    ctx.engine.approveReimages([m.id], caller);
    ctx.runtime.kick();
    startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    return reply.status(202).send();
  });
  app.post(`${base}/:name/rollingUpgrades/cancel`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades/cancel/action');
    const { set } = setOf(ctx, req);
    ctx.docs.atomically(() => {
      cancelRollingUpgrade(ctx, set, caller);
      // The reference's answer: 202 and the operation headers; the cancel is done when it leaves.
      startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    });
    return reply.status(202).send();
  });
}
