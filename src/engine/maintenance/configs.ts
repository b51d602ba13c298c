/**
 * Maintenance configurations and assignments as engine commands (R70–R73). Each is checked whole before
 * anything changes (a FleetError changes nothing), is logged as `maintenance.changed`, and wakes the units
 * waiting for a window, which look again at the windows they now have.
 */
import type { MaintenanceConfig, MaintenanceConfigSpec } from '../../model/maintenance.js';
import { maintenanceConfig } from '../../model/maintenance.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import { FleetError } from '../core/errors.js';
import { tryStartBatch } from '../rollouts/batches.js';
import { rescheduleHost } from './host.js';
import type { EngineState } from '../state.js';

export function checkMaintenanceConfig(spec: MaintenanceConfigSpec): MaintenanceConfig {
  if (spec.id === '') throw new FleetError('InvalidFleet', 'a maintenance configuration needs an id', 'id');
  try {
    return maintenanceConfig(spec);
  } catch (err) {
    throw new FleetError('InvalidFleet', (err as Error).message, 'maintenanceWindow');
  }
}

export function applyMaintenanceConfig(ctx: TickContext, config: MaintenanceConfig, caller: string): void {
  const m = ctx.state.maintenance;
  m.configs.set(config.id, config);
  ctx.changes?.maintenanceConfigs.add(config.id);
  emit(ctx, { type: 'maintenance.changed', configuration: config.id, targets: targetsOf(ctx.state, config.id), action: 'put', caller });
  wakeWindowWaiters(ctx);
}

/** Deletes a configuration and every assignment of it. */
export function applyDeleteMaintenanceConfig(ctx: TickContext, id: string, caller: string): void {
  const m = ctx.state.maintenance;
  if (!m.configs.has(id)) return;
  const targets = targetsOf(ctx.state, id);
  for (const t of targets) unassign(ctx, t, id);
  m.configs.delete(id);
  ctx.changes?.maintenanceConfigs.add(id);
  emit(ctx, { type: 'maintenance.changed', configuration: id, targets, action: 'delete', caller });
  wakeWindowWaiters(ctx);
}

/** A target is a machine or a set of the fleet. */
export function checkAssignment(state: EngineState, target: string, configId: string): void {
  const f = state.fleet;
  if (!f.machines.has(target) && !f.scaleSets.has(target) && !f.availabilitySets.has(target)) throw new FleetError('NotFound', `no machine or set ${target}`, 'target');
  if (!state.maintenance.configs.has(configId)) throw new FleetError('NotFound', `no maintenance configuration ${configId}`, 'configurationId');
}

export function applyAssignment(ctx: TickContext, target: string, configId: string, assigned: boolean, caller: string): void {
  const m = ctx.state.maintenance;
  if (assigned) {
    let ids = m.assignments.get(target);
    if (!ids) m.assignments.set(target, (ids = new Set()));
    if (ids.has(configId)) return;
    ids.add(configId);
    ctx.changes?.maintenanceTargets.add(target);
  } else {
    if (!m.assignments.get(target)?.has(configId)) return;
    unassign(ctx, target, configId);
  }
  emit(ctx, { type: 'maintenance.changed', configuration: configId, targets: [target], action: assigned ? 'assign' : 'unassign', caller });
  wakeWindowWaiters(ctx);
}

function unassign(ctx: TickContext, target: string, configId: string): void {
  const m = ctx.state.maintenance;
  const ids = m.assignments.get(target);
  if (!ids) return;
  ids.delete(configId);
  if (ids.size === 0) m.assignments.delete(target);
  ctx.changes?.maintenanceTargets.add(target);
}

function targetsOf(state: EngineState, configId: string): string[] {
  const out: string[] = [];
  for (const [target, ids] of state.maintenance.assignments) if (ids.has(configId)) out.push(target);
  return out;
}

/** Units waiting for a window look again: their windows may have moved, opened or gone; host maintenance is rescheduled. */
function wakeWindowWaiters(ctx: TickContext): void {
  rescheduleHost(ctx);
  for (const r of ctx.state.rollouts.values()) {
    if (r.status !== 'running') continue;
    for (const u of r.units.values()) {
      if (u.status !== 'window') continue;
      changed.unit(ctx, u);
      u.status = 'ready';
      tryStartBatch(ctx, r, u);
    }
  }
}
