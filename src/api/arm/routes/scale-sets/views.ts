/** How a scale set, its instances and its model's extensions read over ARM. */
import type { Machine, ScaleSet } from '../../../../model/fleet.js';
import type { ArmContext } from '../../context.js';
import { extensionView, findByName, instancesOf } from '../../extensions.js';
import { scaleSetVmId } from '../../ids.js';
import { machineInstanceView } from '../../machines.js';
import { imageBehind, osImageOf, runningImageVersion } from '../../rolling-upgrades.js';
import { docOf, modelExtensions } from './model.js';
import type { InstanceDoc } from './instance-update.js';
import type { ModelExtension, ScaleSetDoc } from './schemas.js';

export function modelExtensionView(ctx: ArmContext, set: ScaleSet, e: ModelExtension) {
  const { protectedSettings: _ps, ...props } = e.properties;
  const members = ctx.index.members(set.id);
  const transitioning = members.some((m) => findByName(ctx, m.id, e.name)?.status === 'Transitioning');
  return {
    id: `${ctx.index.armIdOfSet(set)}/extensions/${e.name}`, name: e.name, type: 'Microsoft.Compute/virtualMachineScaleSets/extensions',
    properties: { ...props, provisioningState: transitioning ? 'Updating' : 'Succeeded' },
  };
}

export function setView(ctx: ArmContext, set: ScaleSet, provisioningState = 'Succeeded') {
  const doc = docOf(ctx, set);
  const exts = modelExtensions(doc).map((e) => {
    const { protectedSettings: _ps, ...props } = e.properties;
    return { name: e.name, properties: props };
  });
  const vmp = doc.properties.virtualMachineProfile ?? {};
  const sp = vmp.storageProfile;
  // Azure's read-only exactVersion: the image the set's instances run now (the engine's, once it manages the image).
  const exactVersion = runningImageVersion(ctx, set) ?? doc.image?.exactVersion;
  const storageProfile = sp?.imageReference && exactVersion ? { ...sp, imageReference: { ...sp.imageReference, exactVersion } } : sp;
  return {
    id: ctx.index.armIdOfSet(set), name: set.name, type: 'Microsoft.Compute/virtualMachineScaleSets', location: set.region,
    ...(set.zones.length ? { zones: set.zones } : {}),
    tags: doc.tags,
    sku: { ...doc.sku, capacity: ctx.index.members(set.id).length },
    properties: {
      ...doc.properties,
      upgradePolicy: set.upgradePolicy,
      virtualMachineProfile: { ...vmp, ...(storageProfile ? { storageProfile } : {}), extensionProfile: { ...(vmp.extensionProfile ?? {}), extensions: exts } },
      platformFaultDomainCount: set.faultDomainCount,
      orchestrationMode: doc.properties.orchestrationMode ?? 'Uniform',
      uniqueId: set.id,
      provisioningState,
    },
  };
}

/** An instance's `latestModelApplied`. */
export function latestModelApplied(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, m: Machine): boolean {
  const iid = ctx.index.instanceIdOf(m);
  // Sets of the configured fleet have no recorded model history: their instances are on the model.
  // R50: an instance whose OS image is behind the newest its reference stands for is not on the latest model either.
  return (doc.modelVersion === 0 || doc.applied[iid] === doc.modelVersion) && !imageBehind(ctx, set, m);
}

/** An instance as ARM shows it; `expand`: with its instance view (`powerState`: its PowerState statuses alone, the list's filter). */
export function instanceView(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, m: Machine, expand: boolean | 'powerState') {
  const iid = ctx.index.instanceIdOf(m);
  const armId = scaleSetVmId(set.subscription, set.resourceGroup, set.name, iid);
  const exts = instancesOf(ctx, m.id);
  const applied = latestModelApplied(ctx, set, doc, m);
  const own = ctx.docs.get<InstanceDoc>(armId)?.body; // what virtualMachineScaleSetVMs.update wrote
  return {
    id: armId, name: `${set.name}_${iid}`, type: 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines', location: set.region, instanceId: iid,
    ...(m.placement.zone ? { zones: [m.placement.zone] } : {}),
    ...(own && Object.keys(own.tags).length > 0 ? { tags: own.tags } : {}),
    sku: { name: doc.sku.name, ...(doc.sku.tier ? { tier: doc.sku.tier } : {}) },
    properties: {
      ...(own?.properties ?? {}),
      latestModelApplied: applied,
      modelDefinitionApplied: 'VirtualMachineScaleSet',
      provisioningState: exts.some((e) => e.status === 'Transitioning') ? 'Updating' : exts.some((e) => e.status === 'Failed') ? 'Failed' : 'Succeeded',
      storageProfile: { osDisk: { osType: m.os === 'windows' ? 'Windows' : 'Linux' }, ...osImageOf(ctx, set, m) },
      ...(expand ? { instanceView: expand === 'powerState' ? powerStateView(ctx, armId, m) : machineInstanceView(ctx, armId, m, 'vmssVm') } : {}),
    },
    resources: exts.map((i) => extensionView(ctx, armId, m, i, 'vmssVm', false)),
  };
}


function powerStateView(ctx: ArmContext, armId: string, m: Machine) {
  const { statuses } = machineInstanceView(ctx, armId, m, 'vmssVm') as { statuses: Array<{ code: string }> };
  return { statuses: statuses.filter((x) => x.code.startsWith('PowerState/')) };
}
