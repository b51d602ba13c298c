/**
 * Extensions on VMs, scale-set instances and Arc machines: one implementation, three wire flavours.
 * The engine keeps the instance (desired, installed, last-known-good, status); the document keeps
 * what only ARM needs (tags, forceUpdateTag, sealed protected settings, the pending operation's name).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { installVersion } from '../../catalog/catalog.js';
import { autoUpgradeStateOf } from '../../engine/fleet/views.js';
import type { ExtensionInstance } from '../../model/artifact.js';
import { isExtensionKey } from '../../model/artifact.js';
import type { Machine } from '../../model/fleet.js';
import type { ArmContext } from './context.js';
import { nowIso, startOperation, updateTrack } from './context.js';
import { badRequest, conflict, notFound } from './errors.js';
import { normalizeLocation, sameLocation } from './locations.js';
import { keyOf } from './ids.js';
import { checkMachineSettings, jsonBytes } from './settings-budget.js';
import { agentInstanceView } from '../agent/arm-views.js';
import { extensionName, forceUpdateTag, locationName, parseBody, provisionAfterExtensions, settingsObject, tags, versionPrefix } from './validation.js';

export type Flavor = 'vm' | 'vmssVm' | 'arc';

const TYPE_NAME: Record<Flavor, string> = {
  vm: 'Microsoft.Compute/virtualMachines/extensions',
  vmssVm: 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions',
  arc: 'Microsoft.HybridCompute/machines/extensions',
};

export interface ExtensionDoc {
  location?: string;
  tags: Record<string, string>;
  forceUpdateTag?: string;
  suppressFailures?: boolean;
  provisionAfterExtensions?: string[];
  /** Sealed with the server's key; never returned. */
  protectedSettings?: string;
  protectedSettingsFromKeyVault?: unknown;
  /** What the pending change is called while the instance is Transitioning. */
  operation: 'Creating' | 'Updating';
}

const keyVaultRef = z.object({ secretUrl: z.string().url(), sourceVault: z.object({ id: z.string().min(1) }).passthrough() }).passthrough();

// Read-only and unknown properties are ignored, as ARM does; known ones must have the right type.
const writable = {
  publisher: extensionName,
  type: extensionName,
  typeHandlerVersion: versionPrefix,
  autoUpgradeMinorVersion: z.boolean(),
  enableAutomaticUpgrade: z.boolean(),
  forceUpdateTag,
  settings: settingsObject,
  protectedSettings: settingsObject,
  protectedSettingsFromKeyVault: keyVaultRef,
  provisionAfterExtensions,
  suppressFailures: z.boolean(),
};

const putProps = z.object({
  ...writable,
  autoUpgradeMinorVersion: writable.autoUpgradeMinorVersion.optional(),
  enableAutomaticUpgrade: writable.enableAutomaticUpgrade.optional(),
  forceUpdateTag: writable.forceUpdateTag.optional(),
  settings: writable.settings.optional(),
  protectedSettings: writable.protectedSettings.optional(),
  protectedSettingsFromKeyVault: writable.protectedSettingsFromKeyVault.optional(),
  provisionAfterExtensions: writable.provisionAfterExtensions.optional(),
  suppressFailures: writable.suppressFailures.optional(),
}).passthrough();
const patchProps = z.object(Object.fromEntries(Object.entries(writable).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof writable]: z.ZodOptional<(typeof writable)[K]> }).passthrough();

const putBody = (flavor: Flavor) => z.object({
  location: flavor === 'arc' ? locationName : locationName.optional(),
  tags: tags.optional(),
  properties: putProps,
}).passthrough();
const patchBody = z.object({ tags: tags.optional(), properties: patchProps.optional() }).passthrough();
// Built once: zod schemas are costly to construct on every request.
const PUT_BODY = { vm: putBody('vm'), vmssVm: putBody('vmssVm'), arc: putBody('arc') } as const;

export function instancesOf(ctx: ArmContext, machineId: string): ExtensionInstance[] {
  const out: ExtensionInstance[] = [];
  for (const [key, byMachine] of ctx.engine.state.fleet.instances) {
    if (!isExtensionKey(key)) continue; // the OS image instance is not an extension
    const inst = byMachine.get(machineId);
    if (inst) out.push(inst);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export function findByName(ctx: ArmContext, machineId: string, name: string): ExtensionInstance | undefined {
  const n = name.toLowerCase();
  return instancesOf(ctx, machineId).find((i) => i.name.toLowerCase() === n);
}

const LEVEL = { Succeeded: 'Info', Failed: 'Error', Transitioning: 'Info' } as const;

/** The extension as ARM shows it; `expand` adds the instance view (always present for Arc). */
export function extensionView(ctx: ArmContext, machineArmId: string, m: Machine, inst: ExtensionInstance, flavor: Flavor, expand: boolean): Record<string, unknown> {
  const id = `${machineArmId}/extensions/${inst.name}`;
  const doc = ctx.docs.get<ExtensionDoc>(id)?.body;
  const provisioningState = inst.status === 'Transitioning' ? (doc?.operation ?? 'Updating') : inst.status;
  // R80, with R7's subscription enrollment counted.
  const state = autoUpgradeStateOf(ctx.engine.state, inst);
  const message = inst.status === 'Failed' ? (inst.blockedReason ?? 'The extension failed to provision.') : `Installed version ${inst.installedVersion || '(none yet)'}; last known good ${inst.lastKnownGoodVersion || '(none)'}.`;
  const time = nowIso(ctx);
  const props: Record<string, unknown> = {
    publisher: inst.publisher,
    type: inst.type,
    typeHandlerVersion: inst.typeHandlerVersion,
    autoUpgradeMinorVersion: inst.autoUpgradeMinorVersion,
    enableAutomaticUpgrade: inst.enableAutomaticUpgrade,
    settings: inst.settings,
    provisioningState,
    // R80: enabled, disabled or not supported by the extension type (a Phasewise addition; SDKs ignore it).
    automaticUpgradeState: state === 'notSupported' ? 'NotSupported' : state === 'enabled' ? 'Enabled' : 'Disabled',
  };
  if (doc?.forceUpdateTag !== undefined) props.forceUpdateTag = doc.forceUpdateTag;
  if (flavor !== 'arc') {
    props.suppressFailures = doc?.suppressFailures ?? false;
    if (doc?.provisionAfterExtensions) props.provisionAfterExtensions = doc.provisionAfterExtensions;
  }
  if (doc?.protectedSettingsFromKeyVault) props.protectedSettingsFromKeyVault = doc.protectedSettingsFromKeyVault;
  const fromAgent = agentInstanceView(ctx, m, inst);
  if (fromAgent && (flavor === 'arc' || expand)) {
    const { status, ...rest } = fromAgent;
    props.instanceView = flavor === 'arc' ? fromAgent : { ...rest, statuses: [status] };
  } else if (flavor === 'arc') {
    props.instanceView = {
      name: inst.name, type: inst.type, typeHandlerVersion: inst.installedVersion,
      status: { code: inst.status === 'Succeeded' ? 'success' : inst.status === 'Failed' ? 'failed' : 'transitioning', level: LEVEL[inst.status], displayStatus: `Provisioning ${inst.status.toLowerCase()}`, message, time },
    };
  } else if (expand) {
    props.instanceView = {
      name: inst.name, type: inst.type, typeHandlerVersion: inst.installedVersion,
      statuses: [{ code: `ProvisioningState/${inst.status.toLowerCase()}`, level: LEVEL[inst.status], displayStatus: `Provisioning ${inst.status.toLowerCase()}`, message, time }],
      substatuses: [{ code: `AutomaticUpgrade/${props.automaticUpgradeState as string}`, level: 'Info', displayStatus: `Automatic upgrade ${state === 'notSupported' ? 'not supported by the extension type' : state}`, time }],
    };
  }
  const out: Record<string, unknown> = { id, name: inst.name, type: TYPE_NAME[flavor] };
  // A VM's and an Arc machine's extension are in their machine's location (Compute answered none); a scale-set instance's has none.
  if (flavor !== 'vmssVm') out.location = normalizeLocation(doc?.location ?? m.placement.region);
  out.tags = doc?.tags ?? {};
  out.properties = props;
  return out;
}

export interface ExtensionTarget {
  machine: Machine;
  machineArmId: string;
  sub: string;
  provider: 'Microsoft.Compute' | 'Microsoft.HybridCompute';
  flavor: Flavor;
}

/** PUT (create or replace) and PATCH of an extension: validate all, then change the engine and the document together. */
export function writeExtension(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, t: ExtensionTarget, name: string, caller: string, patch: boolean): Record<string, unknown> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/.test(name)) throw badRequest('InvalidParameter', `'${name}' is not a valid extension name (letters, digits, '.', '_' and '-', up to 80 characters).`, 'extensionName');
  const id = `${t.machineArmId}/extensions/${name}`;
  const existing = findByName(ctx, t.machine.id, name);
  const oldDoc = ctx.docs.get<ExtensionDoc>(id);
  let props: z.infer<typeof patchProps>;
  let bodyTags: Record<string, string> | undefined;
  let location: string | undefined;
  if (patch) {
    if (!existing) throw notFound('NotFound', `The extension '${name}' was not found on ${t.machineArmId}.`);
    const b = parseBody(patchBody, req.body);
    props = b.properties ?? {};
    bodyTags = b.tags;
  } else {
    const b = parseBody(PUT_BODY[t.flavor], req.body);
    props = b.properties;
    bodyTags = b.tags;
    location = b.location;
  }
  if (location && !sameLocation(location, t.machine.placement.region))
    throw badRequest('InvalidParameter', `location: the extension must be in the machine's location '${t.machine.placement.region}', not '${location}'.`, 'location');
  const publisher = props.publisher ?? existing?.publisher;
  const type = props.type ?? existing?.type;
  if (existing && (publisher!.toLowerCase() !== existing.publisher.toLowerCase() || type!.toLowerCase() !== existing.type.toLowerCase()))
    throw badRequest('PropertyChangeNotAllowed', `Changing property 'publisher' or 'type' of extension '${name}' is not allowed (it is ${existing.publisher}.${existing.type}); delete it and create it again.`, 'properties.type');
  if (!existing) {
    const other = instancesOf(ctx, t.machine.id).find((i) => i.publisher.toLowerCase() === publisher!.toLowerCase() && i.type.toLowerCase() === type!.toLowerCase());
    if (other) throw conflict('OperationNotAllowed', `The machine already has extension '${other.name}' of type ${other.publisher}.${other.type}; one instance per type is allowed.`);
  }
  const catalogType = ctx.engine.state.catalog.getType(publisher!, type!);
  if (!catalogType) throw badRequest('ArtifactNotFound', `Extension type ${publisher}.${type} is not published in the catalog.`, 'properties.type');
  const typeHandlerVersion = props.typeHandlerVersion ?? existing!.typeHandlerVersion;
  const autoUpgradeMinorVersion = props.autoUpgradeMinorVersion ?? existing?.autoUpgradeMinorVersion ?? false;
  // R3: automatic upgrade is on by default on Arc machines, off on VMs and scale sets.
  const enableAutomaticUpgrade = props.enableAutomaticUpgrade ?? existing?.enableAutomaticUpgrade ?? t.flavor === 'arc';
  const now = ctx.runtime.clock.now();
  const version = installVersion(
    ctx.engine.state.catalog,
    { publisher: publisher!, type: type!, typeHandlerVersion, autoUpgradeMinorVersion },
    { os: t.machine.os, region: t.machine.placement.region },
    now,
  );
  if (!version) throw badRequest('ArtifactVersionNotFound', `No version of ${publisher}.${type} matching '${typeHandlerVersion}'${autoUpgradeMinorVersion ? ' (or a newer minor version)' : ''} is published for ${t.machine.os} in ${t.machine.placement.region}.`, 'properties.typeHandlerVersion');

  // Every extension of the machine together stays within the settings budget (its goal state's size).
  const sealedBytes = (sealed: string | undefined) => (sealed === undefined ? 0 : jsonBytes(ctx.secrets.open(sealed)));
  let total = jsonBytes(props.settings ?? existing?.settings ?? {}) + (props.protectedSettings !== undefined ? jsonBytes(props.protectedSettings) : sealedBytes(oldDoc?.body.protectedSettings));
  for (const other of instancesOf(ctx, t.machine.id)) {
    if (other.name.toLowerCase() === name.toLowerCase()) continue;
    total += jsonBytes(other.settings) + sealedBytes(ctx.docs.get<ExtensionDoc>(`${t.machineArmId}/extensions/${other.name}`)?.body.protectedSettings);
  }
  checkMachineSettings(total, props.protectedSettings !== undefined ? 'properties.protectedSettings' : 'properties.settings', t.machineArmId);

  const doc: ExtensionDoc = {
    ...(oldDoc?.body ?? { tags: {} }),
    operation: existing ? 'Updating' : 'Creating',
    // A PUT states the tags whole (none when absent); a PATCH without tags keeps them.
    tags: bodyTags ?? (patch ? oldDoc?.body.tags : undefined) ?? {},
  };
  if (t.flavor === 'arc') doc.location = t.machine.placement.region;
  if (props.forceUpdateTag !== undefined) doc.forceUpdateTag = props.forceUpdateTag;
  if (props.suppressFailures !== undefined) doc.suppressFailures = props.suppressFailures;
  if (props.provisionAfterExtensions !== undefined) doc.provisionAfterExtensions = props.provisionAfterExtensions;
  if (props.protectedSettingsFromKeyVault !== undefined) doc.protectedSettingsFromKeyVault = props.protectedSettingsFromKeyVault;
  if (props.protectedSettings !== undefined) doc.protectedSettings = ctx.secrets.seal(props.protectedSettings);
  const reinstall = existing !== undefined && (props.forceUpdateTag !== undefined && props.forceUpdateTag !== oldDoc?.body.forceUpdateTag || props.protectedSettings !== undefined);

  const inst = ctx.docs.atomically(() => {
    ctx.docs.put(id, t.machineArmId, 'extension', doc);
    if (!existing) {
      return ctx.engine.installExtension(
        t.machine.id,
        {
          name,
          publisher: catalogType.publisher,
          type: catalogType.type,
          typeHandlerVersion,
          autoUpgradeMinorVersion,
          enableAutomaticUpgrade,
          settings: props.settings ?? {},
        },
        caller,
      );
    }
    return ctx.engine.updateExtension(t.machine.id, existing.artifactKey, {
      typeHandlerVersion, autoUpgradeMinorVersion, enableAutomaticUpgrade,
      ...(props.settings !== undefined ? { settings: props.settings } : {}),
      reinstall,
    }, caller);
  });
  ctx.runtime.kick();
  const waits = inst.status === 'Transitioning';
  // An update (PATCH) hands out an operation even when nothing waits (updateTrack).
  if (waits || patch) startOperation(ctx, req, reply, t.sub, t.provider, t.machine.placement.region, updateTrack(waits ? [{ machineId: t.machine.id, artifactKey: inst.artifactKey }] : []), false);
  // HybridCompute's spec lists 200 and 202 for a create, Compute's 201.
  reply.status(existing || t.flavor === 'arc' ? 200 : 201);
  return extensionView(ctx, t.machineArmId, t.machine, inst, t.flavor, true);
}

/**
 * DELETE of an extension: 202 with the operation headers (the reference's answer for a long-running
 * delete); the removal is done when the answer leaves, so the operation reads Succeeded at once.
 */
export function deleteExtension(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, t: ExtensionTarget, name: string, caller: string): FastifyReply {
  const inst = findByName(ctx, t.machine.id, name);
  // Deleting what is not there succeeds with 204, so deletes are idempotent.
  if (!inst) return reply.status(204).send();
  ctx.docs.atomically(() => {
    ctx.docs.delete(`${t.machineArmId}/extensions/${name}`);
    ctx.engine.removeExtension(t.machine.id, inst.artifactKey, caller);
    startOperation(ctx, req, reply, t.sub, t.provider, t.machine.placement.region, { kind: 'done' }, true);
  });
  ctx.runtime.kick();
  return reply.status(202).send();
}

export function extensionNotFound(machineArmId: string, name: string) {
  return notFound('NotFound', `The extension '${name}' was not found on ${machineArmId}.`);
}

/** `$expand=instanceView` in any casing. */
export function wantsInstanceView(req: FastifyRequest): boolean {
  for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) if (k.toLowerCase() === '$expand' && String(v).toLowerCase().includes('instanceview')) return true;
  return false;
}

export const sameId = (a: string, b: string) => keyOf(a) === keyOf(b);
