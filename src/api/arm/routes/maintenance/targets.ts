/** The resources configurations are assigned to and updates applied on: VMs, scale sets and Arc machines. */
import type { FastifyRequest } from 'fastify';
import type { ArmContext } from '../../context.js';
import { resourceMissing } from '../../context.js';
import { ArmError, invalidParameter } from '../../errors.js';
import { arcMachineId, scaleSetId, vmId } from '../../ids.js';

/** The resource types configurations can be assigned to. */
export const TARGETS = [
  { provider: 'Microsoft.Compute', type: 'virtualMachines', kind: 'vm' },
  { provider: 'Microsoft.Compute', type: 'virtualMachineScaleSets', kind: 'scaleSet' },
  { provider: 'Microsoft.HybridCompute', type: 'machines', kind: 'arc' },
] as const;
export type Target = (typeof TARGETS)[number];

type AP = { sub: string; rg: string; resourceName: string; name?: string };

/** The resource's ARM id (its stored casing) and location; 404 when it does not exist. */
export function resourceOf(ctx: ArmContext, req: FastifyRequest, target: Target) {
  const p = req.params as AP;
  if (target.kind === 'scaleSet') {
    const s = ctx.index.scaleSet(scaleSetId(p.sub, p.rg, p.resourceName));
    if (!s) throw resourceMissing(ctx, p.sub, p.rg, `${target.provider}/${target.type}`, p.resourceName);
    return { p, resourceId: ctx.index.armIdOfSet(s), location: s.region, engineId: s.id, machines: () => ctx.index.members(s.id) };
  }
  const m = ctx.index.machine(target.kind === 'arc' ? arcMachineId(p.sub, p.rg, p.resourceName) : vmId(p.sub, p.rg, p.resourceName));
  if (!m || (target.kind === 'arc') !== (m.kind === 'arc')) throw resourceMissing(ctx, p.sub, p.rg, `${target.provider}/${target.type}`, p.resourceName);
  return { p, resourceId: ctx.index.armIdOfMachine(m), location: m.placement.region, engineId: m.id, machines: () => [m] };
}

/**
 * The resource an assignment is written for: one that does not exist is bad input naming
 * `resourceId` (a missing resource group or subscription is still a 404, as for any resource).
 */
export function assignable(ctx: ArmContext, req: FastifyRequest, target: Target) {
  try {
    return resourceOf(ctx, req, target);
  } catch (err) {
    if (!(err instanceof ArmError) || err.code !== 'ResourceNotFound') throw err;
    const p = req.params as AP;
    const id = `/subscriptions/${p.sub}/resourceGroups/${p.rg}/providers/${target.provider}/${target.type}/${p.resourceName}`;
    const what = target.type === 'machines' ? 'Arc machine' : target.type === 'virtualMachines' ? 'virtual machine' : 'virtual machine scale set';
    throw invalidParameter('resourceId', `resourceId: the ${what} '${id}' does not exist; a configuration can only be assigned to an existing resource`);
  }
}
