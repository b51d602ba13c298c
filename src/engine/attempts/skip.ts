/**
 * Instances an attempt passes by: those that must not be attempted now (R1, R2, R5, R31) and those that
 * went away (machine deleted, extension removed, set moved image or cancelled) before their batch came.
 */
import type { ExtensionInstance } from '../../model/artifact.js';
import { majorOf } from '../../model/version.js';
import { compareArtifactVersions } from '../../model/artifact.js';
import { effectiveAutoUpgrade } from '../../catalog/catalog.js';
import type { AttemptState, EngineState, RolloutState, UnitState } from '../state.js';
import { getInstance, IN_FLIGHT, instanceRef, isEnrolled, newAttempt } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed } from '../core/context.js';
import { emitInstance, finish } from './record.js';

/** Why an instance must not be attempted now, or null when it may be (R1, R2, R5, R31). */
export function skipReason(ctx: TickContext, r: RolloutState, inst: ExtensionInstance | undefined): string | null {
  if (!inst) return 'the extension is no longer on the machine';
  if (inst.blockedReason) return inst.blockedReason;
  if (inst.installedVersion === '') return 'the extension is not installed yet';
  const installing = ctx.state.installing;
  if (installing.size > 0 && installing.has(instanceRef(r.artifactKey, inst.machineId))) return 'an install or update the user asked for is in progress';
  // OS images: a set whose automatic OS upgrade is off pauses at the gate (R65), it is not skipped.
  if (r.plan.profile.name !== 'manual' && r.artifact.kind === 'extension') {
    if (!inst.enableAutomaticUpgrade && !effectiveAutoUpgrade(inst, isEnrolled(ctx.state, ctx.state.fleet.machines.get(inst.machineId)!)))
      return 'automatic upgrade was disabled for this extension (opt-out)';
    if (ctx.state.catalog.getType(inst.publisher, inst.type)?.supportsAutomaticUpgrade !== true) return 'the extension type no longer supports automatic upgrade (R2)';
  }
  return versionReason(r, inst.installedVersion);
}

/**
 * The part of `skipReason` that depends only on the installed version (R1: never across a major; never sideways or back).
 * Remembered per rollout (`r.judged`): a rollout's target, major, direction and profile never change.
 */
function versionReason(r: RolloutState, installed: string): string | null {
  const judged = r.judged;
  if (judged !== undefined && judged.version === installed) return judged.reason;
  let reason: string | null;
  if (r.plan.profile.name !== 'manual' && r.artifact.kind === 'extension' && majorOf(installed) !== r.major) {
    reason = 'automatic upgrades never cross a major version';
  } else {
    const cmp = compareArtifactVersions(r.artifact, installed, r.toVersion);
    if (r.plan.downgrade) reason = cmp <= 0 ? `already at ${installed}, not above ${r.toVersion}` : null;
    else reason = cmp >= 0 ? `already at ${installed}` : null;
  }
  if (judged === undefined) r.judged = { version: installed, reason };
  else {
    judged.version = installed;
    judged.reason = reason;
  }
  return reason;
}

/** Why an instance waits while another rollout acts on it (opt-in.ts's `rejoinAfterSettle` looks for it). */
export function busyElsewhereReason(other: RolloutState): string {
  return `rollout ${other.id} has an attempt in flight on this instance: it waits until that settles`;
}

/**
 * The other rollout of the artifact with an attempt in flight on the machine, if any: one superseded or
 * cancelled (its attempts finish), or a manual upgrade beside an automatic one. A second action on the
 * same instance would race the first: the rollback of one would aim at what the other just installed.
 */
export function inFlightElsewhere(state: Pick<EngineState, 'rollouts'>, r: RolloutState, machineId: string): RolloutState | null {
  if (state.rollouts.size < 2) return null;
  for (const o of state.rollouts.values()) {
    if (o === r || o.open === 0 || o.artifactKey !== r.artifactKey || (o.status === 'cancelled' && settledForGood(o))) continue;
    const a = o.attempts.get(machineId);
    if (a && IN_FLIGHT.has(a.status)) return o;
  }
  return null;
}

/**
 * A cancelled rollout seen with nothing in flight stays so (`RolloutState.quiet`): only a running rollout starts
 * attempts, and a cancelled one never runs again. A superseded OS image rollout stays open (its machines went to
 * the next one), so without this every batch start would look each machine up in each superseded rollout. Its
 * attempts are read again after as many asks as it has attempts (`asksSinceRead`): amortised, one read per ask.
 */
function settledForGood(o: RolloutState): boolean {
  if (o.quiet === true) return true;
  const asks = (o.asksSinceRead ?? 0) + 1;
  o.asksSinceRead = asks < o.attempts.size ? asks : 0;
  if (asks < o.attempts.size) return false;
  for (const a of o.attempts.values()) if (IN_FLIGHT.has(a.status)) return false;
  o.quiet = true;
  return true;
}

/**
 * One action at a time per instance: the instance waits, open in the rollout like a retry without a timer,
 * until the other rollout's attempt settles (`rejoinAfterSettle` queues it then). Its batch goes on without it.
 */
export function deferInstance(ctx: TickContext, r: RolloutState, unit: UnitState, batchId: string, machineId: string, other: RolloutState): void {
  const reason = busyElsewhereReason(other);
  let a = r.attempts.get(machineId);
  if (!a) {
    const inst = getInstance(ctx.state.fleet, r.artifactKey, machineId)!;
    a = newAttempt({
      rolloutId: r.id, machineId, inst, unitId: unit.plan.id, batchId, attempt: 0, status: 'retryWait', fromVersion: inst.installedVersion, actionKey: null, reason, dueAtMs: null,
    }, unit);
    r.attempts.set(machineId, a);
  }
  changed.attempt(ctx, a);
  a.status = 'retryWait';
  a.dueAtMs = null;
  a.batchId = batchId;
  a.reason = reason;
  emitInstance(ctx, 'instance.skipped', r, a, { reason });
}

export function skipInstance(ctx: TickContext, r: RolloutState, unit: UnitState, batchId: string, machineId: string, reason: string): void {
  let a = r.attempts.get(machineId);
  if (!a) {
    const inst = getInstance(ctx.state.fleet, r.artifactKey, machineId)!;
    a = newAttempt({ rolloutId: r.id, machineId, inst, unitId: unit.plan.id, batchId, attempt: 0, status: 'skipped', fromVersion: '', actionKey: null, reason, dueAtMs: null }, unit);
    r.attempts.set(machineId, a);
  }
  a.batchId = batchId;
  a.reason = reason;
  emitInstance(ctx, 'instance.skipped', r, a, { reason });
  finish(ctx, r, a, 'skipped');
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
  a = newAttempt({
    rolloutId: r.id, machineId, inst, unitId: planned.unit.plan.id, batchId: planned.batchId, attempt: 0, status: 'skipped', fromVersion: inst.installedVersion, actionKey: null, reason,
    dueAtMs: null,
  }, planned.unit);
  r.attempts.set(machineId, a);
  if (r.goneBeforeBatch !== undefined) r.goneBeforeBatch++;
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
