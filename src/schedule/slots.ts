/**
 * Where a job fits when several windows constrain it (R70). A machine may have several configurations of
 * one scope assigned: it may be upgraded in any of their windows (a union). A batch may hold machines with
 * different assignments: it starts only when every machine's union admits it (an intersection).
 */
import { canFinishBefore, nextSlot } from './window.js';
import type { MaintenanceWindow } from './window.js';

/** One machine's windows: the job may run in any of them. */
export type WindowUnion = readonly MaintenanceWindow[];

/** Whether a job of `durationMs` started at `t` finishes inside one window of every union. */
export function fitsAll(unions: readonly WindowUnion[], t: number, durationMs: number): boolean {
  return unions.every((u) => u.some((w) => canFinishBefore(w, t, durationMs)));
}

/** The earliest start ≥ t in one union; null when none of its windows has room any more. */
export function unionSlot(union: WindowUnion, t: number, durationMs: number): number | null {
  let best: number | null = null;
  for (const w of union) {
    const s = nextSlot(w, t, durationMs);
    if (s !== null && (best === null || s < best)) best = s;
  }
  return best;
}

/** How many times `commonSlot` moves its candidate before it gives up: windows that never line up. */
const MAX_ROUNDS = 1_000;

/**
 * The earliest start ≥ t where a job of `durationMs` fits in every union; null when there is none (a
 * union ran out of windows, or they never line up within MAX_ROUNDS moves). No unions: `t` itself.
 */
export function commonSlot(unions: readonly WindowUnion[], t: number, durationMs: number): number | null {
  let candidate = t;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    let latest = candidate;
    for (const u of unions) {
      const s = unionSlot(u, candidate, durationMs);
      if (s === null) return null;
      if (s > latest) latest = s;
    }
    if (latest === candidate) return candidate;
    candidate = latest;
  }
  return null;
}
