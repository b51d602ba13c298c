/**
 * Which goal state is newer. `goalStateId` increases with every change, but only within one `epoch`: the
 * id the server draws each time it starts (docs/agent.md "Goal state order"). A server restored from a
 * backup counts from the backup's id again, under a new epoch, so the agent follows it; an older id of
 * the epoch it holds, or any id of an epoch it has moved on from (a replaced server process still
 * answering, a replayed answer), is refused and the current goal state kept. Pure.
 */
import type { GoalState } from '../protocol/agent-wire.js';

/** Epochs remembered as left behind (a server restarted more often than this in between is not told apart). */
export const PAST_EPOCHS_KEPT = 16;

/** Why `next` must not replace `held`, or null when it may. A server that sends no epoch (older than 1.1) is followed as before. */
export function staleGoalState(held: GoalState | null, next: GoalState, pastEpochs: readonly string[]): string | null {
  if (next.epoch !== undefined && pastEpochs.includes(next.epoch)) {
    return `goal state ${next.goalStateId} is from server epoch ${next.epoch}, which this agent has moved on from`;
  }
  if (!held || next.epoch === undefined || held.epoch !== next.epoch) return null;
  if (next.goalStateId < held.goalStateId) return `goal state ${next.goalStateId} is older than goal state ${held.goalStateId} of the same server epoch ${next.epoch}`;
  return null;
}

/** The epochs left behind once `next` replaces `held`, newest first, bounded. */
export function pastEpochsAfter(held: GoalState | null, next: GoalState, pastEpochs: readonly string[]): string[] {
  const left = held?.epoch;
  if (left === undefined || left === next.epoch) return [...pastEpochs];
  return [left, ...pastEpochs.filter((e) => e !== left)].slice(0, PAST_EPOCHS_KEPT);
}
