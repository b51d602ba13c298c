/**
 * Withdrawing a bad version: its release is held for good (kind `withdrawn`, never resumed), its
 * rollouts are cancelled (batches in flight finish), the catalog stops offering it to automatic
 * upgrades and installs, and with rollback every machine on it goes back to the version it ran before,
 * through a manual rollout (R6: no pacing, the same availability-first batches and health gates).
 *
 * The version a machine goes back to is its own last known good version before the withdrawn one, kept
 * per machine and artifact as attempts succeed (`previousGoodVersion`): machines that came from different
 * versions each go back to theirs, one rollout per target version. A machine with none (installed at the
 * withdrawn version directly) or whose one was withdrawn too stays and is listed in `noEarlierVersion`:
 * it is never sent to a version it did not run. If the machine turns unhealthy there, it is not
 * sent back to the withdrawn version (`attempts/outcome.ts`). Machines with an attempt in flight are
 * left for a later call (`rollBackWithdrawn`), which the server makes as their attempts settle.
 * Machines on the version merely planned in a live rollout to another version are left to it (it takes
 * them off the version, forward) and counted in `planned`: a later call rolls back those it leaves on the
 * version (cancelled, skipped, rolled back onto it), so none keeps the withdrawn version.
 */
import type { Artifact, ExtensionInstance } from '../../model/artifact.js';
import { artifactKey as keyOf } from '../../model/artifact.js';
import { imageRefOfArtifact } from '../../model/image-reference.js';
import type { EngineState, ReleaseState, RolloutState } from '../state.js';
import { IN_FLIGHT, rolloutMembers } from '../state.js';
import type { TickContext } from '../core/context.js';
import { FleetError } from '../core/errors.js';
import type { RolloutSettings } from '../core/settings.js';
import { holdRelease, releaseOf } from '../attempts/release-evidence.js';
import { cancelRollout } from './cancel.js';
import { createRollout } from './create.js';

const FINAL = new Set(['succeeded', 'rolledBack', 'failed', 'skipped']);

export interface RollbackResult {
  rollouts: RolloutState[];
  /** Machines on the version, or on their way to it, with an attempt still in flight: a later call takes them. */
  inFlight: number;
  /** Machines on the version with no last known good version before it that is still offered (installed at it directly), busy or not. */
  noEarlierVersion: string[];
  /** Machines on the version, with an earlier one, that a running or stopped rollout to another version plans to change (no attempt yet). */
  planned: number;
  /** Machines on the version at the call (before any rollback rollout ran). */
  onVersion: number;
}

export interface WithdrawResult extends RollbackResult {
  release: ReleaseState;
  cancelled: string[];
}

/** Every withdrawn version, put into the catalogs again after a restart (the releases' holds are the record). */
export function syncWithdrawn(state: EngineState): void {
  for (const rel of state.releases.values()) {
    if (rel.hold?.kind !== 'withdrawn') continue;
    if (rel.artifact.kind === 'extension') {
      state.catalog.withdraw(rel.artifact.publisher, rel.artifact.type, rel.toVersion);
      continue;
    }
    if (rel.artifact.kind !== 'osImage') continue;
    const ref = imageRefOfArtifact(rel.artifact, rel.toVersion);
    if (state.images.publishedVersion(ref)) state.images.withdraw(ref);
  }
}

/** Refuses a version that is not published or withdrawn already; returns how to mark it withdrawn in its catalog. */
function withdrawalOf(ctx: TickContext, artifact: Artifact, version: string): () => void {
  // Patches cannot be uninstalled: a bad baseline is stopped by its rollout's gates, not withdrawn.
  if (artifact.kind === 'guestPatch') throw new FleetError('Conflict', `a patch baseline cannot be withdrawn: installed patches are not uninstalled (R76)`, 'version');
  if (artifact.kind === 'osImage') {
    const ref = imageRefOfArtifact(artifact, version);
    const name = ref.kind === 'gallery' ? `${ref.gallery}/${ref.image}` : `${artifact.publisher}:${artifact.offer}:${artifact.sku}`;
    if (!ctx.state.images.publishedVersion(ref)) throw new FleetError('NotFound', `version ${version} of image ${name} is not published`, 'version');
    if (ctx.state.images.isWithdrawn(ref, version)) throw new FleetError('Conflict', `version ${version} is already withdrawn`, 'version');
    return () => {
      ctx.state.images.withdraw(ref);
      if (ctx.changes) ctx.changes.images = true;
    };
  }
  const t = ctx.state.catalog.getType(artifact.publisher, artifact.type);
  if (!t || !t.versions.some((v) => v.version === version)) throw new FleetError('NotFound', `version ${version} of ${artifact.publisher}.${artifact.type} is not published`, 'version');
  if (ctx.state.catalog.isWithdrawn(t.publisher, t.type, version)) throw new FleetError('Conflict', `version ${version} is already withdrawn`, 'version');
  return () => ctx.state.catalog.withdraw(t.publisher, t.type, version);
}

export function withdrawVersion(
  ctx: TickContext, settings: RolloutSettings, artifact: Artifact, version: string, opts: { rollback: boolean; reason: string; caller: string },
): WithdrawResult {
  const markWithdrawn = withdrawalOf(ctx, artifact, version);
  const key = keyOf(artifact);
  const rel = releaseOf(ctx.state, artifact, key, version);
  // A withdrawal replaces any hold before it: it is the stronger, lasting one.
  holdRelease(ctx, rel, 'withdrawn', `withdrawn by ${opts.caller}: ${opts.reason}`, opts.caller, null);
  markWithdrawn();
  const cancelled: string[] = [];
  for (const r of ctx.state.rollouts.values()) {
    if (r.artifactKey !== key || r.toVersion !== version || (r.status !== 'running' && r.status !== 'stopped')) continue;
    cancelRollout(ctx, r, `version ${version} withdrawn by ${opts.caller}: ${opts.reason}`);
    cancelled.push(r.id);
  }
  // Without rollback nothing starts, but the answer counts the same machines (the census alone).
  const rollback = rollBackWithdrawn(ctx, settings, artifact, version, opts.caller, opts.rollback);
  return { release: rel, cancelled, ...rollback };
}

/**
 * The machines a follow-up of a withdrawal still watches (the server's, control-follow-up.ts): `null` until
 * the first call fills it in one pass over the fleet; later calls look at these machines only and drop those
 * nothing can bring back to the version, so a call costs what is left to follow, not the fleet.
 */
export interface FollowedMachines {
  machines: Set<string> | null;
}

/**
 * Starts rollback rollouts for the machines on a withdrawn version that no rollout is changing now (with `start` false: counts only).
 * `follow`: the machines to look at (see FollowedMachines); without it, the whole fleet.
 */
export function rollBackWithdrawn(
  ctx: TickContext, settings: RolloutSettings, artifact: Artifact, version: string, caller: string, start = true, follow?: FollowedMachines,
): RollbackResult {
  const key = keyOf(artifact);
  if (follow?.machines) return rollBackFollowed(ctx, settings, artifact, version, caller, follow.machines);
  const busy = busyMachines(ctx.state, key);
  const byTarget = new Map<string, string[]>();
  const noEarlierVersion: string[] = [];
  // A machine still on its old version whose attempt to the withdrawn one is in flight may land on it:
  // counted, so that the caller asks again once it settles.
  const headed = headedTo(ctx.state, key, version);
  let inFlight = headed.size;
  let planned = 0;
  let onVersion = 0;
  // In the fleet's order, as this pass takes them: the followed calls then hand rollouts their machines alike.
  const followed = follow ? new Set<string>() : null;
  for (const inst of ctx.state.fleet.instances.get(key)?.values() ?? []) {
    if (inst.installedVersion !== version) {
      if (headed.has(inst.machineId)) followed?.add(inst.machineId);
      continue;
    }
    followed?.add(inst.machineId);
    onVersion++;
    if (inst.blockedReason) continue;
    // Busy or not, a machine with nothing to go back to is listed: no later call would take it (its attempt
    // settling leaves it off the version or on it still without an earlier one), so it is not in flight here.
    const target = goBackTo(ctx, artifact, version, inst);
    if (!target) {
      noEarlierVersion.push(inst.machineId);
      continue;
    }
    const b = busy.get(inst.machineId);
    if (b === 'inFlight') inFlight++;
    if (b === 'planned') planned++;
    if (b) continue;
    const list = byTarget.get(target) ?? [];
    list.push(inst.machineId);
    byTarget.set(target, list);
  }
  if (follow) follow.machines = followed;
  return startRollbacks(ctx, settings, artifact, version, caller, start, byTarget, { inFlight, noEarlierVersion, planned, onVersion });
}

/**
 * The same decisions as the pass over the fleet, for the followed machines only. A machine is dropped once
 * it is off the version with no attempt of the artifact in flight (nothing can put it back: the version is
 * no longer offered, and a rollback only returns a machine to the version it left), or on it, idle, with no
 * earlier version to go back to (no later call would take it). Still on it and blocked: kept, as the pass keeps it.
 */
function rollBackFollowed(ctx: TickContext, settings: RolloutSettings, artifact: Artifact, version: string, caller: string, machines: Set<string>): RollbackResult {
  const key = keyOf(artifact);
  const instances = ctx.state.fleet.instances.get(key);
  const live = [...ctx.state.rollouts.values()].filter((r) => r.artifactKey === key);
  const byTarget = new Map<string, string[]>();
  const noEarlierVersion: string[] = [];
  let inFlight = 0;
  let planned = 0;
  let onVersion = 0;
  for (const id of machines) {
    const inst = instances?.get(id);
    if (!inst) {
      machines.delete(id);
      continue;
    }
    const b = busyOf(live, id);
    if (inst.installedVersion !== version) {
      if (live.some((r) => r.toVersion === version && isInFlight(r, id))) inFlight++;
      if (!b) machines.delete(id);
      continue;
    }
    onVersion++;
    if (inst.blockedReason) continue;
    const target = goBackTo(ctx, artifact, version, inst);
    if (!target) {
      noEarlierVersion.push(id);
      if (!b) machines.delete(id);
      continue;
    }
    if (b === 'inFlight') inFlight++;
    if (b === 'planned') planned++;
    if (b) continue;
    const list = byTarget.get(target) ?? [];
    list.push(id);
    byTarget.set(target, list);
  }
  return startRollbacks(ctx, settings, artifact, version, caller, true, byTarget, { inFlight, noEarlierVersion, planned, onVersion });
}

const isInFlight = (r: RolloutState, id: string): boolean => {
  const a = r.attempts.get(id);
  return a !== undefined && IN_FLIGHT.has(a.status);
};

/** What busyMachines says of one machine, from the artifact's rollouts: in flight in any wins over planned. */
function busyOf(rollouts: readonly RolloutState[], id: string): 'inFlight' | 'planned' | undefined {
  let planned = false;
  for (const r of rollouts) {
    if (isInFlight(r, id)) return 'inFlight';
    if (planned || (r.status !== 'running' && r.status !== 'stopped')) continue;
    const a = r.attempts.get(id);
    if ((!a || !FINAL.has(a.status)) && rolloutMembers(r).has(id)) planned = true;
  }
  return planned ? 'planned' : undefined;
}

function startRollbacks(
  ctx: TickContext, settings: RolloutSettings, artifact: Artifact, version: string, caller: string, start: boolean,
  byTarget: Map<string, string[]>, counts: Omit<RollbackResult, 'rollouts'>,
): RollbackResult {
  const { inFlight, noEarlierVersion, planned, onVersion } = counts;
  const rollouts: RolloutState[] = [];
  if (!start) return { rollouts, inFlight, noEarlierVersion, planned, onVersion };
  for (const [target, machineIds] of byTarget) {
    const r = createRollout(ctx, settings, {
      artifact, toVersion: target, machineIds, profile: 'manual', caller, downgrade: true,
      reason: `rollback of withdrawn ${version} to ${target}, the version these machines ran before it, requested by ${caller}`,
    });
    if (r) rollouts.push(r);
  }
  return { rollouts, inFlight, noEarlierVersion, planned, onVersion };
}

/** Machines not yet on `version` whose attempt to it is in flight (in rollouts cancelled by the withdrawal, too). */
function headedTo(state: EngineState, key: string, version: string): Set<string> {
  const ids = new Set<string>();
  for (const r of state.rollouts.values()) {
    if (r.artifactKey !== key || r.toVersion !== version) continue;
    for (const a of r.attempts.values()) {
      if (IN_FLIGHT.has(a.status) && state.fleet.instances.get(key)?.get(a.machineId)?.installedVersion !== version) ids.add(a.machineId);
    }
  }
  return ids;
}

/** Machines a rollout of this artifact is changing or will change: in flight, or a member yet to settle. */
function busyMachines(state: EngineState, key: string): Map<string, 'inFlight' | 'planned'> {
  const busy = new Map<string, 'inFlight' | 'planned'>();
  for (const r of state.rollouts.values()) {
    if (r.artifactKey !== key) continue;
    for (const a of r.attempts.values()) if (IN_FLIGHT.has(a.status)) busy.set(a.machineId, 'inFlight');
    if (r.status !== 'running' && r.status !== 'stopped') continue;
    for (const u of r.units.values()) {
      for (const b of u.plan.batches) {
        for (const id of b.machineIds) {
          const a = r.attempts.get(id);
          if (!busy.has(id) && (!a || !FINAL.has(a.status))) busy.set(id, 'planned');
        }
      }
    }
  }
  return busy;
}

/** The machine's own last known good version before `version`, if the catalog has not withdrawn it. */
function goBackTo(ctx: TickContext, artifact: Artifact, version: string, inst: ExtensionInstance): string | null {
  const lkg = inst.lastKnownGoodVersion !== version ? inst.lastKnownGoodVersion : inst.previousGoodVersion;
  if (!lkg || lkg === version) return null;
  if (artifact.kind === 'extension' && ctx.state.catalog.isWithdrawn(artifact.publisher, artifact.type, lkg)) return null;
  if (artifact.kind === 'osImage' && ctx.state.images.isWithdrawn(imageRefOfArtifact(artifact, lkg), lkg)) return null;
  return lkg;
}
