/** The model's extensions (`virtualMachineScaleSets/{name}/extensions`): a change reaches the instances by the set's upgrade mode. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ScaleSet } from '../../../../model/fleet.js';
import type { ArmContext } from '../../context.js';
import { page, startOperation, updateTrack, writer } from '../../context.js';
import { badRequest } from '../../errors.js';
import { extensionNotFound } from '../../extensions.js';
import { osOf } from '../../machines.js';
import { parseBody } from '../../validation.js';
import { SCALE_SETS as base, setOf } from './lookup.js';
import { changeModel, checkModel, modelExtensions } from './model.js';
import { checkRequestSettings } from '../../settings-budget.js';
import { modelExtension, modelExtensionBody } from './schemas.js';
import type { P, ScaleSetDoc } from './schemas.js';
import { modelExtensionView } from './views.js';

export function registerModelExtensionRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.put(`${base}/:name/extensions/:ext`, async (req, reply) => modelExtensionWrite(ctx, req, reply, setOf(ctx, req), false));
  app.patch(`${base}/:name/extensions/:ext`, async (req, reply) => modelExtensionWrite(ctx, req, reply, setOf(ctx, req), true));
  app.get(`${base}/:name/extensions/:ext`, async (req) => {
    const { set, doc } = setOf(ctx, req);
    const e = modelExtensions(doc).find((x) => x.name.toLowerCase() === (req.params as P).ext!.toLowerCase());
    if (!e) throw extensionNotFound(ctx.index.armIdOfSet(set), (req.params as P).ext!);
    return modelExtensionView(ctx, set, e);
  });
  app.get(`${base}/:name/extensions`, async (req) => {
    const { set, doc } = setOf(ctx, req);
    return page(ctx, req, modelExtensions(doc).map((e) => modelExtensionView(ctx, set, e)), (v) => String(v.name));
  });
  app.delete(`${base}/:name/extensions/:ext`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/extensions/delete');
    const { set, doc } = setOf(ctx, req);
    const name = (req.params as P).ext!.toLowerCase();
    const exts = modelExtensions(doc);
    if (!exts.some((e) => e.name.toLowerCase() === name)) return reply.status(204).send();
    const next = exts.filter((e) => e.name.toLowerCase() !== name);
    changeModel(ctx, set, doc, next, caller);
    // With the operation headers a saved SDK poller (restorePoller) can be resumed.
    startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    return reply.status(200).send();
  });
}

function modelExtensionWrite(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, s: { p: P; set: ScaleSet; doc: ScaleSetDoc }, patch: boolean) {
  const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/extensions/write');
  const name = s.p.ext!;
  const exts = modelExtensions(s.doc);
  const i = exts.findIndex((e) => e.name.toLowerCase() === name.toLowerCase());
  if (patch && i < 0) throw extensionNotFound(ctx.index.armIdOfSet(s.set), name);
  // The body's shape first (properties must be an object), then the merged extension as a whole.
  const body = parseBody(modelExtensionBody, req.body);
  if (!patch && !body.properties) throw badRequest('InvalidParameter', 'properties: required', 'properties');
  const merged = parseBody(modelExtension, { name: i >= 0 ? exts[i]!.name : name, properties: { ...(patch && i >= 0 ? exts[i]!.properties : {}), ...(body.properties ?? {}) } });
  // Nothing changed: the model (and every instance's latestModelApplied) stays as it is.
  if (i >= 0 && JSON.stringify(merged) === JSON.stringify(exts[i])) {
    if (patch) startOperation(ctx, req, reply, s.set.subscription, 'Microsoft.Compute', s.set.region, { kind: 'done' }, false);
    reply.status(200);
    return modelExtensionView(ctx, s.set, exts[i]!);
  }
  const next = [...exts];
  if (i >= 0) next[i] = merged;
  else next.push(merged);
  const members = ctx.index.members(s.set.id);
  const perInstance = checkModel(ctx, next, { os: members[0]?.os ?? osOf(s.doc.properties.virtualMachineProfile as Parameters<typeof osOf>[0]), region: s.set.region }, s.doc.sealed);
  if (s.set.upgradePolicy.mode !== 'Manual') checkRequestSettings(perInstance, members.length, 'properties.settings');
  const touched = changeModel(ctx, s.set, s.doc, next, caller);
  if (touched.length || patch) startOperation(ctx, req, reply, s.set.subscription, 'Microsoft.Compute', s.set.region, updateTrack(touched), false);
  reply.status(i >= 0 ? 200 : 201);
  return modelExtensionView(ctx, s.set, modelExtensions(s.doc).find((e) => e.name.toLowerCase() === name.toLowerCase())!);
}
