/**
 * Opting back in (R32): a parked or skipped instance rejoins its running rollout; one whose rollout is
 * over catches up through a small rollout of its own.
 */
import { automaticTarget } from '../../catalog/catalog.js';
import { isExtensionKey } from '../../model/artifact.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import { busyElsewhereReason, isRemoval, skipReason } from '../attempts/skip.js';
import { CANNOT_HEAL } from '../attempts/outcome.js';
import { wakeForRetry } from '../rollouts/wake.js';
import { wakeBlocked } from '../rollouts/batch-end.js';
import type { RolloutSettings } from '../core/settings.js';
import { createRollout } from '../rollouts/create.js';
import type { RolloutState } from '../state.js';
import { getInstance, machineContext, rolloutMembers } from '../state.js';

/** True when a running automatic rollout still covers the instance (resuming it if it was parked). */
export function resumeIn(ctx: TickContext, key: string, machineId: string): boolean {
  const inst = getInstance(ctx.state.fleet, key, machineId)!;
  for (const r of ctx.state.rollouts.values()) {
    if (r.artifactKey !== key || r.status !== 'running' || r.plan.profile.name === 'manual') continue;
    const a = r.attempts.get(machineId);
    if (!a) {
      if (rolloutMembers(r).has(machineId)) return true;
      continue;
    }
    if (a.status === 'parked' || a.status === 'skipped') {
      if (a.attempt === 0 && a.status === 'skipped' && isRemoval(a.reason)) continue; // settled when its machine or extension went away
      if (skipReason(ctx, r, inst)) continue;
      r.open++;
      a.status = 'retryReady';
      changed.attempt(ctx, a);
      changed.rollout(ctx, r);
      wakeForRetry(ctx, r, r.units.get(a.unitId)!, machineId);
      return true;
    }
    if (a.status !== 'succeeded' && a.status !== 'failed' && a.status !== 'rolledBack') return true;
  }
  return false;
}

/**
 * R5, R32: sets `enableAutomaticUpgrade` on instances of one artifact. Opting in again resumes a parked
 * retry, or, when no running rollout covers the instance any more, starts a catch-up rollout for it.
 */
export function applyAutomaticUpgrade(ctx: TickContext, settings: RolloutSettings, ids: readonly string[], key: string, enabled: boolean, caller: string): RolloutState[] {
  const behind: string[] = [];
  for (const id of ids) {
    const inst = getInstance(ctx.state.fleet, key, id)!;
    if (inst.enableAutomaticUpgrade === enabled) continue;
    inst.enableAutomaticUpgrade = enabled;
    changed.instance(ctx, inst);
    emit(ctx, { type: 'autoUpgrade.changed', machineId: id, artifactKey: key, enabled, caller });
    if (enabled && !resumeIn(ctx, key, id)) behind.push(id);
  }
  return catchUp(ctx, settings, key, behind);
}

/** Instances opted in again after their rollout finished: one rollout per target version. */
export function catchUp(ctx: TickContext, settings: RolloutSettings, key: string, machineIds: string[], why?: (count: number, target: string) => string): RolloutState[] {
  const byTarget = new Map<string, string[]>();
  for (const id of machineIds) {
    const inst = getInstance(ctx.state.fleet, key, id)!;
    const m = ctx.state.fleet.machines.get(id)!;
    const target = automaticTarget(ctx.state.catalog, inst, machineContext(ctx.state, m), ctx.now).target;
    if (!target) continue;
    let list = byTarget.get(target);
    if (!list) byTarget.set(target, (list = []));
    list.push(id);
  }
  const started: RolloutState[] = [];
  for (const [target, ids] of byTarget) {
    const inst = getInstance(ctx.state.fleet, key, ids[0]!)!;
    const r = createRollout(ctx, settings, {
      artifact: { kind: 'extension', publisher: inst.publisher, type: inst.type },
      toVersion: target,
      profile: 'standard',
      machineIds: ids,
      automatic: true,
      caller: settings.platformCaller ?? 'platform',
      reason: why ? why(ids.length, target) : `automatic upgrade enabled again on ${ids.length} instance(s) that missed ${target}: catching up (R32)`,
    });
    if (r) started.push(r);
  }
  return started;
}

// rolloutMembers lives in state.ts (withdraw.ts, below this folder, reads it too); exported here as before.
export { rolloutMembers } from '../state.js';


/**
 * An attempt of `settledIn` on the machine settled (succeeded, rolled back, failed, or waits for its
 * retry): an instance another running rollout kept waiting for it (`deferInstance`) is queued there now,
 * and the units of the machine's region blocked on it (`tryStartBatch`) look again.
 */
export function rejoinAfterSettle(ctx: TickContext, settledIn: RolloutState, machineId: string): void {
  if (ctx.state.rollouts.size < 2) return;
  const waiting = busyElsewhereReason(settledIn);
  for (const r of ctx.state.rollouts.values()) {
    if (r === settledIn || r.artifactKey !== settledIn.artifactKey || r.status !== 'running') continue;
    const region = ctx.state.fleet.machines.get(machineId)?.placement.region;
    const rs = region === undefined ? undefined : r.regions.get(region);
    if (rs) wakeBlocked(ctx, r, rs);
    const a = r.attempts.get(machineId);
    if (!a || a.status !== 'retryWait' || a.dueAtMs !== null || a.reason !== waiting) continue;
    changed.attempt(ctx, a);
    a.status = 'retryReady';
    a.reason = null;
    wakeForRetry(ctx, r, r.units.get(a.unitId)!, machineId);
  }
}

/**
 * A Failed instance of the machine was installed again or went away (an extension removed, the set moved to
 * another image): retries parked because it kept the machine from ever turning healthy (`CANNOT_HEAL`)
 * rejoin their running rollouts. A rollout that ended meanwhile (a parked retry does not keep it open) left
 * the instance behind: it catches up in a rollout of its own, as an instance opted in again does (R30).
 */
export function resumeCannotHeal(ctx: TickContext, machineId: string): void {
  const behind = new Set<string>();
  for (const r of ctx.state.rollouts.values()) {
    const a = r.attempts.get(machineId);
    if (!a || a.status !== 'parked' || !a.reason?.startsWith(CANNOT_HEAL)) continue;
    if (r.status !== 'running') {
      if (r.status === 'completed' && r.plan.profile.name !== 'manual' && isExtensionKey(r.artifactKey)) behind.add(r.artifactKey);
      continue;
    }
    if (skipReason(ctx, r, getInstance(ctx.state.fleet, r.artifactKey, machineId))) continue;
    r.open++;
    a.status = 'retryReady';
    a.reason = null;
    changed.attempt(ctx, a);
    changed.rollout(ctx, r);
    wakeForRetry(ctx, r, r.units.get(a.unitId)!, machineId);
  }
  for (const key of behind) {
    // catchUp leaves out an instance with nothing newer to reach (opted out, blocked, or up to date since).
    if (!getInstance(ctx.state.fleet, key, machineId) || resumeIn(ctx, key, machineId)) continue;
    catchUp(ctx, ctx.settings, key, [machineId], (n, target) => `${n} instance(s) whose retry waited for the machine to be able to turn healthy, after their rollout ended: catching up to ${target}`);
  }
}
