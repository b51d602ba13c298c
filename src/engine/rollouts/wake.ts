/** Units woken by a timer, a queued retry or a policy turned on again: they look for their next batch. */
import type { RolloutState, UnitState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed } from '../core/context.js';
import { tryStartBatch } from './batches.js';

/** A timer woke a paused, held, stopped or window-waiting unit. */
export function resumeUnit(ctx: TickContext, r: RolloutState, u: UnitState, token: string | number = 0): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  // A window's timer wakes only a unit still waiting for that slot (after a restart the slot is not known: it looks again).
  if (token !== 0 && (u.status !== 'window' || (u.windowOpensAt != null && u.windowOpensAt !== token))) return;
  if (u.status !== 'paused' && u.status !== 'held' && u.status !== 'stopped' && u.status !== 'window') return;
  if (u.status === 'window' && u.windowOpensAt != null && ctx.now < u.windowOpensAt) return; // an older timer
  if (u.status === 'stopped' && !u.passDone) r.regions.get(u.region)!.openUnits++;
  u.status = 'ready';
  u.windowOpensAt = undefined;
  tryStartBatch(ctx, r, u);
}

/** A retry is queued in its unit; run it when the unit is idle. */
export function wakeForRetry(ctx: TickContext, r: RolloutState, u: UnitState, machineId: string): void {
  changed.unit(ctx, u);
  u.retryReady.push(machineId);
  if (u.status === 'done') u.status = 'ready';
  if (u.status === 'ready') tryStartBatch(ctx, r, u);
}

export function unparkUnit(ctx: TickContext, r: RolloutState, u: UnitState): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  if (!u.passDone) r.regions.get(u.region)!.openUnits++;
  u.status = 'ready';
  tryStartBatch(ctx, r, u);
}
