/** R65's policy gate on OS image rollouts (the policy itself lives on the scale set). */
import type { RolloutState, UnitState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { emit } from '../core/context.js';
import { parkUnit } from './waves.js';

/**
 * R65: the policy gate. An automatic OS image rollout does not start a batch of a set whose automatic OS
 * upgrade is off; the unit pauses (`rollout.paused`) until the policy is on again.
 */
export function policyPaused(ctx: TickContext, r: RolloutState, u: UnitState): boolean {
  if (r.artifact.kind !== 'osImage' || r.plan.profile.name === 'manual' || !u.plan.setId) return false;
  const set = ctx.state.fleet.scaleSets.get(u.plan.setId);
  if (set?.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade !== false) return false;
  emit(ctx, { type: 'rollout.paused', rolloutId: r.id, reason: `automatic OS upgrade was disabled on scale set ${set.name}: its part waits until it is enabled again, and the rest of the rollout goes on (R65)` });
  parkUnit(ctx, r, u, 'disabled');
  return true;
}
