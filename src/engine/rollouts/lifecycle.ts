/** The ends of a rollout (stopped by a failed phase, completed) and the bake before its next phase (R40). */
import type { RolloutState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';

export function stopRollout(ctx: TickContext, r: RolloutState, reason: string): void {
  if (r.status !== 'running') return;
  r.status = 'stopped';
  r.reason = reason;
  changed.rollout(ctx, r);
  emit(ctx, { type: 'rollout.stopped', rolloutId: r.id, reason });
}

/** Completes the rollout once every phase ran and every eligible instance reached a final state. */
export function checkRolloutDone(ctx: TickContext, r: RolloutState): void {
  if (r.status !== 'running' || r.open > 0) return;
  if (!r.phases.every((p) => p.status === 'completed')) return;
  r.status = 'completed';
  r.endedAtMs = ctx.now;
  r.reason = 'every eligible instance reached a final state';
  changed.rollout(ctx, r);
  emit(ctx, { type: 'rollout.completed', rolloutId: r.id, reason: r.reason });
}

/**
 * R40: the planned bake, shortened when the rollout runs late, so the remaining phases (as estimated)
 * and one retry still fit the profile's bound.
 */
export function bakeAfter(r: RolloutState, index: number, now: number): number {
  const planned = r.plan.phases[index]!.bakeAfterMs;
  const bound = r.plan.profile.boundMs;
  if (!Number.isFinite(bound)) return planned;
  const later = r.plan.phases.slice(index + 1);
  const work = later.reduce((t, p) => t + p.estimatedMs, 0);
  const room = r.createdAtMs + bound - r.plan.estimate.retryAllowanceMs - now - work;
  return Math.max(0, Math.min(planned, Math.floor(room / later.length)));
}
