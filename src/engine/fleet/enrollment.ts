/** R7: a subscription's scale sets enrolled in automatic upgrade of extensions with autoUpgradeMinorVersion. */
import { effectiveAutoUpgrade } from '../../catalog/catalog.js';
import { isExtensionKey } from '../../model/artifact.js';
import type { RolloutState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { emit } from '../core/context.js';
import type { RolloutSettings } from '../core/settings.js';
import { catchUp, resumeIn } from '../opt-in/opt-in.js';
import { bool, text } from './checks.js';

export function checkEnrollment(subscription: string, enrolled: boolean): void {
  text(subscription, 'subscription');
  bool(enrolled, 'enrolled');
}

/**
 * R7: enrolls a subscription (or withdraws it). Extensions of its scale sets with
 * `autoUpgradeMinorVersion` now count as opted in, Service Fabric types excepted; those behind their
 * automatic target catch up at once.
 */
export function applyEnrollment(ctx: TickContext, settings: RolloutSettings, subscription: string, enrolled: boolean, caller: string): RolloutState[] {
  const state = ctx.state;
  if (state.enrolledSubscriptions.has(subscription) === enrolled) return [];
  const turning = new Map<string, string[]>();
  for (const [key, byMachine] of state.fleet.instances) {
    if (!isExtensionKey(key)) continue;
    for (const inst of byMachine.values()) {
      const m = state.fleet.machines.get(inst.machineId)!;
      if (m.placement.subscription !== subscription || m.placement.setKind !== 'scaleSet') continue;
      if (inst.enableAutomaticUpgrade || !effectiveAutoUpgrade(inst, true)) continue;
      let ids = turning.get(key);
      if (!ids) turning.set(key, (ids = []));
      ids.push(inst.machineId);
    }
  }
  if (enrolled) state.enrolledSubscriptions.add(subscription);
  else state.enrolledSubscriptions.delete(subscription);
  if (ctx.changes) ctx.changes.enrollment = true;
  const count = [...turning.values()].reduce((n, ids) => n + ids.length, 0);
  emit(ctx, {
    type: 'enrollment.changed', subscription, enrolled, caller,
    reason: enrolled
      ? `scale sets of ${subscription} upgrade extensions with autoUpgradeMinorVersion automatically (R7): ${count} instance(s) now opted in`
      : `scale sets of ${subscription} follow each extension's enableAutomaticUpgrade again: ${count} instance(s) no longer opted in`,
  });
  if (!enrolled) return [];
  const started: RolloutState[] = [];
  for (const [key, ids] of turning) {
    const behind = ids.filter((id) => !resumeIn(ctx, key, id));
    started.push(...catchUp(ctx, settings, key, behind, (n, target) => `subscription ${subscription} enrolled (R7): ${n} scale-set instance(s) behind ${target} catch up`));
  }
  return started;
}
