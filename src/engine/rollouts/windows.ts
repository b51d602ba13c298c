/**
 * The window gate (R70, R72): an automatic rollout starts a batch only inside a maintenance window of
 * every machine in it, and only if the batch, health wait and a rollback included, can finish before
 * that window closes. Otherwise the unit waits for the next slot (`window.waiting`). A critical release
 * may go outside the windows where every configuration involved allows it; each such batch is recorded
 * (`window.bypassed`). Manual upgrades (R6) and `applyUpdates` are the user's own decision: no gate.
 */
import type { BatchScope } from '../../model/events.js';
import { configsOfKey, scopeOf, windowKeyOf } from '../../model/maintenance.js';
import { batchBudgetMs, noticeOf } from '../../planner/windows.js';
import type { WindowUnion } from '../../schedule/slots.js';
import { commonSlot, fitsAll } from '../../schedule/slots.js';
import { OFF_PEAK_HOURS, OFF_PEAK_START, offPeakId, offPeakWindow } from '../../schedule/off-peak.js';
import { isoOf } from '../clock.js';
import type { TickContext } from '../core/context.js';
import { changed, emit, schedule } from '../core/context.js';
import type { RolloutState, UnitState } from '../state.js';

export type WindowVerdict =
  | { start: true; bypassed: string[] | null }
  | { start: false; opensAt: number | null; configurations: string[] };

const OPEN: WindowVerdict = { start: true, bypassed: null };

/** Whether the unit may start a batch of these machines now. */
export function windowGate(ctx: TickContext, r: RolloutState, u: UnitState, machineIds: readonly string[]): WindowVerdict {
  if (r.artifact.kind === 'guestPatch') return offPeakGate(ctx, r, u, machineIds);
  const m = ctx.state.maintenance;
  if (m.assignments.size === 0 || r.plan.profile.name === 'manual') return OPEN;
  const scope = scopeOf(r.artifact);
  const machines = ctx.state.fleet.machines;
  const keys = new Set<string>();
  for (const id of machineIds) {
    const machine = machines.get(id);
    if (machine) keys.add(windowKeyOf(m, scope, machine));
  }
  const unions: WindowUnion[] = [];
  const configurations: string[] = [];
  let allowBypass = true;
  for (const key of keys) {
    const configs = configsOfKey(m, key);
    if (configs.length === 0) continue;
    unions.push(configs.map((c) => c.parsed));
    for (const c of configs) {
      if (!configurations.includes(c.id)) configurations.push(c.id);
      if (!c.emergencyBypass) allowBypass = false;
    }
  }
  if (unions.length === 0) return OPEN;
  const budget = batchBudgetMs(r.plan.profile, u.plan.limits, noticeOf(r.artifact));
  if (fitsAll(unions, ctx.now, budget)) return OPEN;
  if (r.plan.profile.name === 'critical' && allowBypass) return { start: true, bypassed: configurations };
  return { start: false, opensAt: commonSlot(unions, ctx.now, budget), configurations };
}

/**
 * R76: platform patches go in each machine's off-peak hours (its region's local night, src/schedule/off-peak.ts),
 * an implicit window every guestPatch unit is held to like a configuration's; a critical baseline may bypass it (R72).
 */
function offPeakGate(ctx: TickContext, r: RolloutState, u: UnitState, machineIds: readonly string[]): WindowVerdict {
  if (r.plan.profile.name === 'manual') return OPEN;
  const machines = ctx.state.fleet.machines;
  const regions = new Set<string>();
  for (const id of machineIds) {
    const machine = machines.get(id);
    if (machine) regions.add(machine.placement.region);
  }
  const unions: WindowUnion[] = [...regions].map((region) => [offPeakWindow(region)]);
  const configurations = [...regions].map(offPeakId);
  if (unions.length === 0) return OPEN;
  const budget = batchBudgetMs(r.plan.profile, u.plan.limits, noticeOf(r.artifact));
  if (fitsAll(unions, ctx.now, budget)) return OPEN;
  if (r.plan.profile.name === 'critical') return { start: true, bypassed: configurations };
  return { start: false, opensAt: commonSlot(unions, ctx.now, budget), configurations };
}

function scopeOfUnit(u: UnitState): BatchScope {
  return { region: u.region, zone: u.plan.zone, setId: u.plan.setId, subscription: u.plan.subscription };
}

/** Parks the unit until its next window slot (or until a configuration changes, when there is none). */
export function waitForWindow(ctx: TickContext, r: RolloutState, u: UnitState, verdict: Extract<WindowVerdict, { start: false }>): void {
  changed.unit(ctx, u);
  u.status = 'window';
  if (u.windowOpensAt === verdict.opensAt) return; // already waiting for this slot (a stale wake-up)
  u.windowOpensAt = verdict.opensAt;
  const budgetH = Math.round((batchBudgetMs(r.plan.profile, u.plan.limits, noticeOf(r.artifact)) / 3_600_000) * 10) / 10;
  emit(ctx, {
    type: 'window.waiting',
    rolloutId: r.id,
    scope: scopeOfUnit(u),
    opensAt: verdict.opensAt === null ? null : isoOf(verdict.opensAt),
    configurations: verdict.configurations,
    reason: r.artifact.kind === 'guestPatch'
      ? `outside the machines' off-peak hours (${OFF_PEAK_START} for ${OFF_PEAK_HOURS} h, local time of the region), or too little of them left`
        + ` for a batch (${budgetH} h with the reboot notice and health wait) (R76, R70)`
      : verdict.opensAt === null
      ? `no maintenance window has room for a batch (${budgetH} h) before the configurations expire; waits until they change (R70)`
      : `outside the maintenance window, or too little of it left for a batch (${budgetH} h with health wait and a rollback) (R70)`,
  });
  // The token names the slot, so the timer cannot wake the unit for anything else (a pause, a hold).
  if (verdict.opensAt !== null) schedule(ctx, { at: verdict.opensAt, kind: 'unitResume', rolloutId: r.id, ref: u.plan.id, token: verdict.opensAt });
}

/** R72: records a batch a critical release starts outside the windows. */
export function recordBypass(ctx: TickContext, r: RolloutState, u: UnitState, batchId: string, configurations: string[]): void {
  emit(ctx, {
    type: 'window.bypassed',
    rolloutId: r.id,
    batchId,
    scope: scopeOfUnit(u),
    configurations,
    reason: `critical security release ${r.toVersion}: started outside the maintenance window, as the configurations allow (R72)`,
  });
}
