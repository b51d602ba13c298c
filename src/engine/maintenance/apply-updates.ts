/**
 * `applyUpdates` and pending updates (R73, azure-api.md §8): what is waiting for a resource's machines, and
 * applying all of it at once on demand. Pending automatic upgrades (Extension and OSImage scopes) are
 * applied through a manual rollout of those machines (R6: batch and health rules kept, no windows), so
 * the automatic rollout finds them done; pending host updates are applied at once.
 */
import type { Artifact } from '../../model/artifact.js';
import type { Machine } from '../../model/fleet.js';
import { scopeOf } from '../../model/maintenance.js';
import type { MaintenanceScope } from '../../schedule/limits.js';
import { applyHost, hostDueAt, pendingHostUpdates } from './host.js';
import type { TickContext } from '../core/context.js';
import type { RolloutSettings } from '../core/settings.js';
import { FleetError } from '../core/errors.js';
import { createRollout } from '../rollouts/create.js';
import { rolloutMembers } from '../opt-in/opt-in.js';
import type { PlanBatch } from '../../planner/types.js';
import type { EngineState, RolloutState, UnitState } from '../state.js';
import { getInstance, IN_FLIGHT } from '../state.js';

export interface PendingUpdate {
  scope: MaintenanceScope;
  machineId: string;
  /** `None` for extensions, `Redeploy` for an OS image, the update's own for host updates. */
  impactType: string;
  impactDurationSec: number;
  /** Earliest instant it may be applied without being asked: the unit's window, or the host schedule. */
  notBeforeMs: number;
  status: 'Pending' | 'InProgress';
  /** Extension and OSImage: the rollout and target version; Host: the update ids. */
  rolloutId?: string;
  artifact?: Artifact;
  toVersion?: string;
  updates?: string[];
}


/** Automatic rollouts still to reach a machine: not final there, with the instance below the target version. */
function automaticPending(state: EngineState, r: RolloutState, machine: Machine): 'Pending' | 'InProgress' | null {
  if (r.status !== 'running' || r.plan.profile.name === 'manual' || !rolloutMembers(r).has(machine.id)) return null;
  const a = r.attempts.get(machine.id);
  if (a) {
    if (IN_FLIGHT.has(a.status)) return 'InProgress';
    return a.status === 'retryWait' || a.status === 'retryReady' ? 'Pending' : null;
  }
  const inst = getInstance(state.fleet, r.artifactKey, machine.id);
  if (!inst || inst.installedVersion === r.toVersion || inst.installedVersion === '') return null;
  return 'Pending';
}

export function pendingUpdates(state: EngineState, machines: readonly Machine[], now: number): PendingUpdate[] {
  const out: PendingUpdate[] = [];
  // Where each machine sits in each rollout's plan, built once per rollout for this call.
  const indexes = new Map<RolloutState, Map<string, { unit: UnitState; batch: PlanBatch }>>();
  const placements = (r: RolloutState) => {
    let index = indexes.get(r);
    if (!index) {
      indexes.set(r, (index = new Map()));
      for (const unit of r.units.values()) for (const batch of unit.plan.batches) for (const id of batch.machineIds) index.set(id, { unit, batch });
    }
    return index;
  };
  for (const machine of machines) {
    for (const r of state.rollouts.values()) {
      const status = automaticPending(state, r, machine);
      if (!status) continue;
      out.push({
        scope: scopeOf(r.artifact), machineId: machine.id, impactType: r.artifact.kind === 'osImage' ? 'Redeploy' : 'None', impactDurationSec: 0,
        notBeforeMs: Math.max(now, expectedStart(r, placements(r), machine.id, now)), status, rolloutId: r.id, artifact: r.artifact, toVersion: r.toVersion,
      });
    }
    const host = pendingHostUpdates(state, machine);
    if (host.length > 0) {
      out.push({
        scope: 'Host', machineId: machine.id, impactType: host.some((u) => u.impactType === 'Redeploy') ? 'Redeploy' : host.some((u) => u.impactType === 'Restart') ? 'Restart' : host[0]!.impactType,
        impactDurationSec: Math.max(...host.map((u) => u.impactDurationSec)), notBeforeMs: hostDueAt(state, machine, now) ?? now, status: 'Pending', updates: host.map((u) => u.id),
      });
    }
  }
  return out;
}

/**
 * When the machine's upgrade is expected to start: the slot its unit waits for, else the window its batch
 * was planned in, else now.
 */
function expectedStart(r: RolloutState, index: Map<string, { unit: UnitState; batch: PlanBatch }>, machineId: string, now: number): number {
  const at = index.get(machineId);
  if (!at) return now;
  if (at.unit.status === 'window' && at.unit.windowOpensAt != null) return at.unit.windowOpensAt;
  return at.batch.window ? r.plan.estimate.startMs + at.batch.window.startMs : now;
}

/** The manual upgrades that apply the pending automatic ones now: per artifact and version, the machines not in flight. */
export function applyNowGroups(state: EngineState, machines: readonly Machine[]): Array<{ artifact: Artifact; toVersion: string; machineIds: string[] }> {
  const groups = new Map<string, { artifact: Artifact; toVersion: string; machineIds: Set<string> }>();
  for (const r of state.rollouts.values()) {
    for (const machine of machines) {
      if (automaticPending(state, r, machine) !== 'Pending') continue;
      const key = `${r.artifactKey}|${r.toVersion}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { artifact: r.artifact, toVersion: r.toVersion, machineIds: new Set() }));
      g.machineIds.add(machine.id);
    }
  }
  return [...groups.values()].map((g) => ({ ...g, machineIds: [...g.machineIds] }));
}

/**
 * R73 `applyUpdates`, applied: host updates at once; pending automatic upgrades through manual rollouts
 * (R6), outside any window.
 */
export function applyNow(
  ctx: TickContext, settings: RolloutSettings, machines: readonly Machine[],
  groups: ReturnType<typeof applyNowGroups>, caller: string,
): { hostApplied: number; rollouts: RolloutState[] } {
  let hostApplied = 0;
  for (const m of machines) hostApplied += applyHost(ctx, m, `applyUpdates requested by ${caller} (R73)`, caller);
  const rollouts: RolloutState[] = [];
  for (const g of groups) {
    const reason = `applyUpdates requested by ${caller}: pending automatic upgrade applied now (R73)`;
    const r = createRollout(ctx, settings, { artifact: g.artifact, machineIds: g.machineIds, toVersion: g.toVersion, caller, profile: 'manual', reason });
    if (r) rollouts.push(r);
  }
  return { hostApplied, rollouts };
}

/** The machines of these ids; a FleetError names the first that does not exist. */
export function machinesOf(state: EngineState, ids: readonly string[]): Machine[] {
  const out: Machine[] = [];
  for (const id of ids) {
    const m = state.fleet.machines.get(id);
    if (!m) throw new FleetError('NotFound', `no machine ${id}`, 'machineId');
    out.push(m);
  }
  return out;
}
