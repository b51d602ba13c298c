/**
 * The start of an attempt: the upgrade action, or for an OS image the advance notice first (R83) that
 * ends when it runs out or the workload approves; a cancelled rollout withdraws its notices.
 */
import type { ExtensionInstance } from '../../model/artifact.js';
import { platformRebootEventId } from '../../model/patches.js';
import { REBOOT_NOTICE_MS, REIMAGE_NOTICE_MS } from '../../planner/windows.js';
import { isoOf } from '../clock.js';
import type { AttemptState, RolloutState, UnitState } from '../state.js';
import { placementOf, upgradingAttempt } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import { emitInstance, emitVersionChange, finish, sendAction } from './record.js';

/** `prior`: the machine's attempt in this rollout as the caller found it (`r.attempts.get`), undefined when it has none. */
export function startUpgrade(ctx: TickContext, r: RolloutState, unit: UnitState, batchId: string, inst: ExtensionInstance, prior: AttemptState | undefined): void {
  const machineId = inst.machineId;
  let a = prior;
  if (!a) {
    const earlier = earlierAttempts(ctx, r, machineId);
    const placement = ctx.state.fleet.machines.get(machineId)!.placement;
    a = upgradingAttempt(r.id, inst, unit.plan.id, batchId, earlier, unit, placement);
    r.attempts.set(machineId, a);
  }
  a.inst = inst; // the instance may have been removed and installed again since an earlier attempt
  a.attempt++;
  a.batchId = batchId;
  a.status = 'upgrading';
  a.fromVersion = inst.installedVersion;
  a.reason = null;
  // Its outcome would say nothing of the release; set only when true (the field is not stored).
  a.unhealthyBefore = ctx.state.fleet.unhealthy.has(machineId) ? true : undefined;
  inst.desiredVersion = r.toVersion;
  inst.status = 'Transitioning';
  changed.instance(ctx, inst);
  if (r.artifact.kind === 'osImage') {
    announceReimage(ctx, r, a);
    return;
  }
  if (r.artifact.kind === 'guestPatch' && rebootSettingOf(inst) !== 'Never') {
    announceReboot(ctx, r, a);
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
  emitVersionChange(ctx, 'instance.upgrade.started', r, a, a.fromVersion, r.toVersion);
  sendAction(ctx, r, a, 'upgrade', a.inst, a.fromVersion, r.toVersion);
}

/**
 * R83: a re-image is impactful, so the machine is told first (a scheduled event, `Reimage`). It starts
 * when the notice runs out or the workload approves; with `osRollingUpgradeDeferral` it waits for the
 * approval however long that takes.
 */
function announceReimage(ctx: TickContext, r: RolloutState, a: AttemptState): void {
  const setId = placementOf(ctx.state, a).setId; // kept with the attempt: no lookup among a million machines
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

/** The reboot setting a platform patch instance carries (`automaticByPlatformSettings.rebootSetting`). */
export function rebootSettingOf(inst: ExtensionInstance): 'IfRequired' | 'Never' | 'Always' {
  const s = inst.settings['rebootSetting'];
  return s === 'Never' || s === 'Always' ? s : 'IfRequired';
}

/** The run id a platform patch attempt's reboot events carry (`machine.reboot.announced`, `availability.impact`). */
export function patchRunId(r: RolloutState, a: AttemptState): string {
  return `${r.id}/${a.machineId}/${a.attempt}`;
}

/**
 * R77, R83: the baseline's patches may need a reboot, so the machine is told first, as a schedule run
 * tells it (`machine.reboot.announced`, a `Reboot` scheduled event); installation starts when the
 * notice runs out (the batch's `noticeDue` timer) or when the machine approves it (approveNotices).
 */
function announceReboot(ctx: TickContext, r: RolloutState, a: AttemptState): void {
  a.status = 'noticed';
  a.dueAtMs = ctx.now + REBOOT_NOTICE_MS;
  const notBefore = isoOf(a.dueAtMs);
  const reason = `platform patch baseline ${r.toVersion} may reboot the machine: installation in ${REBOOT_NOTICE_MS / 60_000} minutes (R77, R83)`;
  emitInstance(ctx, 'instance.notice.scheduled', r, a, { eventType: 'Reboot', notBefore, deferred: false, reason });
  const runId = patchRunId(r, a);
  const placement = ctx.state.fleet.machines.get(a.machineId)!.placement;
  emit(ctx, { type: 'machine.reboot.announced', machineId: a.machineId, placement, runId, eventId: platformRebootEventId(runId), notBefore, reason });
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
 * R83: the workload approves what was announced to these machines: their re-images (rollouts of OS
 * images) and, with `kinds` including `guestPatch`, their platform patch installations start now.
 * Returns how many did.
 */
export function approveNotices(ctx: TickContext, machineIds: readonly string[], caller: string, kinds: ReadonlySet<RolloutState['artifact']['kind']>): number {
  let n = 0;
  for (const r of ctx.state.rollouts.values()) {
    if ((r.status !== 'running' && r.status !== 'stopped') || !kinds.has(r.artifact.kind)) continue;
    for (const id of machineIds) if (noticeEnded(ctx, r, id, caller)) n++;
  }
  return n;
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
