/**
 * The fleet-wide stop as the operator gave it (`POST /phasewise/fleet/pause` until `…/fleet/resume`),
 * kept in the document store. The engine only knows the holds the stop placed; without this record a
 * stop given while no rollout ran, or while every running one was held otherwise (a rollout's own pause,
 * the evidence), held nothing and so was forgotten at once: the next release's rollout ran through it.
 */
import type { Documents } from './documents.js';

export interface FleetStop {
  reason: string;
  caller: string;
  /** When it was first given (the engine's clock); a stop given again keeps it. */
  since: string;
  sinceMs: number;
}

const FLEET_STOP_DOC = '/phasewise/fleetStop';

export function fleetStopOf(docs: Documents): FleetStop | null {
  return docs.get<FleetStop>(FLEET_STOP_DOC)?.body ?? null;
}

/** Records the stop; given again, the latest reason and caller with the first `since`. */
export function beginFleetStop(docs: Documents, reason: string, caller: string, nowMs: number): FleetStop {
  const first = fleetStopOf(docs);
  const sinceMs = first?.sinceMs ?? nowMs;
  const stop: FleetStop = { reason, caller, since: new Date(sinceMs).toISOString(), sinceMs };
  docs.put(FLEET_STOP_DOC, '/phasewise', 'setting', stop);
  return stop;
}

export function endFleetStop(docs: Documents): void {
  docs.delete(FLEET_STOP_DOC);
}

/** What operators are shown (GET /phasewise/fleet): the stop in effect, or null. */
export function fleetStopView(docs: Documents): Pick<FleetStop, 'reason' | 'caller' | 'since'> | null {
  const stop = fleetStopOf(docs);
  return stop ? { reason: stop.reason, caller: stop.caller, since: stop.since } : null;
}
