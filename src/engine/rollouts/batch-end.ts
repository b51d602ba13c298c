/**
 * The end of a batch: when its last instance settles, the locks are freed, the gates after a batch
 * judge it (R23, R24), the pause runs, and the units waiting for its locks look again.
 */
import { batchScope } from '../../planner/types.js';
import type { BatchRun, RegionState, RolloutState, UnitState } from '../state.js';
import { unitStandaloneKey } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit, schedule } from '../core/context.js';
import { above, postBatchHealthGate, upgradedHealthGate } from './gates.js';
import { hold, holdForSetHealth, tryStartBatch } from './batches.js';
import { judgeSetHealth } from './set-health.js';
import { releaseBatchEnded, wakeWaiters } from './release-hold.js';
import { judgeBatch } from '../attempts/release-evidence.js';
import { recheckPhase, settleForWave, zoneKey } from './waves.js';
import { r23StopMs, waitingMissesBound } from './bound-pressure.js';

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
  judgeBatch(ctx, r, run); // first: a release judged bad starts no further batch from here
  changed.unit(ctx, u);
  const rs = r.regions.get(u.region)!;
  changed.region(ctx, rs);
  u.inflight = null;
  u.status = 'ready';
  rs.inflight--;
  const rel = releaseBatchEnded(ctx, r, run.machineIds.length);
  rs.inflightByZone.set(zoneKey(u), rs.inflightByZone.get(zoneKey(u))! - 1);
  if (u.plan.setId) ctx.state.setInflight.set(u.plan.setId, ctx.state.setInflight.get(u.plan.setId)! - 1);
  else releaseStandalone(ctx, r, u, run.machineIds.length);
  u.lastBatchEndedAtMs = ctx.now;
  if (u.batchStartedAtMs !== undefined) {
    // Measured for R40's projections (a batch restored in flight after a restart has no start and is not counted).
    u.timedBatches = (u.timedBatches ?? 0) + 1;
    u.timedBatchMs = (u.timedBatchMs ?? 0) + ctx.now - u.batchStartedAtMs;
    u.batchStartedAtMs = undefined;
  }
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
  else wakeSubscription(ctx, r, u);
  if (rel) wakeWaiters(ctx, rel);
}

function releaseStandalone(ctx: TickContext, r: RolloutState, u: UnitState, instances: number): void {
  const key = unitStandaloneKey(r, u);
  const left = (ctx.state.standaloneInflight.get(key) ?? 0) - instances;
  if (left > 0) ctx.state.standaloneInflight.set(key, left);
  else ctx.state.standaloneInflight.delete(key);
}

/** R12: standalone units of the subscription held by the cross-region spread look again. */
function wakeSubscription(ctx: TickContext, r: RolloutState, u: UnitState): void {
  const key = unitStandaloneKey(r, u);
  const waiters = ctx.state.subscriptionWaiters.get(key);
  if (!waiters) return;
  ctx.state.subscriptionWaiters.delete(key);
  for (const w of waiters) {
    if (w.status !== 'blocked') continue;
    r.regions.get(w.region)!.blocked.delete(w);
    w.status = 'ready';
    tryStartBatch(ctx, r, w);
  }
}

/** The gates after a batch (R23, R24), then the pause, then the next batch. */
function afterBatch(ctx: TickContext, r: RolloutState, u: UnitState): void {
  changed.gateRun(ctx, u.gateRun);
  const limits = u.plan.limits;
  const gr = u.gateRun;
  // A forced manual rollout goes on through health failures; each unhealthy instance was still rolled back (R22).
  if (!r.force && above(gr.unhealthyUpgraded, gr.upgraded, limits.maxUnhealthyUpgradedInstancePercent)) {
    const upgraded = upgradedHealthGate(gr.unhealthyUpgraded, gr.upgraded, limits.maxUnhealthyUpgradedInstancePercent);
    // R23: the release hurts this set. Stop all of it; it runs again after the retry interval, or
    // sooner when that would reach its last machines after the bound (R40, bound-pressure.ts).
    const { stopMs, shortened } = r23StopMs(ctx.state, r, u, ctx.now);
    gr.stoppedUntil = ctx.now + stopMs;
    const why = `stopped ${hoursOf(stopMs)} h instead of the retry interval so that its last machines are reached within the ${r.plan.profile.name} bound (R40)`;
    const verdict = shortened ? { ...upgraded, reason: `${upgraded.reason}; ${why}` } : upgraded;
    hold(ctx, r, u, 'gate.breached', verdict, 'stopped', stopMs);
    // Stopped again while its phase waits for it: the phase goes on if waiting would now miss the bound (R40).
    if (u.waveSettled && waitingMissesBound(ctx.state, r, u.phase, ctx.now)) recheckPhase(ctx, r, u.phase);
    else settleForWave(ctx, r, u);
    return;
  }
  const setHealth = !r.force && limits.maxUnhealthyInstancePercent !== null && u.plan.setId
    ? judgeSetHealth(ctx, u.plan.setId, u.plan.setSize, limits.maxUnhealthyInstancePercent, postBatchHealthGate)
    : null;
  if (setHealth !== null && !setHealth.verdict.pass) {
    holdForSetHealth(ctx, r, u, 'gate.breached', setHealth.verdict);
  } else if (limits.pauseBetweenBatchesMs > 0 && (u.next < u.plan.batches.length || u.retryReady.length > 0)) {
    u.status = 'paused';
    schedule(ctx, { at: ctx.now + limits.pauseBetweenBatchesMs, kind: 'unitResume', rolloutId: r.id, ref: u.plan.id, token: 0 });
  } else {
    tryStartBatch(ctx, r, u);
  }
}

export function wakeBlocked(ctx: TickContext, r: RolloutState, rs: RegionState): void {
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

function hoursOf(ms: number): number {
  return Math.round((ms / 3_600_000) * 10) / 10;
}
