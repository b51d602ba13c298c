/**
 * R40 under holds, in the engine: how a unit's remaining batches will follow each other (its windows, R70),
 * and how long R23 stops a set so that its last machines are still reached within the bound.
 */
import type { UnitCourse } from '../../planner/bound.js';
import { chooseStopMs } from '../../planner/bound.js';
import { retryIntervalMs } from '../../planner/profile.js';
import { batchBudgetMs, expectedBatchMs, noticeOf } from '../../planner/windows.js';
import { configsOfKey, scopeOf, windowKeyOf } from '../../model/maintenance.js';
import type { EngineState, RolloutState, UnitState } from '../state.js';

/** The windows confining the unit's next batch (none for a critical release they all let bypass, R72). */
export function unitCourse(state: EngineState, r: RolloutState, u: UnitState): UnitCourse {
  const profile = r.plan.profile;
  const course = { union: [] as UnitCourse['union'], perMs: expectedBatchMs(profile, u.plan.limits), budgetMs: batchBudgetMs(profile, u.plan.limits, noticeOf(r.artifact)) };
  const m = state.maintenance;
  if (m.assignments.size === 0 || profile.name === 'manual') return course;
  const batch = u.plan.batches[Math.min(u.next, u.plan.batches.length - 1)];
  const machine = batch ? state.fleet.machines.get(batch.machineIds[0]!) : undefined;
  if (!machine) return course;
  const configs = configsOfKey(m, windowKeyOf(m, scopeOf(r.artifact), machine));
  if (configs.length === 0 || (profile.name === 'critical' && configs.every((c) => c.emergencyBypass))) return course;
  return { ...course, union: configs.map((c) => c.parsed) };
}

/** Planned batches the unit has not started: each holds machines not reached yet. */
export function remainingBatches(u: UnitState): number {
  return Math.max(0, u.plan.batches.length - u.next);
}

/** The instant by which R40 wants every eligible machine of the rollout reached. */
export function deadlineOf(r: RolloutState): number {
  return r.createdAtMs + r.plan.profile.boundMs;
}

/**
 * How long R23 stops the unit's set: the retry interval, shorter when resuming after it would reach the
 * set's last machines after the bound (planner/bound.ts, `chooseStopMs`). While the set's phase waits for
 * its evidence (fewer than `minPhaseSample` judged), the later phases wait too and count.
 */
export function r23StopMs(state: EngineState, r: RolloutState, u: UnitState, now: number): { stopMs: number; shortened: boolean } {
  const interval = retryIntervalMs(r.plan.profile, u.plan.machineKind);
  if (!Number.isFinite(r.plan.profile.boundMs)) return { stopMs: interval, shortened: false };
  const phase = r.phases[u.phase]!;
  const later = phase.status === 'running' && phase.upgraded < r.plan.profile.minPhaseSample
    ? r.plan.phases.slice(u.phase + 1).reduce((t, p) => t + p.estimatedMs, 0)
    : 0;
  return chooseStopMs(now, interval, deadlineOf(r), unitCourse(state, r, u), remainingBatches(u), later);
}
