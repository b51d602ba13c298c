/**
 * Platform-orchestrated guest patching (R76): every machine whose patch mode is `AutomaticByPlatform` and
 * that no InGuestPatch schedule covers holds a `guestPatch:<os>` instance. Its version is the patch
 * baseline it installed (a date such as 2026.1.12: the Critical and Security patches published by then).
 * Publishing a baseline rolls it out like any release: regions in phases that keep geo-pairs apart,
 * zones, update domains, batches of at most 20%, the health gates, and each region's off-peak hours
 * (rollouts/windows.ts). Patches are not uninstalled: a failed machine reads Failed (attempts/outcome.ts).
 */
import type { Artifact, ExtensionInstance } from '../../model/artifact.js';
import { artifactKey, compareArtifactVersions, guestPatchArtifact } from '../../model/artifact.js';
import type { Machine } from '../../model/fleet.js';
import { isBaselineVersion } from '../../model/patch-baseline.js';
import { configsOfKey, windowKeyOf } from '../../model/maintenance.js';
import type { RebootSetting } from '../../model/patches.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import { FleetError } from '../core/errors.js';
import type { RolloutSettings } from '../core/settings.js';
import { cancelRollout } from '../rollouts/cancel.js';
import { createRollout } from '../rollouts/create.js';
import { removeInstances } from '../rollouts/removal.js';
import { resumeCannotHeal } from '../opt-in/opt-in.js';
import type { EngineState, RolloutState } from '../state.js';
import { addInstance, getInstance } from '../state.js';

/** The name platform patch instances carry where extension instances carry theirs. */
export const GUEST_PATCH_INSTANCE = '(platform patches)';
/** The version of a machine that has installed no baseline yet. */
export const NO_BASELINE = '0.0.0';

/** The patch settings the engine keeps of a platform-patched machine. */
export interface PlatformPatchSettings {
  rebootSetting: RebootSetting;
}

export function guestPatchInstance(machine: Pick<Machine, 'id' | 'os'>, settings: PlatformPatchSettings, version = NO_BASELINE): ExtensionInstance {
  const artifact = guestPatchArtifact(machine.os);
  return {
    machineId: machine.id, artifactKey: artifactKey(artifact), name: GUEST_PATCH_INSTANCE, publisher: 'Phasewise.Platform', type: `guestPatch:${artifact.os}`,
    typeHandlerVersion: version, autoUpgradeMinorVersion: false, settings: Object.freeze({ rebootSetting: settings.rebootSetting }),
    desiredVersion: version, installedVersion: version, lastKnownGoodVersion: version,
    enableAutomaticUpgrade: true, status: 'Succeeded', blockedReason: null,
  };
}

/** True when an InGuestPatch schedule is assigned to the machine (or its set): the schedule patches it, not the platform. */
export function underSchedule(state: EngineState, machine: Machine): boolean {
  const m = state.maintenance;
  return configsOfKey(m, windowKeyOf(m, 'InGuestPatch', machine)).length > 0;
}

/**
 * Sets (settings) or clears (null) a machine's platform patching: its `guestPatch` instance appears,
 * takes the new reboot setting, or goes (leaving any rollout it was in).
 */
export function setPlatformPatching(ctx: TickContext, machineId: string, settings: PlatformPatchSettings | null): void {
  const machine = ctx.state.fleet.machines.get(machineId);
  if (!machine) throw new FleetError('NotFound', `no machine ${machineId}`, 'machineId');
  const key = artifactKey(guestPatchArtifact(machine.os));
  const inst = getInstance(ctx.state.fleet, key, machineId);
  if (settings === null) {
    if (inst) for (const id of removeInstances(ctx, [inst], 'patchMode is no longer AutomaticByPlatform')) resumeCannotHeal(ctx, id);
    return;
  }
  if (inst) {
    if (inst.settings['rebootSetting'] !== settings.rebootSetting) {
      inst.settings = Object.freeze({ rebootSetting: settings.rebootSetting });
      changed.instance(ctx, inst);
    }
    return;
  }
  const created = guestPatchInstance(machine, settings);
  addInstance(ctx.state.fleet, created);
  changed.instance(ctx, created);
}

/**
 * A new patch baseline for an OS: every platform-patched machine below it that no schedule covers goes
 * into one rollout (a critical baseline gets the fast lane and may bypass off-peak hours, R72); a running
 * rollout of an earlier baseline is superseded.
 */
export function publishBaseline(ctx: TickContext, settings: RolloutSettings, os: 'linux' | 'windows', version: string, critical: boolean, caller: string): RolloutState | null {
  if (!isBaselineVersion(version)) throw new FleetError('Conflict', `"${version}" is not a patch baseline: expected a date such as 2026.1.12`, 'version');
  const artifact: Artifact = guestPatchArtifact(os);
  const key = artifactKey(artifact);
  for (const r of ctx.state.rollouts.values()) {
    if (r.artifactKey !== key || r.status !== 'running') continue;
    if (compareArtifactVersions(artifact, r.toVersion, version) >= 0) return null; // this one or a newer one rolls out already
  }
  emit(ctx, { type: 'release.published', artifact, version, critical, os: [os] });
  for (const r of [...ctx.state.rollouts.values()]) {
    if (r.artifactKey === key && r.status === 'running') cancelRollout(ctx, r, `superseded by patch baseline ${version}`);
  }
  const machineIds: string[] = [];
  for (const inst of ctx.state.fleet.instances.get(key)?.values() ?? []) {
    const m = ctx.state.fleet.machines.get(inst.machineId);
    if (!m || compareArtifactVersions(artifact, inst.installedVersion, version) >= 0 || underSchedule(ctx.state, m)) continue;
    machineIds.push(m.id);
  }
  return createRollout(ctx, settings, {
    artifact, toVersion: version, profile: critical ? 'critical' : 'standard', machineIds, caller,
    reason: `${critical ? 'critical ' : ''}patch baseline ${version} for ${os} (Critical and Security patches published by then), in each region's off-peak hours (R76)`,
  });
}
