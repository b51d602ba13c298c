/**
 * The release's gate before a batch: a held release starts no batch anywhere, and early in a release
 * its batches fan out gradually, so that its first verdict comes before many machines are exposed:
 * the machines in flight across the release stay within a budget that doubles as successes arrive.
 */
import type { ReleaseState, RolloutState, UnitState } from '../state.js';
import { releaseKey } from '../state.js';
import type { TickContext } from '../core/context.js';
import { judgedByRelease, releaseOfRollout } from '../attempts/release-evidence.js';

/** Machines of a release in flight at once before any success (a batch alone may exceed it). */
export const FANOUT_START = 8;
/** From this many successes on, the release's batches run side by side as their other locks allow. */
export const FANOUT_FULL = 256;

/** Machines of the release allowed in flight at once: 8, then twice the successes so far. */
export function fanOutBudget(rel: ReleaseState): number {
  if (rel.successes >= FANOUT_FULL) return Number.POSITIVE_INFINITY;
  return Math.max(FANOUT_START, 2 * rel.successes);
}

/** Whether a batch of `machines` may start now; with nothing in flight one batch always may. */
export function fanOutAllows(rel: ReleaseState, machines: number): boolean {
  return rel.inflight === 0 || rel.inflight + machines <= fanOutBudget(rel);
}

/** True when the unit may not start its batch for its release; it is parked until the release wakes it. */
export function releaseBlocks(ctx: TickContext, r: RolloutState, u: UnitState, machines: number): boolean {
  if (!judgedByRelease(r)) return operatorHoldBlocks(ctx, r, u);
  const rel = releaseOfRollout(ctx.state, r);
  if (!rel.hold && fanOutAllows(rel, machines)) return false;
  u.status = 'blocked';
  rel.waiters.set(u.plan.id, r.id);
  return true;
}

/**
 * A manual rollout is the user's explicit command, so the evidence does not hold it; an operator's
 * hold (a pause, a fleet-wide stop) or a withdrawal of its version does (operator-controls.ts).
 */
function operatorHoldBlocks(ctx: TickContext, r: RolloutState, u: UnitState): boolean {
  if (ctx.state.releases.size === 0) return false;
  const rel = ctx.state.releases.get(releaseKey(r.artifactKey, r.toVersion));
  if (!rel?.hold || rel.hold.kind === 'evidence') return false;
  u.status = 'blocked';
  rel.waiters.set(u.plan.id, r.id);
  return true;
}

export function releaseBatchStarted(ctx: TickContext, r: RolloutState, machines: number): void {
  if (judgedByRelease(r)) releaseOfRollout(ctx.state, r).inflight += machines;
}
