/**
 * One artifact instance through one attempt: upgrade, health wait (R21), rollback to last-known-good
 * (R22, R30), retry or Failed (R30, R31). Each extension of a machine is its own attempt (R15).
 * Functions here report whether the attempt settled; the caller moves the batch on.
 */
import type { ExtensionInstance } from '../model/artifact.js';
import type { EngineEvent, EventBody, InstanceIds } from '../model/events.js';
import { isInstanceHealthy, unhealthyReason } from '../model/health.js';
import { majorOf } from '../model/version.js';
import { compareArtifactVersions } from '../model/artifact.js';
import { retryIntervalMs } from '../planner/profile.js';
import { isoOf } from './clock.js';
import { REIMAGE_NOTICE_MS } from '../planner/windows.js';
import type { TickContext } from './context.js';
import type { ReimageReport } from './driver.js';
import { changed, schedule } from './context.js';
import type { AttemptState, RolloutState, UnitState } from './state.js';
import { getInstance, instanceRef, isEnrolled, refreshMachineHealth } from './state.js';
import { effectiveAutoUpgrade } from '../catalog/catalog.js';

/** Why an instance must not be attempted now, or null when it may be (R1, R2, R5, R31). */
export function skipReason(ctx: TickContext, r: RolloutState, inst: ExtensionInstance | undefined): string | null {
  if (!inst) return 'the extension is no longer on the machine';
  if (inst.blockedReason) return inst.blockedReason;
  if (inst.installedVersion === '') return 'the extension is not installed yet';
  const installing = ctx.state.installing;
  if (installing.size > 0 && installing.has(instanceRef(r.artifactKey, inst.machineId))) return 'an install or update the user asked for is in progress';
  // OS images: a set whose automatic OS upgrade is off pauses at the gate (R65), it is not skipped.
  if (r.plan.profile.name !== 'manual' && r.artifact.kind === 'extension') {
    if (!inst.enableAutomaticUpgrade && !effectiveAutoUpgrade(inst, isEnrolled(ctx.state, ctx.state.fleet.machines.get(inst.machineId)!))) return 'automatic upgrade was disabled for this extension (opt-out)';
    if (ctx.state.catalog.getType(inst.publisher, inst.type)?.supportsAutomaticUpgrade !== true) return 'the extension type no longer supports automatic upgrade (R2)';
    if (majorOf(inst.installedVersion) !== r.major) return 'automatic upgrades never cross a major version';
  }
  if (compareArtifactVersions(r.artifact, inst.installedVersion, r.toVersion) >= 0) return `already at ${inst.installedVersion}`;
  return null;
}

type InstanceEventType = Extract<EventBody, InstanceIds>['type'];

/** Emits an instance event with the ids and placement the contract asks for, built in one object. */
function emitInstance<T extends InstanceEventType>(ctx: TickContext, type: T, r: RolloutState, a: AttemptState, extra: Omit<Extract<EventBody, { type: T }>, 'type' | keyof InstanceIds>): void {
  changed.attempt(ctx, a); // every step of an attempt is logged, so this marks it changed too
  ctx.events.push({
    seq: ++ctx.state.eventSeq,
    time: isoOf(ctx.now),
    type,
    rolloutId: r.id,
    batchId: a.batchId,
    machineId: a.machineId,
    placement: ctx.state.fleet.machines.get(a.machineId)!.placement,
    artifact: r.artifact,
    attempt: a.attempt,
    ...extra,
  } as unknown as EngineEvent); // the type parameter ties `extra` to `type`; TypeScript cannot follow it through the union
}

/** Marks an attempt final and closes it on the rollout. */
function finish(ctx: TickContext, r: RolloutState, a: AttemptState, status: 'succeeded' | 'failed' | 'skipped' | 'rolledBack' | 'parked'): void {
  changed.attempt(ctx, a);
  changed.rollout(ctx, r);
  a.status = status;
  a.actionKey = null;
  r.open--;
  // A success needs no record: nothing will look at it again, and a million of them would add up.
  if (status === 'succeeded') r.attempts.delete(a.machineId);
}

export function skipInstance(ctx: TickContext, r: RolloutState, unit: UnitState, batchId: string, machineId: string, reason: string): void {
  let a = r.attempts.get(machineId);
  if (!a) {
    const inst = getInstance(ctx.state.fleet, r.artifactKey, machineId)!;
    a = { rolloutId: r.id, machineId, inst, unitId: unit.plan.id, batchId, attempt: 0, status: 'skipped', fromVersion: '', actionKey: null, reason, dueAtMs: null };
    r.attempts.set(machineId, a);
  }
  a.batchId = batchId;
  a.reason = reason;
  emitInstance(ctx, 'instance.skipped', r, a, { reason });
  finish(ctx, r, a, 'skipped');
}

export function startUpgrade(ctx: TickContext, r: RolloutState, unit: UnitState, batchId: string, inst: ExtensionInstance): void {
  const machineId = inst.machineId;
  let a = r.attempts.get(machineId);
  if (!a) {
    const earlier = earlierAttempts(ctx, r, machineId);
    a = { rolloutId: r.id, machineId, inst, unitId: unit.plan.id, batchId, attempt: earlier, status: 'upgrading', fromVersion: inst.installedVersion, actionKey: null, reason: null, dueAtMs: null };
    r.attempts.set(machineId, a);
  }
  a.inst = inst; // the instance may have been removed and installed again since an earlier attempt
  a.attempt++;
  a.batchId = batchId;
  a.status = 'upgrading';
  a.fromVersion = inst.installedVersion;
  a.reason = null;
  inst.desiredVersion = r.toVersion;
  inst.status = 'Transitioning';
  changed.instance(ctx, inst);
  if (r.artifact.kind === 'osImage') {
    announceReimage(ctx, r, a);
    return;
  }
  beginUpgrade(ctx, r, a);
}

/**
 * Attempts at this machine and version made by other rollouts (one this rollout superseded, or an
 * earlier one a catch-up follows): numbering goes on from them, so a (machine, version, attempt) is
 * started once in the whole log, whichever rollout starts it.
 */
function earlierAttempts(ctx: TickContext, r: RolloutState, machineId: string): number {
  let n = 0;
  for (const o of ctx.state.rollouts.values()) {
    if (o === r || o.artifactKey !== r.artifactKey || o.toVersion !== r.toVersion) continue;
    const a = o.attempts.get(machineId);
    if (a && a.attempt > n) n = a.attempt;
  }
  return n;
}

function beginUpgrade(ctx: TickContext, r: RolloutState, a: AttemptState): void {
  a.status = 'upgrading';
  a.dueAtMs = null;
  emitInstance(ctx, 'instance.upgrade.started', r, a, { fromVersion: a.fromVersion, toVersion: r.toVersion });
  sendAction(ctx, r, a, 'upgrade', a.inst, a.fromVersion, r.toVersion);
}

/**
 * R83: a re-image is impactful, so the machine is told first (a scheduled event, `Reimage`). It starts
 * when the notice runs out or the workload approves; with `osRollingUpgradeDeferral` it waits for the
 * approval however long that takes.
 */
function announceReimage(ctx: TickContext, r: RolloutState, a: AttemptState): void {
  const setId = ctx.state.fleet.machines.get(a.machineId)!.placement.setId;
  const deferred = (setId ? ctx.state.fleet.scaleSets.get(setId)?.upgradePolicy.automaticOSUpgradePolicy.osRollingUpgradeDeferral : false) === true;
  a.status = 'noticed';
  a.dueAtMs = deferred ? null : ctx.now + REIMAGE_NOTICE_MS;
  emitInstance(ctx, 'instance.notice.scheduled', r, a, {
    eventType: 'Reimage',
    notBefore: a.dueAtMs === null ? null : isoOf(a.dueAtMs),
    deferred,
    reason: deferred
      ? 'osRollingUpgradeDeferral: the re-image waits for the workload to approve it (R83)'
      : `re-image in ${REIMAGE_NOTICE_MS / 60_000} minutes unless the workload approves it sooner (R83)`,
  });
  // One timer per batch, not per machine: the batch announces all its re-images at the same instant (startRun).
}

/**
 * The notice ran out (timer) or the workload approved: the re-image starts. A stopped rollout still
 * finishes what it had announced, like any attempt in flight; a cancelled one never re-images (its
 * notices were withdrawn). False when nothing was waiting.
 */
export function noticeEnded(ctx: TickContext, r: RolloutState, machineId: string, approvedBy: string | null, attempt?: number): boolean {
  const a = r.attempts.get(machineId);
  if (!a || a.status !== 'noticed' || (attempt !== undefined && a.attempt !== attempt) || r.status === 'cancelled' || r.status === 'completed') return false;
  if (approvedBy !== null) emitInstance(ctx, 'instance.notice.approved', r, a, { caller: approvedBy });
  beginUpgrade(ctx, r, a);
  return true;
}

/**
 * A rollout was cancelled: its announced re-images will not happen. Each is skipped (the instance stays
 * as it was) and its batch settles, so the set's lock is free for the next rollout.
 */
export function withdrawNotices(ctx: TickContext, r: RolloutState, reason: string): Array<{ unit: UnitState; batchId: string }> {
  const touched: Array<{ unit: UnitState; batchId: string }> = [];
  for (const a of [...r.attempts.values()]) {
    const settled = withdrawNotice(ctx, r, a, reason);
    if (settled) touched.push(settled);
  }
  return touched;
}

/** Withdraws one announced re-image (see `withdrawNotices`); null when the attempt was not waiting on a notice. */
export function withdrawNotice(ctx: TickContext, r: RolloutState, a: AttemptState, reason: string): { unit: UnitState; batchId: string } | null {
  if (a.status !== 'noticed') return null;
  const inst = a.inst;
  inst.status = 'Succeeded';
  inst.desiredVersion = inst.installedVersion;
  changed.instance(ctx, inst);
  a.reason = reason;
  a.dueAtMs = null;
  emitInstance(ctx, 'instance.skipped', r, a, { reason });
  const unit = r.units.get(a.unitId)!;
  const batchId = a.batchId;
  finish(ctx, r, a, 'skipped');
  return { unit, batchId };
}

function sendAction(ctx: TickContext, r: RolloutState, a: AttemptState, kind: 'upgrade' | 'rollback', inst: ExtensionInstance, from: string, to: string): void {
  const key = `${r.id}/${a.machineId}/${a.attempt}/${kind}`;
  a.actionKey = key;
  ctx.state.pendingActions.set(key, { rolloutId: r.id, machineId: a.machineId, kind });
  ctx.actions.push({ kind, key, machineId: a.machineId, artifact: r.artifact, artifactKey: r.artifactKey, fromVersion: from, toVersion: to, settings: inst.settings });
  schedule(ctx, { at: ctx.now + r.plan.profile.actionTimeoutMs, kind: 'actionTimeout', rolloutId: r.id, ref: a.machineId, token: key });
}

/** The answer to an upgrade or rollback. Returns true when the attempt settled. */
export function onActionResult(ctx: TickContext, r: RolloutState, unit: UnitState, a: AttemptState, kind: 'upgrade' | 'rollback', ok: boolean, reason: string, reimage?: ReimageReport): boolean {
  const inst = a.inst;
  a.actionKey = null;
  changed.instance(ctx, inst);
  changed.attempt(ctx, a);
  if (kind === 'upgrade') {
    if (ok) {
      if (reimage) emitInstance(ctx, 'instance.reimaged', r, a, { fromVersion: a.fromVersion, toVersion: r.toVersion, ...reimage });
      inst.installedVersion = r.toVersion;
      inst.status = 'Succeeded';
      a.status = 'healthWait';
      let waiters = ctx.state.healthWaiters.get(a.machineId);
      if (!waiters) ctx.state.healthWaiters.set(a.machineId, (waiters = []));
      waiters.push({ rolloutId: r.id });
      schedule(ctx, { at: ctx.now + unit.plan.limits.healthWindowMs, kind: 'healthDeadline', rolloutId: r.id, ref: a.machineId, token: a.attempt });
      return false;
    }
    inst.status = 'Failed';
    refreshMachineHealth(ctx.state.fleet, a.machineId);
    emitInstance(ctx, 'instance.upgrade.failed', r, a, { fromVersion: a.fromVersion, toVersion: r.toVersion, reason });
    countJudged(ctx, r, unit, true);
    return startRollback(ctx, r, a, inst, reason);
  }
  // Rollback answered.
  if (ok) {
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

/** R22 (R62 for OS images): back to last-known-good. Returns true when the attempt settled without a rollback. */
function startRollback(ctx: TickContext, r: RolloutState, a: AttemptState, inst: ExtensionInstance, reason: string): boolean {
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
  schedule(ctx, { at, kind: 'retry', rolloutId: r.id, ref: a.machineId, token: a.attempt });
  emitInstance(ctx, 'instance.retry.scheduled', r, a, { at: isoOf(at), reason: machine.kind === 'arc' ? 'Arc machines retry an hour after a rollback (R30)' : 'VMs and scale sets retry days after a rollback (R30)' });
}

function countJudged(ctx: TickContext, r: RolloutState, unit: UnitState, unhealthy: boolean): void {
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

function removeWaiter(ctx: TickContext, machineId: string, rolloutId: string): void {
  const waiters = ctx.state.healthWaiters.get(machineId);
  if (!waiters) return;
  const i = waiters.findIndex((w) => w.rolloutId === rolloutId);
  if (i >= 0) waiters.splice(i, 1);
  if (waiters.length === 0) ctx.state.healthWaiters.delete(machineId);
}

/** A healthy verdict within the window (R21): the new version becomes last-known-good. */
export function tryJudgeHealthy(ctx: TickContext, r: RolloutState, unit: UnitState, a: AttemptState): boolean {
  if (a.status !== 'healthWait') return false;
  const inst = a.inst;
  const signals = ctx.state.fleet.health.get(a.machineId) ?? { platform: true };
  if (!isInstanceHealthy(signals, inst.status)) return false;
  removeWaiter(ctx, a.machineId, r.id);
  inst.lastKnownGoodVersion = inst.installedVersion;
  changed.instance(ctx, inst);
  countJudged(ctx, r, unit, false);
  emitInstance(ctx, 'instance.upgrade.succeeded', r, a, { fromVersion: a.fromVersion, toVersion: r.toVersion });
  finish(ctx, r, a, 'succeeded');
  return true;
}

/** R22: not healthy when the window closes, so roll back to last-known-good. */
export function onHealthDeadline(ctx: TickContext, r: RolloutState, unit: UnitState, a: AttemptState): boolean {
  const inst = a.inst;
  const signals = ctx.state.fleet.health.get(a.machineId) ?? { platform: true };
  const reason = unhealthyReason(signals, inst.status) ?? `no healthy report within ${unit.plan.limits.healthWindowMs / 1000} s of the upgrade`;
  removeWaiter(ctx, a.machineId, r.id);
  emitInstance(ctx, 'instance.health.unhealthy', r, a, { fromVersion: a.fromVersion, toVersion: r.toVersion, reason });
  countJudged(ctx, r, unit, true);
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
  a.status = 'retryReady';
  a.dueAtMs = null;
  changed.attempt(ctx, a);
  return 'ready';
}

/** Reasons of attempts settled because their instance went away (see `skipGone`). */
export const MACHINE_DELETED = 'machine deleted';
export const EXTENSION_REMOVED = 'extension removed';
export const IMAGE_CHANGED = 'the scale set moved to another image';
export const CANCELLED_FOR_SET = 'cancelled for this scale set through rollingUpgrades/cancel';

/** Reasons an instance leaves a rollout before its batch comes (its batch then passes it by). */
export function isRemoval(reason: string | null): boolean {
  return reason === MACHINE_DELETED || reason === EXTENSION_REMOVED || reason === IMAGE_CHANGED || reason === CANCELLED_FOR_SET;
}

/** True when the attempt was settled before its planned batch came, because its instance went away. */
export function settledByRemoval(a: AttemptState | undefined): boolean {
  return a !== undefined && a.attempt === 0 && a.status === 'skipped' && isRemoval(a.reason);
}

/**
 * The instance went away (its machine was deleted or the extension removed) while no attempt of it is
 * in flight: an attempt waiting for a retry, or a machine whose planned batch has not come yet, is
 * skipped now so the rollout still completes. Call it while the machine still exists (events carry
 * its placement). Returns the unit it touched, or null when the rollout had nothing open for it.
 */
export function skipGone(ctx: TickContext, r: RolloutState, inst: ExtensionInstance, reason: string): UnitState | null {
  const machineId = inst.machineId;
  let a = r.attempts.get(machineId);
  if (a) {
    if (a.status !== 'retryWait' && a.status !== 'retryReady') return null; // final (or in flight, refused before)
    const unit = r.units.get(a.unitId)!;
    if (a.status === 'retryReady') {
      changed.unit(ctx, unit);
      unit.retryReady = unit.retryReady.filter((id) => id !== machineId);
    }
    a.reason = reason;
    a.dueAtMs = null;
    emitInstance(ctx, 'instance.skipped', r, a, { reason });
    finish(ctx, r, a, 'skipped');
    return unit;
  }
  const planned = plannedBatch(ctx, r, machineId);
  if (!planned) return null; // not in the rollout, or its batch ran (and it succeeded)
  a = { rolloutId: r.id, machineId, inst, unitId: planned.unit.plan.id, batchId: planned.batchId, attempt: 0, status: 'skipped', fromVersion: inst.installedVersion, actionKey: null, reason, dueAtMs: null };
  r.attempts.set(machineId, a);
  emitInstance(ctx, 'instance.skipped', r, a, { reason });
  finish(ctx, r, a, 'skipped');
  return planned.unit;
}

/** The planned batch of a machine that has not been taken yet, looking only at units where the machine can be. */
function plannedBatch(ctx: TickContext, r: RolloutState, machineId: string): { unit: UnitState; batchId: string } | null {
  const p = ctx.state.fleet.machines.get(machineId)!.placement;
  for (const u of r.units.values()) {
    if (u.region !== p.region || u.plan.setId !== p.setId || (p.setId === null && u.plan.subscription !== p.subscription)) continue;
    for (let i = u.next; i < u.plan.batches.length; i++) {
      const b = u.plan.batches[i]!;
      if (b.machineIds.includes(machineId)) return { unit: u, batchId: b.id };
    }
  }
  return null;
}
