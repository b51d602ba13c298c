/**
 * The start of a unit's next batch: the R23 stop, the window (R70), the policy gate (R65), R20 and the
 * locks (R10, R11, R13) in that order, then the planned batch or a batch of queued retries (R30).
 */
import type { ExtensionInstance } from '../../model/artifact.js';
import { batchScope } from '../../planner/types.js';
import { explainBatch } from '../../planner/units.js';
import type { AttemptState, BatchRun, RegionState, RolloutState, UnitState } from '../state.js';
import { unitStandaloneKey } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit, schedule } from '../core/context.js';
import { isoOf } from '../clock.js';
import { noticeEnded, startUpgrade } from '../attempts/upgrade.js';
import { deferInstance, inFlightElsewhere, settledByRemoval, skipInstance, skipReason } from '../attempts/skip.js';
import type { GateVerdict } from './gates.js';
import { admissionBlocker, preBatchHealthGate, subscriptionSpreadBlocker } from './gates.js';
import type { SetHealth } from './set-health.js';
import { HELD_RELEASE_MS, judgeSetHealth } from './set-health.js';
import { recordBypass, waitForWindow, windowGate } from './windows.js';
import { policyPaused } from './policy-gate.js';
import { releaseBatchStarted, releaseBlocks } from './release-gate.js';
import { installBatchStep, markStopped, settleForWave, unitPassDone, zoneKey } from './waves.js';

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
    if (pausing(ctx, r, u)) return;
    if (!gateRunOpen(ctx, r, u)) return;
    const window = windowGate(ctx, r, u, planned ? planned.machineIds : u.retryReady);
    if (!window.start) {
      waitForWindow(ctx, r, u, window);
      return;
    }
    if (policyPaused(ctx, r, u)) return;
    if (!r.force && limits.maxUnhealthyInstancePercent !== null && u.plan.setId) {
      const health = judgeSetHealth(ctx, u.plan.setId, u.plan.setSize, limits.maxUnhealthyInstancePercent, preBatchHealthGate);
      if (health && !health.verdict.pass) {
        holdForSetHealth(ctx, r, u, 'gate.held', health.verdict);
        return;
      }
      if (health && health.excluded.length > 0) reportExcluded(ctx, r, u, health);
    }
    const size = planned ? planned.machineIds.length : Math.min(u.retryReady.length, limits.maxBatch);
    if (releaseBlocks(ctx, r, u, size)) return; // the release is held, or its first batches are fanning out
    const blocker = admissionBlocker(zoneKey(u), {
      regionInflightByZone: rs.inflightByZone,
      pairInflight: rs.pair ? (r.regions.get(rs.pair)?.inflight ?? 0) : 0,
      setInflight: u.plan.setId ? (ctx.state.setInflight.get(u.plan.setId) ?? 0) : 0,
    });
    if (blocker) {
      block(ctx, r, u, rs);
      return;
    }
    if (standaloneBlocker(ctx, r, u, size)) {
      block(ctx, r, u, rs);
      const key = unitStandaloneKey(r, u);
      let waiters = ctx.state.subscriptionWaiters.get(key);
      if (!waiters) ctx.state.subscriptionWaiters.set(key, (waiters = new Set()));
      waiters.add(u); // woken when a batch of the subscription completes in another region (batch-end.ts)
      return;
    }
    if (planned && anyInFlightElsewhere(ctx, r, planned.machineIds)) {
      // One action at a time per instance: the batch waits for the other rollout's attempt (woken by rejoinAfterSettle).
      block(ctx, r, u, rs);
      return;
    }
    const run = planned ? takePlanned(u, planned.id, planned.updateDomain, planned.machineIds) : takeRetry(ctx, u);
    const toStart: ExtensionInstance[] = [];
    // Each machine's earlier attempt in this rollout, looked up once. A planned batch's machines have one
    // only when they left before it came (skipGone): attempts start nowhere else before their batch.
    const priors: Array<AttemptState | undefined> = [];
    const instances = ctx.state.fleet.instances.get(r.artifactKey);
    const noneGone = planned !== null && r.goneBeforeBatch === 0;
    for (const id of run.machineIds) {
      const prior = noneGone ? undefined : r.attempts.get(id);
      if (planned && settledByRemoval(prior)) continue; // gone before its batch came, and counted then
      const inst = instances?.get(id);
      const reason = skipReason(ctx, r, inst);
      // A planned batch got here only if none of its machines is in flight elsewhere (anyInFlightElsewhere above).
      const busy = reason || planned ? null : inFlightElsewhere(ctx.state, r, id);
      if (reason) skipInstance(ctx, r, u, run.id, id, reason);
      else if (busy) deferInstance(ctx, r, u, run.id, id, busy);
      else {
        toStart.push(inst!);
        priors.push(prior);
      }
    }
    if (toStart.length === 0) continue;
    if (window.bypassed) recordBypass(ctx, r, u, run.id, window.bypassed);
    startRun(ctx, r, u, rs, run, toStart, priors, planned ? explainBatch(u.plan, planned) : 'retry of instances rolled back earlier (R30)');
    return;
  }
}

function startRun(
  ctx: TickContext, r: RolloutState, u: UnitState, rs: RegionState, run: BatchRun, toStart: ExtensionInstance[], priors: Array<AttemptState | undefined>, reason: string,
): void {
  if (toStart.length !== run.machineIds.length) run.machineIds = toStart.map((i) => i.machineId);
  run.unsettled = toStart.length;
  u.inflight = run;
  u.batchStartedAtMs = ctx.now;
  u.status = 'running';
  u.windowOpensAt = undefined;
  u.heldSinceMs = undefined;
  u.releasedAtMs = undefined;
  if (!u.plan.setId) {
    const key = unitStandaloneKey(r, u);
    ctx.state.standaloneInflight.set(key, (ctx.state.standaloneInflight.get(key) ?? 0) + toStart.length);
  }
  rs.inflight++;
  releaseBatchStarted(ctx, r, toStart.length);
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
  for (let i = 0; i < toStart.length; i++) startUpgrade(ctx, r, u, run.id, toStart[i]!, priors[i]);
  // R83: the batch's re-images were announced together; one timer ends their notice.
  if (r.artifact.kind === 'extension') return;
  for (const inst of toStart) {
    const a = r.attempts.get(inst.machineId);
    if (a?.status !== 'noticed') continue;
    if (a.dueAtMs !== null) schedule(ctx, { at: a.dueAtMs, kind: 'noticeDue', rolloutId: r.id, ref: u.plan.id, token: run.id });
    return; // the first announced one: all share the instant
  }
}

/** The notice of a batch's re-images ran out (R83): those still waiting start now. */
export function endBatchNotice(ctx: TickContext, r: RolloutState, u: UnitState, batchId: string): void {
  if (!u.inflight || u.inflight.id !== batchId) return;
  for (const id of u.inflight.machineIds) noticeEnded(ctx, r, id, null);
}

function anyInFlightElsewhere(ctx: TickContext, r: RolloutState, machineIds: readonly string[]): boolean {
  if (ctx.state.rollouts.size < 2) return false;
  for (const id of machineIds) if (inFlightElsewhere(ctx.state, r, id)) return true;
  return false;
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

export function hold(ctx: TickContext, r: RolloutState, u: UnitState, type: 'gate.held' | 'gate.breached', verdict: GateVerdict, status: 'held' | 'stopped', wakeAfterMs: number): void {
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

/**
 * `pauseTimeBetweenBatches` (R14, the set's policy) between any two batches of the unit, planned or
 * retry: a retry that comes due right after a batch waits out the pause like the next planned batch.
 */
function pausing(ctx: TickContext, r: RolloutState, u: UnitState): boolean {
  const pause = u.plan.limits.pauseBetweenBatchesMs;
  if (pause <= 0 || u.lastBatchEndedAtMs === undefined || ctx.now >= u.lastBatchEndedAtMs + pause) return false;
  u.status = 'paused';
  schedule(ctx, { at: u.lastBatchEndedAtMs + pause, kind: 'unitResume', rolloutId: r.id, ref: u.plan.id, token: 0 });
  return true;
}

/** R12 across the regions of a phase: see `subscriptionSpreadBlocker`. */
function standaloneBlocker(ctx: TickContext, r: RolloutState, u: UnitState, batch: number): string | null {
  if (u.plan.setId) return null;
  const inflight = ctx.state.standaloneInflight.get(unitStandaloneKey(r, u)) ?? 0;
  if (inflight === 0) return null;
  return subscriptionSpreadBlocker(inflight, batch, u.standaloneTotal ?? (u.standaloneTotal = standaloneTotal(r, u.phase, u.plan.subscription)));
}

const standaloneTotals = new WeakMap<RolloutState, Map<string, number>>();

/** A subscription's standalone instances planned in a phase (derived from the plan once per rollout). */
function standaloneTotal(r: RolloutState, phase: number, subscription: string): number {
  let totals = standaloneTotals.get(r);
  if (!totals) {
    totals = new Map();
    for (const p of r.plan.phases) {
      for (const region of p.regions) {
        for (const wave of region.waves) {
          for (const unit of wave.units) {
            if (unit.setId) continue;
            const key = `${p.index}/${unit.subscription}`;
            totals.set(key, (totals.get(key) ?? 0) + unit.batches.reduce((n, b) => n + b.machineIds.length, 0));
          }
        }
      }
    }
    standaloneTotals.set(r, totals);
  }
  return totals.get(`${phase}/${subscription}`) ?? 0;
}

/**
 * R20/R24 hold a set; one held beyond `HELD_RELEASE_MS` stops holding its wave and phase
 * (`gate.released`) and is rechecked as before.
 */
export function holdForSetHealth(ctx: TickContext, r: RolloutState, u: UnitState, type: 'gate.held' | 'gate.breached', verdict: GateVerdict): void {
  u.heldSinceMs ??= ctx.now;
  if (ctx.now - u.heldSinceMs < HELD_RELEASE_MS) {
    hold(ctx, r, u, type, verdict, 'held', r.plan.profile.gateRecheckMs);
    return;
  }
  if (u.releasedAtMs === undefined) {
    u.releasedAtMs = ctx.now;
    const hours = Math.floor((ctx.now - u.heldSinceMs) / 3_600_000);
    emit(ctx, {
      type: 'gate.released', rolloutId: r.id, gate: verdict.gate, observed: verdict.observed, limit: verdict.limit,
      scope: { region: u.region, zone: u.plan.zone, setId: u.plan.setId, subscription: u.plan.subscription },
      heldSince: isoOf(u.heldSinceMs), rule: verdict.rule,
      reason: `held ${hours} hours (limit ${HELD_RELEASE_MS / 3_600_000}): the phase is judged without this set, which runs when its health allows`,
    });
  }
  hold(ctx, r, u, type, verdict, 'stopped', r.plan.profile.gateRecheckMs);
  settleForWave(ctx, r, u);
}

/** Names the machines the set's health share left out for this batch (`gate.excluded`). */
export function reportExcluded(ctx: TickContext, r: RolloutState, u: UnitState, health: SetHealth): void {
  const v = health.verdict;
  emit(ctx, {
    type: 'gate.excluded', rolloutId: r.id, gate: v.gate, observed: v.observed, limit: v.limit, rule: v.rule,
    scope: { region: u.region, zone: u.plan.zone, setId: u.plan.setId, subscription: u.plan.subscription },
    machines: health.excluded, reason: v.reason,
  });
}

installBatchStep(tryStartBatch);
