/**
 * R40 under holds, in the engine: how a unit's remaining batches will follow each other (its windows, R70),
 * and how long R23 stops a set so that its last machines are still reached within the bound.
 */
import type { UnitCourse, UnitOutlook } from '../../planner/bound.js';
import {
  chooseStopMs, expectedLastReach, expectedStops, failureRateEstimate, lastReachWithStop, placeBatches, reachAfterStop, STOP_ALLOWANCE_MASS, stopHolds, stopProbability, stopsToAllowFor,
  stopsToCount,
} from '../../planner/bound.js';
import { retryIntervalMs } from '../../planner/profile.js';
import { batchBudgetMs, expectedBatchMs, noticeOf } from '../../planner/windows.js';
import { configsOfKey, scopeOf, windowKeyOf } from '../../model/maintenance.js';
import { offPeakWindow } from '../../schedule/off-peak.js';
import type { EngineState, RolloutState, UnitState } from '../state.js';

/** The windows confining the unit's next batch (none for a critical release they all let bypass, R72). */
export function unitCourse(state: EngineState, r: RolloutState, u: UnitState): UnitCourse {
  const profile = r.plan.profile;
  const course = { union: [] as UnitCourse['union'], perMs: batchMsOf(u, expectedBatchMs(profile, u.plan.limits)), budgetMs: batchBudgetMs(profile, u.plan.limits, noticeOf(r.artifact)) };
  const m = state.maintenance;
  const patches = r.artifact.kind === 'guestPatch';
  if ((m.assignments.size === 0 && !patches) || profile.name === 'manual') return course;
  const batch = u.plan.batches[Math.min(u.next, u.plan.batches.length - 1)];
  const machine = batch ? state.fleet.machines.get(batch.machineIds[0]!) : undefined;
  if (!machine) return course;
  // R76: a unit is in one region, so its batches share that region's off-peak window.
  if (patches) return profile.name === 'critical' ? course : { ...course, union: [offPeakWindow(machine.placement.region)] };
  const configs = configsOfKey(m, windowKeyOf(m, scopeOf(r.artifact), machine));
  if (configs.length === 0 || (profile.name === 'critical' && configs.every((c) => c.emergencyBypass))) return course;
  return { ...course, union: configs.map((c) => c.parsed) };
}

/** How many batches of the plan's expected length the unit's measured batch times are weighed against. */
const PRIOR_BATCHES = 5;

/**
 * How long the unit's batches take, pause included: the plan's expectation, or more once its batches have
 * shown it (agents that answer late or not at all within the 90-minute action timeout, rollbacks after
 * them), the measured times pulled towards the expectation by PRIOR_BATCHES batches of it. Never less than
 * expected: batches that went faster do not spend room kept for later ones.
 */
export function batchMsOf(u: UnitState, expectedMs: number): number {
  const n = u.timedBatches ?? 0;
  if (n === 0) return expectedMs;
  const pause = u.plan.limits.pauseBetweenBatchesMs;
  const busy = (u.timedBatchMs! + (expectedMs - pause) * PRIOR_BATCHES) / (n + PRIOR_BATCHES);
  return Math.max(expectedMs, busy + pause);
}

/** Planned batches the unit has not started: each holds machines not reached yet. */
export function remainingBatches(u: UnitState): number {
  return Math.max(0, u.plan.batches.length - u.next);
}

/** Batches before the unit lets its phase go: its planned ones, or a retry batch when only retries keep it open. */
function batchesToSettle(u: UnitState): number {
  return remainingBatches(u) || (u.passDone ? 0 : 1);
}

/** The instant by which R40 wants every eligible machine of the rollout reached. */
export function deadlineOf(r: RolloutState): number {
  return r.createdAtMs + r.plan.profile.boundMs;
}

/**
 * How long R23 stops the unit's set: the retry interval, shorter when resuming after it would reach the
 * set's last machines after the bound (planner/bound.ts, `chooseStopMs`). While the set's phase waits for
 * its evidence (fewer than `minPhaseSample` judged), the later phases wait too and count; otherwise the set's
 * next zones do (`laterZones`).
 */
export function r23StopMs(state: EngineState, r: RolloutState, u: UnitState, now: number): { stopMs: number; shortened: boolean } {
  const interval = retryIntervalMs(r.plan.profile, u.plan.machineKind);
  const bound = r.plan.profile.boundMs;
  if (!Number.isFinite(bound)) return { stopMs: interval, shortened: false };
  const waits = phaseWaitsForEvidence(r, u);
  // The stops the set's remaining batches will meet after this one, 99 times in 100, at the rate the release has
  // shown (R23 resumes with fresh counters): none below 0.01 expected, one or more from there (stopsToAllowFor).
  const chain = stopChain(r, u, waits);
  const later = stopsToAllowFor(chain.expected);
  // Far from the bound (a week of windows, the stops and the planned work to spare): the retry interval, without projecting.
  const planned = r.plan.phases.slice(u.phase).reduce((t, p) => t + p.estimatedMs, 0);
  if (deadlineOf(r) - now > interval * (1 + later) + planned + 8 * 86_400_000) return { stopMs: interval, shortened: false };
  const after = waits ? (end: number) => reachFrom(state, r, u.phase + 1, end, true) : undefined;
  return chooseStopMs(now, interval, deadlineOf(r), unitCourse(state, r, u), chain.batches, after, later);
}

/** The unit's phase waits for its stopped sets' evidence (fewer than `minPhaseSample` judged), and later phases wait behind it. */
export function phaseWaitsForEvidence(r: RolloutState, u: UnitState): boolean {
  const phase = r.phases[u.phase]!;
  return phase.status === 'running' && phase.upgraded < r.plan.profile.minPhaseSample && u.phase + 1 < r.plan.phases.length;
}

/** What an R23 stop of a unit's set holds up: `batches` placed after it in the unit's course, and the stops they are expected to meet. */
export interface StopChain {
  /** The set's next zones that wait for the stop (`laterZones`). */
  zones: UnitState[];
  batches: number;
  expected: number;
}

/**
 * One rule for how long an R23 stop is (`r23StopMs`) and how far the outlook (bound-risk.ts) sees it reach: the set's
 * next zones wait for a stop of this unit, since it stops all of the set (R23) and its zones go one after another
 * (R11). Their batches count as the set's, behind this unit's, even when only retries keep this unit open (one retry
 * batch). While the unit's phase waits for its evidence (`waits`), the later phases are counted instead, by the caller.
 * `expected`: the R23 stops those batches will meet at the release's rate, this unit's run having passed `done`.
 */
export function stopChain(r: RolloutState, u: UnitState, waits: boolean, done = 0, rate = observedFailureRate(r)): StopChain {
  const zones = waits ? [] : laterZones(r, u);
  const own = { batches: waits || zones.length > 0 ? batchesToSettle(u) : remainingBatches(u), expected: unitStops(r, u, done, rate) };
  return { zones, ...stopHolds(own, zones.map((z) => ({ batches: remainingBatches(z), expected: unitStops(r, z, 0, rate) }))) };
}

/**
 * The set's units in the region's later waves (its next zones) with a planned batch left: R23 stopped them with
 * this one, and they wait for it. Their windows are the set's, so they are placed in this unit's course.
 */
function laterZones(r: RolloutState, u: UnitState): UnitState[] {
  if (!u.plan.setId) return [];
  return unitsOfSet(r, u).filter((z) => z.phase === u.phase && z.region === u.region && z.wave > u.wave && !z.passDone && remainingBatches(z) > 0);
}

/** Each set's units in plan order, kept per rollout (a plan never changes): asked at every R23 stop of a set. */
const setUnits = new WeakMap<RolloutState, Map<string, UnitState[]>>();

function unitsOfSet(r: RolloutState, u: UnitState): UnitState[] {
  let bySet = setUnits.get(r);
  if (!bySet) {
    setUnits.set(r, (bySet = new Map()));
    for (const z of r.units.values()) {
      if (!z.plan.setId) continue;
      const list = bySet.get(z.plan.setId);
      if (list) list.push(z);
      else bySet.set(z.plan.setId, [z]);
    }
  }
  return bySet.get(u.plan.setId!) ?? [];
}

/** How many R23 stops the unit's remaining batches are expected to meet at the release's failure rate so far; `done` instances already passed in its run. */
export function unitStops(r: RolloutState, u: UnitState, done: number, rate = observedFailureRate(r)): number {
  const sizes = u.plan.batches.slice(u.next, u.next + 200).map((b) => b.machineIds.length);
  return expectedStops(sizes, rate, u.plan.limits.maxUnhealthyUpgradedInstancePercent, done);
}

/**
 * When the rollout's last machine is expected to be first reached if phase `from` opens at `t`: its regions
 * side by side, each region's waves one after another, each unit's batches in its windows (R70), and each
 * unit possibly stopped once more by R23 at the failure rate the release has shown (`expectedLastReach`) for
 * as long as the engine would stop it, or with `fullStops` for the whole retry interval (what a bake may not eat into);
 * bakes left out, since they shrink when time runs short (`bakeAfter`). +Infinity when a unit has no window
 * with room.
 */
export function reachFrom(state: EngineState, r: RolloutState, from: number, t: number, fullStops = false): number {
  const deadline = deadlineOf(r);
  const rate = observedFailureRate(r);
  const outlooks: UnitOutlook[] = [];
  let start = t;
  for (const pp of r.plan.phases.slice(from)) {
    let phaseEnd = start;
    for (const pr of pp.regions) {
      let rt = start;
      for (const w of pr.waves) {
        let waveEnd = rt;
        for (const pu of w.units) {
          const u = r.units.get(pu.id);
          if (!u) continue;
          const course = unitCourse(state, r, u);
          const n = remainingBatches(u);
          const placed = placeBatches(course, rt, n);
          if (!placed) return Number.POSITIVE_INFINITY;
          const sizes = u.plan.batches.slice(u.next, u.next + 20).map((b) => b.machineIds.length);
          const pStop = n > 1 ? stopProbability(sizes, rate, u.plan.limits.maxUnhealthyUpgradedInstancePercent) : 0;
          const interval = retryIntervalMs(r.plan.profile, u.plan.machineKind);
          const stops = pStop === 0 ? 0 : stopsToCount(unitStops(r, u, 0, rate), STOP_ALLOWANCE_MASS);
          const stopped = pStop === 0 ? placed.lastStart
            : fullStops ? (lastReachWithStop(course, rt, n, interval, stops) ?? Number.POSITIVE_INFINITY) : reachAfterStop(course, rt, n, interval, deadline, stops);
          outlooks.push({ id: u.plan.id, clear: placed.lastStart, stopped, pStop });
          waveEnd = Math.max(waveEnd, placed.end);
        }
        rt = waveEnd;
      }
      phaseEnd = Math.max(phaseEnd, rt);
    }
    start = phaseEnd;
  }
  return outlooks.length === 0 ? t : Math.max(t, expectedLastReach(outlooks).at);
}

/** The release's failure rate as this rollout's phases have judged it, pulled towards the prior. */
export function observedFailureRate(r: RolloutState): number {
  let failed = 0;
  let judged = 0;
  for (const p of r.phases) {
    failed += p.unhealthy;
    judged += p.upgraded;
  }
  return failureRateEstimate(failed, judged);
}

/**
 * A phase whose sets R23 stopped before `minPhaseSample` instances were judged waits for them to run
 * again (waves.ts). Unless waiting would reach the rollout's last machine after the bound: then the phase
 * is judged on the evidence it has (its confidence gate still applies, and the release verdict still
 * watches every outcome), and the stopped sets run after their stop like any other.
 */
export function waitingMissesBound(state: EngineState, r: RolloutState, index: number, now: number): boolean {
  if (!waitCanMiss(r, index)) return false;
  const resume = phaseResume(state, r, index, now);
  if (resume === null) return true;
  // Without windows, an upper bound of every end the projection could pick: the later phases' units back to
  // back, plus one whole R23 stop. `expectedLastReach` picks one of those ends, so when the bound is within the
  // deadline, waiting cannot miss it and the projection (a sort over every later unit) is not needed.
  if (!windowed(state, r)) {
    const later = laterSpan(r, index + 1);
    if (resume + later.span + later.stop <= deadlineOf(r)) return false;
  }
  return reachFrom(state, r, index + 1, resume) > deadlineOf(r);
}

/** A rollout without a bound, or its last phase (nothing waits behind it), cannot miss the bound by waiting. */
function waitCanMiss(r: RolloutState, index: number): boolean {
  return Number.isFinite(r.plan.profile.boundMs) && index + 1 < r.plan.phases.length;
}

/** `waitingMissesBound` projected in full, every later unit's outlook counted (exported for the tests). */
export function projectedWaitMissesBound(state: EngineState, r: RolloutState, index: number, now: number): boolean {
  if (!waitCanMiss(r, index)) return false;
  const resume = phaseResume(state, r, index, now);
  return resume === null || reachFrom(state, r, index + 1, resume) > deadlineOf(r);
}

/** When phase `index` could let the next one go: each of its unfinished sets after its stop, placed in its windows; null when one has no room. */
function phaseResume(state: EngineState, r: RolloutState, index: number, now: number): number | null {
  let resume = now;
  for (const u of unfinishedUnits(r, index)) {
    const placed = placeBatches(unitCourse(state, r, u), Math.max(now, u.gateRun.stoppedUntil ?? now), batchesToSettle(u));
    if (!placed) return null;
    resume = Math.max(resume, placed.end);
  }
  return resume;
}

/**
 * The phase's units whose pass is not done, kept per rollout and phase: asked at every R23 stop of a phase
 * of thousands of units, and a unit's pass, once done, stays done, so the list only shrinks.
 */
const unfinished = new WeakMap<RolloutState, Map<number, UnitState[]>>();

function unfinishedUnits(r: RolloutState, index: number): UnitState[] {
  let byPhase = unfinished.get(r);
  if (!byPhase) unfinished.set(r, (byPhase = new Map()));
  let units = byPhase.get(index);
  if (!units) {
    units = [];
    for (const pr of r.plan.phases[index]!.regions) {
      for (const w of pr.waves) {
        for (const pu of w.units) {
          const u = r.units.get(pu.id);
          if (u) units.push(u);
        }
      }
    }
  }
  const left = units.filter((u) => !u.passDone);
  byPhase.set(index, left);
  return left;
}

/** Whether any unit's batches may be confined to windows (`unitCourse`): maintenance assignments, or R76's off-peak hours. */
function windowed(state: EngineState, r: RolloutState): boolean {
  return r.plan.profile.name !== 'manual' && (state.maintenance.assignments.size > 0 || r.artifact.kind === 'guestPatch');
}

/**
 * The phases from `from` on, back to back without windows: their longest region's waves one after another,
 * each wave as long as its longest unit, and the longest R23 stop among their units. Kept per rollout: a
 * plan never changes and a unit's remaining batches only go down, so the first answer stays an upper bound.
 */
const spans = new WeakMap<RolloutState, Map<number, { span: number; stop: number }>>();

function laterSpan(r: RolloutState, from: number): { span: number; stop: number } {
  let memo = spans.get(r);
  if (!memo) spans.set(r, (memo = new Map()));
  const known = memo.get(from);
  if (known) return known;
  const profile = r.plan.profile;
  let span = 0;
  let stop = 0;
  for (const pp of r.plan.phases.slice(from)) {
    let phaseSpan = 0;
    for (const pr of pp.regions) {
      let regionSpan = 0;
      for (const w of pr.waves) {
        let waveSpan = 0;
        for (const pu of w.units) {
          const u = r.units.get(pu.id);
          if (!u) continue;
          waveSpan = Math.max(waveSpan, remainingBatches(u) * expectedBatchMs(profile, u.plan.limits));
          stop = Math.max(stop, retryIntervalMs(profile, u.plan.machineKind));
        }
        regionSpan += waveSpan;
      }
      phaseSpan = Math.max(phaseSpan, regionSpan);
    }
    span += phaseSpan;
  }
  const found = { span, stop };
  memo.set(from, found);
  return found;
}
