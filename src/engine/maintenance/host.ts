/**
 * Host-scope maintenance (R73). The platform publishes host updates per region. A machine without a
 * Host-scope configuration takes them as they come. A machine with one takes all its pending updates at
 * once, at the first slot of its windows that fits the update's impact, but never later than 35 days
 * after its last maintenance; `applyUpdates` takes them all at once on demand. Host updates touch the
 * platform's hosts, not the machine's software: no action goes to the agent, each application is an event.
 */
import type { Machine } from '../../model/fleet.js';
import type { HostUpdate } from '../../model/maintenance.js';
import { windowKeyOf, windowsOfKey } from '../../model/maintenance.js';
import { unionSlot } from '../../schedule/slots.js';
import type { TickContext } from '../core/context.js';
import { emit, schedule } from '../core/context.js';
import type { EngineState } from '../state.js';

/** R73: the longest a machine's host maintenance may be deferred after its last one. */
export const HOST_DEFERRAL_MS = 35 * 86_400_000;

export function publishHostUpdate(ctx: TickContext, update: HostUpdate, caller: string): void {
  const m = ctx.state.maintenance;
  rescheduleHost(ctx); // machines confined before this update start their records without it
  m.hostUpdates.push(update);
  markHost(ctx);
  emit(ctx, { type: 'host.update.published', update: update.id, regions: update.regions, impactType: update.impactType, impactDurationSec: update.impactDurationSec, caller });
  rescheduleHost(ctx);
}

/** Machines whose host updates wait for a Host-scope window. */
export function hostConfined(state: EngineState, machine: Machine): boolean {
  return machine.kind !== 'arc' && windowKeyOf(state.maintenance, 'Host', machine) !== '';
}

function appliesTo(u: HostUpdate, machine: Machine): boolean {
  return machine.kind !== 'arc' && (u.regions === null || u.regions.includes(machine.placement.region));
}

/** The updates published and not applied yet to a confined machine, oldest first. */
export function pendingHostUpdates(state: EngineState, machine: Machine): HostUpdate[] {
  const rec = state.maintenance.hostApplied.get(machine.id);
  if (!rec) return [];
  return state.maintenance.hostUpdates.slice(rec.through).filter((u) => appliesTo(u, machine));
}

/** When a confined machine's pending updates will be applied: its next window slot, or the deferral limit. */
export function hostDueAt(state: EngineState, machine: Machine, now: number): number | null {
  const pending = pendingHostUpdates(state, machine);
  if (pending.length === 0) return null;
  const rec = state.maintenance.hostApplied.get(machine.id)!;
  const deadline = Math.max(rec.lastMs + HOST_DEFERRAL_MS, pending[0]!.publishedAtMs);
  const impact = Math.max(...pending.map((u) => u.impactDurationSec)) * 1000;
  const slot = unionSlot(windowsOfKey(state.maintenance, windowKeyOf(state.maintenance, 'Host', machine)), Math.max(now, pending[0]!.publishedAtMs), impact);
  return slot === null ? deadline : Math.min(slot, deadline);
}

/**
 * Brings the records in step with the assignments and schedules each confined machine's next
 * application. A machine that comes under a Host configuration starts with nothing pending.
 */
export function rescheduleHost(ctx: TickContext): void {
  const state = ctx.state;
  const m = state.maintenance;
  if (m.assignments.size === 0 && m.hostApplied.size === 0) return;
  for (const id of [...m.hostApplied.keys()]) {
    const machine = state.fleet.machines.get(id);
    if (!machine || !hostConfined(state, machine)) {
      m.hostApplied.delete(id);
      markHost(ctx);
    }
  }
  for (const machine of confinedMachines(state)) {
    if (!m.hostApplied.has(machine.id)) {
      m.hostApplied.set(machine.id, { through: m.hostUpdates.length, lastMs: ctx.now });
      markHost(ctx);
    }
    const due = hostDueAt(state, machine, ctx.now);
    if (due === null) continue;
    const at = Math.max(due, ctx.now);
    let scheduled = scheduledHost.get(state);
    if (!scheduled) scheduledHost.set(state, (scheduled = new Map()));
    if (scheduled.get(machine.id) === at) continue; // that timer is set already
    scheduled.set(machine.id, at);
    schedule(ctx, { at, kind: 'hostMaintenance', rolloutId: '', ref: machine.id, token: 0 });
  }
}

/** The instant each confined machine's timer is set for (not stored: after a restart each is set once more). */
const scheduledHost = new WeakMap<EngineState, Map<string, number>>();

function* confinedMachines(state: EngineState): Generator<Machine> {
  const seen = new Set<string>();
  const sets = new Set<string>();
  for (const [target, ids] of state.maintenance.assignments) {
    if (![...ids].some((id) => state.maintenance.configs.get(id)?.scope === 'Host')) continue;
    const machine = state.fleet.machines.get(target);
    if (machine) {
      if (!seen.has(machine.id) && hostConfined(state, machine)) yield machine;
      seen.add(machine.id);
    } else sets.add(target);
  }
  if (sets.size === 0) return;
  for (const machine of state.fleet.machines.values()) {
    if (machine.placement.setId === null || !sets.has(machine.placement.setId) || seen.has(machine.id)) continue;
    seen.add(machine.id);
    if (hostConfined(state, machine)) yield machine;
  }
}

/** A host-maintenance timer came due: apply if the machine's time has come (a later timer may have replaced it). */
export function onHostTimer(ctx: TickContext, machineId: string): void {
  const machine = ctx.state.fleet.machines.get(machineId);
  if (!machine) return;
  const due = hostDueAt(ctx.state, machine, ctx.now);
  if (due === null || due > ctx.now) return;
  scheduledHost.get(ctx.state)?.delete(machineId);
  const rec = ctx.state.maintenance.hostApplied.get(machineId)!;
  const deadlineHit = ctx.now >= rec.lastMs + HOST_DEFERRAL_MS;
  applyHost(ctx, machine, deadlineHit ? 'deferral limit of 35 days since the last maintenance reached (R73)' : 'inside the Host maintenance window (R70, R73)', 'platform');
}

/** Applies every pending host update of a confined machine now; returns how many. */
export function applyHost(ctx: TickContext, machine: Machine, reason: string, caller: string): number {
  const m = ctx.state.maintenance;
  const pending = pendingHostUpdates(ctx.state, machine);
  const rec = m.hostApplied.get(machine.id);
  if (!rec || pending.length === 0) return 0;
  rec.through = m.hostUpdates.length;
  rec.lastMs = ctx.now;
  markHost(ctx);
  emit(ctx, { type: 'host.update.applied', machineId: machine.id, placement: machine.placement, updates: pending.map((u) => u.id), reason, caller });
  return pending.length;
}

function markHost(ctx: TickContext): void {
  if (ctx.changes) ctx.changes.hostMaintenance = true;
}
