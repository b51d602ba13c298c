/** An operator resumes a stopped rollout: failures so far count as acknowledged, a failed phase as passed. */
import type { RolloutState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import { onRetryDue } from '../attempts/outcome.js';
import { tryStartBatch } from './batches.js';
import { checkRolloutDone } from './lifecycle.js';
import { wakeForRetry } from './wake.js';
import { openPhase } from './waves.js';

/** `why`: the operator's reason, when given, recorded with the resumption as a pause's is. */
export function resumeStopped(ctx: TickContext, r: RolloutState, caller: string, why?: string): void {
  const rolloutId = r.id;
  if (r.status !== 'stopped') throw new Error(`rollout ${rolloutId} is ${r.status}, not stopped`);
  r.status = 'running';
  r.reason = null;
  changed.rollout(ctx, r);
  emit(ctx, { type: 'rollout.resumed', rolloutId, reason: `resumed by ${caller}${why ? `: ${why}` : ''}; failures so far acknowledged` });
  for (const a of r.attempts.values()) {
    if (a.status === 'retryWait' && a.dueAtMs !== null && a.dueAtMs <= ctx.now && onRetryDue(ctx, r, a) === 'ready') {
      wakeForRetry(ctx, r, r.units.get(a.unitId)!, a.machineId);
    }
  }
  for (const u of r.units.values()) if (r.phases[u.phase]!.status === 'running' && u.status !== 'waiting') tryStartBatch(ctx, r, u);
  const failed = r.phases.findIndex((p) => p.status === 'failed');
  if (failed >= 0) {
    r.phases[failed]!.status = 'completed';
    changed.phase(ctx, r.phases[failed]!);
    if (failed + 1 < r.phases.length) openPhase(ctx, r, failed + 1);
  }
  checkRolloutDone(ctx, r);
}
