/**
 * A machine that waiting cannot heal: one of its extensions is Failed with no automatic attempts left. The
 * set-health gates leave it out of their share, and retries on it are parked (rollouts/set-health.ts,
 * attempts/outcome.ts).
 */
import type { TickContext } from './context.js';

/**
 * Why a machine stays unhealthy until someone acts (an extension Failed with no automatic attempts left), or
 * null. `except`: an artifact whose own block does not count (its rollouts skip the instance already, R31).
 */
export function failedForGood(ctx: Pick<TickContext, 'state'>, machineId: string, except?: string): string | null {
  for (const [key, byMachine] of ctx.state.fleet.instances) {
    if (key === except) continue;
    const inst = byMachine.get(machineId);
    if (inst?.status === 'Failed' && inst.blockedReason) return `${inst.artifactKey} is Failed: ${inst.blockedReason}`;
  }
  return null;
}
