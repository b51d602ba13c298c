/** Handing the engine the configurations with a window and their assignments, as the ARM documents hold them. */
import type { ArmContext } from '../../context.js';
import { keyOf } from '../../ids.js';
import type { ConfigDoc } from './configuration.js';
import { engineConfigOf } from './configuration.js';

export interface AssignmentDoc { location: string; maintenanceConfigurationId: string; resourceId: string }

/** The engine target (machine or set id) an assignment's resource id stands for, if it still exists. */
function engineTargetOf(ctx: ArmContext, resourceId: string): string | null {
  return ctx.index.machine(resourceId)?.id ?? ctx.index.scaleSet(resourceId)?.id ?? null;
}

/** Hands the engine every assignment of a configuration it does not hold yet. */
export function syncAssignments(ctx: ArmContext, configDocId: string, caller: string): void {
  const key = keyOf(configDocId);
  if (!ctx.engine.state.maintenance.configs.has(key)) return;
  for (const a of ctx.docs.ofKind<AssignmentDoc>('configurationAssignment')) {
    if (keyOf(a.body.maintenanceConfigurationId) !== key) continue;
    const target = engineTargetOf(ctx, a.body.resourceId);
    if (target !== null && !ctx.engine.state.maintenance.assignments.get(target)?.has(key)) ctx.engine.assignMaintenance(target, key, caller);
  }
}

/**
 * At start-up: the engine holds what the documents say (a data directory written before the engine
 * enforced windows has the documents only).
 */
export function reconcileMaintenance(ctx: ArmContext, caller: string): void {
  ctx.docs.atomically(() => {
    for (const d of ctx.docs.ofKind<ConfigDoc>('maintenanceConfiguration')) {
      const spec = engineConfigOf(d.id, d.body);
      if (spec && !ctx.engine.state.maintenance.configs.has(spec.id)) ctx.engine.putMaintenanceConfiguration(spec, caller);
      if (spec) syncAssignments(ctx, d.id, caller);
    }
  });
}
