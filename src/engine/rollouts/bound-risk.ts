/**
 * Is R40's bound at risk for a running rollout? A projection from its state now: units stopped by R23
 * resume when their stop ends, every unit's remaining batches are placed in its maintenance windows (R70),
 * phases still to come open after their bakes (shortened as `bakeAfter` would), and each unit may meet one
 * more R23 stop at the failure rate its release has shown so far (planner/bound.ts). Read-only.
 */
import type { UnitOutlook } from '../../planner/bound.js';
import { expectedLastReach, placeBatches, reachAfterStop, stopProbability, stopsToCount } from '../../planner/bound.js';
import { retryIntervalMs } from '../../planner/profile.js';
import type { BoundOutlook } from '../../planner/types.js';
import type { EngineState, RolloutState, UnitState } from '../state.js';
import { releaseKey } from '../state.js';
import { isoOf } from '../clock.js';
import { bakeAfter } from './lifecycle.js';
import { deadlineOf, observedFailureRate, phaseWaitsForEvidence, remainingBatches, stopChain, unitCourse, unitStops } from './bound-pressure.js';

interface Projected extends UnitOutlook {
  end: number;
  why: string;
}

const days = (ms: number) => `${Math.round((ms / 86_400_000) * 10) / 10} days`;

/** The rollout's outlook for R40 at `now`; null for manual rollouts, which have no bound. */
export function boundRisk(state: EngineState, r: RolloutState, now: number): BoundOutlook | null {
  const bound = r.plan.profile.boundMs;
  if (!Number.isFinite(bound)) return null;
  const deadline = deadlineOf(r);
  const base = { boundEndMs: deadline, expectedStops: 0 };
  if (r.status !== 'running') return { ...base, atRisk: false, reason: `the rollout is ${r.status}: nothing more will be reached by it`, projectedEndMs: r.endedAtMs ?? now };
  const hold = state.releases.get(releaseKey(r.artifactKey, r.toVersion))?.hold;
  if (hold) {
    const reason = `the release is held (${hold.kind}, since ${isoOf(hold.sinceMs)}): no batch starts until it is resumed, and the bound of ${days(bound)} keeps running`;
    return { ...base, atRisk: true, projectedEndMs: Number.POSITIVE_INFINITY, reason };
  }
  const rate = observedFailureRate(r);
  const units: Projected[] = [];
  let expectedStops = 0;
  let unschedulable: UnitState | null = null;

  const project = (u: UnitState, from: number): Projected | null => {
    const n = remainingBatches(u);
    const course = unitCourse(state, r, u);
    const stoppedUntil = u.gateRun.stoppedUntil ?? 0;
    const t0 = Math.max(from, now, stoppedUntil, u.status === 'held' ? now + r.plan.profile.gateRecheckMs : 0);
    if (n === 0) return null;
    const placed = placeBatches(course, t0, n);
    if (!placed || (u.status === 'window' && u.windowOpensAt === null)) {
      unschedulable = u;
      return null;
    }
    const sizes = u.plan.batches.slice(u.next, u.next + 20).map((b) => b.machineIds.length);
    const pStop = stopProbability(sizes, rate, u.plan.limits.maxUnhealthyUpgradedInstancePercent, u.gateRun.upgraded);
    // More than one stop when the release fails that often under the set's limit (a strict limit, slow agents timing out).
    const stops = pStop > 0 ? stopsToCount(unitStops(r, u, u.gateRun.upgraded, rate)) : 0;
    expectedStops += stops > 1 ? stops : pStop;
    // A stop holds what it holds for the engine (`stopChain`, as `r23StopMs` sizes it): the set's next zones wait behind it,
    // so its stopped end is theirs, each of their batches placed after this unit's, with the stops they are expected to meet.
    const chain = pStop > 0 ? stopChain(r, u, phaseWaitsForEvidence(r, u), u.gateRun.upgraded, rate) : null;
    const interval = retryIntervalMs(r.plan.profile, u.plan.machineKind);
    const stopped = chain ? reachAfterStop(course, t0, chain.batches, interval, deadline, stopsToCount(chain.expected)) : placed.lastStart;
    const behind = chain && chain.zones.length > 0 ? `, the set's next ${chain.zones.length} zones behind them (R11)` : '';
    const why = stoppedUntil > now
      ? `set ${u.plan.setId ?? u.plan.id} is stopped by R23 until ${isoOf(stoppedUntil)}`
      : course.union.length > 0 ? `unit ${u.plan.id} runs ${n} more batches in its maintenance windows (R70)${behind}` : `unit ${u.plan.id} has ${n} batches to run${behind}`;
    const p: Projected = { id: u.plan.id, clear: placed.lastStart, stopped, pStop, end: placed.end, why };
    units.push(p);
    return p;
  };

  let prevEnd = now;
  r.plan.phases.forEach((pp, i) => {
    const ps = r.phases[i]!;
    let start: number;
    if (ps.status === 'completed' || ps.status === 'failed' || ps.status === 'running') start = now;
    else {
      const prev = r.phases[i - 1];
      const prevDone = prev?.endedAtMs ?? prevEnd;
      start = Math.max(now, prevDone + (i > 0 ? bakeAfter(r, i - 1, prevDone, state) : 0));
    }
    let phaseEnd = ps.status === 'completed' || ps.status === 'failed' ? (ps.endedAtMs ?? now) : start;
    let stoppedEnd = phaseEnd;
    for (const pr of pp.regions) {
      const rs = r.regions.get(pr.region);
      const current = ps.status === 'running' && rs ? rs.wave : ps.status === 'completed' || ps.status === 'failed' ? pr.waves.length : 0;
      let t = start;
      pr.waves.forEach((w, wi) => {
        let waveEnd = t;
        for (const pu of w.units) {
          const u = r.units.get(pu.id);
          if (!u || u.passDone) continue;
          const stopped = u.status === 'stopped' || u.status === 'disabled' || u.waveSettled;
          const p = project(u, wi < current || stopped ? now : t);
          if (!p) continue;
          if (wi < current || stopped) stoppedEnd = Math.max(stoppedEnd, p.end);
          else waveEnd = Math.max(waveEnd, p.end);
        }
        if (wi >= current) t = waveEnd;
      });
      phaseEnd = Math.max(phaseEnd, t);
    }
    // A phase stopped early on too little evidence waits for its stopped sets (waves.ts, minPhaseSample).
    if (ps.status === 'running' && ps.upgraded < r.plan.profile.minPhaseSample) phaseEnd = Math.max(phaseEnd, stoppedEnd);
    prevEnd = phaseEnd;
  });

  const stops = Math.round(expectedStops * 10) / 10;
  if (unschedulable) {
    const u = unschedulable as UnitState;
    return { boundEndMs: deadline, expectedStops: stops, atRisk: true, projectedEndMs: Number.POSITIVE_INFINITY, reason: `unit ${u.plan.id} has no maintenance window with room for a batch (R70)` };
  }
  if (units.length === 0) {
    return { boundEndMs: deadline, expectedStops: 0, atRisk: false, projectedEndMs: now, reason: 'every eligible machine has been reached; only retries and their batches remain' };
  }
  const last = expectedLastReach(units);
  const projectedEndMs = last.at;
  // Reaching the bound exactly means only shortened R23 stops keep it (`reachAfterStop`): at risk too.
  const atRisk = projectedEndMs >= deadline;
  const lead = last.unit as Projected | null;
  const cause = lead ? `; ${lead.why}${last.stop ? `, and one more R23 stop is likely (${Math.round(rate * 1000) / 10}% of outcomes failed so far, prior included)` : ''}` : '';
  const reason = projectedEndMs === deadline
    ? `the bound (${days(bound)}) holds only if R23 stops are shortened${cause}`
    : atRisk
    ? `the last machine is projected to be first reached at ${isoOf(projectedEndMs)}, ${days(projectedEndMs - deadline)} after the bound (${days(bound)})${cause}`
    : `the last machine is projected to be first reached at ${isoOf(projectedEndMs)}, ${days(deadline - projectedEndMs)} before the bound (${days(bound)})${cause}`;
  return { boundEndMs: deadline, expectedStops: stops, atRisk, projectedEndMs, reason };
}
