/**
 * How a rollout moves: phases open in order (R10), regions walk their zone waves (R11), units run one
 * batch at a time within update-domain boundaries (R13, R14) behind the health gates (R20, R23, R24).
 *
 *   openPhase → startWave → tryStartBatch ──(instances settle)──▶ completeBatch ─┬▶ next batch
 *        ▲                                                                        └▶ unitPassDone → next wave
 *        └──────────── bake timer ◀── phasePassDone (phase gate) ◀── regionPassDone ◀┘
 */
import { retryIntervalMs } from '../planner/profile.js';
import { batchScope } from '../planner/types.js';
import { explainBatch } from '../planner/units.js';
import type { TickContext } from './context.js';
import { emit, schedule } from './context.js';
import { admissionBlocker, phaseGate, postBatchHealthGate, preBatchHealthGate, upgradedHealthGate } from './gates.js';
import { skipInstance, skipReason, startUpgrade } from './instances.js';
import type { BatchRun, RegionState, RolloutState, UnitState } from './state.js';
import { getInstance } from './state.js';

export function openPhase(ctx: TickContext, r: RolloutState, index: number): void {
  const planned = r.plan.phases[index]!;
  const phase = r.phases[index]!;
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
 * Starts the region's current wave and moves to the next once every unit of it finished its pass.
 * Re-entrant calls (a unit finishing while its wave starts) return at once; the outer call sees them.
 */
function advanceRegion(ctx: TickContext, r: RolloutState, rs: RegionState): void {
  if (rs.advancing) return;
  rs.advancing = true;
  try {
    const waves = regionWaves(r, rs);
    while (rs.wave < waves.length) {
      const units = waves[rs.wave]!.units.map((u) => r.units.get(u.id)!);
      if (rs.waveRemaining < 0) {
        rs.waveRemaining = units.filter((u) => !u.passDone).length;
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
  regionPassDone(ctx, r, rs);
}

function zoneKey(u: UnitState): string {
  return u.plan.crossZone ? '\u0000cross' : (u.plan.zone ?? '\u0000none');
}

/** Starts the unit's next batch if its gates and locks allow; otherwise records why it waits. */
export function tryStartBatch(ctx: TickContext, r: RolloutState, u: UnitState): void {
  if (r.status !== 'running' || u.inflight || u.status === 'waiting') return;
  if (u.status === 'paused' || u.status === 'held' || u.status === 'stopped') return; // a timer wakes these
  const rs = r.regions.get(u.region)!;
  const limits = u.plan.limits;
  for (;;) {
    const planned = u.next < u.plan.batches.length ? u.plan.batches[u.next]! : null;
    if (!planned && u.retryReady.length === 0) {
      u.status = 'done';
      if (!u.passDone) unitPassDone(ctx, r, u);
      return;
    }
    if (limits.maxUnhealthyInstancePercent !== null && u.plan.setId) {
      const verdict = preBatchHealthGate(ctx.state.fleet.setUnhealthy.get(u.plan.setId) ?? 0, u.plan.setSize, limits.maxUnhealthyInstancePercent);
      if (!verdict.pass) {
        holdUnit(ctx, r, u, 'gate.held', verdict, r.plan.profile.gateRecheckMs);
        return;
      }
    }
    const blocker = admissionBlocker(zoneKey(u), {
      regionInflightByZone: rs.inflightByZone,
      pairInflight: rs.pair ? (r.regions.get(rs.pair)?.inflight ?? 0) : 0,
      setInflight: u.plan.setId ? (r.setInflight.get(u.plan.setId) ?? 0) : 0,
    });
    if (blocker) {
      u.status = 'blocked';
      rs.blocked.add(u);
      return;
    }
    const run = planned ? takePlanned(u, planned.id, planned.updateDomain, planned.machineIds) : takeRetry(ctx, u);
    const toStart: string[] = [];
    for (const id of run.machineIds) {
      const reason = skipReason(r, getInstance(ctx.state.fleet, r.artifactKey, id));
      if (reason) skipInstance(ctx, r, u, run.id, id, reason);
      else toStart.push(id);
    }
    if (toStart.length === 0) continue;
    run.machineIds = toStart;
    run.unsettled = toStart.length;
    u.inflight = run;
    u.status = 'running';
    rs.inflight++;
    rs.inflightByZone.set(zoneKey(u), (rs.inflightByZone.get(zoneKey(u)) ?? 0) + 1);
    if (u.plan.setId) r.setInflight.set(u.plan.setId, (r.setInflight.get(u.plan.setId) ?? 0) + 1);
    emit(ctx, {
      type: 'batch.started',
      rolloutId: r.id,
      batchId: run.id,
      scope: batchScope(u.plan, u.region, run),
      instances: toStart,
      ...(u.plan.kind === 'scaleSet' || u.plan.kind === 'availabilitySet' ? { setSize: u.plan.setSize } : {}),
      limit: limits.maxBatch,
      reason: run.retry ? 'retry of instances rolled back earlier (R30)' : explainBatch(u.plan, planned!),
      ...(run.retry ? { retry: true } : {}),
    });
    for (const id of toStart) startUpgrade(ctx, r, u, run.id, id);
    return;
  }
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
  const cap = u.plan.limits.maxBatch;
  const chosen: string[] = [];
  const rest: string[] = [];
  for (const id of u.retryReady) (udOf(id) === lowest && chosen.length < cap ? chosen : rest).push(id);
  u.retryReady = rest;
  u.retryBatches++;
  return { id: `${u.plan.id}/r${u.retryBatches}`, updateDomain: lowest >= 0 ? lowest : null, machineIds: chosen, unsettled: 0, retry: true };
}

function holdUnit(ctx: TickContext, r: RolloutState, u: UnitState, type: 'gate.held' | 'gate.breached', verdict: ReturnType<typeof preBatchHealthGate>, wakeAfterMs: number): void {
  u.status = verdict.rule === 'R23' ? 'stopped' : 'held';
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
  const run = u.inflight;
  if (!run || run.id !== batchId) return;
  run.unsettled--;
  if (run.unsettled > 0) return;
  completeBatch(ctx, r, u, run);
}

function completeBatch(ctx: TickContext, r: RolloutState, u: UnitState, run: BatchRun): void {
  const rs = r.regions.get(u.region)!;
  u.inflight = null;
  u.status = 'ready';
  rs.inflight--;
  rs.inflightByZone.set(zoneKey(u), rs.inflightByZone.get(zoneKey(u))! - 1);
  if (u.plan.setId) r.setInflight.set(u.plan.setId, r.setInflight.get(u.plan.setId)! - 1);
  emit(ctx, {
    type: 'batch.completed',
    rolloutId: r.id,
    batchId: run.id,
    scope: batchScope(u.plan, u.region, run),
    instances: run.machineIds,
    reason: `${u.upgraded} upgraded in this unit so far, ${u.unhealthyUpgraded} unhealthy`,
  });

  const limits = u.plan.limits;
  const upgraded = upgradedHealthGate(u.unhealthyUpgraded, u.upgraded, limits.maxUnhealthyUpgradedInstancePercent);
  const setHealth = limits.maxUnhealthyInstancePercent !== null && u.plan.setId
    ? postBatchHealthGate(ctx.state.fleet.setUnhealthy.get(u.plan.setId) ?? 0, u.plan.setSize, limits.maxUnhealthyInstancePercent)
    : null;
  if (u.upgraded > 0 && !upgraded.pass) {
    // R23: the release hurts this set. Stop it; its remaining instances come back with the retries.
    holdUnit(ctx, r, u, 'gate.breached', upgraded, retryIntervalMs(r.plan.profile, u.plan.machineKind));
    if (!u.passDone) unitPassDone(ctx, r, u);
  } else if (setHealth && !setHealth.pass) {
    holdUnit(ctx, r, u, 'gate.breached', setHealth, r.plan.profile.gateRecheckMs);
  } else if (limits.pauseBetweenBatchesMs > 0 && (u.next < u.plan.batches.length || u.retryReady.length > 0)) {
    u.status = 'paused';
    schedule(ctx, { at: ctx.now + limits.pauseBetweenBatchesMs, kind: 'unitResume', rolloutId: r.id, ref: u.plan.id, token: 0 });
  } else {
    tryStartBatch(ctx, r, u);
  }
  wakeBlocked(ctx, r, rs);
  if (rs.pair) {
    const pair = r.regions.get(rs.pair);
    if (pair) wakeBlocked(ctx, r, pair);
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

/** A timer woke a paused, held or stopped unit. */
export function resumeUnit(ctx: TickContext, r: RolloutState, u: UnitState): void {
  if (u.status !== 'paused' && u.status !== 'held' && u.status !== 'stopped') return;
  if (u.status === 'stopped') {
    // A new run of the set after an R23 stop: its counters start again.
    u.upgraded = 0;
    u.unhealthyUpgraded = 0;
  }
  u.status = 'ready';
  tryStartBatch(ctx, r, u);
}

/** A retry is queued in its unit; run it when the unit is idle. */
export function wakeForRetry(ctx: TickContext, r: RolloutState, u: UnitState, machineId: string): void {
  u.retryReady.push(machineId);
  if (u.status === 'done') u.status = 'ready';
  if (u.status === 'ready') tryStartBatch(ctx, r, u);
}

function unitPassDone(ctx: TickContext, r: RolloutState, u: UnitState): void {
  u.passDone = true;
  const rs = r.regions.get(u.region)!;
  if (rs.passDone || u.wave !== rs.wave || rs.waveRemaining < 0) return;
  rs.waveRemaining--;
  advanceRegion(ctx, r, rs);
}

function regionPassDone(ctx: TickContext, r: RolloutState, rs: RegionState): void {
  if (rs.passDone) return;
  rs.passDone = true;
  const planned = r.plan.phases[rs.phase]!;
  if (!planned.regions.every((p) => r.regions.get(p.region)!.passDone)) return;
  phasePassDone(ctx, r, rs.phase);
}

function phasePassDone(ctx: TickContext, r: RolloutState, index: number): void {
  const phase = r.phases[index]!;
  const regions = r.plan.phases[index]!.regions.map((p) => p.region);
  const verdict = phaseGate(phase.unhealthy, phase.upgraded, r.plan.profile.maxPhaseFailurePercent, r.plan.profile.minPhaseFailures);
  phase.endedAtMs = ctx.now;
  if (!verdict.pass) {
    phase.status = 'failed';
    emit(ctx, { type: 'phase.failed', rolloutId: r.id, phase: index, regions, reason: verdict.reason, upgraded: phase.upgraded, unhealthy: phase.unhealthy });
    emit(ctx, { type: 'gate.breached', rolloutId: r.id, gate: verdict.gate, observed: verdict.observed, limit: verdict.limit, scope: { region: regions.join(','), subscription: '*' }, reason: verdict.reason, rule: verdict.rule });
    stopRollout(ctx, r, `phase ${index} failed: ${verdict.reason}`);
    return;
  }
  phase.status = 'completed';
  emit(ctx, { type: 'phase.completed', rolloutId: r.id, phase: index, regions, reason: verdict.reason, upgraded: phase.upgraded, unhealthy: phase.unhealthy });
  if (index + 1 < r.phases.length) {
    r.phases[index + 1]!.status = 'baking';
    const bake = r.plan.phases[index]!.bakeAfterMs;
    if (bake > 0) schedule(ctx, { at: ctx.now + bake, kind: 'phaseOpen', rolloutId: r.id, ref: String(index + 1), token: 0 });
    else openPhase(ctx, r, index + 1);
  } else {
    checkRolloutDone(ctx, r);
  }
}

export function stopRollout(ctx: TickContext, r: RolloutState, reason: string): void {
  if (r.status !== 'running') return;
  r.status = 'stopped';
  r.reason = reason;
  ctx.dirtyRollouts.add(r);
  emit(ctx, { type: 'rollout.stopped', rolloutId: r.id, reason });
}

/** Completes the rollout once every phase ran and every eligible instance reached a final state. */
export function checkRolloutDone(ctx: TickContext, r: RolloutState): void {
  if (r.status !== 'running' || r.open > 0) return;
  if (!r.phases.every((p) => p.status === 'completed')) return;
  r.status = 'completed';
  r.endedAtMs = ctx.now;
  r.reason = 'every eligible instance reached a final state';
  ctx.dirtyRollouts.add(r);
  emit(ctx, { type: 'rollout.completed', rolloutId: r.id, reason: r.reason });
}
