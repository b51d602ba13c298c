/**
 * What comes in: observations from machines (action results, health reports) and timers that came
 * due. Each is matched to the attempt or unit it concerns; stale ones (an answer to a settled key, a
 * timer for an attempt that moved on) are ignored.
 */
import { isMachineHealthy } from '../../model/health.js';
import type { TickContext } from '../core/context.js';
import { cancelTimer, machineWait, RECOVERY_GRACE_MS, schedule } from '../core/context.js';
import type { Observation } from '../driver.js';
import { noticeEnded } from '../attempts/upgrade.js';
import { onActionResult, onHealthDeadline, onRetryDue, tryJudgeHealthy } from '../attempts/outcome.js';
import { checkRolloutDone } from '../rollouts/lifecycle.js';
import { endBatchNotice } from '../rollouts/batches.js';
import { onInstanceSettled } from '../rollouts/batch-end.js';
import { openPhase } from '../rollouts/waves.js';
import { resumeUnit, wakeForRetry } from '../rollouts/wake.js';
import { rejoinAfterSettle, resumeCannotHeal } from '../opt-in/opt-in.js';
import type { AttemptState, RolloutState, Timer, UnitState } from '../state.js';
import { healthWaitersOf, refreshReportedHealth, unitOf } from '../state.js';
import { INSTALL_TIMEOUT_MS, onUserActionResult } from '../fleet/user-actions.js';
import { onHostTimer } from '../maintenance/host.js';
import { onImageCheck } from '../os-images/os-images.js';

export function applyObservation(ctx: TickContext, obs: Observation): void {
  if (obs.kind === 'health') {
    const fleet = ctx.state.fleet;
    const m = fleet.machines.get(obs.machineId);
    if (!m) return;
    const healthy = isMachineHealthy(obs.signals);
    // `health` holds the machines whose last report was unhealthy.
    const reportedUnhealthy = fleet.health.has(obs.machineId);
    if (healthy) fleet.health.delete(obs.machineId);
    else fleet.health.set(obs.machineId, obs.signals);
    ctx.changes?.health.add(obs.machineId);
    refreshReportedHealth(fleet, m, healthy ? undefined : obs.signals, obs.machineId);
    // A retry parked while the machine reported unhealthy goes on once it reports healthy (its other
    // extension's failure was not the cause, or a report lost with a crash had left the view stale).
    if (reportedUnhealthy && healthy) resumeCannotHeal(ctx, obs.machineId);
    const waiting = ctx.state.healthWaiters.get(obs.machineId);
    if (waiting === undefined) return;
    // Judging a waiter removes it from the list: walk a copy (one waiter, the common case, is no list).
    if (!Array.isArray(waiting)) judgeWaiter(ctx, waiting);
    else for (const a of healthWaitersOf(ctx.state, obs.machineId)) judgeWaiter(ctx, a);
    return;
  }
  const pending = ctx.state.pendingActions.get(obs.key);
  if (!pending) return; // late or repeated answer: its key was already settled
  ctx.state.pendingActions.delete(obs.key);
  ctx.changes?.answered.push({ key: obs.key, ok: obs.ok });
  if (pending.timer) cancelTimer(ctx, pending.timer); // answered: its timeout can do nothing
  if (pending.kind === 'install' || pending.kind === 'uninstall') {
    onUserActionResult(ctx, obs.key, pending, obs.ok, obs.reason ?? (obs.ok ? '' : 'the agent reported a failure'));
    return;
  }
  const r = ctx.state.rollouts.get(pending.rolloutId)!;
  // The attempt that sent it; an attempt that settled since has no action key, as a lookup would find.
  const a = pending.attempt ?? r.attempts.get(pending.machineId)!;
  if (a.actionKey !== obs.key) return;
  const u = unitOf(r, a);
  const reason = obs.reason ?? (obs.ok ? '' : 'the agent reported a failure');
  if (onActionResult(ctx, r, u, a, pending.kind as 'upgrade' | 'rollback', obs.ok, reason, obs.reimage, obs.patch)) settled(ctx, r, u, a);
}

/** A health report came for a machine a rollout waits on: it may be judged healthy now (R21). */
function judgeWaiter(ctx: TickContext, a: AttemptState): void {
  const r = ctx.state.rollouts.get(a.rolloutId)!;
  const u = unitOf(r, a);
  if (tryJudgeHealthy(ctx, r, u, a)) settled(ctx, r, u, a);
}

function settled(ctx: TickContext, r: RolloutState, u: UnitState, a: AttemptState): void {
  onInstanceSettled(ctx, r, u, a.batchId);
  if (r.open === 0) checkRolloutDone(ctx, r);
  rejoinAfterSettle(ctx, r, a.machineId);
}

export function fireTimer(ctx: TickContext, t: Timer): void {
  if (t.done) return; // cancelled: it left the store then
  t.done = true;
  ctx.changes?.timersFired.push(t);
  if (t.rolloutId === '') {
    if (t.kind === 'hostMaintenance') return onHostTimer(ctx, t.ref);
    if (t.kind === 'imageCheck') return onImageCheck(ctx, ctx.settings, t.at);
    // The timeout of an install the user asked for (no rollout).
    if (t.kind === 'actionTimeout' && ctx.state.pendingActions.has(t.token as string)) {
      applyObservation(ctx, { kind: 'actionResult', key: t.token as string, machineId: t.ref, ok: false, version: '', reason: `no answer from the machine within ${INSTALL_TIMEOUT_MS / 60_000} minutes` });
    }
    return;
  }
  const r = ctx.state.rollouts.get(t.rolloutId);
  if (!r) return;
  switch (t.kind) {
    case 'healthDeadline': {
      const a = currentAttempt(r, t);
      if (!a || a.status !== 'healthWait' || a.attempt !== t.token) return;
      // Just restarted: the report may have been lost with the crash; give the re-observation a chance.
      const graceUntil = ctx.state.recoveredAt + machineWait(ctx, t.ref, RECOVERY_GRACE_MS);
      if (ctx.now < graceUntil) a.healthTimer = schedule(ctx, { at: graceUntil, kind: 'healthDeadline', rolloutId: r.id, ref: t.ref, token: t.token, attempt: a });
      else if (onHealthDeadline(ctx, r, unitOf(r, a), a)) settled(ctx, r, unitOf(r, a), a);
      return;
    }
    case 'actionTimeout': {
      const key = t.token as string;
      if (!ctx.state.pendingActions.has(key)) return;
      const minutes = r.plan.profile.actionTimeoutMs / 60_000;
      applyObservation(ctx, { kind: 'actionResult', key, machineId: t.ref, ok: false, version: '', reason: `no answer from the machine within ${minutes} minutes` });
      return;
    }
    case 'retry': {
      const a = currentAttempt(r, t);
      if (!a || a.attempt !== t.token) return;
      const outcome = onRetryDue(ctx, r, a);
      if (outcome === 'ready') wakeForRetry(ctx, r, unitOf(r, a), a.machineId);
      else if (outcome === 'parked') checkRolloutDone(ctx, r);
      return;
    }
    case 'unitResume': {
      const u = r.units.get(t.ref);
      if (u) resumeUnit(ctx, r, u, t.token);
      return;
    }
    case 'noticeDue': {
      const u = r.units.get(t.ref);
      if (u) endBatchNotice(ctx, r, u, String(t.token));
      else noticeEnded(ctx, r, t.ref, null, t.token as number); // a per-machine timer of an older store
      return;
    }
    case 'phaseOpen': {
      const index = Number(t.ref);
      if (r.status === 'running' && r.phases[index]?.status === 'baking') openPhase(ctx, r, index);
      return;
    }
  }
}

/**
 * The attempt an instance timer concerns. A timer set in this run carries its attempt: an attempt stays
 * the machine's in its rollout until it succeeds (only then does it leave `attempts`, and a plan never
 * upgrades a machine twice), so a timer of a succeeded attempt is stale and needs no lookup in a map of a
 * million entries to tell. A timer read from the store carries none: it is looked up.
 */
function currentAttempt(r: RolloutState, t: Timer): AttemptState | undefined {
  const a = t.attempt;
  if (a === undefined) return r.attempts.get(t.ref);
  return a.status === 'succeeded' ? undefined : a;
}
