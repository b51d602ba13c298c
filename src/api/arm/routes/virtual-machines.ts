/**
 * Microsoft.Compute virtual machines, availability sets, and the extensions of VMs.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Machine } from '../../../model/fleet.js';
import { COLLECTIONS } from '../fleet-index.js';
import type { ArmContext } from '../context.js';
import { booleanQuery, indexedPage, machineById, mustHaveGroup, mustHaveSubscription, page, queryOf, resourceMissing, startOperation, updateTrack, writer } from '../context.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { sameLocation } from '../locations.js';
import { deleteExtension, extensionNotFound, extensionView, findByName, instancesOf, wantsInstanceView, writeExtension } from '../extensions.js';
import type { ExtensionTarget } from '../extensions.js';
import { RESOURCE_NAME, availabilitySetId, keyOf, resourceGroupId, vmId } from '../ids.js';
import { deleteMachine, ensureRegion, machineInstanceView, osOf } from '../machines.js';
import { locationName, osProfile, parseBody, tags } from '../validation.js';
import { keepSealed, sealOsProfile } from '../write-only.js';
import { vmListScaleSetFilter } from '../vm-list-query.js';
import { validatePatchSettings } from '../patch-settings.js';

const subResource = z.object({ id: z.string().min(1) }).passthrough();
const vmBody = z.object({
  location: locationName,
  tags: tags.optional(),
  zones: z.array(z.string().regex(/^\d$/, 'expected a zone number such as "1"')).max(1, 'a VM sits in at most one zone').optional(),
  properties: z.object({
    availabilitySet: subResource.optional(),
    storageProfile: z.object({ osDisk: z.object({ osType: z.enum(['Linux', 'Windows']).optional() }).passthrough().optional() }).passthrough().optional(),
    osProfile: osProfile.optional(),
  }).passthrough().default({}),
}).passthrough();
const avsetBody = z.object({
  location: locationName,
  tags: tags.optional(),
  sku: z.object({ name: z.string() }).passthrough().optional(),
  properties: z.object({
    platformUpdateDomainCount: z.number().int().min(1).max(20).optional(),
    platformFaultDomainCount: z.number().int().min(1).max(3).optional(),
  }).passthrough().default({}),
}).passthrough();

// The SDKs' update models: what a PATCH may carry (location and zones only to be checked, as they cannot change).
const vmPatchBody = z.object({
  location: locationName.optional(), tags: tags.optional(), zones: vmBody.shape.zones,
  properties: z.object({ availabilitySet: subResource.optional(), osProfile: osProfile.optional() }).passthrough().optional(),
}).passthrough();
const avsetPatchBody = z.object({ tags: tags.optional(), sku: avsetBody.shape.sku, properties: avsetBody.shape.properties.optional() }).passthrough();

interface VmDoc { tags: Record<string, string>; properties: Record<string, unknown>; sealedOsProfile?: string }
interface AvsetDoc { tags: Record<string, string>; sku?: unknown }
type P = { sub: string; rg: string; name: string; ext?: string };

export function registerVirtualMachineRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const base = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute';

  const vmOf = (req: FastifyRequest) => {
    const p = req.params as P;
    const m = ctx.index.machine(vmId(p.sub, p.rg, p.name));
    if (!m || m.kind !== 'vm') {
      throw resourceMissing(ctx, p.sub, p.rg, 'Microsoft.Compute/virtualMachines', p.name);
    }
    // The id as created: ids are case-insensitive, and a request in other casing reads the same resource.
    return { p, armId: ctx.index.armIdOfMachine(m), m };
  };

  const vmView = (armId: string, m: Machine, expand: boolean) => {
    const doc = ctx.docs.get<VmDoc>(armId)?.body;
    const avset = m.placement.setKind === 'availabilitySet' && m.placement.setId ? ctx.index.availabilitySetArmId(m.placement.setId) : null;
    return {
      id: armId, name: m.name, type: 'Microsoft.Compute/virtualMachines', location: m.placement.region,
      ...(m.placement.zone ? { zones: [m.placement.zone] } : {}),
      tags: doc?.tags ?? {},
      properties: {
        ...(doc?.properties ?? {}),
        vmId: m.id,
        ...(avset ? { availabilitySet: { id: avset } } : {}),
        storageProfile: { ...((doc?.properties.storageProfile as object | undefined) ?? {}), osDisk: { osType: m.os === 'windows' ? 'Windows' : 'Linux' } },
        provisioningState: 'Succeeded',
        ...(expand ? { instanceView: machineInstanceView(ctx, armId, m, 'vm') } : {}),
      },
      resources: instancesOf(ctx, m.id).map((i) => extensionView(ctx, armId, m, i, 'vm', false)),
    };
  };

  app.put(`${base}/virtualMachines/:name`, async (req, reply) => {
    const p = req.params as P;
    writer(req, 'Microsoft.Compute/virtualMachines/write');
    mustHaveGroup(ctx, p.sub, p.rg);
    if (!RESOURCE_NAME.test(p.name)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid virtual machine name.`, 'vmName');
    const body = parseBody(vmBody, req.body);
    const armId = vmId(p.sub, p.rg, p.name);
    const existing = ctx.index.machine(armId);
    const os = existing?.os ?? osOf(body.properties as Parameters<typeof osOf>[0]);
    validatePatchSettings(body.properties.osProfile, os, 'vm', 'properties.osProfile');
    const zone = body.zones?.[0] ?? null;
    const avsetRef = body.properties.availabilitySet?.id;
    if (existing) {
      if (existing.kind !== 'vm') throw conflict('Conflict', `${armId} exists and is not a virtual machine.`);
      if (!sameLocation(existing.placement.region, body.location)) {
        throw conflict('PropertyChangeNotAllowed', `Changing property 'location' is not allowed (the VM is in ${existing.placement.region}).`);
      }
      if ((existing.placement.zone ?? null) !== zone) throw conflict('PropertyChangeNotAllowed', "Changing property 'zones' is not allowed.");
      const storedId = ctx.index.armIdOfMachine(existing);
      const stored = ctx.docs.get<VmDoc>(storedId)?.body.sealedOsProfile;
      ctx.docs.put(storedId, resourceGroupId(existing.placement.subscription, existing.resourceGroup), 'virtualMachine', vmDoc(ctx, body.tags, body.properties, stored));
      return reply.status(200).send(vmView(storedId, existing, false));
    }
    let setId: string | null = null;
    let ud: number | null = null;
    let fd: number | null = null;
    if (avsetRef) {
      const a = [...ctx.engine.state.fleet.availabilitySets.values()].find((s) => keyOf(availabilitySetId(s.subscription, s.resourceGroup, s.name)) === keyOf(avsetRef));
      if (!a) throw notFound('NotFound', `properties.availabilitySet.id: availability set ${avsetRef} was not found.`);
      if (!sameLocation(a.region, body.location)) {
        throw badRequest('InvalidParameter', `properties.availabilitySet.id: the availability set is in ${a.region}, the VM in ${body.location}.`, 'properties.availabilitySet.id');
      }
      if (zone) throw badRequest('InvalidParameter', 'zones: a VM in an availability set cannot also be placed in a zone.', 'zones');
      const members = ctx.engine.state.fleet.setSizes.get(a.id) ?? 0;
      setId = a.id;
      // Spread VMs over update and fault domains as Azure does: round-robin in creation order.
      ud = members % a.updateDomainCount;
      fd = members % a.faultDomainCount;
    }
    const m: Machine = {
      id: keyOf(armId), name: p.name, kind: 'vm', os, resourceGroup: p.rg,
      placement: { region: '', zone, setId, setKind: setId ? 'availabilitySet' : 'none', updateDomain: ud, faultDomain: fd, subscription: p.sub },
    };
    const stored = ctx.docs.atomically(() => {
      const region = ensureRegion(ctx, body.location, zone ? [zone] : []);
      m.placement = { ...m.placement, region };
      ctx.docs.put(armId, resourceGroupId(p.sub, p.rg), 'virtualMachine', vmDoc(ctx, body.tags, body.properties));
      return ctx.engine.addMachine(m);
    });
    ctx.index.addMachine(stored);
    return reply.status(201).send(vmView(armId, stored, false));
  });

  // The SDKs' update: changes what it names; tags only when it carries them.
  app.patch(`${base}/virtualMachines/:name`, async (req, reply) => {
    writer(req, 'Microsoft.Compute/virtualMachines/write');
    const { armId, m } = vmOf(req);
    const body = parseBody(vmPatchBody, req.body);
    if (body.location && !sameLocation(body.location, m.placement.region)) {
      throw conflict('PropertyChangeNotAllowed', `Changing property 'location' is not allowed (the VM is in ${m.placement.region}).`);
    }
    if (body.zones && (body.zones[0] ?? null) !== (m.placement.zone ?? null)) throw conflict('PropertyChangeNotAllowed', "Changing property 'zones' is not allowed.");
    const avsetRef = body.properties?.availabilitySet?.id;
    const avsetNow = m.placement.setKind === 'availabilitySet' && m.placement.setId ? ctx.index.availabilitySetArmId(m.placement.setId) : null;
    if (avsetRef !== undefined && keyOf(avsetRef) !== (avsetNow ? keyOf(avsetNow) : null)) throw conflict('PropertyChangeNotAllowed', "Changing property 'availabilitySet' is not allowed.");
    if (body.properties?.osProfile !== undefined) validatePatchSettings(body.properties.osProfile, m.os, 'vm', 'properties.osProfile');
    const old = ctx.docs.get<VmDoc>(armId)?.body;
    const props = { ...(old?.properties ?? {}), ...(body.properties ?? {}) };
    ctx.docs.put(armId, resourceGroupId(m.placement.subscription, m.resourceGroup), 'virtualMachine', vmDoc(ctx, body.tags ?? old?.tags, props, old?.sealedOsProfile));
    startOperation(ctx, req, reply, m.placement.subscription, 'Microsoft.Compute', m.placement.region, updateTrack([]), false); // updateTrack: why an update always has one
    return vmView(armId, m, false);
  });
  app.get(`${base}/virtualMachines/:name`, async (req) => {
    const { armId, m } = vmOf(req);
    return vmView(armId, m, wantsInstanceView(req));
  });
  app.get(`${base}/virtualMachines/:name/instanceView`, async (req) => {
    const { armId, m } = vmOf(req);
    return machineInstanceView(ctx, armId, m, 'vm');
  });
  // `$filter=virtualMachineScaleSet/id eq '…'`: the VMs of that (Flexible) set; a VM of Phasewise is in none (vm-list-query.ts).
  const scaleSetFilter = (req: FastifyRequest): { keep?: (m: Machine) => boolean } => {
    const setArmId = vmListScaleSetFilter(queryOf(req).$filter);
    if (setArmId === null) return {};
    const inSet = (m: Machine) => {
      const set = m.placement.setKind === 'scaleSet' && m.placement.setId ? ctx.engine.state.fleet.scaleSets.get(m.placement.setId) : undefined;
      return set !== undefined && keyOf(ctx.index.armIdOfSet(set)) === keyOf(setArmId);
    };
    return { keep: inSet };
  };
  app.get(`${base}/virtualMachines`, async (req) => {
    const p = req.params as P;
    mustHaveGroup(ctx, p.sub, p.rg);
    // Paged by name like the subscription's list; the group's VMs are a lookup in the index.
    const name = COLLECTIONS.vms(p.sub, p.rg);
    const collection = { name, all: () => ctx.index.machinesIn(name), keyOf: (m: Machine) => m.name, idOf: (m: Machine) => m.id, itemOf: machineById(ctx), ...scaleSetFilter(req) };
    return indexedPage(ctx, req, collection, (m) => vmView(ctx.index.armIdOfMachine(m), m, false));
  });
  // The SDKs' listAll: every VM of the subscription, by id (resource group, then name).
  app.get('/subscriptions/:sub/providers/Microsoft.Compute/virtualMachines', async (req) => {
    const { sub } = req.params as P;
    mustHaveSubscription(ctx, sub);
    const name = COLLECTIONS.vms(sub);
    const collection = {
      name, all: () => ctx.index.machinesIn(name), keyOf: (m: Machine) => ctx.index.armIdOfMachine(m), idOf: (m: Machine) => m.id, itemOf: machineById(ctx), ...scaleSetFilter(req),
    };
    // `statusOnly=true` (the SDK's listAll option): each VM with its instance view (its power state); it was ignored.
    const withStatus = booleanQuery(req, 'statusOnly', false);
    return indexedPage(ctx, req, collection, (m) => vmView(ctx.index.armIdOfMachine(m), m, withStatus));
  });
  app.delete(`${base}/virtualMachines/:name`, async (req, reply) => {
    const p = req.params as P;
    writer(req, 'Microsoft.Compute/virtualMachines/delete');
    const m = ctx.index.machine(vmId(p.sub, p.rg, p.name));
    if (!m || m.kind !== 'vm') return reply.status(204).send();
    deleteMachine(ctx, m);
    // Done already, but with the operation headers a saved SDK poller (restorePoller) can be resumed.
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', m.placement.region, { kind: 'done' }, true);
    return reply.status(200).send();
  });

  // ---- availability sets ----
  app.put(`${base}/availabilitySets/:name`, async (req, reply) => {
    const p = req.params as P;
    writer(req, 'Microsoft.Compute/availabilitySets/write');
    mustHaveGroup(ctx, p.sub, p.rg);
    if (!RESOURCE_NAME.test(p.name)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid availability set name.`, 'availabilitySetName');
    const body = parseBody(avsetBody, req.body);
    const armId = availabilitySetId(p.sub, p.rg, p.name);
    const id = keyOf(armId);
    const existing = ctx.engine.state.fleet.availabilitySets.get(id);
    const udc = body.properties.platformUpdateDomainCount ?? existing?.updateDomainCount ?? 5;
    const fdc = body.properties.platformFaultDomainCount ?? existing?.faultDomainCount ?? 2;
    if (existing && (existing.updateDomainCount !== udc || existing.faultDomainCount !== fdc))
      throw conflict('PropertyChangeNotAllowed', 'The update and fault domain counts of an availability set cannot change.');
    ctx.docs.atomically(() => {
      const region = ensureRegion(ctx, body.location, []);
      ctx.docs.put(armId, resourceGroupId(p.sub, p.rg), 'availabilitySet', { tags: body.tags ?? {}, ...(body.sku ? { sku: body.sku } : {}) });
      // A replace in other casing keeps the names the set was created with (ids are case-insensitive).
      const names = existing ?? { name: p.name, subscription: p.sub, resourceGroup: p.rg };
      ctx.engine.putAvailabilitySet({ id, name: names.name, region, subscription: names.subscription, resourceGroup: names.resourceGroup, updateDomainCount: udc, faultDomainCount: fdc });
    });
    ctx.index.addGroup(p.sub, p.rg);
    // 200 for a create too: availability sets are not long-running, and the SDKs accept nothing else.
    return reply.status(200).send(avsetView(ctx, id)!);
  });
  app.get(`${base}/availabilitySets/:name`, async (req) => {
    const p = req.params as P;
    const a = [...ctx.engine.state.fleet.availabilitySets.values()].find((s) => keyOf(availabilitySetId(s.subscription, s.resourceGroup, s.name)) === keyOf(availabilitySetId(p.sub, p.rg, p.name)));
    if (!a) {
      throw resourceMissing(ctx, p.sub, p.rg, 'Microsoft.Compute/availabilitySets', p.name);
    }
    return avsetView(ctx, a.id);
  });

  const avsetOf = (req: FastifyRequest) => {
    const p = req.params as P;
    const a = [...ctx.engine.state.fleet.availabilitySets.values()].find((s) => keyOf(availabilitySetId(s.subscription, s.resourceGroup, s.name)) === keyOf(availabilitySetId(p.sub, p.rg, p.name)));
    if (!a) throw resourceMissing(ctx, p.sub, p.rg, 'Microsoft.Compute/availabilitySets', p.name);
    return { a, armId: availabilitySetId(a.subscription, a.resourceGroup, a.name) };
  };
  app.patch(`${base}/availabilitySets/:name`, async (req) => {
    writer(req, 'Microsoft.Compute/availabilitySets/write');
    const { a, armId } = avsetOf(req);
    const body = parseBody(avsetPatchBody, req.body);
    const udc = body.properties?.platformUpdateDomainCount ?? a.updateDomainCount;
    const fdc = body.properties?.platformFaultDomainCount ?? a.faultDomainCount;
    if (a.updateDomainCount !== udc || a.faultDomainCount !== fdc) throw conflict('PropertyChangeNotAllowed', 'The update and fault domain counts of an availability set cannot change.');
    const old = ctx.docs.get<AvsetDoc>(armId)?.body;
    const sku = body.sku ?? old?.sku;
    ctx.docs.put(armId, resourceGroupId(a.subscription, a.resourceGroup), 'availabilitySet', { tags: body.tags ?? old?.tags ?? {}, ...(sku ? { sku } : {}) });
    return avsetView(ctx, a.id);
  });
  app.get(`${base}/availabilitySets`, async (req) => {
    const p = req.params as P;
    mustHaveGroup(ctx, p.sub, p.rg);
    const sets = [...ctx.engine.state.fleet.availabilitySets.values()].filter((a) => keyOf(resourceGroupId(a.subscription, a.resourceGroup)) === keyOf(resourceGroupId(p.sub, p.rg)));
    // Only the page's sets are shown (a view lists the set's VMs).
    return page(ctx, req, sets, (a) => a.name, (a) => avsetView(ctx, a.id)!);
  });
  app.delete(`${base}/availabilitySets/:name`, async (req, reply) => {
    writer(req, 'Microsoft.Compute/availabilitySets/delete');
    const p = req.params as P;
    const a = [...ctx.engine.state.fleet.availabilitySets.values()].find((s) => keyOf(availabilitySetId(s.subscription, s.resourceGroup, s.name)) === keyOf(availabilitySetId(p.sub, p.rg, p.name)));
    if (!a) return reply.status(204).send();
    const members = ctx.engine.state.fleet.setSizes.get(a.id) ?? 0;
    if (members > 0) throw conflict('OperationNotAllowed', `The availability set still holds ${members} virtual machine(s); delete them first.`);
    ctx.docs.atomically(() => {
      ctx.docs.delete(availabilitySetId(a.subscription, a.resourceGroup, a.name));
      ctx.engine.removeAvailabilitySet(a.id);
    });
    return reply.status(200).send();
  });

  // ---- VM extensions ----
  const target = (req: FastifyRequest): ExtensionTarget => {
    const { p, armId, m } = vmOf(req);
    return { machine: m, machineArmId: armId, sub: p.sub, provider: 'Microsoft.Compute', flavor: 'vm' };
  };
  app.put(`${base}/virtualMachines/:name/extensions/:ext`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachines/extensions/write');
    return writeExtension(ctx, req, reply, target(req), (req.params as P).ext!, caller, false);
  });
  app.patch(`${base}/virtualMachines/:name/extensions/:ext`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachines/extensions/write');
    return writeExtension(ctx, req, reply, target(req), (req.params as P).ext!, caller, true);
  });
  app.get(`${base}/virtualMachines/:name/extensions/:ext`, async (req) => {
    const t = target(req);
    const inst = findByName(ctx, t.machine.id, (req.params as P).ext!);
    if (!inst) throw extensionNotFound(t.machineArmId, (req.params as P).ext!);
    return extensionView(ctx, t.machineArmId, t.machine, inst, 'vm', wantsInstanceView(req));
  });
  app.get(`${base}/virtualMachines/:name/extensions`, async (req) => {
    const t = target(req);
    return { value: instancesOf(ctx, t.machine.id).map((i) => extensionView(ctx, t.machineArmId, t.machine, i, 'vm', wantsInstanceView(req))) };
  });
  app.delete(`${base}/virtualMachines/:name/extensions/:ext`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachines/extensions/delete');
    return deleteExtension(ctx, req, reply, target(req), (req.params as P).ext!, caller);
  });
}

function avsetView(ctx: ArmContext, id: string) {
  const a = ctx.engine.state.fleet.availabilitySets.get(id);
  if (!a) return undefined;
  const armId = availabilitySetId(a.subscription, a.resourceGroup, a.name);
  const doc = ctx.docs.get<AvsetDoc>(armId)?.body;
  const vms = ctx.index.availabilitySetMembers(a.id);
  return {
    id: armId, name: a.name, type: 'Microsoft.Compute/availabilitySets', location: a.region, tags: doc?.tags ?? {},
    ...(doc?.sku ? { sku: doc.sku } : {}),
    properties: { platformUpdateDomainCount: a.updateDomainCount, platformFaultDomainCount: a.faultDomainCount, virtualMachines: vms.map((m) => ({ id: ctx.index.armIdOfMachine(m) })) },
  };
}

/** A VM's document; `storedSealed`: the write-only osProfile fields it held, kept unless the request sends them again. */
function vmDoc(ctx: ArmContext, tags: Record<string, string> | undefined, props: Record<string, unknown>, storedSealed?: string): VmDoc {
  const { props: kept, sealed } = sealOsProfile(ctx.secrets, stripReadOnly(props));
  const all = keepSealed(ctx.secrets, storedSealed, sealed);
  return { tags: tags ?? {}, properties: kept, ...(all ? { sealedOsProfile: all } : {}) };
}

/** Read-only properties a client may echo back; the server computes them. */
function stripReadOnly(props: Record<string, unknown>): Record<string, unknown> {
  const { provisioningState: _p, instanceView: _i, vmId: _v, ...rest } = props;
  return rest;
}
