/**
 * Automatic OS image upgrade of scale sets (R60–R65). A set whose image is a catalog image at `latest`
 * has, on every instance, an OS image instance beside its extensions (key `osImage:…`): the image
 * version it runs, its last known good one, and whether automatic OS upgrade is on. When a newer version
 * becomes available in the set's region (R64), the instances below it go into a rollout planned and
 * gated like an extension's (R60, R62): batches of at most 20%, update-domain and zone boundaries, health
 * wait, rollback to the previous image. Turning the policy off pauses the set's part (R65).
 */
import { followsLatest, imageArtifact } from '../../model/image-reference.js';
import type { ImageRef } from '../../model/image-reference.js';
import { ImageCatalogError } from '../../catalog/images.js';
import type { Artifact, ExtensionInstance } from '../../model/artifact.js';
import { artifactKey, compareArtifactVersions, isOsImageKey } from '../../model/artifact.js';
import type { Machine, ScaleSet } from '../../model/fleet.js';
import type { TickContext } from '../core/context.js';
import { changed, emit, schedule } from '../core/context.js';
import { FleetError } from '../core/errors.js';
import { removeInstances } from '../rollouts/removal.js';
import { resumeCannotHeal } from '../opt-in/opt-in.js';
import { cancelRollout } from '../rollouts/cancel.js';
import { checkRolloutDone } from '../rollouts/lifecycle.js';
import { onInstanceSettled } from '../rollouts/batch-end.js';
import { unparkUnit } from '../rollouts/wake.js';
import { CANCELLED_FOR_SET, IMAGE_CHANGED, skipGone } from '../attempts/skip.js';
import { approveNotices, withdrawNotice } from '../attempts/upgrade.js';
import type { RolloutSettings } from '../core/settings.js';
import { createRollout } from '../rollouts/create.js';
import type { EngineState, RolloutState } from '../state.js';
import { addInstance, getInstance } from '../state.js';
import { InstanceLookups } from './instance-lookups.js';

/** The name OS image instances carry where extension instances carry theirs. */
export const OS_IMAGE_INSTANCE = '(os image)';

/** The instance key of an image reference's artifact, or null for images the engine does not follow. */
export function imageKeyOf(ref: ImageRef): string | null {
  const a = imageArtifact(ref);
  return a ? artifactKey(a) : null;
}

/** The machines of these sets, in one pass over the fleet (the fleet keeps no index of members). */
function membersBySet(state: EngineState, setIds: ReadonlySet<string>): Map<string, Machine[]> {
  const out = new Map<string, Machine[]>();
  for (const id of setIds) out.set(id, []);
  if (setIds.size === 0) return out;
  for (const m of state.fleet.machines.values()) {
    const setId = m.placement.setId;
    if (setId !== null && setIds.has(setId)) out.get(setId)!.push(m);
  }
  return out;
}

function membersOf(state: EngineState, setId: string): Machine[] {
  return membersBySet(state, new Set([setId])).get(setId)!;
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
export function syncSetImage(
  ctx: TickContext, settings: RolloutSettings, setId: string, machines?: readonly Machine[], members?: Map<string, Machine[]>, check = true,
  lookups?: InstanceLookups,
): RolloutState[] {
  const state = ctx.state;
  const set = state.fleet.scaleSets.get(setId);
  const artifact = set?.image ? imageArtifact(set.image) : null;
  if (!set || !set.image || !artifact) return [];
  const key = artifactKey(artifact);
  const enabled = set.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade;
  let version: string | null | undefined;
  // A machine added to the set starts on the current version: nothing to look for or clean up.
  const all = machines ? null : (members ?? membersBySet(state, new Set([setId])));
  if (all) dropOtherImages(ctx, key, all.get(setId)!);
  for (const m of machines ?? all!.get(setId)!) {
    const inst = lookups ? lookups.of(key, m.id) : getInstance(state.fleet, key, m.id);
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
  return check && all ? checkImageUpgrades(ctx, settings, [setId], all) : [];
}

/** The set moved to another image: the old image's instances (and their place in rollouts) go. */
function dropOtherImages(ctx: TickContext, key: string, members: readonly Machine[]): void {
  const stale: ExtensionInstance[] = [];
  for (const [k, byMachine] of ctx.state.fleet.instances) {
    if (k === key || !isOsImageKey(k)) continue;
    for (const m of members) {
      const inst = byMachine.get(m.id);
      if (inst) stale.push(inst);
    }
  }
  if (stale.length > 0) for (const id of removeInstances(ctx, stale, IMAGE_CHANGED)) resumeCannotHeal(ctx, id);
}

function osImageInstance(machineId: string, artifact: Extract<Artifact, { kind: 'osImage' }>, key: string, version: string, enabled: boolean): ExtensionInstance {
  return {
    machineId, artifactKey: key, name: OS_IMAGE_INSTANCE, publisher: artifact.publisher, type: `${artifact.offer}:${artifact.sku}`,
    typeHandlerVersion: version, autoUpgradeMinorVersion: false, settings: {},
    desiredVersion: version, installedVersion: version, lastKnownGoodVersion: version,
    enableAutomaticUpgrade: enabled, status: 'Succeeded', blockedReason: null,
  };
}

/**
 * What running automatic rollouts of this image hold: machines a newer version covers (left alone),
 * rollouts of the same version (merged into the new one, see below) and of older ones (cancelled).
 */
function runningOf(state: EngineState, key: string, artifact: Artifact, version: string) {
  const newer = new Set<string>();
  const same: RolloutState[] = [];
  const older: RolloutState[] = [];
  for (const r of state.rollouts.values()) {
    if ((r.status !== 'running' && r.status !== 'stopped') || r.artifactKey !== key) continue;
    const order = compareArtifactVersions(artifact, r.toVersion, version);
    if (order > 0 || (order === 0 && r.plan.profile.name === 'manual')) {
      for (const u of r.units.values()) for (const b of u.plan.batches) for (const id of b.machineIds) newer.add(id);
    } else if (order === 0) {
      if (r.status === 'running') same.push(r);
    } else if (r.plan.profile.name !== 'manual') older.push(r);
  }
  return { newer, same, older };
}

/**
 * R60, R64: for each set that follows `latest` with automatic OS upgrade on, the instances below the
 * newest version available in its region go into one rollout per image and version, planned across
 * regions like an extension's (R10: geo-pairs in different phases). When the version reaches more
 * regions while a rollout of it runs, that rollout is superseded by one holding its remaining machines
 * and the new ones, so one plan keeps paired regions apart. Also schedules the next look, when the next
 * replication to a set's region completes.
 */
export function checkImageUpgrades(ctx: TickContext, settings: RolloutSettings, setIds: Iterable<string>, members?: Map<string, Machine[]>): RolloutState[] {
  const state = ctx.state;
  const ids = [...setIds];
  const bySet = members ?? membersBySet(state, new Set(ids));
  const groups = new Map<string, DueGroup>();
  // Every member of every set is asked for its instance, sets in the fleet's order and members in the
  // machines' order: the order the instances were made in (syncSetImage), so mostly a sequential read.
  const lookups = new InstanceLookups(state);
  for (const setId of ids) {
    const set = state.fleet.scaleSets.get(setId);
    if (!set?.image || !followsLatest(set.image)) continue;
    const artifact = imageArtifact(set.image)!;
    const next = safeNextAvailability(state, set, ctx.now);
    if (next !== null) scheduleImageCheck(ctx, next);
    if (!set.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade) continue;
    const version = currentVersion(state, set, ctx.now);
    if (version === null) continue;
    const key = artifactKey(artifact);
    const gk = `${key}|${version}`;
    let g = groups.get(gk);
    let due: Set<string> | undefined;
    // A set's instances are on one version or two: compare each distinct one with the target once.
    let seen: string | null = null;
    let below = false;
    for (const m of bySet.get(setId) ?? []) {
      const inst = lookups.of(key, m.id);
      if (!inst || !mayHeal(artifact, inst, version)) continue;
      const installed = inst.installedVersion;
      if (installed !== seen) {
        seen = installed;
        below = compareArtifactVersions(artifact, installed, version) < 0;
      }
      if (!below) continue;
      if (!due) {
        if (!g) groups.set(gk, (g = { artifact, key, version, bySet: new Map(), size: 0, regions: new Set(), blocked: [] }));
        g.regions.add(set.region);
        due = g.bySet.get(setId);
        if (!due) g.bySet.set(setId, (due = new Set()));
      }
      if (due.has(m.id)) continue;
      due.add(m.id);
      g!.size++;
      if (inst.blockedReason) g!.blocked.push(inst);
    }
  }
  const started: RolloutState[] = [];
  for (const g of groups.values()) {
    const r = supersede(ctx, settings, g);
    if (r) started.push(r);
  }
  return started;
}

/**
 * The machines due for one image and version, per set in the order found. Kept per set, not in one set
 * of a million: the running rollout's plan is asked about unit by unit, and each unit is one set's.
 */
interface DueGroup {
  artifact: Artifact; key: string; version: string; bySet: Map<string, Set<string>>; size: number; regions: Set<string>;
  /** Due instances Failed for good on an older version (R31, R62): their block is lifted as the rollout takes them. */
  blocked: ExtensionInstance[];
}

/** Whether the machine is due in the group; `setId` is where it is expected (its unit's set), checked against where it is. */
function isDue(state: EngineState, g: DueGroup, setId: string | null, id: string): boolean {
  if (setId !== null && g.bySet.get(setId)?.has(id)) return true;
  const now = state.fleet.machines.get(id)?.placement.setId ?? null; // removed, or added again to another set since it was planned
  return now !== null && now !== setId && g.bySet.get(now)?.has(id) === true;
}

/**
 * The machines due for one image and version go into a rollout, unless running rollouts hold them all
 * already. A running rollout of the same version is superseded by one planning its remaining machines
 * with the new ones (R10); rollouts of older versions are cancelled.
 */
function supersede(ctx: TickContext, settings: RolloutSettings, g: DueGroup): RolloutState | null {
  const state = ctx.state;
  const running = runningOf(state, g.key, g.artifact, g.version);
  // The machines the same version's rollouts hold: counted where due (a fresh one is due and not held),
  // kept where not (they may still be below the version: looked at once those rollouts are cancelled).
  const heldOnly: string[] = [];
  let dueHeld = 0;
  // A plan holds each machine once (its machines came from one look); two rollouts may hold one twice.
  const held = running.same.length > 1 ? new Set<string>() : null;
  for (const r of running.same) {
    for (const u of r.units.values()) {
      const setId = u.plan.setId;
      for (const b of u.plan.batches) {
        for (const id of b.machineIds) {
          if (held) {
            if (held.has(id)) continue;
            held.add(id);
          }
          if (!isDue(state, g, setId, id)) heldOnly.push(id);
          else if (!running.newer.has(id)) dueHeld++;
        }
      }
    }
  }
  let dueNotNewer = g.size;
  if (running.newer.size > 0) for (const due of g.bySet.values()) for (const id of due) if (running.newer.has(id)) dueNotNewer--;
  if (dueNotNewer === dueHeld) return null; // everything due is in a running rollout already
  // A newer version replaces rollouts of older ones, as for extensions: nothing is re-imaged twice.
  for (const r of running.older) cancelRollout(ctx, r, `superseded by ${g.version}`);
  for (const r of running.same) cancelRollout(ctx, r, `superseded: ${g.version} reached more regions; one rollout plans them all (R10)`);
  // Machines still being re-imaged by a cancelled rollout are planned too: the set's lock keeps the new
  // rollout off them until that batch settles, and then it finds them done, or retries them.
  const machineIds: string[] = [];
  for (const due of g.bySet.values()) for (const id of due) if (!running.newer.has(id)) machineIds.push(id);
  if (running.same.length > 0) {
    for (const id of heldOnly) {
      const inst = getInstance(state.fleet, g.key, id);
      if (inst && compareArtifactVersions(g.artifact, inst.installedVersion, g.version) < 0 && !running.newer.has(id)) machineIds.push(id);
    }
  }
  for (const inst of g.blocked) if (!running.newer.has(inst.machineId)) liftBlock(ctx, inst);
  return createRollout(ctx, settings, {
    artifact: g.artifact, toVersion: g.version, profile: 'standard', machineIds, caller: settings.platformCaller ?? 'platform',
    reason: `OS image version ${g.version} is available in ${[...g.regions].sort().join(', ')} (R60, R64)`,
  });
}

/**
 * R31, R62: an instance Failed for good takes no more attempts, but a version newer than the one it failed
 * on re-images it: a fresh OS disk is what "removed and installed again" is for an OS image.
 */
function mayHeal(artifact: Artifact, inst: ExtensionInstance, version: string): boolean {
  return !inst.blockedReason || compareArtifactVersions(artifact, inst.desiredVersion, version) < 0;
}

/** The block ends as the newer version's rollout takes the instance; a failure there sets it again. */
function liftBlock(ctx: TickContext, inst: ExtensionInstance): void {
  if (!inst.blockedReason) return;
  inst.blockedReason = null;
  changed.instance(ctx, inst);
}

/** Instants with an image check scheduled, per engine state; read from its timers once (after a restart). */
const scheduledChecks = new WeakMap<EngineState, Set<number>>();

/** One look per instant, whichever set's replication it is for (sets of one image are checked together). */
function scheduleImageCheck(ctx: TickContext, at: number): void {
  let at_ = scheduledChecks.get(ctx.state);
  if (!at_) {
    scheduledChecks.set(ctx.state, (at_ = new Set()));
    for (const t of ctx.state.timers.toArray()) if (t.kind === 'imageCheck') at_.add(t.at);
  }
  if (at_.has(at)) return;
  at_.add(at);
  schedule(ctx, { at, kind: 'imageCheck', rolloutId: '', ref: String(at), token: 0 });
}

/** The timer of a replication's completion: every set with a catalog image looks again. */
export function onImageCheck(ctx: TickContext, settings: RolloutSettings, at: number): void {
  scheduledChecks.get(ctx.state)?.delete(at);
  const withImage = new Set<string>();
  for (const s of ctx.state.fleet.scaleSets.values()) if (s.image) withImage.add(s.id);
  checkImageUpgrades(ctx, settings, withImage);
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
  const withImage = new Set<string>();
  for (const s of ctx.state.fleet.scaleSets.values()) if (s.image) withImage.add(s.id);
  const members = membersBySet(ctx.state, withImage);
  // One reader of the instances for all sets: asked in the fleet's order, they are read in their own.
  // Each machine is in one set, so each is asked once.
  const lookups = new InstanceLookups(ctx.state, true);
  for (const id of withImage) syncSetImage(ctx, settings, id, undefined, members, false, lookups);
  started.push(...checkImageUpgrades(ctx, settings, withImage, members));
  return started;
}

function resumeSet(ctx: TickContext, setId: string): void {
  for (const r of ctx.state.rollouts.values()) {
    if (r.status !== 'running' || r.artifact.kind !== 'osImage') continue;
    for (const u of r.units.values()) {
      if (u.plan.setId !== setId || u.status !== 'disabled') continue;
      emit(ctx, { type: 'rollout.resumed', rolloutId: r.id, reason: `automatic OS upgrade was enabled again on scale set ${ctx.state.fleet.scaleSets.get(setId)?.name ?? setId} (R65)` });
      unparkUnit(ctx, r, u);
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

/**
 * R65 `rollingUpgrades/cancel` on a set whose OS image upgrade is the platform's (the rollout spans
 * other sets): the set's part is cancelled. Its announced re-images are withdrawn and the instances not
 * reached yet leave the rollout; re-images already under way finish. The rest of the rollout goes on.
 * Returns how many instances left it.
 */
export function cancelSetPart(ctx: TickContext, r: RolloutState, setId: string): number {
  if (r.status !== 'running' && r.status !== 'stopped') return 0;
  let n = 0;
  for (const m of membersOf(ctx.state, setId)) {
    const inst = getInstance(ctx.state.fleet, r.artifactKey, m.id);
    if (!inst) continue;
    const a = r.attempts.get(m.id);
    const withdrawn = a ? withdrawNotice(ctx, r, a, CANCELLED_FOR_SET) : null;
    if (withdrawn) {
      onInstanceSettled(ctx, r, withdrawn.unit, withdrawn.batchId);
      n++;
    } else if (skipGone(ctx, r, inst, CANCELLED_FOR_SET)) n++;
  }
  if (r.open === 0) checkRolloutDone(ctx, r);
  return n;
}

/** R83: the workload approves the announced re-images of these machines: they start now. Returns how many did. */
export function approveReimages(ctx: TickContext, machineIds: readonly string[], caller: string): number {
  return approveNotices(ctx, machineIds, caller, OS_IMAGES);
}

const OS_IMAGES: ReadonlySet<'osImage'> = new Set(['osImage']);
