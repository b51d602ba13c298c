/**
 * What VMs, scale-set instances and Arc machines share: instance views built from the engine's state
 * (extension statuses, R25 health as `vmHealth`), and creating a machine in a region the engine may
 * not know yet, and deleting one.
 */
import type { Machine, OsType } from '../../model/fleet.js';
import type { ArmContext } from './context.js';
import { nowIso } from './context.js';
import { badRequest } from './errors.js';
import { extensionView, instancesOf } from './extensions.js';
import type { Flavor } from './extensions.js';
import { knownRegionName, normalizeLocation } from './locations.js';
import { forgetPatchStatus, patchStatusView } from './patch-records.js';

export function machineInstanceView(ctx: ArmContext, machineArmId: string, m: Machine, flavor: Flavor): Record<string, unknown> {
  const time = nowIso(ctx);
  const unhealthy = ctx.engine.state.fleet.unhealthy.has(m.id);
  const patchStatus = flavor === 'vm' ? patchStatusView(ctx, machineArmId) : undefined;
  const extensions = instancesOf(ctx, m.id).map((inst) => (extensionView(ctx, machineArmId, m, inst, flavor, true).properties as { instanceView: unknown }).instanceView);
  return {
    computerName: m.name,
    osName: m.os === 'windows' ? 'Windows' : 'Linux',
    ...(m.placement.updateDomain !== null ? { platformUpdateDomain: m.placement.updateDomain } : {}),
    ...(m.placement.faultDomain !== null ? { platformFaultDomain: m.placement.faultDomain } : {}),
    vmAgent: { vmAgentVersion: 'phasewise', statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Ready', time }] },
    extensions,
    ...(patchStatus ? { patchStatus } : {}),
    vmHealth: { status: unhealthy
      ? { code: 'HealthState/unhealthy', level: 'Warning', displayStatus: 'The machine is unhealthy', time }
      : { code: 'HealthState/healthy', level: 'Info', displayStatus: 'The machine is healthy', time } },
    statuses: [
      { code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded', time },
      { code: 'PowerState/running', level: 'Info', displayStatus: 'VM running' },
    ],
  };
}

/** The OS a VM body describes: `osDisk.osType`, or a Windows configuration; Linux otherwise. */
export function osOf(props: { storageProfile?: { osDisk?: { osType?: string } }; osProfile?: { windowsConfiguration?: unknown } } | undefined): OsType {
  const t = props?.storageProfile?.osDisk?.osType?.toLowerCase();
  if (t === 'windows' || (t === undefined && props?.osProfile?.windowsConfiguration !== undefined)) return 'windows';
  return 'linux';
}

/**
 * The engine's name for an ARM location. Regions of the configured fleet keep their pairs and zones;
 * a location first seen in a request becomes a region without a geo-pair, with the zones it uses.
 */
export function ensureRegion(ctx: ArmContext, location: string, zones: readonly string[]): string {
  const regions = ctx.engine.state.fleet.regions;
  // `East US` is the fleet's `eastus` (it used to become a region of its own, outside eastus's pair and phase).
  const name = knownRegionName(regions, location);
  if (!name) {
    ctx.engine.putRegion({ name: normalizeLocation(location), pair: null, zones: [...zones].sort() });
    return normalizeLocation(location);
  }
  const region = regions.get(name)!;
  const missing = zones.filter((z) => !region.zones.includes(z));
  if (missing.length > 0) {
    // A paired region comes from the configured fleet and its zones are fixed; others grow as resources use zones.
    if (region.pair !== null) throw badRequest('InvalidParameter', `zones: location '${name}' has zones ${region.zones.length ? region.zones.join(', ') : '(none)'}; '${missing.join("', '")}' is not one of them.`, 'zones');
    ctx.engine.putRegion({ ...region, zones: [...new Set([...region.zones, ...zones])].sort() });
  }
  return name;
}

/**
 * Deletes a VM or Arc machine: its document with its extensions' (children of it in the document
 * store), its patch records (a machine created again under the name starts without them) and the
 * engine's machine, in one transaction.
 */
export function deleteMachine(ctx: ArmContext, m: Machine): void {
  const armId = ctx.index.armIdOfMachine(m);
  ctx.docs.atomically(() => {
    for (const i of instancesOf(ctx, m.id)) ctx.docs.delete(`${armId}/extensions/${i.name}`);
    ctx.docs.delete(armId);
    forgetPatchStatus(ctx, armId);
    ctx.engine.removeMachine(m.id);
  });
  ctx.index.removeMachine(m);
  ctx.runtime.kick();
}
