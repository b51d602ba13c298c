/**
 * Why a simulation ended with rollouts still running: nothing was due any more (no event, no machine answer, no
 * engine timer) before the horizon. A unit waiting for maintenance windows that never open again (R70) explains it;
 * anything else is a rollout nothing will ever move, a stall of the engine that the summary must not pass over.
 */
import type { EngineState } from '../engine/state.js';

/** The run-end phrase (`; ended with …`) for the rollouts of `ids` still running at a quiet end; '' if none. */
export function quietEndNote(state: EngineState, ids: readonly string[]): string {
  const windows: string[] = [];
  const stalled: string[] = [];
  for (const id of ids) {
    const r = state.rollouts.get(id);
    if (r === undefined || r.status !== 'running') continue;
    const never = [...r.units.values()].some((u) => u.status === 'window' && u.windowOpensAt === null);
    (never ? windows : stalled).push(id);
  }
  const parts: string[] = [];
  if (windows.length > 0) {
    parts.push(`; ended with rollout ${windows.join(', ')} waiting for maintenance windows that never open again (R70: they expired, or have no room for a batch)`);
  }
  if (stalled.length > 0) {
    parts.push(`; ended with rollout ${stalled.join(', ')} still running and nothing left to move it (a stall of the engine: please report it with the scenario)`);
  }
  return parts.join('');
}
