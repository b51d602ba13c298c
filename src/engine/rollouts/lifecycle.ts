/** The ends of a rollout (stopped by a failed phase, completed) and the bake before its next phase (R40). */
import type { EngineState, RolloutState } from '../state.js';
import { deadlineOf, reachFrom } from './bound-pressure.js';
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
 * and one retry still fit the profile's bound. The room left is spent where a bake buys the most: each
 * remaining bake is weighted by the machines it protects (those of every later phase), so the bake after
 * a small early phase keeps more of its time than the last one (`shareBakes`).
 */
export function bakeAfter(r: RolloutState, index: number, now: number, state?: EngineState): number {
  const planned = r.plan.phases[index]!.bakeAfterMs;
  const bound = r.plan.profile.boundMs;
  if (!Number.isFinite(bound)) return planned;
  const even = evenBake(r, index, now, planned, bound);
  return state ? windowedBake(state, r, index, now, even) : even;
}

/**
 * With maintenance windows the estimate of the later phases moves with the instant they open: a bake that
 * ends just after a window may cost days. The bake is cut to the longest (of its length, ¾, ½, ¼, none)
 * whose next phases, placed in their windows with their expected R23 stops at full length, still reach
 * their last machine within the bound: a bake never eats the room that shorter stops would need.
 */
function windowedBake(state: EngineState, r: RolloutState, index: number, now: number, bake: number): number {
  if (bake <= 0 || state.maintenance.assignments.size === 0) return bake;
  const deadline = deadlineOf(r);
  for (const b of [bake, bake * 0.75, bake * 0.5, bake * 0.25]) if (reachFrom(state, r, index + 1, now + Math.floor(b), true) <= deadline) return Math.floor(b);
  // Shorten only where that helps: when a later unit can never run (its windows never hold a batch), no bake does.
  return Number.isFinite(reachFrom(state, r, index + 1, now, true)) ? 0 : bake;
}

function evenBake(r: RolloutState, index: number, now: number, planned: number, bound: number): number {
  const later = r.plan.phases.slice(index + 1);
  const work = later.reduce((t, p) => t + p.estimatedMs, 0);
  const room = r.createdAtMs + bound - r.plan.estimate.retryAllowanceMs - now - work;
  if (room >= later.reduce((t, p, i) => t + (i === later.length - 1 ? 0 : p.bakeAfterMs), planned)) return planned;
  const bakes = r.plan.phases.slice(index, -1);
  const machines = later.map((p) => p.regions.reduce((t, x) => t + x.machines, 0));
  const protects = bakes.map((_, i) => machines.slice(i).reduce((t, m) => t + m, 0));
  return shareBakes(Math.max(0, room), bakes.map((p) => p.bakeAfterMs), protects)[0] ?? 0;
}

/** Water-filling: `room` shared in proportion to the weights, no bake above its planned length. */
export function shareBakes(room: number, planned: readonly number[], weights: readonly number[]): number[] {
  const out = planned.map(() => 0);
  const open = new Set(planned.map((_, i) => i));
  let left = room;
  while (open.size > 0 && left > 0) {
    const total = [...open].reduce((t, i) => t + Math.max(1, weights[i]!), 0);
    let capped = false;
    for (const i of [...open]) {
      const share = (left * Math.max(1, weights[i]!)) / total;
      if (out[i]! + share >= planned[i]!) {
        left -= planned[i]! - out[i]!;
        out[i] = planned[i]!;
        open.delete(i);
        capped = true;
      }
    }
    if (capped) continue;
    for (const i of open) out[i]! += Math.floor((left * Math.max(1, weights[i]!)) / total);
    break;
  }
  return out;
}
