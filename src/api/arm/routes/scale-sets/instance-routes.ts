/** A scale set's instances: list, read, update, delete, instance view, manual upgrade to the model, and each instance's extensions. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkRemoveMachine } from '../../../../engine/fleet/machines.js';
import { COLLECTIONS } from '../../fleet-index.js';
import type { ArmContext } from '../../context.js';
import { indexedPage, queryOf, startOperation, writer } from '../../context.js';
import type { Machine } from '../../../../model/fleet.js';
import { badRequest } from '../../errors.js';
import { deleteExtension, extensionNotFound, extensionView, findByName, instancesOf, wantsInstanceView, writeExtension } from '../../extensions.js';
import type { ExtensionTarget } from '../../extensions.js';
import { resourceGroupId } from '../../ids.js';
import { machineInstanceView } from '../../machines.js';
import { parseBody } from '../../validation.js';
import { SCALE_SETS as base, instanceOf, setOf } from './lookup.js';
import { applyModel, checkModelOn, modelExtensions } from './model.js';
import { checkInstancePut, instancePutBody } from './instance-update.js';
import { manualUpgradeBody } from './schemas.js';
import type { P } from './schemas.js';
import { instanceListQuery } from './instance-list-query.js';
import { instanceView, latestModelApplied } from './views.js';

export function registerInstanceRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.get(`${base}/:name/virtualMachines`, async (req) => {
    const { set, doc } = setOf(ctx, req);
    const list = instanceListQuery(queryOf(req));
    const expand = list.powerStateOnly ? 'powerState' : list.instanceView;
    const wanted = list.latestModelApplied;
    const collection = {
      name: COLLECTIONS.members(set.id), all: () => ctx.index.members(set.id), keyOf: (m: Machine) => ctx.index.instanceIdOf(m), idOf: (m: Machine) => m.id,
      itemOf: (id: string) => ctx.engine.state.fleet.machines.get(id),
      ...(wanted === undefined ? {} : { keep: (m: Machine) => latestModelApplied(ctx, set, doc, m) === wanted }),
    };
    return indexedPage(ctx, req, collection, (m) => instanceView(ctx, set, doc, m, expand));
  });
  app.get(`${base}/:name/virtualMachines/:iid`, async (req) => {
    const { set, doc, m } = instanceOf(ctx, req);
    return instanceView(ctx, set, doc, m, wantsInstanceView(req));
  });
  app.get(`${base}/:name/virtualMachines/:iid/instanceView`, async (req) => {
    const { m, vmArmId } = instanceOf(ctx, req);
    return machineInstanceView(ctx, vmArmId, m, 'vmssVm');
  });
  app.post(`${base}/:name/manualupgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action');
    const { p, set, doc } = setOf(ctx, req);
    const body = parseBody(manualUpgradeBody, req.body);
    const members = new Map(ctx.index.members(set.id).map((m) => [ctx.index.instanceIdOf(m), m]));
    const unknown = body.instanceIds.filter((i) => !members.has(i));
    if (unknown.length) throw badRequest('InvalidParameter', `instanceIds: the scale set has no instance ${unknown.map((i) => `'${i}'`).join(', ')}.`, 'instanceIds');
    const machines = [...new Set(body.instanceIds)].map((i) => members.get(i)!);
    checkModelOn(ctx, modelExtensions(doc), machines);
    const touched = ctx.docs.atomically(() => {
      const t = machines.flatMap((m) => applyModel(ctx, doc, m, caller));
      ctx.docs.put(ctx.index.armIdOfSet(set), resourceGroupId(set.subscription, set.resourceGroup), 'scaleSet', doc);
      return t;
    });
    ctx.runtime.kick();
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'instances', items: touched }, true);
    return reply.status(202).send();
  });
  // The SDKs' virtualMachineScaleSetVMs.update (a PUT): tags and the instance's own properties (instance-update.ts).
  app.put(`${base}/:name/virtualMachines/:iid`, async (req, reply) => {
    writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/write');
    const { set, doc, m, vmArmId } = instanceOf(ctx, req);
    const body = parseBody(instancePutBody, req.body);
    const own = checkInstancePut(ctx, set, doc.sku.name, m, ctx.index.instanceIdOf(m), body);
    ctx.docs.put(vmArmId, ctx.index.armIdOfSet(set), 'scaleSetVm', own);
    // Done already, but with the operation headers a saved SDK poller can be resumed.
    startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    return reply.status(200).send(instanceView(ctx, set, doc, m, false));
  });
  // The SDKs' virtualMachineScaleSetVMs.delete: one instance goes and the capacity shrinks by one (ids are never reused).
  app.delete(`${base}/:name/virtualMachines/:iid`, async (req, reply) => {
    writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/delete');
    const { p, set, doc } = setOf(ctx, req);
    const m = ctx.index.members(set.id).find((x) => ctx.index.instanceIdOf(x) === p.iid);
    if (!m) return reply.status(204).send();
    checkRemoveMachine(ctx.engine.state, m.id);
    ctx.docs.atomically(() => {
      ctx.docs.delete(ctx.index.armIdOfMachine(m));
      ctx.engine.removeMachine(m.id);
      doc.sku = { ...doc.sku, capacity: Math.max(0, doc.sku.capacity - 1) };
      ctx.docs.put(ctx.index.armIdOfSet(set), resourceGroupId(set.subscription, set.resourceGroup), 'scaleSet', doc);
      // Done already, but with the operation headers a saved SDK poller can be resumed.
      startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    });
    ctx.index.removeMachine(m);
    ctx.runtime.kick();
    return reply.status(200).send();
  });
  // ---- the instances' extensions ----
  const target = (req: FastifyRequest): ExtensionTarget => {
    const { p, m, vmArmId } = instanceOf(ctx, req);
    return { machine: m, machineArmId: vmArmId, sub: p.sub, provider: 'Microsoft.Compute', flavor: 'vmssVm' };
  };
  const extensionWrite = (req: FastifyRequest) => writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions/write');
  app.put(`${base}/:name/virtualMachines/:iid/extensions/:ext`, async (req, reply) => writeExtension(ctx, req, reply, target(req), (req.params as P).ext!, extensionWrite(req), false));
  app.patch(`${base}/:name/virtualMachines/:iid/extensions/:ext`, async (req, reply) => writeExtension(ctx, req, reply, target(req), (req.params as P).ext!, extensionWrite(req), true));
  app.get(`${base}/:name/virtualMachines/:iid/extensions/:ext`, async (req) => {
    const t = target(req);
    const inst = findByName(ctx, t.machine.id, (req.params as P).ext!);
    if (!inst) throw extensionNotFound(t.machineArmId, (req.params as P).ext!);
    return extensionView(ctx, t.machineArmId, t.machine, inst, 'vmssVm', wantsInstanceView(req));
  });
  app.get(`${base}/:name/virtualMachines/:iid/extensions`, async (req) => {
    const t = target(req);
    return { value: instancesOf(ctx, t.machine.id).map((i) => extensionView(ctx, t.machineArmId, t.machine, i, 'vmssVm', wantsInstanceView(req))) };
  });
  app.delete(`${base}/:name/virtualMachines/:iid/extensions/:ext`, async (req, reply) =>
    deleteExtension(ctx, req, reply, target(req), (req.params as P).ext!, writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions/delete')));
}
