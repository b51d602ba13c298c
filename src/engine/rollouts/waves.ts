/**
 * How a rollout moves: phases open in order (R10), regions walk their zone waves (R11), units run one
 * batch at a time within update-domain boundaries (R13, R14) behind the health gates (R20, R23, R24).
 *
 *   openPhase → advanceRegion → tryStartBatch ──(instances settle)──▶ completeBatch ─┬▶ next batch
 *        ▲                          ▲                                                 └▶ unitPassDone
 *        │                          └──────────── next wave once every unit of the wave ran or stopped
 *        └──── bake timer ◀── phasePassDone (phase gate) ◀── regionPassDone ◀── every unit ran all its batches
 *
 * A wave moves on when each of its units either ran all its planned batches or was stopped by R23
 * (a stopped unit holds no lock, so the next zone may go). When every unit of a phase ran or stopped,
 * the phase gate judges it (R10): too many failures fail the phase and stop the rollout; otherwise the
 * phase completes. A set stopped by R23 runs its remaining batches after the retry interval, like the
 * retries of rolled-back instances, under the same locks and gates.
 *
 * This module is the phase and wave half of that loop; `batches.ts` (above it) is the batch half and
 * installs its entry point here (`installBatchStep`), so imports only go down.
 */
import type { RegionState, RolloutState, UnitState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit, schedule } from '../core/context.js';
import { phaseGate } from './gates.js';
import { bakeAfter, checkRolloutDone, stopRollout } from './lifecycle.js';
import { waitingMissesBound } from './bound-pressure.js';

type BatchStep = (ctx: TickContext, r: RolloutState, u: UnitState) => void;

/** `tryStartBatch`, installed by `batches.ts` when it loads: a wave that opens starts its units' batches. */
let startBatch: BatchStep = () => {
  throw new Error('rollouts/batches.ts was not loaded: it installs itself when it loads');
};

export function installBatchStep(step: BatchStep): void {
  startBatch = step;
}

export function openPhase(ctx: TickContext, r: RolloutState, index: number): void {
  changed.rollout(ctx, r);
  const planned = r.plan.phases[index]!;
  const phase = r.phases[index]!;
  changed.phase(ctx, phase);
  r.currentPhase = index;
  phase.status = 'running';
  phase.startedAtMs = ctx.now;
  emit(ctx, { type: 'phase.started', rolloutId: r.id, phase: index, regions: planned.regions.map((p) => p.region) });
  for (const pr of planned.regions) advanceRegion(ctx, r, r.regions.get(pr.region)!);
}

function regionWaves(r: RolloutState, rs: RegionState) {
  return r.plan.phases[rs.phase]!.regions.find((p) => p.region === rs.region)!.waves;
}

/**
 * Starts the region's current wave and moves on while waves are settled. Re-entrant calls (a unit
 * settling while its wave starts) return at once; the outer call sees their effect.
 */
function advanceRegion(ctx: TickContext, r: RolloutState, rs: RegionState): void {
  changed.region(ctx, rs);
  if (rs.advancing) return;
  rs.advancing = true;
  try {
    const waves = regionWaves(r, rs);
    while (rs.wave < waves.length) {
      if (rs.waveRemaining < 0) {
        const units = waves[rs.wave]!.units.map((u) => r.units.get(u.id)!);
        rs.waveRemaining = units.filter((u) => !u.waveSettled).length;
        for (const u of units) if (u.status === 'waiting') u.status = 'ready';
        for (const u of units) startBatch(ctx, r, u);
      }
      if (rs.waveRemaining > 0) return;
      rs.wave++;
      rs.waveRemaining = -1;
    }
  } finally {
    rs.advancing = false;
  }
  checkPhase(ctx, r, rs.phase);
}

/** The lock key of a unit's zone: its zone, no zone, or the cross-zone wave (R11). */
export function zoneKey(u: UnitState): string {
  return u.plan.crossZone ? '\u0000cross' : (u.plan.zone ?? '\u0000none');
}

/** The unit no longer holds its wave back: it ran every planned batch, or R23 stopped it. */
export function settleForWave(ctx: TickContext, r: RolloutState, u: UnitState): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  if (u.waveSettled) return;
  u.waveSettled = true;
  const rs = r.regions.get(u.region)!;
  if (u.wave !== rs.wave || rs.waveRemaining <= 0) {
    checkPhase(ctx, r, rs.phase);
    return;
  }
  rs.waveRemaining--;
  advanceRegion(ctx, r, rs);
}

export function unitPassDone(ctx: TickContext, r: RolloutState, u: UnitState): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  u.passDone = true;
  const rs = r.regions.get(u.region)!;
  rs.openUnits--;
  rs.unfinished--;
  if (u.waveSettled) checkPhase(ctx, r, u.phase); // stopped earlier, finished now: its wave moved on long ago
  else settleForWave(ctx, r, u);
}

/** True when every wave of the region started and each unit ran all its batches or is stopped by R23. */
function regionSettled(r: RolloutState, rs: RegionState): boolean {
  return rs.openUnits === 0 && rs.wave >= regionWaves(r, rs).length;
}

/** Stops a unit (R23), keeping its region's count of units still at work in step. */
export function markStopped(ctx: TickContext, r: RolloutState, u: UnitState): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  if (u.status !== 'stopped' && u.status !== 'disabled' && !u.passDone) r.regions.get(u.region)!.openUnits--;
  u.status = 'stopped';
}

/**
 * Parks a unit that cannot go on until someone changes something (R65: its set turned automatic OS
 * upgrade off). Like a unit stopped by R23 it no longer holds its wave or phase back; `unparkUnit`
 * brings it back.
 */
export function parkUnit(ctx: TickContext, r: RolloutState, u: UnitState, status: 'disabled'): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  if (u.status !== 'stopped' && u.status !== 'disabled' && !u.passDone) r.regions.get(u.region)!.openUnits--;
  u.status = status;
  settleForWave(ctx, r, u);
}

/** A set of a running phase was stopped again (R23): the phase may now go on (`waitingMissesBound`). */
export function recheckPhase(ctx: TickContext, r: RolloutState, index: number): void {
  if (r.phases[index]?.status === 'running') checkPhase(ctx, r, index);
}

/** Judges a phase once each of its units ran all its batches or was stopped by R23 (R10). */
function checkPhase(ctx: TickContext, r: RolloutState, index: number): void {
  changed.rollout(ctx, r);
  const phase = r.phases[index]!;
  if (phase.status !== 'running' || r.status !== 'running') return;
  changed.phase(ctx, phase);
  if (index + 1 < r.phases.length) changed.phase(ctx, r.phases[index + 1]!);
  for (const pr of r.plan.phases[index]!.regions) if (!regionSettled(r, r.regions.get(pr.region)!)) return;
  const regions = r.plan.phases[index]!.regions.map((p) => p.region);
  const judged = phaseGate(phase.unhealthy, phase.upgraded, r.plan.profile.maxPhaseFailurePercent, r.plan.profile.minPhaseFailures);
  const verdict = r.force && !judged.pass ? { ...judged, pass: true, reason: `${judged.reason}; forced: the rollout goes on` } : judged;
  const stoppedEarly = r.plan.phases[index]!.regions.some((p) => r.regions.get(p.region)!.unfinished > 0);
  // Too little evidence yet: wait for the stopped sets, except those held beyond the limit (`gate.released`).
  // Nor when waiting would miss R40's bound (bound-pressure.ts).
  if (verdict.pass && stoppedEarly && phase.upgraded < r.plan.profile.minPhaseSample && waitsForStopped(r, index) && !waitingMissesBound(ctx.state, r, index, ctx.now)) return;
  if (!verdict.pass) {
    phase.status = 'failed';
    phase.endedAtMs = ctx.now;
    emit(ctx, { type: 'phase.failed', rolloutId: r.id, phase: index, regions, reason: verdict.reason, upgraded: phase.upgraded, unhealthy: phase.unhealthy });
    emit(ctx, {
      type: 'gate.breached',
      rolloutId: r.id,
      gate: verdict.gate,
      observed: verdict.observed,
      limit: verdict.limit,
      scope: { region: regions.join(','), subscription: '*' },
      reason: verdict.reason,
      rule: verdict.rule,
    });
    stopRollout(ctx, r, `phase ${index} failed: ${verdict.reason}`);
    return;
  }
  // Units stopped by R23 run again after their wait, like retries; they do not hold the next phase.
  phase.status = 'completed';
  phase.endedAtMs = ctx.now;
  emit(ctx, { type: 'phase.completed', rolloutId: r.id, phase: index, regions, reason: verdict.reason, upgraded: phase.upgraded, unhealthy: phase.unhealthy });
  if (index + 1 < r.phases.length) {
    r.phases[index + 1]!.status = 'baking';
    const bake = bakeAfter(r, index, ctx.now, ctx.state);
    if (bake > 0) schedule(ctx, { at: ctx.now + bake, kind: 'phaseOpen', rolloutId: r.id, ref: String(index + 1), token: 0 });
    else openPhase(ctx, r, index + 1);
  } else {
    checkRolloutDone(ctx, r);
  }
}

/** True when a unit of the phase that has not run all its batches was stopped, not released by its hold's limit. */
function waitsForStopped(r: RolloutState, index: number): boolean {
  for (const pr of r.plan.phases[index]!.regions) {
    for (const wave of pr.waves) {
      for (const pu of wave.units) {
        const u = r.units.get(pu.id)!;
        if (!u.passDone && u.releasedAtMs === undefined) return true;
      }
    }
  }
  return false;
}
