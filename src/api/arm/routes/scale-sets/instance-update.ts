/**
 * The SDKs' `virtualMachineScaleSetVMs.update`: PUT on one instance of a scale set. What an instance owns
 * may change: its tags (a PUT without them clears them, as on every type) and the properties the engine
 * has no use for (`protectionPolicy`, `userData`, `licenseType`, …), kept and returned as sent. What its
 * scale set decides may not: `location`, `zones`, `sku`, `instanceId`, the OS type, the image reference
 * `osProfile` and `hardwareProfile.vmSize` (409 `PropertyChangeNotAllowed` naming the property; the same
 * values, as read, are accepted). What Azure would enforce and the engine does not is refused, never kept
 * unenforced: `protectionPolicy` with `protectFromScaleIn` or `protectFromScaleSetActions` true (400
 * `InstanceProtectionNotSupported`): a scale-in or an upgrade would still reach the instance.
 * Read-only values the server computes (`latestModelApplied`, `provisioningState`, `instanceView`,
 * `resources`, …) are ignored, as ARM ignores them.
 */
import { z } from 'zod';
import type { Machine, ScaleSet } from '../../../../model/fleet.js';
import type { ImageReferenceInput } from '../../../../model/image-reference.js';
import type { ArmContext } from '../../context.js';
import { badRequest, conflict } from '../../errors.js';
import { sameLocation } from '../../locations.js';
import { osImageOf } from '../../rolling-upgrades.js';
import { sameReference } from '../../scale-set-image.js';
import { locationName, tags } from '../../validation.js';

/** What an instance keeps beside the engine's model (document kind `scaleSetVm`). */
export interface InstanceDoc {
  tags: Record<string, string>;
  properties: Record<string, unknown>;
}

export const instancePutBody = z.object({
  location: locationName,
  tags: tags.optional(),
  zones: z.array(z.string().max(8)).max(3).optional(),
  sku: z.object({ name: z.string().max(100).optional() }).passthrough().optional(),
  instanceId: z.string().max(20).optional(),
  properties: z.object({
    storageProfile: z.object({
      osDisk: z.object({ osType: z.string().max(20).optional() }).passthrough().optional(),
      imageReference: z.object({}).passthrough().optional(),
    }).passthrough().optional(),
    osProfile: z.unknown().optional(),
    hardwareProfile: z.object({ vmSize: z.string().max(100).optional() }).passthrough().optional(),
    protectionPolicy: z.object({ protectFromScaleIn: z.boolean().optional(), protectFromScaleSetActions: z.boolean().optional() }).passthrough().optional(),
  }).passthrough().optional(),
}).passthrough();

/** Computed by the server: a client that sends back what it read does not get to set them. */
const READ_ONLY = ['latestModelApplied', 'modelDefinitionApplied', 'provisioningState', 'instanceView', 'vmId', 'timeCreated', 'storageProfile'];

const notAllowed = (property: string, why: string) => conflict('PropertyChangeNotAllowed', `Changing property '${property}' is not allowed: ${why}.`);

/** Refuses what the scale set decides; returns the document to store. */
export function checkInstancePut(ctx: ArmContext, set: ScaleSet, setSku: string, m: Machine, iid: string, body: z.infer<typeof instancePutBody>): InstanceDoc {
  if (!sameLocation(body.location, set.region)) throw notAllowed('location', `the instance is in ${set.region}`);
  if (body.zones && body.zones.join(',') !== (m.placement.zone ?? '')) throw notAllowed('zones', `the instance is in zone ${m.placement.zone ?? '(none)'}`);
  if (body.sku?.name !== undefined && body.sku.name.toLowerCase() !== setSku.toLowerCase()) throw notAllowed('sku', `an instance has its scale set's sku (${setSku})`);
  if (body.instanceId !== undefined && body.instanceId !== iid) throw notAllowed('instanceId', `it is ${iid}`);
  const sp = body.properties?.storageProfile;
  const osType = m.os === 'windows' ? 'Windows' : 'Linux';
  if (sp?.osDisk?.osType !== undefined && sp.osDisk.osType.toLowerCase() !== osType.toLowerCase()) throw notAllowed('properties.storageProfile.osDisk.osType', `the instance runs ${osType}`);
  if (sp?.imageReference !== undefined && !sameReference(sp.imageReference as ImageReferenceInput, osImageOf(ctx, set, m).imageReference as ImageReferenceInput | undefined)) {
    throw notAllowed('properties.storageProfile.imageReference', "an instance runs its scale set's image; change the scale set's model and upgrade the instance (manualupgrade)");
  }
  // Its secrets (adminPassword, customData) are the model's, sealed there: never kept in clear per instance.
  if (body.properties?.osProfile !== undefined) throw notAllowed('properties.osProfile', "an instance's osProfile is its scale set's model's");
  const vmSize = body.properties?.hardwareProfile?.vmSize;
  if (vmSize !== undefined && vmSize.toLowerCase() !== setSku.toLowerCase()) throw notAllowed('properties.hardwareProfile.vmSize', `an instance has its scale set's size (${setSku})`);
  const protection = body.properties?.protectionPolicy;
  for (const flag of ['protectFromScaleIn', 'protectFromScaleSetActions'] as const) {
    if (protection?.[flag] === true) {
      const why = `Phasewise does not enforce instance protection; a scale-in or an upgrade would still reach instance ${iid}, so it is not accepted.`;
      throw badRequest('InstanceProtectionNotSupported', `properties.protectionPolicy.${flag}: ${why}`, `properties.protectionPolicy.${flag}`);
    }
  }
  const properties: Record<string, unknown> = { ...(body.properties ?? {}) };
  for (const k of READ_ONLY) delete properties[k];
  return { tags: body.tags ?? {}, properties };
}
