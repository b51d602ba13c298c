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
 */
import { retryIntervalMs } from '../planner/profile.js';
import { batchScope } from '../planner/types.js';
import { explainBatch } from '../planner/units.js';
import type { TickContext } from './context.js';
import { changed, emit, schedule } from './context.js';
import type { GateVerdict } from './gates.js';
import { admissionBlocker, phaseGate, postBatchHealthGate, preBatchHealthGate, upgradedHealthGate } from './gates.js';
import { noticeEnded, settledByRemoval, skipInstance, skipReason, startUpgrade, withdrawNotices } from './instances.js';
import { recordBypass, waitForWindow, windowGate } from './windows.js';
import { policyPaused } from './os-images.js';
import type { BatchRun, RegionState, RolloutState, UnitState } from './state.js';
import type { ExtensionInstance } from '../model/artifact.js';

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
        for (const u of units) tryStartBatch(ctx, r, u);
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

/** Starts the unit's next batch if its gates and locks allow; otherwise records why it waits. */
export function tryStartBatch(ctx: TickContext, r: RolloutState, u: UnitState): void {
  changed.unit(ctx, u);
  if (r.status !== 'running' || u.inflight || u.status === 'waiting') return;
  if (u.status === 'paused' || u.status === 'held' || u.status === 'stopped' || u.status === 'window' || u.status === 'disabled') return; // a timer or a change wakes these
  const rs = r.regions.get(u.region)!;
  const limits = u.plan.limits;
  for (;;) {
    const planned = u.next < u.plan.batches.length ? u.plan.batches[u.next]! : null;
    if (!planned && u.retryReady.length === 0) {
      u.status = 'done';
      if (!u.passDone) unitPassDone(ctx, r, u);
      return;
    }
    if (!gateRunOpen(ctx, r, u)) return;
    const window = windowGate(ctx, r, u, planned ? planned.machineIds : u.retryReady);
    if (!window.start) {
      waitForWindow(ctx, r, u, window);
      return;
    }
    if (policyPaused(ctx, r, u)) return;
    if (!r.force && limits.maxUnhealthyInstancePercent !== null && u.plan.setId) {
      const verdict = preBatchHealthGate(ctx.state.fleet.setUnhealthy.get(u.plan.setId) ?? 0, u.plan.setSize, limits.maxUnhealthyInstancePercent);
      if (!verdict.pass) {
        hold(ctx, r, u, 'gate.held', verdict, 'held', r.plan.profile.gateRecheckMs);
        return;
      }
    }
    const blocker = admissionBlocker(zoneKey(u), {
      regionInflightByZone: rs.inflightByZone,
      pairInflight: rs.pair ? (r.regions.get(rs.pair)?.inflight ?? 0) : 0,
      setInflight: u.plan.setId ? (ctx.state.setInflight.get(u.plan.setId) ?? 0) : 0,
    });
    if (blocker) {
      block(ctx, r, u, rs);
      return;
    }
    const run = planned ? takePlanned(u, planned.id, planned.updateDomain, planned.machineIds) : takeRetry(ctx, u);
    const toStart: ExtensionInstance[] = [];
    const instances = ctx.state.fleet.instances.get(r.artifactKey);
    for (const id of run.machineIds) {
      if (planned && settledByRemoval(r.attempts.get(id))) continue; // gone before its batch came, and counted then
      const inst = instances?.get(id);
      const reason = skipReason(ctx, r, inst);
      if (reason) skipInstance(ctx, r, u, run.id, id, reason);
      else toStart.push(inst!);
    }
    if (toStart.length === 0) continue;
    if (window.bypassed) recordBypass(ctx, r, u, run.id, window.bypassed);
    startRun(ctx, r, u, rs, run, toStart, planned ? explainBatch(u.plan, planned) : 'retry of instances rolled back earlier (R30)');
    return;
  }
}

function startRun(ctx: TickContext, r: RolloutState, u: UnitState, rs: RegionState, run: BatchRun, toStart: ExtensionInstance[], reason: string): void {
  if (toStart.length !== run.machineIds.length) run.machineIds = toStart.map((i) => i.machineId);
  run.unsettled = toStart.length;
  u.inflight = run;
  u.status = 'running';
  u.windowOpensAt = undefined;
  rs.inflight++;
  rs.inflightByZone.set(zoneKey(u), (rs.inflightByZone.get(zoneKey(u)) ?? 0) + 1);
  if (u.plan.setId) ctx.state.setInflight.set(u.plan.setId, (ctx.state.setInflight.get(u.plan.setId) ?? 0) + 1);
  emit(ctx, {
    type: 'batch.started',
    rolloutId: r.id,
    batchId: run.id,
    scope: batchScope(u.plan, u.region, run),
    instances: run.machineIds,
    ...(u.plan.kind === 'scaleSet' || u.plan.kind === 'availabilitySet' ? { setSize: u.plan.setSize } : {}),
    limit: u.plan.limits.maxBatch,
    reason,
    ...(run.retry ? { retry: true } : {}),
  });
  for (const inst of toStart) startUpgrade(ctx, r, u, run.id, inst);
  // R83: the batch's re-images were announced together; one timer ends their notice.
  const noticed = r.artifact.kind === 'osImage' ? r.attempts.get(toStart[0]!.machineId) : undefined;
  if (noticed?.status === 'noticed' && noticed.dueAtMs !== null) schedule(ctx, { at: noticed.dueAtMs, kind: 'noticeDue', rolloutId: r.id, ref: u.plan.id, token: run.id });
}

/** The notice of a batch's re-images ran out (R83): those still waiting start now. */
export function endBatchNotice(ctx: TickContext, r: RolloutState, u: UnitState, batchId: string): void {
  if (!u.inflight || u.inflight.id !== batchId) return;
  for (const id of u.inflight.machineIds) noticeEnded(ctx, r, id, null);
}

/** Waits for a lock held elsewhere: in this region, its geo-pair, or the set (maybe by another rollout). */
function block(ctx: TickContext, r: RolloutState, u: UnitState, rs: RegionState): void {
  u.status = 'blocked';
  rs.blocked.add(u);
  if (!u.plan.setId) return;
  let waiters = ctx.state.setWaiters.get(u.plan.setId);
  if (!waiters) ctx.state.setWaiters.set(u.plan.setId, (waiters = new Map()));
  waiters.set(u.plan.id, r.id);
}

/**
 * R23 stops a whole set (all its zones) until the retry interval has passed; then its counters start
 * again. Returns false, and parks the unit, while the stop lasts.
 */
function gateRunOpen(ctx: TickContext, r: RolloutState, u: UnitState): boolean {
  changed.gateRun(ctx, u.gateRun);
  const run = u.gateRun;
  if (run.stoppedUntil === null) return true;
  if (ctx.now >= run.stoppedUntil) {
    run.stoppedUntil = null;
    run.upgraded = 0;
    run.unhealthyUpgraded = 0;
    return true;
  }
  markStopped(ctx, r, u);
  schedule(ctx, { at: run.stoppedUntil, kind: 'unitResume', rolloutId: r.id, ref: u.plan.id, token: 0 });
  settleForWave(ctx, r, u);
  return false;
}

function takePlanned(u: UnitState, id: string, updateDomain: number | null, machineIds: string[]): BatchRun {
  u.next++;
  return { id, updateDomain, machineIds, unsettled: 0, retry: false };
}

/** A retry batch: queued retries of the lowest update domain, capped like any batch of the unit. */
function takeRetry(ctx: TickContext, u: UnitState): BatchRun {
  const machines = ctx.state.fleet.machines;
  const udOf = (id: string) => machines.get(id)!.placement.updateDomain ?? -1;
  let lowest = Number.POSITIVE_INFINITY;
  for (const id of u.retryReady) lowest = Math.min(lowest, udOf(id));
  const chosen: string[] = [];
  const rest: string[] = [];
  for (const id of u.retryReady) (udOf(id) === lowest && chosen.length < u.plan.limits.maxBatch ? chosen : rest).push(id);
  u.retryReady = rest;
  u.retryBatches++;
  return { id: `${u.plan.id}/r${u.retryBatches}`, updateDomain: lowest >= 0 ? lowest : null, machineIds: chosen, unsettled: 0, retry: true };
}

function hold(ctx: TickContext, r: RolloutState, u: UnitState, type: 'gate.held' | 'gate.breached', verdict: GateVerdict, status: 'held' | 'stopped', wakeAfterMs: number): void {
  changed.unit(ctx, u);
  if (status === 'stopped') markStopped(ctx, r, u);
  else u.status = status;
  emit(ctx, {
    type,
    rolloutId: r.id,
    gate: verdict.gate,
    observed: verdict.observed,
    limit: verdict.limit,
    scope: { region: u.region, zone: u.plan.zone, setId: u.plan.setId, subscription: u.plan.subscription },
    reason: verdict.reason,
    rule: verdict.rule,
  });
  schedule(ctx, { at: ctx.now + wakeAfterMs, kind: 'unitResume', rolloutId: r.id, ref: u.plan.id, token: 0 });
}

/** An instance of the unit's batch settled; when the last one does, the batch completes. */
export function onInstanceSettled(ctx: TickContext, r: RolloutState, u: UnitState, batchId: string): void {
  changed.unit(ctx, u);
  const run = u.inflight;
  if (!run || run.id !== batchId) return;
  run.unsettled--;
  if (run.unsettled > 0) return;
  completeBatch(ctx, r, u, run);
}

function completeBatch(ctx: TickContext, r: RolloutState, u: UnitState, run: BatchRun): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  const rs = r.regions.get(u.region)!;
  u.inflight = null;
  u.status = 'ready';
  rs.inflight--;
  rs.inflightByZone.set(zoneKey(u), rs.inflightByZone.get(zoneKey(u))! - 1);
  if (u.plan.setId) ctx.state.setInflight.set(u.plan.setId, ctx.state.setInflight.get(u.plan.setId)! - 1);
  const gr = u.gateRun;
  emit(ctx, {
    type: 'batch.completed',
    rolloutId: r.id,
    batchId: run.id,
    scope: batchScope(u.plan, u.region, run),
    instances: run.machineIds,
    reason: `${gr.upgraded} upgraded in this run of the ${u.plan.setId ? 'set' : 'group'}, ${gr.unhealthyUpgraded} turned unhealthy or failed`,
  });
  afterBatch(ctx, r, u);
  wakeBlocked(ctx, r, rs);
  if (rs.pair) {
    const pair = r.regions.get(rs.pair);
    if (pair) wakeBlocked(ctx, r, pair);
  }
  if (u.plan.setId) wakeSetWaiters(ctx, u.plan.setId);
}

/** The gates after a batch (R23, R24), then the pause, then the next batch. */
function afterBatch(ctx: TickContext, r: RolloutState, u: UnitState): void {
  changed.gateRun(ctx, u.gateRun);
  const limits = u.plan.limits;
  const gr = u.gateRun;
  const upgraded = upgradedHealthGate(gr.unhealthyUpgraded, gr.upgraded, limits.maxUnhealthyUpgradedInstancePercent);
  const setHealth = limits.maxUnhealthyInstancePercent !== null && u.plan.setId
    ? postBatchHealthGate(ctx.state.fleet.setUnhealthy.get(u.plan.setId) ?? 0, u.plan.setSize, limits.maxUnhealthyInstancePercent)
    : null;
  // A forced manual rollout goes on through health failures; each unhealthy instance was still rolled back (R22).
  if (!r.force && gr.upgraded > 0 && !upgraded.pass) {
    // R23: the release hurts this set. Stop all of it; it runs again after the retry interval.
    const wait = retryIntervalMs(r.plan.profile, u.plan.machineKind);
    gr.stoppedUntil = ctx.now + wait;
    hold(ctx, r, u, 'gate.breached', upgraded, 'stopped', wait);
    settleForWave(ctx, r, u);
  } else if (!r.force && setHealth && !setHealth.pass) {
    hold(ctx, r, u, 'gate.breached', setHealth, 'held', r.plan.profile.gateRecheckMs);
  } else if (limits.pauseBetweenBatchesMs > 0 && (u.next < u.plan.batches.length || u.retryReady.length > 0)) {
    u.status = 'paused';
    schedule(ctx, { at: ctx.now + limits.pauseBetweenBatchesMs, kind: 'unitResume', rolloutId: r.id, ref: u.plan.id, token: 0 });
  } else {
    tryStartBatch(ctx, r, u);
  }
}

function wakeBlocked(ctx: TickContext, r: RolloutState, rs: RegionState): void {
  if (rs.blocked.size === 0) return;
  const units = [...rs.blocked];
  rs.blocked.clear();
  for (const u of units) {
    if (u.status === 'blocked') u.status = 'ready';
    tryStartBatch(ctx, r, u);
  }
}

/** Units of any rollout that wait for this set's lock. */
function wakeSetWaiters(ctx: TickContext, setId: string): void {
  const waiters = ctx.state.setWaiters.get(setId);
  if (!waiters || waiters.size === 0) return;
  ctx.state.setWaiters.delete(setId);
  for (const [unitId, rolloutId] of waiters) {
    const r = ctx.state.rollouts.get(rolloutId);
    const u = r?.units.get(unitId);
    if (!r || !u || u.status !== 'blocked') continue;
    r.regions.get(u.region)!.blocked.delete(u);
    u.status = 'ready';
    tryStartBatch(ctx, r, u);
  }
}

/** A timer woke a paused, held, stopped or window-waiting unit. */
export function resumeUnit(ctx: TickContext, r: RolloutState, u: UnitState, token: string | number = 0): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  // A window's timer wakes only a unit still waiting for that slot (after a restart the slot is not known: it looks again).
  if (token !== 0 && (u.status !== 'window' || (u.windowOpensAt != null && u.windowOpensAt !== token))) return;
  if (u.status !== 'paused' && u.status !== 'held' && u.status !== 'stopped' && u.status !== 'window') return;
  if (u.status === 'window' && u.windowOpensAt != null && ctx.now < u.windowOpensAt) return; // an older timer
  if (u.status === 'stopped' && !u.passDone) r.regions.get(u.region)!.openUnits++;
  u.status = 'ready';
  u.windowOpensAt = undefined;
  tryStartBatch(ctx, r, u);
}

/** A retry is queued in its unit; run it when the unit is idle. */
export function wakeForRetry(ctx: TickContext, r: RolloutState, u: UnitState, machineId: string): void {
  changed.unit(ctx, u);
  u.retryReady.push(machineId);
  if (u.status === 'done') u.status = 'ready';
  if (u.status === 'ready') tryStartBatch(ctx, r, u);
}

/** The unit no longer holds its wave back: it ran every planned batch, or R23 stopped it. */
function settleForWave(ctx: TickContext, r: RolloutState, u: UnitState): void {
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

function unitPassDone(ctx: TickContext, r: RolloutState, u: UnitState): void {
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
function markStopped(ctx: TickContext, r: RolloutState, u: UnitState): void {
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

export function unparkUnit(ctx: TickContext, r: RolloutState, u: UnitState): void {
  changed.unit(ctx, u);
  changed.region(ctx, r.regions.get(u.region)!);
  if (!u.passDone) r.regions.get(u.region)!.openUnits++;
  u.status = 'ready';
  tryStartBatch(ctx, r, u);
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
  if (verdict.pass && stoppedEarly && phase.upgraded < r.plan.profile.minPhaseSample) return; // too little evidence yet: wait for the stopped sets
  if (!verdict.pass) {
    phase.status = 'failed';
    phase.endedAtMs = ctx.now;
    emit(ctx, { type: 'phase.failed', rolloutId: r.id, phase: index, regions, reason: verdict.reason, upgraded: phase.upgraded, unhealthy: phase.unhealthy });
    emit(ctx, { type: 'gate.breached', rolloutId: r.id, gate: verdict.gate, observed: verdict.observed, limit: verdict.limit, scope: { region: regions.join(','), subscription: '*' }, reason: verdict.reason, rule: verdict.rule });
    stopRollout(ctx, r, `phase ${index} failed: ${verdict.reason}`);
    return;
  }
  // Units stopped by R23 run again after their wait, like retries; they do not hold the next phase.
  phase.status = 'completed';
  phase.endedAtMs = ctx.now;
  emit(ctx, { type: 'phase.completed', rolloutId: r.id, phase: index, regions, reason: verdict.reason, upgraded: phase.upgraded, unhealthy: phase.unhealthy });
  if (index + 1 < r.phases.length) {
    r.phases[index + 1]!.status = 'baking';
    const bake = bakeAfter(r, index, ctx.now);
    if (bake > 0) schedule(ctx, { at: ctx.now + bake, kind: 'phaseOpen', rolloutId: r.id, ref: String(index + 1), token: 0 });
    else openPhase(ctx, r, index + 1);
  } else {
    checkRolloutDone(ctx, r);
  }
}

/**
 * R40: the planned bake, shortened when the rollout runs late, so the remaining phases (as estimated)
 * and one retry still fit the profile's bound.
 */
export function bakeAfter(r: RolloutState, index: number, now: number): number {
  const planned = r.plan.phases[index]!.bakeAfterMs;
  const bound = r.plan.profile.boundMs;
  if (!Number.isFinite(bound)) return planned;
  const later = r.plan.phases.slice(index + 1);
  const work = later.reduce((t, p) => t + p.estimatedMs, 0);
  const room = r.createdAtMs + bound - r.plan.estimate.retryAllowanceMs - now - work;
  return Math.max(0, Math.min(planned, Math.floor(room / later.length)));
}

/**
 * Cancels a running or stopped rollout. Re-images it had announced are withdrawn and their batches
 * settle (R83), so the sets' locks go to whoever waits for them.
 */
export function cancelRollout(ctx: TickContext, r: RolloutState, reason: string): void {
  if (r.status !== 'running' && r.status !== 'stopped') return;
  r.status = 'cancelled';
  r.reason = reason;
  r.endedAtMs = ctx.now;
  changed.rollout(ctx, r);
  emit(ctx, { type: 'rollout.cancelled', rolloutId: r.id, reason });
  for (const { unit, batchId } of withdrawNotices(ctx, r, `the rollout was cancelled before the re-image: ${reason}`)) onInstanceSettled(ctx, r, unit, batchId);
}

export function stopRollout(ctx: TickContext, r: RolloutState, reason: string): void {
  if (r.status !== 'running') return;
  r.status = 'stopped';
  r.reason = reason;
  changed.rollout(ctx, r);
  emit(ctx, { type: 'rollout.stopped', rolloutId: r.id, reason });
}

/** Completes the rollout once every phase ran and every eligible instance reached a final state. */
export function checkRolloutDone(ctx: TickContext, r: RolloutState): void {
  if (r.status !== 'running' || r.open > 0) return;
  if (!r.phases.every((p) => p.status === 'completed')) return;
  r.status = 'completed';
  r.endedAtMs = ctx.now;
  r.reason = 'every eligible instance reached a final state';
  changed.rollout(ctx, r);
  emit(ctx, { type: 'rollout.completed', rolloutId: r.id, reason: r.reason });
}
