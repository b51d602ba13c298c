/**
 * Opting back in (R32): a parked or skipped instance rejoins its running rollout; one whose rollout is
 * over catches up through a small rollout of its own.
 */
import { automaticTarget } from '../catalog/catalog.js';
import type { TickContext } from './context.js';
import { changed } from './context.js';
import { skipReason } from './instances.js';
import { wakeForRetry } from './progress.js';
import type { RolloutSettings } from './rollouts.js';
import { createRollout } from './rollouts.js';
import type { RolloutState } from './state.js';
import { getInstance } from './state.js';

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

/** Instances opted in again after their rollout finished: one rollout per target version. */
export function catchUp(ctx: TickContext, settings: RolloutSettings, key: string, machineIds: string[]): RolloutState[] {
  const byTarget = new Map<string, string[]>();
  for (const id of machineIds) {
    const inst = getInstance(ctx.state.fleet, key, id)!;
    const m = ctx.state.fleet.machines.get(id)!;
    const target = automaticTarget(ctx.state.catalog, inst, { os: m.os, region: m.placement.region }, ctx.now).target;
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
      reason: `automatic upgrade enabled again on ${ids.length} instance(s) that missed ${target}: catching up (R32)`,
    });
    if (r) started.push(r);
  }
  return started;
}

/** Every machine planned in a rollout; built on first use (rare: an operator opting back in). */
function rolloutMembers(r: RolloutState): Set<string> {
  if (!r.members) {
    r.members = new Set();
    for (const u of r.units.values()) for (const b of u.plan.batches) for (const id of b.machineIds) r.members.add(id);
  }
  return r.members;
}

