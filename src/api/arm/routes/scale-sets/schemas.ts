/** The shapes a scale-set request may take (zod), and the ARM document a set keeps beside the engine's record. */
import { z } from 'zod';
import { durationMs, MAX_POLICY_DURATION, MAX_POLICY_DURATION_MS } from '../../../../model/upgrade-policy.js';
import type { SetImage } from '../../scale-set-image.js';
import { extensionName, forceUpdateTag, jsonObject, locationName, osProfile, provisionAfterExtensions, settingsObject, tags, versionPrefix } from '../../validation.js';

/** The longest duration a scale set's policy or profile takes (docs/api.md#scale-sets). */
export const MAX_SET_DURATION = MAX_POLICY_DURATION;
const MAX_SET_DURATION_MS = MAX_POLICY_DURATION_MS;
/**
 * An ISO 8601 duration of at most MAX_SET_DURATION. Unbounded, `pauseTimeBetweenBatches: 'P99999999999D'` was
 * taken: the rollout's estimated end passed what a date holds and every `GET /phasewise/rollouts` was a 500
 * (and the set's rollout would have paused for ever).
 */
const isoDuration = z.string().regex(/^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/, 'expected an ISO 8601 duration such as PT5M')
  .refine((d) => durationMs(d) <= MAX_SET_DURATION_MS, `longer than ${MAX_SET_DURATION} (30 days), the longest duration a scale set's policy takes`);
const rollingPolicy = z.object({
  maxBatchInstancePercent: z.number().int().min(5).max(100),
  maxUnhealthyInstancePercent: z.number().int().min(5).max(100),
  maxUnhealthyUpgradedInstancePercent: z.number().int().min(0).max(100),
  pauseTimeBetweenBatches: isoDuration,
  enableCrossZoneUpgrade: z.boolean(),
  prioritizeUnhealthyInstances: z.boolean(),
  rollbackFailedInstancesOnPolicyBreach: z.boolean(),
  maxSurge: z.boolean(),
}).partial().strict();
const osPolicy = z.object({
  enableAutomaticOSUpgrade: z.boolean(), disableAutomaticRollback: z.boolean(), useRollingUpgradePolicy: z.boolean(), osRollingUpgradeDeferral: z.boolean(),
}).partial().strict();
export const approveBody = z.object({ instanceIds: z.array(z.string().min(1)).optional() });
export const upgradePolicy = z.object({
  mode: z.enum(['Automatic', 'Manual', 'Rolling']).optional(), rollingUpgradePolicy: rollingPolicy.optional(), automaticOSUpgradePolicy: osPolicy.optional(),
}).strict();
export const modelExtension = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, 'expected an extension name'),
  properties: z.object({
    publisher: extensionName, type: extensionName, typeHandlerVersion: versionPrefix,
    autoUpgradeMinorVersion: z.boolean().optional(), enableAutomaticUpgrade: z.boolean().optional(), forceUpdateTag: forceUpdateTag.optional(),
    settings: settingsObject.optional(), protectedSettings: settingsObject.optional(), provisionAfterExtensions: provisionAfterExtensions.optional(), suppressFailures: z.boolean().optional(),
  }).passthrough(),
}).passthrough();
const imageReference = z.object({
  publisher: z.string().optional(), offer: z.string().optional(), sku: z.string().optional(), version: z.string().optional(), id: z.string().optional(),
  sharedGalleryImageId: z.string().optional(), communityGalleryImageId: z.string().optional(),
}).passthrough();
export const vmProfile = z.object({
  storageProfile: z.object({ imageReference: imageReference.optional(), osDisk: z.object({ osType: z.enum(['Linux', 'Windows']).optional() }).passthrough().optional() }).passthrough().optional(),
  osProfile: osProfile.optional(),
  extensionProfile: z.object({ extensionsTimeBudget: isoDuration.optional(), extensions: z.array(modelExtension).max(50).optional() }).passthrough().optional(),
}).passthrough();
const vmssProps = z.object({
  upgradePolicy: upgradePolicy.optional(),
  virtualMachineProfile: vmProfile.optional(),
  platformFaultDomainCount: z.number().int().min(1).max(5).optional(),
  orchestrationMode: z.enum(['Uniform', 'Flexible']).optional(),
  singlePlacementGroup: z.boolean().optional(),
}).passthrough();
const sku = z.object({ name: z.string().optional(), tier: z.string().optional(), capacity: z.number().int().min(0).max(1000).optional() }).passthrough();
const zones = z.array(z.string().regex(/^\d$/, 'expected a zone number such as "1"')).max(3);
export const putBody = z.object({
  location: locationName, tags: tags.optional(), zones: zones.optional(),
  sku: sku.optional(), properties: vmssProps.default({}),
}).passthrough();
/**
 * `location` and `zones` cannot change, but a PATCH that names them is compared with the set's (409 when
 * they differ), so they are typed here as in a PUT: a number there was read as a string (a 500).
 */
export const patchBody = z.object({ location: locationName.optional(), zones: zones.optional(), tags: tags.optional(), sku: sku.optional(), properties: vmssProps.optional() }).passthrough();

export const manualUpgradeBody = z.object({ instanceIds: z.array(z.string().min(1)).min(1) }).strict();
export const modelExtensionBody = z.object({ properties: jsonObject.optional() }).passthrough();

export type ModelExtension = z.infer<typeof modelExtension>;
export type VmProfile = z.infer<typeof vmProfile>;

export interface ScaleSetDoc {
  tags: Record<string, string>;
  sku: { name: string; tier?: string; capacity: number };
  /** The model as the client sent it (protected settings removed; they are sealed in `sealed`). */
  properties: z.infer<typeof vmssProps>;
  /** Bumped on every change of the extension profile; an instance is up to date at the same number. */
  modelVersion: number;
  applied: Record<string, number>;
  nextInstanceId: number;
  sealed: Record<string, string>;
  /** The image as checked against the catalog (absent on documents written before the image catalog). */
  image?: SetImage | null;
}

export type P = { sub: string; rg: string; name: string; iid?: string; ext?: string };
