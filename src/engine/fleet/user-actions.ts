/**
 * What a user asks of one extension instance outside any rollout: install (or reinstall, or update its
 * model) and uninstall. Each is an action with its own idempotency key (`install/<machine>/<artifact>/<n>`),
 * saved with the tick like a rollout's actions and sent again after a restart until it is answered.
 * A newer install of the same instance supersedes one still in flight: the older one is given up and its
 * late answer ignored.
 */
import { effectiveAutoUpgrade } from '../../catalog/catalog.js';
import type { ExtensionInstance } from '../../model/artifact.js';
import type { Artifact } from '../../model/artifact.js';
import { recordGood } from '../../model/artifact.js';
import type { TickContext } from '../core/context.js';
import { changed, emit, machineWait, schedule } from '../core/context.js';
import { catchUp, resumeCannotHeal, resumeIn } from '../opt-in/opt-in.js';
import type { PendingAction } from '../state.js';
import { getInstance, instanceRef, isEnrolled, refreshMachineHealth } from '../state.js';

/** An install not answered within this long counts as failed (agents give up after about 90 minutes). */
export const INSTALL_TIMEOUT_MS = 90 * 60_000;

export function artifactOf(inst: ExtensionInstance): Artifact {
  if (inst.artifactKey.startsWith('osimage:')) {
    // OS image instances keep `offer:sku` in their type (os-images.ts).
    const i = inst.type.lastIndexOf(':');
    return { kind: 'osImage', publisher: inst.publisher, offer: inst.type.slice(0, i), sku: inst.type.slice(i + 1) };
  }
  return { kind: 'extension', publisher: inst.publisher, type: inst.type };
}

/** Gives up the install or uninstall in flight for the instance, if any: it is answered as abandoned. */
export function abandonUserAction(ctx: TickContext, artifactKey: string, machineId: string): void {
  const ref = instanceRef(artifactKey, machineId);
  const key = ctx.state.installing.get(ref);
  if (key === undefined) return;
  ctx.state.installing.delete(ref);
  ctx.state.pendingActions.delete(key);
  ctx.changes?.answered.push({ key, ok: null });
}

/** Sends an install of `toVersion` with the instance's settings; the instance shows Transitioning until the answer. */
export function sendInstall(ctx: TickContext, inst: ExtensionInstance, toVersion: string, caller: string, reason: string): void {
  abandonUserAction(ctx, inst.artifactKey, inst.machineId);
  const key = `install/${inst.machineId}/${inst.artifactKey}/${++ctx.state.actionSeq}`;
  const fromVersion = inst.installedVersion;
  ctx.state.pendingActions.set(key, { rolloutId: '', machineId: inst.machineId, kind: 'install', artifactKey: inst.artifactKey, toVersion, caller });
  ctx.state.installing.set(instanceRef(inst.artifactKey, inst.machineId), key);
  ctx.actions.push({ kind: 'install', key, machineId: inst.machineId, artifact: artifactOf(inst), artifactKey: inst.artifactKey, fromVersion, toVersion, settings: inst.settings, caller });
  schedule(ctx, { at: ctx.now + machineWait(ctx, inst.machineId, INSTALL_TIMEOUT_MS), kind: 'actionTimeout', rolloutId: '', ref: inst.machineId, token: key });
  inst.desiredVersion = toVersion;
  inst.status = 'Transitioning';
  changed.instance(ctx, inst);
  const placement = ctx.state.fleet.machines.get(inst.machineId)!.placement;
  emit(ctx, { type: 'instance.install.started', machineId: inst.machineId, placement, artifact: artifactOf(inst), fromVersion, toVersion, caller, reason });
}

/** Sends an uninstall of an instance already taken out of the fleet state; its answer only closes the action. */
export function sendUninstall(ctx: TickContext, inst: ExtensionInstance, caller: string): void {
  abandonUserAction(ctx, inst.artifactKey, inst.machineId);
  const key = `uninstall/${inst.machineId}/${inst.artifactKey}/${++ctx.state.actionSeq}`;
  ctx.state.pendingActions.set(key, { rolloutId: '', machineId: inst.machineId, kind: 'uninstall', artifactKey: inst.artifactKey, toVersion: '', caller });
  ctx.state.installing.set(instanceRef(inst.artifactKey, inst.machineId), key);
  ctx.actions.push({
    kind: 'uninstall',
    key,
    machineId: inst.machineId,
    artifact: artifactOf(inst),
    artifactKey: inst.artifactKey,
    fromVersion: inst.installedVersion,
    toVersion: '',
    settings: inst.settings,
    caller,
  });
}

/**
 * The answer to an install or uninstall. An install that succeeded makes its version installed and
 * last-known-good; one that failed leaves the instance Failed with the reason. An instance that counts
 * as opted in and is still behind its automatic target then catches up (R2, R32).
 */
export function onUserActionResult(ctx: TickContext, key: string, pending: PendingAction, ok: boolean, reason: string): void {
  const artifactKey = pending.artifactKey!;
  const ref = instanceRef(artifactKey, pending.machineId);
  if (ctx.state.installing.get(ref) === key) ctx.state.installing.delete(ref);
  if (pending.kind !== 'install') return;
  const inst = getInstance(ctx.state.fleet, artifactKey, pending.machineId);
  const m = ctx.state.fleet.machines.get(pending.machineId);
  if (!inst || !m) return;
  const toVersion = pending.toVersion!;
  const fromVersion = inst.installedVersion;
  changed.instance(ctx, inst);
  const fields = { machineId: inst.machineId, placement: m.placement, artifact: artifactOf(inst), fromVersion, toVersion, caller: pending.caller ?? 'user' };
  if (!ok) {
    inst.status = 'Failed';
    inst.lastError = reason;
    refreshMachineHealth(ctx.state.fleet, inst.machineId);
    emit(ctx, { type: 'instance.install.failed', ...fields, reason });
    return;
  }
  inst.installedVersion = toVersion;
  recordGood(inst, toVersion);
  inst.desiredVersion = toVersion;
  inst.status = 'Succeeded';
  inst.blockedReason = null; // installed again: R31's block is lifted
  delete inst.lastError;
  refreshMachineHealth(ctx.state.fleet, inst.machineId);
  emit(ctx, { type: 'instance.install.succeeded', ...fields, reason: `${toVersion} installed` });
  resumeCannotHeal(ctx, inst.machineId);
  if (effectiveAutoUpgrade(inst, isEnrolled(ctx.state, m)) && !resumeIn(ctx, artifactKey, inst.machineId)) {
    catchUp(ctx, ctx.settings, artifactKey, [inst.machineId], (n, target) => `${n} instance(s) installed at a version older than their automatic target ${target}: catching up`);
  }
}
