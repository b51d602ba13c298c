/**
 * Rolling upgrades of a scale set as ARM shows them (R81): the newest rollout that touches the set,
 * its running status and progress counted over the set's instances; starting an extension rolling
 * upgrade by hand (R6), and cancelling one.
 */
import { compareVersions, majorOf } from '../../model/version.js';
import type { ScaleSet } from '../../model/fleet.js';
import { successorOf } from './superseded.js';
import { isoOf } from '../../engine/clock.js';
import { rolloutsTouchingSet, setProgress } from '../../engine/rollouts/set-progress.js';
import type { RolloutState } from '../../engine/state.js';
import type { ArmContext } from './context.js';
import { conflict, notFound } from './errors.js';
import { followsLatest, parseImageReference } from '../../model/image-reference.js';
import type { ImageRef, ImageReferenceInput } from '../../model/image-reference.js';
import { instancesOf } from './extensions.js';
import { artifactKey, compareArtifactVersions } from '../../model/artifact.js';
import { getInstance } from '../../engine/state.js';
import { imageArtifact } from '../../model/image-reference.js';

type RunningCode = 'RollingForward' | 'Cancelled' | 'Completed' | 'Faulted';

export function latestRollingUpgrade(ctx: ArmContext, set: ScaleSet): Record<string, unknown> {
  const state = ctx.engine.state;
  const now = ctx.runtime.clock.now();
  const r = rolloutsTouchingSet(state, set.id)[0];
  if (!r) throw notFound('NotFound', `No rolling upgrade has run on scale set '${set.name}' yet.`);
  const p = setProgress(state, r, set.id, now);
  let code: RunningCode;
  let error: { code: string; message: string } | undefined;
  if (r.status === 'cancelled' || p.cancelled) code = 'Cancelled';
  else if (p.stopped) {
    code = 'Faulted';
    error = { code: 'MaxUnhealthyUpgradedInstancePercentExceeded', message: p.stopped.reason };
  } else if (r.status === 'stopped') {
    code = 'Faulted';
    error = { code: 'RollingUpgradeFaulted', message: r.reason ?? 'the rollout stopped' };
  } else if (p.pending === 0 && p.inProgress === 0) code = 'Completed';
  else code = 'RollingForward';
  return {
    name: 'latest',
    type: 'Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades',
    location: set.region,
    tags: {},
    properties: {
      policy: set.upgradePolicy.rollingUpgradePolicy,
      runningStatus: {
        code,
        startTime: isoOf(r.createdAtMs),
        lastAction: r.status === 'cancelled' ? 'Cancel' : 'Start',
        lastActionTime: isoOf(r.status === 'cancelled' && r.endedAtMs !== null ? r.endedAtMs : r.createdAtMs),
      },
      progress: { successfulInstanceCount: p.successful, failedInstanceCount: p.failed, inProgressInstanceCount: p.inProgress, pendingInstanceCount: p.pending },
      rollbackInfo: { successfullyRolledbackInstanceCount: p.rolledBackOk, failedRolledbackInstanceCount: p.rolledBackFailed },
      ...(error ? { error } : {}),
      // Phasewise additions: which rollout this is and what it upgrades.
      rolloutId: r.id,
      startedBy: r.caller === 'platform' ? 'Platform' : 'User',
      targetVersion: r.toVersion,
      artifact: r.artifact,
    },
  };
}

/** Starts manual rollouts moving every extension of the set to its newest version within its major. */
export function extensionRollingUpgrade(ctx: ArmContext, set: ScaleSet, caller: string, force: boolean): string[] {
  const state = ctx.engine.state;
  const running = rolloutsTouchingSet(state, set.id).find((r) => r.status === 'running' && r.caller !== 'platform');
  if (running) throw conflict('RollingUpgradeInProgress', `A rolling upgrade (${running.id}) is already running on scale set '${set.name}'; cancel it or wait for it to finish.`);
  const now = ctx.runtime.clock.now();
  // artifactKey → target version → machines
  const groups = new Map<string, { artifact: RolloutState['artifact']; byTarget: Map<string, string[]> }>();
  for (const m of ctx.index.members(set.id)) {
    for (const inst of instancesOf(ctx, m.id)) {
      if (inst.status !== 'Succeeded' || inst.blockedReason) continue;
      const t = state.catalog.getType(inst.publisher, inst.type);
      if (!t) continue;
      let target: string | null = null;
      for (const v of state.catalog.available(t, m.os, m.placement.region, now)) {
        if (majorOf(v.version) !== majorOf(inst.installedVersion) || compareVersions(v.version, inst.installedVersion) <= 0) continue;
        if (target === null || compareVersions(v.version, target) > 0) target = v.version;
      }
      if (!target) continue;
      let g = groups.get(inst.artifactKey);
      if (!g) groups.set(inst.artifactKey, (g = { artifact: { kind: 'extension', publisher: t.publisher, type: t.type }, byTarget: new Map() }));
      let ids = g.byTarget.get(target);
      if (!ids) g.byTarget.set(target, (ids = []));
      ids.push(m.id);
    }
  }
  const started: string[] = [];
  for (const g of groups.values()) {
    for (const [toVersion, machineIds] of g.byTarget) {
      const r = ctx.engine.manualUpgrade({ artifact: g.artifact, machineIds, toVersion, caller, force });
      if (r) started.push(r.id);
    }
  }
  ctx.runtime.kick();
  return started;
}

/** Cancels the set's rolling upgrade; a platform rollout that spans other sets is not this set's to cancel. */
export function cancelRollingUpgrade(ctx: ArmContext, set: ScaleSet, caller: string): void {
  const state = ctx.engine.state;
  const running = rolloutsTouchingSet(state, set.id).filter((r) => r.status === 'running');
  if (running.length === 0) throw conflict('NoRollingUpgradeInProgress', `There is no ongoing rolling upgrade to cancel on scale set '${set.name}'.`);
  const mine = running.filter((r) => r.caller !== 'platform');
  // The platform's OS image upgrade of the set (R65): its part of a rollout that spans other sets is cancelled.
  const osParts = running.filter((r) => r.caller === 'platform' && r.artifact.kind === 'osImage');
  if (mine.length === 0 && osParts.length === 0) {
    throw conflict('OperationNotAllowed', `The running upgrade of '${set.name}' is the platform's automatic extension rollout (${running.map((r) => r.id).join(', ')}), which spans other scale sets; set enableAutomaticUpgrade to false on the set's extensions to take it out.`);
  }
  for (const r of mine) ctx.engine.cancelRollout(r.id, `cancelled by ${caller} through rollingUpgrades/cancel`);
  for (const r of osParts) ctx.engine.cancelSetInRollout(r.id, set.id);
  ctx.runtime.kick();
}

/**
 * Azure accepts `osRollingUpgrade` only for a set built from a platform or gallery image at `latest`,
 * and refuses others with these messages (azure-cli #6640, terraform-provider-azurerm #12590). A set
 * that qualifies is re-imaged to the newest version available in its region, as a manual rollout (R65).
 */
export function osRollingUpgrade(ctx: ArmContext, set: ScaleSet, image: ImageReferenceInput | undefined, caller: string): string[] {
  let ref: ImageRef | null = null;
  try {
    ref = image ? parseImageReference(image) : null;
  } catch {
    ref = null;
  }
  if (!ref || (ref.kind !== 'platform' && ref.kind !== 'gallery')) {
    throw conflict('OperationNotAllowed', `The OS Rolling Upgrade API cannot be used on a Virtual Machine Scale Set unless the Virtual Machine Scale Set is using a Platform Image or a gallery image; select the OS by setting imageReference (scale set '${set.name}').`);
  }
  if (!followsLatest(ref)) {
    throw conflict('OperationNotAllowed', `The OS Rolling Upgrade API cannot be used on a Virtual Machine Scale Set unless the Virtual Machine Scale Set has some unprotected instances which have imageReference.version set to latest (scale set '${set.name}').`);
  }
  if (!set.image) throw conflict('OperationNotAllowed', `The image of scale set '${set.name}' is not in Phasewise's image catalog, so there is no newer version to upgrade to; publish it (docs/api-catalog.md) first.`);
  const running = rolloutsTouchingSet(ctx.engine.state, set.id).find((r) => r.status === 'running' && r.caller !== 'platform');
  if (running) throw conflict('RollingUpgradeInProgress', `A rolling upgrade (${running.id}) is already running on scale set '${set.name}'; cancel it or wait for it to finish.`);
  const r = ctx.engine.startOsRollingUpgrade(set.id, caller);
  ctx.runtime.kick();
  return r ? [r.id] : [];
}

/** The OS image instance of a machine of the set, if the engine follows the set's image. */
function osInstance(ctx: ArmContext, set: ScaleSet, machineId: string) {
  const artifact = set.image ? imageArtifact(set.image) : null;
  return artifact ? getInstance(ctx.engine.state.fleet, artifactKey(artifact), machineId) : undefined;
}

/** The newest image version the set's instances run (what `exactVersion` shows), or null when the engine does not follow it. */
export function runningImageVersion(ctx: ArmContext, set: ScaleSet): string | null {
  const artifact = set.image ? imageArtifact(set.image) : null;
  if (!artifact) return null;
  let best: string | null = null;
  for (const m of ctx.index.members(set.id)) {
    const v = osInstance(ctx, set, m.id)?.installedVersion;
    if (v && (best === null || compareArtifactVersions(artifact, v, best) > 0)) best = v;
  }
  return best;
}

/** R50: the instance runs an older image than its reference stands for in the region now. */
export function imageBehind(ctx: ArmContext, set: ScaleSet, m: { id: string }): boolean {
  const inst = osInstance(ctx, set, m.id);
  if (!inst || !set.image) return false;
  try {
    const newest = ctx.engine.state.images.resolve(set.image, set.region, ctx.runtime.clock.now()).version;
    return compareArtifactVersions({ kind: 'osImage' }, inst.installedVersion, newest) < 0;
  } catch {
    return false;
  }
}

/** The instance's own image (Azure shows its imageReference with the version it runs). */
export function osImageOf(ctx: ArmContext, set: ScaleSet, m: { id: string }): { imageReference?: Record<string, string> } {
  const inst = osInstance(ctx, set, m.id);
  const ref = set.image;
  if (!inst || !ref) return {};
  if (ref.kind === 'platform') return { imageReference: { publisher: ref.publisher, offer: ref.offer, sku: ref.sku, version: ref.version, exactVersion: inst.installedVersion } };
  if (ref.kind === 'gallery') return { imageReference: { id: `/subscriptions/${ref.subscription}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Compute/galleries/${ref.gallery}/images/${ref.image}`, exactVersion: inst.installedVersion } };
  return {};
}

/**
 * R66: the set's OS image upgrades, newest first, with their status, progress over the set's instances,
 * who started them, the target image and what was rolled back.
 */
export function osUpgradeHistory(ctx: ArmContext, set: ScaleSet): Array<Record<string, unknown>> {
  const state = ctx.engine.state;
  const now = ctx.runtime.clock.now();
  // One release is one entry: a rollout superseded by one of the same version folds into its successor.
  const os = rolloutsTouchingSet(state, set.id).filter((r) => r.artifact.kind === 'osImage');
  const folded = new Map<RolloutState, RolloutState[]>();
  for (const r of os) {
    let head = r;
    for (let next = successorOf(state, head); next && next.toVersion === r.toVersion && os.includes(next); next = successorOf(state, head)) head = next;
    if (!folded.has(head)) folded.set(head, []);
    if (head !== r) folded.get(head)!.push(r);
  }
  return os.filter((r) => folded.has(r)).map((r) => {
    const before = folded.get(r)!;
    const p = setProgress(state, r, set.id, now);
    for (const b of before) p.successful += setProgress(state, b, set.id, now).successful;
    const startMs = Math.min(r.createdAtMs, ...before.map((b) => b.createdAtMs));
    const a = r.artifact as Extract<RolloutState['artifact'], { kind: 'osImage' }>;
    const code: RunningCode | 'RollingBack' =
      r.status === 'cancelled' || p.cancelled
        ? 'Cancelled'
        : r.status === 'stopped' || p.stopped
          ? 'Faulted'
          : r.status === 'completed' || (p.pending === 0 && p.inProgress === 0)
            ? 'Completed'
            : 'RollingForward';
    const target = set.image?.kind === 'gallery'
      ? { id: `/subscriptions/${set.image.subscription}/resourceGroups/${set.image.resourceGroup}/providers/Microsoft.Compute/galleries/${set.image.gallery}/images/${set.image.image}/versions/${r.toVersion}` }
      : { publisher: a.publisher, offer: a.offer, sku: a.sku, version: r.toVersion };
    return {
      type: 'Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades',
      location: set.region,
      properties: {
        runningStatus: { code, startTime: isoOf(startMs), ...(r.endedAtMs !== null ? { endTime: isoOf(r.endedAtMs) } : {}) },
        progress: { successfulInstanceCount: p.successful, failedInstanceCount: p.failed, inProgressInstanceCount: p.inProgress, pendingInstanceCount: p.pending },
        ...(code === 'Faulted' ? { error: { code: 'RollingUpgradeFaulted', message: p.stopped?.reason ?? r.reason ?? 'the upgrade stopped' } } : {}),
        startedBy: r.caller === 'platform' ? 'Platform' : 'User',
        targetImageReference: target,
        rollbackInfo: { successfullyRolledbackInstanceCount: p.rolledBackOk, failedRolledbackInstanceCount: p.rolledBackFailed },
        // Phasewise addition: the rollout behind it, and those it superseded for the same release.
        rolloutId: r.id,
        ...(before.length > 0 ? { supersededRollouts: before.map((b) => b.id) } : {}),
      },
    };
  });
}
