/** Cancelling a rollout (supersession, an operator, R65's cancel). */
import type { RolloutState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import { withdrawNotices } from '../attempts/upgrade.js';
import { onInstanceSettled } from './batch-end.js';

/**
 * Cancels a running or stopped rollout. Re-images it had announced are withdrawn and their batches
 * settle (R83), so the sets' locks go to whoever waits for them.
 */
export function cancelRollout(ctx: TickContext, r: RolloutState, reason: string): void {
  if (r.status !== 'running' && r.status !== 'stopped') return;
  r.status = 'cancelled';
  r.reason = reason;
  r.endedAtMs = ctx.now;
  changed.rollout(ctx, r);
  emit(ctx, { type: 'rollout.cancelled', rolloutId: r.id, reason });
  for (const { unit, batchId } of withdrawNotices(ctx, r, `the rollout was cancelled before the re-image: ${reason}`)) onInstanceSettled(ctx, r, unit, batchId);
}
