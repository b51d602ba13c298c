/**
 * One release reads as one rollout to users. The engine replaces a running rollout when a newer
 * version comes out or the same version reaches more regions (one plan keeps geo-pairs apart, R10); it
 * cancels the old one with a reason that starts "superseded" (engine/rollouts.ts, engine/os-images.ts).
 * The API shows such a rollout as `superseded`, not `cancelled`, and names the rollout that replaced it.
 */
import type { EngineState, RolloutState } from '../../engine/state.js';
import { isSuperseded } from '../../model/rollout-status.js';

export type DisplayStatus = RolloutState['status'] | 'superseded';

export { isSuperseded } from '../../model/rollout-status.js';

export function displayStatus(r: RolloutState): DisplayStatus {
  return isSuperseded(r) ? 'superseded' : r.status;
}

/** The rollout created in the same instant for the same artifact that took over; null when none. */
export function successorOf(state: EngineState, r: RolloutState): RolloutState | null {
  if (!isSuperseded(r) || r.endedAtMs === null) return null;
  let best: RolloutState | null = null;
  for (const o of state.rollouts.values()) {
    if (o === r || o.artifactKey !== r.artifactKey || o.createdAtMs !== r.endedAtMs) continue;
    if (!best || o.createdAtMs > best.createdAtMs) best = o;
  }
  return best;
}
