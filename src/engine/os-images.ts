/**
 * Automatic OS image upgrade of scale sets (R60–R65). A set whose image is a catalog image at `latest`
 * has, on every instance, an OS image instance beside its extensions (key `osImage:…`): the image
 * version it runs, its last known good one, and whether automatic OS upgrade is on. When a newer version
 * becomes available in the set's region (R64), the instances below it go into a rollout planned and
 * gated like an extension's (R60, R62): batches of at most 20%, update-domain and zone boundaries, health
 * wait, rollback to the previous image. Turning the policy off pauses the set's part (R65).
 */
import { followsLatest } from '../catalog/image-reference.js';
import type { ImageRef } from '../catalog/image-reference.js';
import { ImageCatalogError } from '../catalog/images.js';
import type { Artifact, ExtensionInstance } from '../model/artifact.js';
import { artifactKey, compareArtifactVersions } from '../model/artifact.js';
import type { Machine, ScaleSet } from '../model/fleet.js';
import type { TickContext } from './context.js';
import { changed, emit, schedule } from './context.js';
import { FleetError } from './fleet-commands.js';
import { tryStartBatch } from './progress.js';
import type { RolloutSettings } from './rollouts.js';
import { createRollout } from './rollouts.js';
import type { EngineState, RolloutState, UnitState } from './state.js';
import { addInstance, getInstance } from './state.js';

/** The name OS image instances carry where extension instances carry theirs. */
export const OS_IMAGE_INSTANCE = '(os image)';

/** What an image reference upgrades: a platform sku, or a gallery image definition. Null for other images. */
export function imageArtifact(ref: ImageRef): Extract<Artifact, { kind: 'osImage' }> | null {
  if (ref.kind === 'platform') return { kind: 'osImage', publisher: ref.publisher, offer: ref.offer, sku: ref.sku };
  if (ref.kind === 'gallery') return { kind: 'osImage', publisher: `gallery:${ref.subscription}/${ref.resourceGroup}/${ref.gallery}`, offer: ref.image, sku: '' };
  return null;
}

function membersOf(state: EngineState, setId: string): Machine[] {
  const out: Machine[] = [];
  for (const m of state.fleet.machines.values()) if (m.placement.setId === setId) out.push(m);
  return out;
}

/** The version a reference stands for in the set's region now; null when the catalog cannot say. */
function currentVersion(state: EngineState, set: ScaleSet, now: number): string | null {
  if (!set.image) return null;
  try {
    return state.images.resolve(set.image, set.region, now).version;
  } catch (err) {
    if (err instanceof ImageCatalogError) return null;
    throw err;
  }
}

/**
 * Brings a set's OS image instances in step with its image and policy: new instances start on the version
 * the reference stands for now; the policy's switch is copied onto them; a rollout paused by the switch
 * resumes when it is on again. Then looks for a newer version.
 */
export function syncSetImage(ctx: TickContext, settings: RolloutSettings, setId: string, machines?: readonly Machine[]): RolloutState[] {
  const state = ctx.state;
  const set = state.fleet.scaleSets.get(setId);
  const artifact = set?.image ? imageArtifact(set.image) : null;
  if (!set || !set.image || !artifact) return [];
  const key = artifactKey(artifact);
  const enabled = set.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade;
  let version: string | null | undefined;
  for (const m of machines ?? membersOf(state, setId)) {
    const inst = getInstance(state.fleet, key, m.id);
    if (inst) {
      if (inst.enableAutomaticUpgrade !== enabled) {
        inst.enableAutomaticUpgrade = enabled;
        changed.instance(ctx, inst);
      }
      continue;
    }
    if (version === undefined) version = currentVersion(state, set, ctx.now);
    if (version === null) continue;
    const created = osImageInstance(m.id, artifact, key, version, enabled);
    addInstance(state.fleet, created);
    changed.instance(ctx, created);
  }
  if (enabled) resumeSet(ctx, setId);
  return checkImageUpgrades(ctx, settings, [setId]);
}

function osImageInstance(machineId: string, artifact: Extract<Artifact, { kind: 'osImage' }>, key: string, version: string, enabled: boolean): ExtensionInstance {
  return {
    machineId, artifactKey: key, name: OS_IMAGE_INSTANCE, publisher: artifact.publisher, type: `${artifact.offer}:${artifact.sku}`,
    typeHandlerVersion: version, autoUpgradeMinorVersion: false, settings: {},
    desiredVersion: version, installedVersion: version, lastKnownGoodVersion: version,
    enableAutomaticUpgrade: enabled, status: 'Succeeded', blockedReason: null,
  };
}

/** Machines already in a running rollout of this image that takes them to `version` or beyond. */
function covered(state: EngineState, key: string, artifact: Artifact, version: string): Set<string> {
  const out = new Set<string>();
  for (const r of state.rollouts.values()) {
    if (r.status !== 'running' || r.artifactKey !== key || compareArtifactVersions(artifact, r.toVersion, version) < 0) continue;
    for (const u of r.units.values()) for (const b of u.plan.batches) for (const id of b.machineIds) out.add(id);
  }
  return out;
}

/**
 * R60, R64: for each set that follows `latest` with automatic OS upgrade on, the instances below the
 * newest version available in its region go into a rollout (one per image and version). Also schedules
 * the next look, when the next replication to the set's region completes.
 */
export function checkImageUpgrades(ctx: TickContext, settings: RolloutSettings, setIds: Iterable<string>): RolloutState[] {
  const state = ctx.state;
  const groups = new Map<string, { artifact: Artifact; version: string; machineIds: string[]; regions: Set<string> }>();
  for (const setId of setIds) {
    const set = state.fleet.scaleSets.get(setId);
    if (!set?.image || !followsLatest(set.image)) continue;
    const artifact = imageArtifact(set.image)!;
    const next = safeNextAvailability(state, set, ctx.now);
    if (next !== null) schedule(ctx, { at: next, kind: 'imageCheck', rolloutId: '', ref: setId, token: 0 });
    if (!set.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade) continue;
    const version = currentVersion(state, set, ctx.now);
    if (version === null) continue;
    const key = artifactKey(artifact);
    const busy = covered(state, key, artifact, version);
    const gk = `${key}|${version}`;
    for (const m of membersOf(state, setId)) {
      const inst = getInstance(state.fleet, key, m.id);
      if (!inst || inst.blockedReason || busy.has(m.id) || compareArtifactVersions(artifact, inst.installedVersion, version) >= 0) continue;
      let g = groups.get(gk);
      if (!g) groups.set(gk, (g = { artifact, version, machineIds: [], regions: new Set() }));
      g.machineIds.push(m.id);
      g.regions.add(set.region);
    }
  }
  const started: RolloutState[] = [];
  for (const g of groups.values()) {
    const r = createRollout(ctx, settings, {
      artifact: g.artifact, toVersion: g.version, profile: 'standard', machineIds: g.machineIds, caller: settings.platformCaller ?? 'platform',
      reason: `OS image version ${g.version} is available in ${[...g.regions].join(', ')} (R60, R64)`,
    });
    if (r) started.push(r);
  }
  return started;
}

function safeNextAvailability(state: EngineState, set: ScaleSet, now: number): number | null {
  try {
    return state.images.nextAvailabilityAfter(set.image!, set.region, now);
  } catch (err) {
    if (err instanceof ImageCatalogError) return null;
    throw err;
  }
}

/** Every set with a catalog image looks again (after the catalog changed). */
export function checkAllImageUpgrades(ctx: TickContext, settings: RolloutSettings): RolloutState[] {
  const started: RolloutState[] = [];
  for (const s of ctx.state.fleet.scaleSets.values()) if (s.image) started.push(...syncSetImage(ctx, settings, s.id));
  return started;
}

/**
 * R65: the policy gate. An automatic OS image rollout does not start a batch of a set whose automatic OS
 * upgrade is off; the unit pauses (`rollout.paused`) until the policy is on again.
 */
export function policyPaused(ctx: TickContext, r: RolloutState, u: UnitState): boolean {
  if (r.artifact.kind !== 'osImage' || r.plan.profile.name === 'manual' || !u.plan.setId) return false;
  const set = ctx.state.fleet.scaleSets.get(u.plan.setId);
  if (set?.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade !== false) return false;
  changed.unit(ctx, u);
  u.status = 'disabled';
  emit(ctx, { type: 'rollout.paused', rolloutId: r.id, reason: `automatic OS upgrade was disabled on scale set ${set.name}: its part waits until it is enabled again (R65)` });
  return true;
}

function resumeSet(ctx: TickContext, setId: string): void {
  for (const r of ctx.state.rollouts.values()) {
    if (r.status !== 'running' || r.artifact.kind !== 'osImage') continue;
    for (const u of r.units.values()) {
      if (u.plan.setId !== setId || u.status !== 'disabled') continue;
      changed.unit(ctx, u);
      u.status = 'ready';
      emit(ctx, { type: 'rollout.resumed', rolloutId: r.id, reason: `automatic OS upgrade was enabled again on scale set ${ctx.state.fleet.scaleSets.get(setId)?.name ?? setId} (R65)` });
      tryStartBatch(ctx, r, u);
    }
  }
}

/**
 * R65 `osRollingUpgrade`: the set's instances to the newest image available in its region now, as a
 * manual rollout (batches and health rules kept, no windows, whatever the policy's switch says).
 */
export function checkOsRollingUpgrade(state: EngineState, setId: string, now: number): { artifact: Artifact; version: string; machineIds: string[] } {
  const set = state.fleet.scaleSets.get(setId);
  if (!set) throw new FleetError('NotFound', `no scale set ${setId}`, 'setId');
  if (!set.image || !followsLatest(set.image)) throw new FleetError('Conflict', `scale set ${set.name} does not use a platform or gallery image at 'latest'`, 'imageReference');
  const artifact = imageArtifact(set.image)!;
  const version = currentVersion(state, set, now);
  if (version === null) throw new FleetError('Conflict', `no version of the scale set's image is available in ${set.region}`, 'imageReference');
  const key = artifactKey(artifact);
  const machineIds = membersOf(state, setId).filter((m) => {
    const inst = getInstance(state.fleet, key, m.id);
    return inst !== undefined && inst.installedVersion !== '' && compareArtifactVersions(artifact, inst.installedVersion, version) < 0;
  }).map((m) => m.id);
  return { artifact, version, machineIds };
}
