/** Instances that leave the fleet: the rollouts that may still attempt them skip them, then they go. */
import type { ExtensionInstance } from '../../model/artifact.js';
import type { TickContext } from '../core/context.js';
import { skipGone } from '../attempts/skip.js';
import { checkRolloutDone } from './lifecycle.js';
import { refreshMachineHealth } from '../state.js';

/** Rollouts that may still attempt the instance skip it now; a rollout left with nothing open completes. */
export function settleRollouts(ctx: TickContext, inst: ExtensionInstance, reason: string): void {
  for (const r of ctx.state.rollouts.values()) {
    if (r.artifactKey !== inst.artifactKey || (r.status !== 'running' && r.status !== 'stopped')) continue;
    if (skipGone(ctx, r, inst, reason) && r.open === 0) checkRolloutDone(ctx, r);
  }
}

/**
 * Takes instances out of the fleet (a set moved to another image, a machine left platform patching): the
 * rollouts that hold them skip them. A Failed one that kept its machine from turning healthy is gone, so
 * the machine's health is worked out again; returns those machines, whose parked retries (`CANNOT_HEAL`)
 * the caller lets rejoin their rollouts (`resumeCannotHeal`, in opt-in/, above this folder).
 */
export function removeInstances(ctx: TickContext, insts: readonly ExtensionInstance[], reason: string): string[] {
  for (const inst of insts) settleRollouts(ctx, inst, reason);
  for (const inst of insts) dropInstance(ctx, inst);
  const freed: string[] = [];
  for (const inst of insts) {
    if (inst.status !== 'Failed') continue;
    refreshMachineHealth(ctx.state.fleet, inst.machineId);
    freed.push(inst.machineId);
  }
  return freed;
}

export function dropInstance(ctx: TickContext, inst: ExtensionInstance): void {
  const byMachine = ctx.state.fleet.instances.get(inst.artifactKey);
  byMachine?.delete(inst.machineId);
  if (byMachine && byMachine.size === 0) ctx.state.fleet.instances.delete(inst.artifactKey);
  ctx.changes?.instancesRemoved.push(inst);
}
