/** Extensions on a machine, as a user asks: install at the R4 version, update, remove. */
import { installVersion } from '../../catalog/catalog.js';
import type { ExtensionInstance } from '../../model/artifact.js';
import { artifactKey as keyOf } from '../../model/artifact.js';
import { isVersionPrefix } from '../../model/version.js';
import type { EngineState, RolloutState } from '../state.js';
import { addInstance, getInstance, machineContext, refreshMachineHealth } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import type { RolloutSettings } from '../core/settings.js';
import { FleetError } from '../core/errors.js';
import { EXTENSION_REMOVED } from '../attempts/skip.js';
import { dropInstance, settleRollouts } from '../rollouts/removal.js';
import { instancesOn } from './machines.js';
import { applyAutomaticUpgrade, resumeCannotHeal } from '../opt-in/opt-in.js';
import { artifactOf, sendInstall, sendUninstall } from './user-actions.js';
import {
  bool, conflict, invalid, mustInstance, mustMachine, refuseInFlight, sameJson, settingsOf, text,
} from './checks.js';

/** An extension to install on a machine (ARM's extension properties). */
export interface ExtensionSpec {
  name: string;
  publisher: string;
  type: string;
  typeHandlerVersion: string;
  autoUpgradeMinorVersion: boolean;
  enableAutomaticUpgrade: boolean;
  settings: Record<string, unknown>;
}

/** A change to an installed extension; `reinstall` asks for an install of the same version (a new forceUpdateTag). */
export interface ExtensionPatch {
  typeHandlerVersion?: string;
  autoUpgradeMinorVersion?: boolean;
  enableAutomaticUpgrade?: boolean;
  settings?: Record<string, unknown>;
  reinstall?: boolean;
}

export interface InstallPlan {
  inst: ExtensionInstance;
  version: string;
}

/** R4: a new extension on a machine, at the version its typeHandlerVersion and autoUpgradeMinorVersion resolve to. */
export function checkInstall(state: EngineState, machineId: string, spec: ExtensionSpec, now: number): InstallPlan {
  const m = mustMachine(state, machineId);
  const name = text(spec?.name, 'name');
  const publisherIn = text(spec.publisher, 'publisher');
  const typeIn = text(spec.type, 'type');
  const typeHandlerVersion = text(spec.typeHandlerVersion, 'typeHandlerVersion');
  if (!isVersionPrefix(typeHandlerVersion)) throw invalid('typeHandlerVersion', `typeHandlerVersion must be one to four numbers separated by dots (1.30), got ${typeHandlerVersion}`);
  const autoUpgradeMinorVersion = bool(spec.autoUpgradeMinorVersion, 'autoUpgradeMinorVersion');
  const enableAutomaticUpgrade = bool(spec.enableAutomaticUpgrade, 'enableAutomaticUpgrade');
  const settings = settingsOf(spec.settings ?? {}, 'settings');
  const t = state.catalog.getType(publisherIn, typeIn);
  const publisher = t?.publisher ?? publisherIn;
  const type = t?.type ?? typeIn;
  const artifactKey = keyOf({ kind: 'extension', publisher, type });
  if (getInstance(state.fleet, artifactKey, machineId)) throw conflict('type', `machine ${machineId} already has an extension of type ${publisher}.${type}`);
  const sameName = instancesOn(state, machineId).find((i) => i.name.toLowerCase() === name.toLowerCase());
  if (sameName) throw conflict('name', `machine ${machineId} already has an extension named ${sameName.name} (${sameName.publisher}.${sameName.type})`);
  const version = installVersion(state.catalog, { publisher, type, typeHandlerVersion, autoUpgradeMinorVersion }, machineContext(state, m), now);
  if (!version) throw new FleetError('VersionNotFound', `no published version of ${publisher}.${type} matches typeHandlerVersion ${typeHandlerVersion} for ${m.os} in ${m.placement.region}`, 'typeHandlerVersion');
  const inst: ExtensionInstance = {
    machineId, artifactKey, name, publisher, type, typeHandlerVersion, autoUpgradeMinorVersion, enableAutomaticUpgrade, settings,
    desiredVersion: version, installedVersion: '', lastKnownGoodVersion: '', status: 'Transitioning', blockedReason: null,
  };
  return { inst, version };
}

export function applyInstall(ctx: TickContext, plan: InstallPlan, caller: string): ExtensionInstance {
  addInstance(ctx.state.fleet, plan.inst);
  sendInstall(ctx, plan.inst, plan.version, caller, `install requested by ${caller}`);
  return plan.inst;
}

export interface UpdatePlan {
  inst: ExtensionInstance;
  typeHandlerVersion: string;
  autoUpgradeMinorVersion: boolean;
  settings: Readonly<Record<string, unknown>> | null;
  /** The version to install, or null when the change needs no install. */
  install: string | null;
  why: string;
  enableAutomaticUpgrade: boolean | undefined;
}

/**
 * R4 on a model update: a new typeHandlerVersion or autoUpgradeMinorVersion that resolves to another
 * version installs it (a user may cross a major by hand; automatic upgrades never do, R1); new
 * settings or a reinstall install again the version in place. Refused while a rollout attempt is in
 * flight on the instance.
 */
export function checkUpdate(state: EngineState, machineId: string, artifactKey: string, patch: ExtensionPatch, now: number): UpdatePlan {
  const inst = mustInstance(state, machineId, artifactKey);
  const m = state.fleet.machines.get(machineId)!;
  if (patch === null || typeof patch !== 'object') throw invalid('patch', 'expected an object of changes');
  const typeHandlerVersion = patch.typeHandlerVersion === undefined ? inst.typeHandlerVersion : text(patch.typeHandlerVersion, 'typeHandlerVersion');
  if (!isVersionPrefix(typeHandlerVersion)) throw invalid('typeHandlerVersion', `typeHandlerVersion must be one to four numbers separated by dots (1.30), got ${typeHandlerVersion}`);
  const autoUpgradeMinorVersion = patch.autoUpgradeMinorVersion === undefined ? inst.autoUpgradeMinorVersion : bool(patch.autoUpgradeMinorVersion, 'autoUpgradeMinorVersion');
  const enableAutomaticUpgrade = patch.enableAutomaticUpgrade === undefined ? undefined : bool(patch.enableAutomaticUpgrade, 'enableAutomaticUpgrade');
  const reinstall = patch.reinstall === undefined ? false : bool(patch.reinstall, 'reinstall');
  const settings = patch.settings === undefined || sameJson(patch.settings, inst.settings) ? null : settingsOf(patch.settings, 'settings');
  refuseInFlight(state, machineId, artifactKey, `change extension ${inst.name} on ${machineId}`);
  const resolve = () => {
    const v = installVersion(state.catalog, { publisher: inst.publisher, type: inst.type, typeHandlerVersion, autoUpgradeMinorVersion }, machineContext(state, m), now);
    if (!v) throw new FleetError('VersionNotFound', `no published version of ${inst.publisher}.${inst.type} matches typeHandlerVersion ${typeHandlerVersion} for ${m.os} in ${m.placement.region}`, 'typeHandlerVersion');
    return v;
  };
  let install: string | null = null;
  let why = '';
  if (typeHandlerVersion !== inst.typeHandlerVersion || autoUpgradeMinorVersion !== inst.autoUpgradeMinorVersion) {
    const v = resolve();
    if (v !== inst.installedVersion) [install, why] = [v, `typeHandlerVersion ${typeHandlerVersion} (autoUpgradeMinorVersion ${autoUpgradeMinorVersion}) resolves to ${v}`];
  }
  if (install === null && (settings !== null || reinstall)) {
    install = inst.installedVersion !== '' ? inst.installedVersion : resolve();
    why = settings !== null ? 'settings changed' : 'reinstall requested';
  }
  return { inst, typeHandlerVersion, autoUpgradeMinorVersion, settings, install, why, enableAutomaticUpgrade };
}

export function applyUpdate(ctx: TickContext, settings: RolloutSettings, plan: UpdatePlan, caller: string): RolloutState[] {
  const inst = plan.inst;
  if (inst.typeHandlerVersion !== plan.typeHandlerVersion || inst.autoUpgradeMinorVersion !== plan.autoUpgradeMinorVersion || plan.settings !== null) {
    inst.typeHandlerVersion = plan.typeHandlerVersion;
    inst.autoUpgradeMinorVersion = plan.autoUpgradeMinorVersion;
    if (plan.settings !== null) inst.settings = plan.settings;
    changed.instance(ctx, inst);
  }
  // The install goes first: a catch-up for an instance being installed waits for the install's answer.
  if (plan.install !== null) sendInstall(ctx, inst, plan.install, caller, `${plan.why}; requested by ${caller}`);
  if (plan.enableAutomaticUpgrade === undefined) return [];
  return applyAutomaticUpgrade(ctx, settings, [inst.machineId], inst.artifactKey, plan.enableAutomaticUpgrade, caller);
}

export function checkRemoveExtension(state: EngineState, machineId: string, artifactKey: string): ExtensionInstance {
  const inst = mustInstance(state, machineId, artifactKey);
  refuseInFlight(state, machineId, artifactKey, `remove extension ${inst.name} from ${machineId}`);
  return inst;
}

/** Removes the instance at once and sends the uninstall; rollouts skip it ('extension removed'). */
export function applyRemoveExtension(ctx: TickContext, inst: ExtensionInstance, caller: string): void {
  const m = ctx.state.fleet.machines.get(inst.machineId)!;
  settleRollouts(ctx, inst, EXTENSION_REMOVED);
  dropInstance(ctx, inst);
  refreshMachineHealth(ctx.state.fleet, inst.machineId);
  emit(ctx, { type: 'instance.removed', machineId: inst.machineId, placement: m.placement, artifact: artifactOf(inst), version: inst.installedVersion, caller, reason: `removed by ${caller}` });
  resumeCannotHeal(ctx, inst.machineId);
  sendUninstall(ctx, inst, caller);
}
