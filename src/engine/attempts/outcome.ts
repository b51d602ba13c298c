/**
 * How an attempt ends (R21, R22, R30, R31, R62):
 *
 *   upgrade answered ──ok──▶ health wait ──healthy──▶ succeeded (last-known-good := new)
 *        │                        └──window closes──▶ unhealthy ─┐
 *        └──failed────────────────────────────────────────────────┴▶ rollback ──ok──▶ retry later
 *                                                                           └─failed──▶ Failed (R31)
 *
 * Functions here report whether the attempt settled; the caller moves the batch on.
 */
import type { ExtensionInstance } from '../../model/artifact.js';
import { recordGood } from '../../model/artifact.js';
import type { HealthSignals } from '../../model/health.js';
import { isInstanceHealthy, unhealthyReason } from '../../model/health.js';
import { retryIntervalMs } from '../../planner/profile.js';
import { isoOf } from '../clock.js';
import type { PatchReport, ReimageReport } from '../driver.js';
import type { AttemptState, RolloutState, UnitState } from '../state.js';
import { addHealthWaiter, refreshMachineHealth, removeHealthWaiter } from '../state.js';
import type { TickContext } from '../core/context.js';
import { cancelTimer, changed, emit, machineWait, schedule, scheduleTimer } from '../core/context.js';
import { patchRunId } from './upgrade.js';
import { emitInstance, emitVersionChange, finish, sendAction } from './record.js';
import { busyElsewhereReason, inFlightElsewhere, skipReason } from './skip.js';
import { recordOutcome } from './release-evidence.js';
import { failedForGood } from '../core/failed-for-good.js';

/** A machine with no report kept is healthy (`health` holds only the unhealthy): one object for every verdict, not one each. */
const NO_REPORT: HealthSignals = Object.freeze({ platform: true });

/** The start of the reason a retry waits on a machine that cannot turn healthy (opt-in.ts's `resumeCannotHeal` looks for it). */
export const CANNOT_HEAL = 'retry not attempted: the machine cannot turn healthy until someone acts';

/** The answer to an upgrade or rollback. Returns true when the attempt settled. */
export function onActionResult(
  ctx: TickContext, r: RolloutState, unit: UnitState, a: AttemptState, kind: 'upgrade' | 'rollback', ok: boolean, reason: string,
  reimage?: ReimageReport, patch?: PatchReport,
): boolean {
  const inst = a.inst;
  a.actionKey = null;
  changed.instance(ctx, inst);
  changed.attempt(ctx, a);
  if (patch?.rebooted && kind === 'upgrade') recordPatchReboot(ctx, r, a, patch);
  if (kind === 'upgrade') {
    if (ok) {
      if (reimage) emitInstance(ctx, 'instance.reimaged', r, a, { fromVersion: a.fromVersion, toVersion: r.toVersion, ...reimage });
      inst.installedVersion = r.toVersion;
      inst.status = 'Succeeded';
      a.status = 'healthWait';
      addHealthWaiter(ctx.state, a);
      const at = ctx.now + machineWait(ctx, a.machineId, unit.plan.limits.healthWindowMs);
      a.healthTimer = scheduleTimer(ctx, at, 'healthDeadline', r.id, a.machineId, a.attempt, a);
      return false;
    }
    inst.status = 'Failed';
    refreshMachineHealth(ctx.state.fleet, a.machineId);
    emitInstance(ctx, 'instance.upgrade.failed', r, a, { fromVersion: a.fromVersion, toVersion: r.toVersion, reason });
    countJudged(ctx, r, unit, a, true);
    return startRollback(ctx, r, a, inst, reason);
  }
  // Rollback answered.
  if (ok) {
    // An OS image rollback re-images the machine back (R62): an availability impact like the upgrade's (R61, R84).
    if (reimage) emitInstance(ctx, 'instance.reimaged', r, a, { fromVersion: r.toVersion, toVersion: inst.lastKnownGoodVersion, ...reimage });
    inst.installedVersion = inst.lastKnownGoodVersion;
    inst.desiredVersion = inst.lastKnownGoodVersion;
    inst.status = 'Succeeded';
    refreshMachineHealth(ctx.state.fleet, a.machineId);
    emitInstance(ctx, 'instance.rollback.succeeded', r, a, { fromVersion: r.toVersion, toVersion: inst.lastKnownGoodVersion });
    scheduleRetry(ctx, r, a);
    return true;
  }
  inst.status = 'Failed';
  inst.blockedReason = `rollback to ${inst.lastKnownGoodVersion} failed: no automatic attempts until the extension is removed and installed again (R31)`;
  refreshMachineHealth(ctx.state.fleet, a.machineId);
  emitInstance(ctx, 'instance.rollback.failed', r, a, { fromVersion: r.toVersion, toVersion: inst.lastKnownGoodVersion, reason });
  a.reason = reason;
  finish(ctx, r, a, 'failed');
  return true;
}

/** R84: a platform patch installation rebooted the machine (announced before, see upgrade.ts): an availability impact. */
function recordPatchReboot(ctx: TickContext, r: RolloutState, a: AttemptState, patch: PatchReport): void {
  const placement = ctx.state.fleet.machines.get(a.machineId)?.placement;
  if (!placement) return;
  emit(ctx, {
    type: 'availability.impact', machineId: a.machineId, placement, cause: 'Reboot', state: 'Unavailable',
    startTime: isoOf(ctx.now - patch.rebootSec * 1000), durationSec: patch.rebootSec, planned: true,
    reason: `rebooted after installing platform patch baseline ${r.toVersion} (${patch.installed} installed, ${patch.failed} failed) (R76, R84)`,
    runId: patchRunId(r, a),
  });
}

/** R22 (R62 for OS images): back to last-known-good. Returns true when the attempt settled without a rollback. */
function startRollback(ctx: TickContext, r: RolloutState, a: AttemptState, inst: ExtensionInstance, reason: string): boolean {
  if (r.artifact.kind === 'guestPatch') {
    // R76: installed patches are not uninstalled. The machine stays as it is and reads Failed; the gates
    // count it (R20–R23) and stop the baseline's rollout by their rules. The next baseline tries again.
    changed.instance(ctx, inst);
    inst.status = 'Failed';
    inst.lastError = reason;
    refreshMachineHealth(ctx.state.fleet, a.machineId);
    emitInstance(ctx, 'instance.rollback.skipped', r, a, {
      fromVersion: inst.installedVersion, toVersion: inst.lastKnownGoodVersion, reason: `patches cannot be uninstalled: not rolled back (R76); ${reason}`,
    });
    a.reason = reason;
    finish(ctx, r, a, 'failed');
    return true;
  }
  if (rollbackDisabled(ctx, r, a.machineId)) {
    // R62: the set keeps failed instances on the new image; the thresholds still stop the upgrade.
    changed.instance(ctx, inst);
    inst.status = 'Failed';
    inst.blockedReason = `left on ${inst.installedVersion} after it turned unhealthy: the scale set's automatic OS upgrade policy has disableAutomaticRollback (R62)`;
    refreshMachineHealth(ctx.state.fleet, a.machineId);
    emitInstance(ctx, 'instance.rollback.skipped', r, a, { fromVersion: inst.installedVersion, toVersion: inst.lastKnownGoodVersion, reason: `disableAutomaticRollback: not rolled back (R62); ${reason}` });
    a.reason = reason;
    finish(ctx, r, a, 'failed');
    return true;
  }
  if (r.plan.downgrade) {
    // Going back from a withdrawn version: "back" again would be the withdrawn version; it stays here.
    // The version it reached was its last known good before the withdrawn one, and is again: a later
    // rollback must never aim at the withdrawn version.
    if (inst.installedVersion === r.toVersion && inst.lastKnownGoodVersion !== r.toVersion) {
      changed.instance(ctx, inst);
      inst.lastKnownGoodVersion = r.toVersion;
    }
    emitInstance(ctx, 'instance.rollback.skipped', r, a, {
      fromVersion: inst.installedVersion, toVersion: inst.lastKnownGoodVersion,
      reason: `left on ${inst.installedVersion}: the version it came from was withdrawn; ${reason}`,
    });
    a.reason = reason;
    finish(ctx, r, a, 'failed');
    return true;
  }
  a.status = 'rollingBack';
  a.reason = reason;
  emitInstance(ctx, 'instance.rollback.started', r, a, { fromVersion: inst.installedVersion, toVersion: inst.lastKnownGoodVersion, reason });
  sendAction(ctx, r, a, 'rollback', inst, inst.installedVersion, inst.lastKnownGoodVersion);
  return false;
}

function rollbackDisabled(ctx: TickContext, r: RolloutState, machineId: string): boolean {
  if (r.artifact.kind !== 'osImage') return false;
  const setId = ctx.state.fleet.machines.get(machineId)?.placement.setId;
  return setId ? ctx.state.fleet.scaleSets.get(setId)?.upgradePolicy.automaticOSUpgradePolicy.disableAutomaticRollback === true : false;
}

/** R30: after a good rollback the instance is queued again; manual and halted rollouts do not retry. */
function scheduleRetry(ctx: TickContext, r: RolloutState, a: AttemptState): void {
  if (r.plan.profile.name === 'manual' || r.status === 'cancelled') {
    finish(ctx, r, a, 'rolledBack');
    return;
  }
  const machine = ctx.state.fleet.machines.get(a.machineId)!;
  const at = ctx.now + retryIntervalMs(r.plan.profile, machine.kind);
  a.status = 'retryWait';
  a.dueAtMs = at;
  schedule(ctx, { at, kind: 'retry', rolloutId: r.id, ref: a.machineId, token: a.attempt, attempt: a });
  emitInstance(ctx, 'instance.retry.scheduled', r, a, {
    at: isoOf(at),
    reason:
      machine.kind === 'arc' ? 'Arc machines retry an hour after a rollback (R30)' : 'VMs and scale sets retry days after a rollback (R30)',
  });
}

function countJudged(ctx: TickContext, r: RolloutState, unit: UnitState, a: AttemptState, unhealthy: boolean): void {
  recordOutcome(ctx, r, unit, a, unhealthy);
  changed.gateRun(ctx, unit.gateRun);
  unit.gateRun.upgraded++;
  const phase = r.phases[unit.phase]!;
  changed.phase(ctx, phase);
  phase.upgraded++;
  if (unhealthy) {
    unit.gateRun.unhealthyUpgraded++;
    phase.unhealthy++;
  }
}

/** A healthy verdict within the window (R21): the new version becomes last-known-good. */
export function tryJudgeHealthy(ctx: TickContext, r: RolloutState, unit: UnitState, a: AttemptState): boolean {
  if (a.status !== 'healthWait') return false;
  const inst = a.inst;
  const signals = ctx.state.fleet.health.get(a.machineId) ?? NO_REPORT;
  if (!isInstanceHealthy(signals, inst.status)) return false;
  removeHealthWaiter(ctx.state, a.machineId, r.id);
  if (a.healthTimer) cancelTimer(ctx, a.healthTimer); // judged healthy: the deadline can do nothing
  recordGood(inst, inst.installedVersion);
  changed.instance(ctx, inst);
  countJudged(ctx, r, unit, a, false);
  emitVersionChange(ctx, 'instance.upgrade.succeeded', r, a, a.fromVersion, r.toVersion);
  finish(ctx, r, a, 'succeeded');
  return true;
}

/** R22: not healthy when the window closes, so roll back to last-known-good. */
export function onHealthDeadline(ctx: TickContext, r: RolloutState, unit: UnitState, a: AttemptState): boolean {
  const inst = a.inst;
  const signals = ctx.state.fleet.health.get(a.machineId) ?? NO_REPORT;
  const reason = unhealthyReason(signals, inst.status) ?? `no healthy report within ${unit.plan.limits.healthWindowMs / 1000} s of the upgrade`;
  removeHealthWaiter(ctx.state, a.machineId, r.id);
  emitInstance(ctx, 'instance.health.unhealthy', r, a, { fromVersion: a.fromVersion, toVersion: r.toVersion, reason });
  countJudged(ctx, r, unit, a, true);
  return startRollback(ctx, r, a, inst, reason);
}

/** A retry came due: queue it in its unit, or park it if the operator opted out meanwhile (R5, R32). */
export function onRetryDue(ctx: TickContext, r: RolloutState, a: AttemptState): 'ready' | 'parked' | 'ignored' {
  if (a.status !== 'retryWait' || r.status !== 'running') return 'ignored';
  const inst = a.inst;
  const reason = skipReason(ctx, r, inst);
  if (reason) {
    a.reason = reason;
    emitInstance(ctx, 'instance.skipped', r, a, { reason: `retry not attempted: ${reason}` });
    finish(ctx, r, a, 'parked');
    return 'parked';
  }
  // R30 retries until one succeeds, but a machine reporting unhealthy whose other extension is Failed for good (R31)
  // cannot pass a health check: each retry would only be rolled back again (a re-image at every turn).
  // The machine's own report, not `unhealthy` (which counts any Failed extension): a machine reporting healthy
  // beside a Failed extension passes its health check, and its retry goes ahead.
  const stuck = ctx.state.fleet.health.has(a.machineId) ? failedForGood(ctx, a.machineId, r.artifactKey) : null;
  if (stuck) {
    a.reason = `${CANNOT_HEAL} (${stuck}); it is retried once the machine turns healthy or that extension is installed again or removed`;
    emitInstance(ctx, 'instance.skipped', r, a, { reason: a.reason });
    finish(ctx, r, a, 'parked');
    return 'parked';
  }
  const busy = inFlightElsewhere(ctx.state, r, a.machineId);
  if (busy) {
    // One action at a time per instance: the retry waits for the other rollout's attempt (rejoinAfterSettle).
    changed.attempt(ctx, a);
    a.dueAtMs = null;
    a.reason = busyElsewhereReason(busy);
    emitInstance(ctx, 'instance.skipped', r, a, { reason: `retry not attempted yet: ${a.reason}` });
    return 'ignored';
  }
  a.status = 'retryReady';
  a.dueAtMs = null;
  changed.attempt(ctx, a);
  return 'ready';
}
