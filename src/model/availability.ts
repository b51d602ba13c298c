/**
 * Availability impacts of a machine (issue 16, R84) read from the event log: patch reboots
 * (`availability.impact`), re-images, host updates that freeze, restart or redeploy it, and unhealthy
 * periods. Pure: the events and the host updates in, the periods out (newest first), and the state now.
 */
import type { EngineEvent } from './events.js';
import type { HostUpdate } from './maintenance.js';

export type AvailabilityState = 'Available' | 'Unavailable' | 'Degraded';
export type ImpactCause = 'Reboot' | 'Reimage' | 'Freeze' | 'Redeploy' | 'Unhealthy';

export interface AvailabilityPeriod {
  state: Exclude<AvailabilityState, 'Available'>;
  cause: ImpactCause;
  startMs: number;
  /** null: still going on. */
  endMs: number | null;
  planned: boolean;
  reason: string;
  /** The event that recorded it (a stable id for the history entry), and when. */
  seq: number;
  reportedMs: number;
}

/** How long a re-image keeps a machine unavailable, as recorded (the drivers do not report it). */
export const REIMAGE_IMPACT_MS = 10 * 60_000;

/** The event types the periods are made of (to read only those from the log). */
export const AVAILABILITY_EVENT_TYPES = [
  'availability.impact', 'instance.reimaged', 'host.update.applied', 'instance.health.unhealthy',
  'instance.upgrade.succeeded', 'instance.rollback.succeeded',
] as const;

/** The machine's availability periods from its events (any order), newest first. */
export function availabilityPeriods(events: readonly EngineEvent[], hostUpdates: readonly HostUpdate[], unhealthyNow: boolean): AvailabilityPeriod[] {
  const out: AvailabilityPeriod[] = [];
  const sorted = [...events].sort((a, b) => a.seq - b.seq);
  let sick: AvailabilityPeriod | null = null;
  for (const e of sorted) {
    const t = Date.parse(e.time);
    if (e.type === 'availability.impact') {
      const start = Date.parse(e.startTime);
      out.push({ state: e.state, cause: e.cause, startMs: start, endMs: start + e.durationSec * 1000, planned: e.planned, reason: e.reason, seq: e.seq, reportedMs: t });
    } else if (e.type === 'instance.reimaged') {
      out.push({ state: 'Unavailable', cause: 'Reimage', startMs: t, endMs: t + REIMAGE_IMPACT_MS, planned: true, reason: `re-imaged to ${e.toVersion}`, seq: e.seq, reportedMs: t });
    } else if (e.type === 'host.update.applied') {
      const applied = hostUpdates.filter((u) => e.updates.includes(u.id) && u.impactType !== 'None');
      if (applied.length === 0) continue;
      const worst = applied.some((u) => u.impactType === 'Redeploy') ? 'Redeploy' : applied.some((u) => u.impactType === 'Restart') ? 'Reboot' : 'Freeze';
      const sec = Math.max(...applied.map((u) => u.impactDurationSec));
      out.push({ state: 'Unavailable', cause: worst, startMs: t, endMs: t + sec * 1000, planned: true,
        reason: `host update ${applied.map((u) => u.id).join(', ')} (${worst.toLowerCase()}, ${sec} s)`, seq: e.seq, reportedMs: t });
    } else if (e.type === 'instance.health.unhealthy') {
      if (!sick) {
        sick = { state: 'Degraded', cause: 'Unhealthy', startMs: t, endMs: null, planned: false, reason: e.reason ?? 'the machine reported itself unhealthy', seq: e.seq, reportedMs: t };
        out.push(sick);
      }
    } else if ((e.type === 'instance.upgrade.succeeded' || e.type === 'instance.rollback.succeeded') && sick) {
      sick.endMs = t;
      sick = null;
    }
  }
  // The engine's current view wins: a machine healthy now has no open unhealthy period.
  if (sick && !unhealthyNow) sick.endMs = sick.startMs;
  return out.filter((p) => p.endMs === null || p.endMs > p.startMs).sort((a, b) => b.startMs - a.startMs || b.seq - a.seq);
}

/** The state at `now`: the period going on then (Unavailable before Degraded), or Available. */
export function availabilityAt(periods: readonly AvailabilityPeriod[], now: number): { state: AvailabilityState; period: AvailabilityPeriod | null } {
  const on = periods.filter((p) => p.startMs <= now && (p.endMs === null || now < p.endMs));
  const worst = on.find((p) => p.state === 'Unavailable') ?? on[0] ?? null;
  return { state: worst ? worst.state : 'Available', period: worst };
}
