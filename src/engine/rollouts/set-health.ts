/**
 * The set-health gates (R20 before a batch, R24 after it) with the two ways out of a hold that would
 * otherwise last forever:
 *
 * - Machines that waiting cannot heal are left out of the share: a machine whose extension is `Failed`
 *   with no automatic attempts left (R31, or R62 without rollback), and a machine the gate has seen
 *   unhealthy at every look for `CHRONIC_UNHEALTHY_MS`. The share is then counted over the rest
 *   (unhealthy − left out) / (set − left out), and `gate.excluded` names them.
 * - A set still held after `HELD_RELEASE_MS` lets go of its wave and phase (`gate.released`): like a set
 *   stopped by R23, the phase is judged without it, while the set keeps being rechecked and runs when
 *   its health allows.
 *
 * Both clocks live in memory only: after a restart they start again (holding longer, never shorter).
 */
import type { GateVerdict } from './gates.js';
import { above } from './gates.js';
import type { TickContext } from '../core/context.js';
import { failedForGood } from '../core/failed-for-good.js';

const HOUR_MS = 3_600_000;

/** How long a machine must be seen unhealthy, at every look of its set's gate, to be left out of the share. */
export const CHRONIC_UNHEALTHY_MS = 24 * HOUR_MS;

/** How long a set may be held by R20/R24 before its phase goes on without it. */
export const HELD_RELEASE_MS = 24 * HOUR_MS;

export interface SetHealth {
  verdict: GateVerdict;
  /** Machines left out of the share; empty when the plain share passed or nothing could be left out. */
  excluded: Array<{ machineId: string; reason: string }>;
}

type Gate = (unhealthy: number, setSize: number, limitPercent: number) => GateVerdict;

/**
 * Judges a set's health with `gate` (R20's or R24's, which fail exactly when the share is `above` the limit);
 * when the plain share fails, judges again without the machines waiting cannot heal. Null when the plain
 * share passes, the common case: no verdict is built then.
 */
export function judgeSetHealth(ctx: TickContext, setId: string, setSize: number, limitPercent: number, gate: Gate): SetHealth | null {
  const unhealthy = ctx.state.fleet.setUnhealthy.get(setId) ?? 0;
  if (!above(unhealthy, setSize, limitPercent)) {
    if (ctx.state.unhealthySeen.size > 0) ctx.state.unhealthySeen.delete(setId); // a passing look ends every machine's unhealthy streak
    return null;
  }
  const plain = gate(unhealthy, setSize, limitPercent);
  const excluded = incurable(ctx, setId);
  if (excluded.length === 0) return { verdict: plain, excluded: [] };
  if (excluded.length >= setSize) {
    // Every machine of the set is one waiting cannot heal (a set of one whose machine is Failed, say):
    // no healthy machine is left to protect, and holding would wait forever.
    return { verdict: { ...gate(0, setSize, limitPercent), reason: `all ${setSize} instances of the set are ones that waiting cannot heal: none is left to protect` }, excluded };
  }
  const verdict = gate(unhealthy - excluded.length, setSize - excluded.length, limitPercent);
  // Still above the limit without them: the hold reports the plain share, as R20 states it.
  if (!verdict.pass) return { verdict: plain, excluded: [] };
  return { verdict: { ...verdict, reason: `${verdict.reason}, once ${excluded.length} that waiting cannot heal are left out` }, excluded };
}

/** The set's unhealthy machines that are Failed for good or chronically unhealthy; updates the streaks. */
function incurable(ctx: TickContext, setId: string): Array<{ machineId: string; reason: string }> {
  const fleet = ctx.state.fleet;
  const before = ctx.state.unhealthySeen.get(setId);
  const seen = new Map<string, number>();
  const out: Array<{ machineId: string; reason: string }> = [];
  for (const id of fleet.unhealthy) {
    if (fleet.machines.get(id)?.placement.setId !== setId) continue;
    const since = before?.get(id) ?? ctx.now;
    seen.set(id, since);
    const failed = failedForGood(ctx, id);
    if (failed) out.push({ machineId: id, reason: failed });
    else if (ctx.now - since >= CHRONIC_UNHEALTHY_MS) {
      out.push({ machineId: id, reason: `unhealthy at every look of the set's health gate for ${Math.floor((ctx.now - since) / HOUR_MS)} hours` });
    }
  }
  ctx.state.unhealthySeen.set(setId, seen);
  return out;
}
