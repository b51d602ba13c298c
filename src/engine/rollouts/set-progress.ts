/**
 * Reading where a rollout stands on one set (R81), for an API that shows Azure's rolling-upgrade
 * status: counts of the set's planned instances by outcome, and whether the set is stopped. Pure reads
 * of the engine state; nothing here changes it.
 */
import { CANCELLED_FOR_SET } from '../attempts/skip.js';
import type { EngineState, RolloutState } from '../state.js';

export interface SetProgress {
  /** Upgraded and judged healthy. */
  successful: number;
  /** Final without success: rolled back for good (manual rollouts) or Failed after a failed rollback (R31). */
  failed: number;
  /** An upgrade, health wait or rollback in flight. */
  inProgress: number;
  /** Not reached yet, or waiting for a retry: not final and not in flight. */
  pending: number;
  /** Left out: opted out, blocked, already at the version, or gone (machine deleted, extension removed). */
  skipped: number;
  /** Instances whose rollback to last-known-good succeeded (they also count as failed or pending). */
  rolledBackOk: number;
  /** Instances whose rollback failed (they also count as failed). */
  rolledBackFailed: number;
  /** Why the set does not move now, and until when (null: until something changes), or null when it may. */
  stopped: { until: number | null; reason: string } | null;
  /** The set's part of the rollout was cancelled (rollingUpgrades/cancel on a rollout spanning other sets). */
  cancelled: boolean;
}

/** Counts the attempts of `rollout` on the planned machines of set `setId` as of `now`. */
export function setProgress(state: EngineState, rollout: RolloutState, setId: string, now: number): SetProgress {
  void state;
  const p: SetProgress = { successful: 0, failed: 0, inProgress: 0, pending: 0, skipped: 0, rolledBackOk: 0, rolledBackFailed: 0, stopped: null, cancelled: false };
  let held = false;
  let gateStop: { until: number; reason: string } | null = null;
  for (const u of rollout.units.values()) {
    if (u.plan.setId !== setId) continue;
    if (u.status === 'held') held = true;
    const gr = u.gateRun;
    if (gr.stoppedUntil !== null && gr.stoppedUntil > now) {
      gateStop = { until: gr.stoppedUntil, reason: `${gr.unhealthyUpgraded} of ${gr.upgraded} upgraded instances turned unhealthy or failed, above maxUnhealthyUpgradedInstancePercent (R23)` };
    }
    u.plan.batches.forEach((b, i) => {
      for (const id of b.machineIds) {
        const a = rollout.attempts.get(id);
        if (!a) {
          // No record: not reached yet, or succeeded (a success leaves no record).
          if (i >= u.next) p.pending++;
          else p.successful++;
          continue;
        }
        switch (a.status) {
          case 'succeeded': p.successful++; break;
          case 'noticed': case 'upgrading': case 'healthWait': case 'rollingBack': p.inProgress++; break;
          // Attempt 0: an instance waiting for another rollout's attempt on it, never rolled back here.
          case 'retryWait': case 'retryReady': p.pending++; if (a.attempt > 0) p.rolledBackOk++; break;
          case 'rolledBack': p.failed++; p.rolledBackOk++; break;
          case 'failed': p.failed++; p.rolledBackFailed++; break;
          case 'skipped': case 'parked':
            p.skipped++;
            if (a.reason === CANCELLED_FOR_SET) p.cancelled = true;
            break;
        }
      }
    });
  }
  if (rollout.status === 'stopped') p.stopped = { until: null, reason: rollout.reason ?? 'the rollout is stopped' };
  else if (rollout.status === 'running' && gateStop) p.stopped = gateStop;
  else if (rollout.status === 'running' && held) p.stopped = { until: null, reason: 'held: more of the set is unhealthy than maxUnhealthyInstancePercent allows (R20, R24); rechecked hourly' };
  return p;
}

/** Rollouts with a unit in set `setId`, newest first. */
export function rolloutsTouchingSet(state: EngineState, setId: string): RolloutState[] {
  const out: RolloutState[] = [];
  for (const r of state.rollouts.values()) {
    for (const u of r.units.values()) {
      if (u.plan.setId === setId) {
        out.push(r);
        break;
      }
    }
  }
  const seq = (r: RolloutState) => Number(/(\d+)$/.exec(r.id)?.[1] ?? 0);
  return out.sort((a, b) => b.createdAtMs - a.createdAtMs || seq(b) - seq(a));
}
