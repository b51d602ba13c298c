/** Creating a scale set (PUT of a new name) and updating one (PUT again, PATCH): policy, image, capacity and model. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ScaleSet } from '../../../../model/fleet.js';
import { DEFAULT_HEALTH_WINDOW_MS } from '../../../../model/fleet.js';
import { withDefaults, validateRollingPolicy } from '../../../../model/upgrade-policy.js';
import type { UpgradePolicyInput } from '../../../../model/upgrade-policy.js';
import { checkRemoveMachine } from '../../../../engine/fleet/machines.js';
import { parseImageReference } from '../../../../model/image-reference.js';
import type { ImageReferenceInput } from '../../../../model/image-reference.js';
import type { ArmContext } from '../../context.js';
import { startOperation, updateTrack } from '../../context.js';
import { badRequest, conflict } from '../../errors.js';
import { knownRegionName, normalizeLocation, sameLocation } from '../../locations.js';
import { keyOf, resourceGroupId, scaleSetId } from '../../ids.js';
import { ensureRegion, osOf } from '../../machines.js';
import { checkAutomaticOSUpgrade, checkImageReference, sameReference } from '../../scale-set-image.js';
import type { SetImage } from '../../scale-set-image.js';
import { addInstances, changeModelIn, checkModel, checkModelOn, docOf, modelExtensions, modelSettingsBytes, sealModel, sealProfile } from './model.js';
import { checkRequestSettings } from '../../settings-budget.js';
import type { Touched } from './model.js';
import type { P, ScaleSetDoc, VmProfile, patchBody, putBody, upgradePolicy } from './schemas.js';
import { setView } from './views.js';

function policyOf(input: z.infer<typeof upgradePolicy> | undefined, previous?: UpgradePolicyInput) {
  const merged: UpgradePolicyInput = {
    mode: input?.mode ?? previous?.mode ?? 'Manual',
    rollingUpgradePolicy: { ...(previous?.rollingUpgradePolicy ?? {}), ...(input?.rollingUpgradePolicy ?? {}) },
    automaticOSUpgradePolicy: { ...(previous?.automaticOSUpgradePolicy ?? {}), ...(input?.automaticOSUpgradePolicy ?? {}) },
  };
  const policy = withDefaults(merged);
  const problems = validateRollingPolicy(policy.rollingUpgradePolicy);
  if (problems.length) throw badRequest('InvalidParameter', `properties.upgradePolicy.rollingUpgradePolicy: ${problems.join('; ')}`, 'properties.upgradePolicy.rollingUpgradePolicy');
  return policy;
}


const imageReferenceOf = (vmp: VmProfile | undefined) => vmp?.storageProfile?.imageReference;

/** `exactVersion` is read-only: a client that sends back what it read does not get to set it. */
function dropExactVersion(vmp: VmProfile | undefined): void {
  const ref = vmp?.storageProfile?.imageReference as Record<string, unknown> | undefined;
  if (ref) delete ref.exactVersion;
}

/**
 * The set's image after an update: checked again only when the reference changes (a version, once
 * resolved, stays the set's exactVersion until the instances move). A body's storageProfile replaces
 * the stored one, as the merge below does.
 */
function imageAfter(ctx: ArmContext, doc: ScaleSetDoc, vmp: VmProfile | undefined, region: string): SetImage | null {
  dropExactVersion(vmp);
  const before = imageReferenceOf(doc.properties.virtualMachineProfile);
  const after = vmp?.storageProfile ? imageReferenceOf(vmp) : before;
  if (doc.image !== undefined && sameReference(before, after)) return doc.image;
  if (doc.image === undefined && sameReference(before, after)) {
    // A set stored before the image catalog: its image is whatever the catalog makes of it now, or unmanaged.
    try {
      return checkImageReference(ctx, after, region);
    } catch {
      return { exactVersion: null, managed: false, followsLatest: false };
    }
  }
  return checkImageReference(ctx, after, region);
}

/** The engine follows the set's image only when the catalog holds it (R60). */
function engineImage(image: SetImage | null, ref: ImageReferenceInput | undefined): Pick<ScaleSet, 'image'> {
  return image?.managed && ref ? { image: parseImageReference(ref) } : {};
}

export function createSet(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, p: P, body: z.infer<typeof putBody>, caller: string) {
  const policy = policyOf(body.properties.upgradePolicy);
  const os = osOf(body.properties.virtualMachineProfile as Parameters<typeof osOf>[0]);
  const zones = [...new Set(body.zones ?? [])].sort();
  const regionName = knownRegionName(ctx.engine.state.fleet.regions, body.location) ?? normalizeLocation(body.location);
  const exts = body.properties.virtualMachineProfile?.extensionProfile?.extensions ?? [];
  const perInstance = checkModel(ctx, exts, { os, region: regionName });
  checkRequestSettings(perInstance, body.sku?.capacity ?? 0, 'sku.capacity');
  dropExactVersion(body.properties.virtualMachineProfile);
  const image = checkImageReference(ctx, imageReferenceOf(body.properties.virtualMachineProfile), regionName);
  checkAutomaticOSUpgrade(policy.automaticOSUpgradePolicy, image);
  const armId = scaleSetId(p.sub, p.rg, p.name);
  const capacity = body.sku?.capacity ?? 0;
  const doc: ScaleSetDoc = {
    tags: body.tags ?? {}, sku: { name: body.sku?.name ?? 'Standard_D2s_v5', ...(body.sku?.tier ? { tier: body.sku.tier } : {}), capacity },
    properties: body.properties, modelVersion: 1, applied: {}, nextInstanceId: 0, sealed: {}, image,
  };
  sealProfile(ctx, doc);
  const sealedExts = sealModel(ctx, doc, exts);
  if (doc.properties.virtualMachineProfile?.extensionProfile) doc.properties.virtualMachineProfile.extensionProfile.extensions = sealedExts;
  const touched = ctx.docs.atomically(() => {
    const region = ensureRegion(ctx, body.location, zones);
    const set: ScaleSet = {
      id: keyOf(armId), name: p.name, region, subscription: p.sub, resourceGroup: p.rg, zones,
      updateDomainCount: 5, faultDomainCount: body.properties.platformFaultDomainCount ?? 5, upgradePolicy: policy,
      healthGracePeriodMs: DEFAULT_HEALTH_WINDOW_MS,
      hasApplicationHealth: exts.some((e) => /applicationhealth/i.test(e.properties.type)),
      ...engineImage(image, imageReferenceOf(body.properties.virtualMachineProfile)),
    };
    ctx.engine.putScaleSet(set);
    ctx.index.addSet(set);
    const { touched } = addInstances(ctx, set, doc, os, capacity, caller);
    ctx.docs.put(armId, resourceGroupId(p.sub, p.rg), 'scaleSet', doc);
    return touched;
  });
  ctx.runtime.kick();
  const set = ctx.index.scaleSet(armId)!;
  startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'instances', items: touched }, false);
  return reply.status(201).send(setView(ctx, set, 'Creating'));
}

type UpdateBody = z.infer<typeof patchBody>;

export function updateSet(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, set: ScaleSet, body: UpdateBody, caller: string, replace: boolean) {
  const doc = docOf(ctx, set);
  if (body.location && !sameLocation(body.location, set.region)) {
    throw conflict('PropertyChangeNotAllowed', `Changing property 'location' is not allowed (the scale set is in ${set.region}).`);
  }
  if (body.zones && [...new Set(body.zones)].sort().join(',') !== set.zones.join(',')) throw conflict('PropertyChangeNotAllowed', "Changing property 'zones' is not allowed.");
  const policy = policyOf(body.properties?.upgradePolicy, replace ? undefined : set.upgradePolicy);
  const members = ctx.index.members(set.id);
  const os = members[0]?.os ?? osOf(doc.properties.virtualMachineProfile as Parameters<typeof osOf>[0]);
  const newExts = body.properties?.virtualMachineProfile?.extensionProfile?.extensions;
  const perInstance = newExts ? checkModel(ctx, newExts, { os, region: set.region }, doc.sealed) : modelSettingsBytes(ctx, modelExtensions(doc), doc.sealed);
  const image = imageAfter(ctx, doc, body.properties?.virtualMachineProfile, set.region);
  checkAutomaticOSUpgrade(policy.automaticOSUpgradePolicy, image);
  const capacity = body.sku?.capacity ?? doc.sku.capacity;
  // New instances get the model; with a new model and an automatic policy, every instance does.
  const given = newExts && policy.mode !== 'Manual' ? capacity : Math.max(0, capacity - members.length);
  checkRequestSettings(perInstance, given, newExts ? 'properties.virtualMachineProfile.extensionProfile.extensions' : 'sku.capacity');
  const removing = members.length > capacity ? members.slice(capacity) : [];
  const { image: _old, ...rest } = set;
  const refAfter = body.properties?.virtualMachineProfile?.storageProfile ? imageReferenceOf(body.properties.virtualMachineProfile) : imageReferenceOf(doc.properties.virtualMachineProfile);
  const updated: ScaleSet = { ...rest, upgradePolicy: policy, ...engineImage(image, refAfter) };
  for (const m of removing) checkRemoveMachine(ctx.engine.state, m.id);
  if (newExts && policy.mode !== 'Manual') checkModelOn(ctx, newExts, members.slice(0, capacity));
  const touched = ctx.docs.atomically(() => {
    // A PUT states the whole resource, tags included (none when absent), as a VM's or an Arc machine's PUT; a PATCH only what it names.
    if (body.tags || replace) doc.tags = body.tags ?? {};
    doc.image = image;
    if (body.sku) doc.sku = { ...doc.sku, ...body.sku, capacity } as ScaleSetDoc['sku'];
    if (body.properties) {
      const { virtualMachineProfile, ...rest } = body.properties;
      doc.properties = { ...doc.properties, ...rest, upgradePolicy: policy };
      if (virtualMachineProfile) {
        doc.properties.virtualMachineProfile = { ...doc.properties.virtualMachineProfile, ...virtualMachineProfile, extensionProfile: doc.properties.virtualMachineProfile?.extensionProfile ?? {} };
        sealProfile(ctx, doc);
      }
    }
    ctx.engine.putScaleSet(updated);
    for (const m of removing) {
      ctx.docs.delete(ctx.index.armIdOfMachine(m)); // what virtualMachineScaleSetVMs.update kept
      ctx.engine.removeMachine(m.id);
      ctx.index.removeMachine(m);
    }
    let t: Touched = [];
    if (newExts) t = changeModelIn(ctx, updated, doc, newExts, caller);
    if (capacity > members.length) t.push(...addInstances(ctx, updated, doc, os, capacity - members.length, caller).touched);
    ctx.docs.put(ctx.index.armIdOfSet(set), resourceGroupId(set.subscription, set.resourceGroup), 'scaleSet', doc);
    return t;
  });
  ctx.runtime.kick();
  const stored = ctx.engine.state.fleet.scaleSets.get(set.id)!;
  // An update (PATCH) hands out an operation even when nothing waits (updateHandsOutOperation).
  if (touched.length || !replace) startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, updateTrack(touched), false);
  return reply.status(200).send(setView(ctx, stored, touched.length ? 'Updating' : 'Succeeded'));
}
