/** Finding the scale set (and instance) a request's path names, with ARM's 404s. */
import type { FastifyRequest } from 'fastify';
import type { ArmContext } from '../../context.js';
import { resourceMissing } from '../../context.js';
import { notFound } from '../../errors.js';
import { scaleSetId, scaleSetVmId } from '../../ids.js';
import { docOf } from './model.js';
import type { P } from './schemas.js';

export const SCALE_SETS = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/virtualMachineScaleSets';

export function setOf(ctx: ArmContext, req: FastifyRequest) {
  const p = req.params as P;
  const armId = scaleSetId(p.sub, p.rg, p.name);
  const set = ctx.index.scaleSet(armId);
  if (!set) {
    throw resourceMissing(ctx, p.sub, p.rg, 'Microsoft.Compute/virtualMachineScaleSets', p.name);
  }
  return { p, armId: ctx.index.armIdOfSet(set), set, doc: docOf(ctx, set) };
}

export function instanceOf(ctx: ArmContext, req: FastifyRequest) {
  const s = setOf(ctx, req);
  const iid = (req.params as P).iid!;
  const m = ctx.index.members(s.set.id).find((x) => ctx.index.instanceIdOf(x) === iid);
  if (!m) throw notFound('NotFound', `The scale set ${s.set.name} has no instance '${iid}'.`);
  return { ...s, m, vmArmId: scaleSetVmId(s.set.subscription, s.set.resourceGroup, s.set.name, iid) };
}
