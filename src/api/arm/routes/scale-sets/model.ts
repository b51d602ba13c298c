/**
 * A scale set's model: its document (or, for a set of the configured fleet, the model its instances
 * have), the checks a model must pass, and bringing instances to it.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Machine, ScaleSet } from '../../../../model/fleet.js';
import { installVersion } from '../../../../catalog/catalog.js';
import { checkInstall, checkRemoveExtension, checkUpdate } from '../../../../engine/fleet/extensions.js';
import type { ExtensionPatch, ExtensionSpec } from '../../../../engine/engine.js';
import { getInstance } from '../../../../engine/state.js';
import { referenceInputOf, followsLatest } from '../../../../model/image-reference.js';
import type { ArmContext } from '../../context.js';
import { badRequest } from '../../errors.js';
import { findByName, instancesOf } from '../../extensions.js';
import { keyOf, resourceGroupId, scaleSetVmId } from '../../ids.js';
import { keepSealed, sealOsProfile } from '../../write-only.js';
import { checkMachineSettings, jsonBytes } from '../../settings-budget.js';
import type { ModelExtension, ScaleSetDoc } from './schemas.js';

export type Touched = Array<{ machineId: string; artifactKey: string }>;

export function docOf(ctx: ArmContext, set: ScaleSet): ScaleSetDoc {
  const doc = ctx.docs.get<ScaleSetDoc>(ctx.index.armIdOfSet(set))?.body;
  if (doc) return doc;
  // A set of the configured fleet: its model is what its instances have.
  const first = ctx.index.members(set.id)[0];
  const extensions: ModelExtension[] = first ? instancesOf(ctx, first.id).map((i) => ({
    name: i.name,
    properties: {
      publisher: i.publisher, type: i.type, typeHandlerVersion: i.typeHandlerVersion, autoUpgradeMinorVersion: i.autoUpgradeMinorVersion, enableAutomaticUpgrade: i.enableAutomaticUpgrade,
      settings: { ...i.settings },
    },
  })) : [];
  // The image the engine follows reads (and survives a PATCH) as if a client had sent it.
  const imageReference = set.image ? { ...referenceInputOf(set.image) } as Record<string, string> : undefined;
  const osDisk = { osType: first?.os === 'windows' ? 'Windows' as const : 'Linux' as const };
  return {
    tags: {}, sku: { name: 'Standard_D2s_v5', capacity: ctx.engine.state.fleet.setSizes.get(set.id) ?? 0 },
    properties: { upgradePolicy: set.upgradePolicy, virtualMachineProfile: { storageProfile: { ...(imageReference ? { imageReference } : {}), osDisk }, extensionProfile: { extensions } } },
    ...(set.image ? { image: { exactVersion: null, managed: true, followsLatest: followsLatest(set.image) } } : {}),
    modelVersion: 0, applied: {}, sealed: {},
    // Past the largest instance id in use, whatever ids the configured fleet gave its instances.
    nextInstanceId: ctx.index.members(set.id).reduce((n, m) => Math.max(n, (Number.parseInt(ctx.index.instanceIdOf(m), 10) || 0) + 1), 0),
  };
}

export const modelExtensions = (doc: ScaleSetDoc): ModelExtension[] => doc.properties.virtualMachineProfile?.extensionProfile?.extensions ?? [];

/** The settings and protected settings (sent, or kept sealed) a model gives each instance, in bytes of JSON. */
export function modelSettingsBytes(ctx: ArmContext, exts: readonly ModelExtension[], sealed: Record<string, string> = {}): number {
  let total = 0;
  for (const e of exts) {
    const kept = sealed[e.name.toLowerCase()];
    total += jsonBytes(e.properties.settings) + (e.properties.protectedSettings !== undefined ? jsonBytes(e.properties.protectedSettings) : kept ? jsonBytes(ctx.secrets.open(kept)) : 0);
  }
  return total;
}

/** Checks a model before anything changes; returns the settings bytes it gives each instance. */
export function checkModel(ctx: ArmContext, exts: readonly ModelExtension[], machine: { os: Machine['os']; region: string }, sealed: Record<string, string> = {}): number {
  // Each instance gets every extension of the model: together within the machine's settings budget.
  const total = modelSettingsBytes(ctx, exts, sealed);
  checkMachineSettings(total, 'properties.virtualMachineProfile.extensionProfile.extensions', 'each instance of the scale set');
  const names = new Set<string>();
  const types = new Set<string>();
  exts.forEach((e, i) => {
    const where = `properties.virtualMachineProfile.extensionProfile.extensions[${i}]`;
    if (names.has(e.name.toLowerCase())) throw badRequest('InvalidParameter', `${where}.name: the name '${e.name}' is used twice.`, `${where}.name`);
    names.add(e.name.toLowerCase());
    const key = `${e.properties.publisher}.${e.properties.type}`.toLowerCase();
    if (types.has(key)) throw badRequest('InvalidParameter', `${where}.properties.type: ${e.properties.publisher}.${e.properties.type} appears twice.`, `${where}.properties.type`);
    types.add(key);
    if (!ctx.engine.state.catalog.getType(e.properties.publisher, e.properties.type)) {
      throw badRequest('ArtifactNotFound', `${where}.properties.type: extension type ${e.properties.publisher}.${e.properties.type} is not published in the catalog.`, `${where}.properties.type`);
    }
    const pr = e.properties;
    const wanted = { publisher: pr.publisher, type: pr.type, typeHandlerVersion: pr.typeHandlerVersion, autoUpgradeMinorVersion: pr.autoUpgradeMinorVersion ?? false };
    const v = installVersion(ctx.engine.state.catalog, wanted, machine, ctx.runtime.clock.now());
    if (!v) {
      const text = `no version of ${e.properties.publisher}.${e.properties.type} matching '${e.properties.typeHandlerVersion}' is published for ${machine.os} in ${machine.region}.`;
      throw badRequest('ArtifactVersionNotFound', `${where}.properties.typeHandlerVersion: ${text}`, `${where}.properties.typeHandlerVersion`);
    }
  });
  return total;
}

/** Seals the model's write-only osProfile secrets (adminPassword, customData) out of the document. */
export function sealProfile(ctx: ArmContext, doc: ScaleSetDoc): void {
  const vmp = doc.properties.virtualMachineProfile;
  if (!vmp) return;
  const { props, sealed } = sealOsProfile(ctx.secrets, vmp as Record<string, unknown>);
  if (!sealed) return;
  doc.properties.virtualMachineProfile = props as typeof vmp;
  doc.sealed['$osProfile'] = keepSealed(ctx.secrets, doc.sealed['$osProfile'], sealed)!; // '$' cannot start an extension name; fields not sent again are kept
}

/** Seals protected settings out of the model the document keeps. */
export function sealModel(ctx: ArmContext, doc: ScaleSetDoc, exts: ModelExtension[]): ModelExtension[] {
  return exts.map((e) => {
    const { protectedSettings, ...props } = e.properties;
    if (protectedSettings !== undefined) doc.sealed[e.name.toLowerCase()] = ctx.secrets.seal(protectedSettings);
    return { ...e, properties: props };
  });
}

type ModelOp =
  | { kind: 'remove'; artifactKey: string }
  | { kind: 'update'; artifactKey: string; spec: ExtensionPatch }
  | { kind: 'install'; spec: ExtensionSpec }
  | { kind: 'keep'; artifactKey: string };

/** What bringing one instance to a model would change, extension by extension. */
function modelOps(ctx: ArmContext, model: readonly ModelExtension[], m: Machine): ModelOp[] {
  const ops: ModelOp[] = [];
  const wanted = new Set(model.map((e) => e.name.toLowerCase()));
  for (const inst of instancesOf(ctx, m.id)) if (!wanted.has(inst.name.toLowerCase())) ops.push({ kind: 'remove', artifactKey: inst.artifactKey });
  for (const e of model) {
    const pr = e.properties;
    const have = findByName(ctx, m.id, e.name);
    const spec = {
      typeHandlerVersion: pr.typeHandlerVersion, autoUpgradeMinorVersion: pr.autoUpgradeMinorVersion ?? false,
      enableAutomaticUpgrade: pr.enableAutomaticUpgrade ?? false, settings: pr.settings ?? {},
    };
    if (!have) ops.push({ kind: 'install', spec: { name: e.name, publisher: pr.publisher, type: pr.type, ...spec } });
    else if (
      have.typeHandlerVersion !== spec.typeHandlerVersion || have.autoUpgradeMinorVersion !== spec.autoUpgradeMinorVersion
      || have.enableAutomaticUpgrade !== spec.enableAutomaticUpgrade || JSON.stringify(have.settings) !== JSON.stringify(spec.settings)
    ) ops.push({ kind: 'update', artifactKey: have.artifactKey, spec });
    else ops.push({ kind: 'keep', artifactKey: have.artifactKey });
  }
  return ops;
}

/**
 * Checks, before anything changes, that the engine will take every change a model brings to these
 * machines: a set-wide change is all or nothing (a 409 for one busy instance changes none).
 */
export function checkModelOn(ctx: ArmContext, model: readonly ModelExtension[], machines: readonly Machine[]): void {
  const state = ctx.engine.state;
  const now = ctx.runtime.clock.now();
  for (const m of machines) {
    for (const op of modelOps(ctx, model, m)) {
      if (op.kind === 'remove') checkRemoveExtension(state, m.id, op.artifactKey);
      else if (op.kind === 'update') checkUpdate(state, m.id, op.artifactKey, op.spec, now);
      else if (op.kind === 'install') checkInstall(state, m.id, op.spec, now);
    }
  }
}

/** Brings one instance's extensions to the set's model; returns the instances that now transition. */
export function applyModel(ctx: ArmContext, doc: ScaleSetDoc, m: Machine, caller: string): Touched {
  const touched: Touched = [];
  for (const op of modelOps(ctx, modelExtensions(doc), m)) {
    if (op.kind === 'remove') {
      ctx.engine.removeExtension(m.id, op.artifactKey, caller);
      continue;
    }
    const inst = op.kind === 'install' ? ctx.engine.installExtension(m.id, op.spec, caller)
      : op.kind === 'update' ? ctx.engine.updateExtension(m.id, op.artifactKey, op.spec, caller)
        : getInstance(ctx.engine.state.fleet, op.artifactKey, m.id)!;
    if (inst.status === 'Transitioning') touched.push({ machineId: m.id, artifactKey: inst.artifactKey });
  }
  doc.applied[ctx.index.instanceIdOf(m)] = doc.modelVersion;
  return touched;
}

export function addInstances(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, os: Machine['os'], count: number, caller: string): { machines: Machine[]; touched: Touched } {
  const machines: Machine[] = [];
  const touched: Touched = [];
  for (let k = 0; k < count; k++) {
    const n = doc.nextInstanceId++;
    const iid = String(n);
    const m: Machine = {
      id: keyOf(scaleSetVmId(set.subscription, set.resourceGroup, set.name, iid)), name: `${set.name}_${iid}`, kind: 'scaleSetInstance', os, resourceGroup: set.resourceGroup, instanceId: iid,
      // Instances spread over zones, update domains and fault domains round-robin, as Azure places them.
      placement: {
        region: set.region, zone: set.zones.length ? set.zones[n % set.zones.length]! : null, setId: set.id, setKind: 'scaleSet',
        updateDomain: n % set.updateDomainCount, faultDomain: n % set.faultDomainCount, subscription: set.subscription,
      },
    };
    const stored = ctx.engine.addMachine(m);
    ctx.index.addMachine(stored);
    machines.push(stored);
    touched.push(...applyModel(ctx, doc, stored, caller));
  }
  return { machines, touched };
}

/** A new extension profile: Automatic and Rolling sets apply it to every instance now, Manual ones on manualupgrade. */
export function changeModelIn(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, exts: ModelExtension[], caller: string): Touched {
  // R50: the same extension profile sent again (a PUT that scales, tags or changes the policy) is no new model: under
  // Manual its instances stayed on the latest model. A profile with protectedSettings counts as new (they are sealed).
  if (exts.every((e) => e.properties.protectedSettings === undefined) && isDeepStrictEqual(exts, modelExtensions(doc))) return [];
  const sealed = sealModel(ctx, doc, exts);
  const vmp = doc.properties.virtualMachineProfile;
  doc.properties.virtualMachineProfile = { ...(vmp ?? {}), extensionProfile: { ...(vmp?.extensionProfile ?? {}), extensions: sealed } };
  doc.modelVersion++;
  if (set.upgradePolicy.mode === 'Manual') return [];
  return ctx.index.members(set.id).flatMap((m) => applyModel(ctx, doc, m, caller));
}

export function changeModel(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, exts: ModelExtension[], caller: string) {
  if (set.upgradePolicy.mode !== 'Manual') checkModelOn(ctx, exts, ctx.index.members(set.id));
  const touched = ctx.docs.atomically(() => {
    const t = changeModelIn(ctx, set, doc, exts, caller);
    ctx.docs.put(ctx.index.armIdOfSet(set), resourceGroupId(set.subscription, set.resourceGroup), 'scaleSet', doc);
    return t;
  });
  ctx.runtime.kick();
  return touched;
}
