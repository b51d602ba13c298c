/**
 * Maintenance configurations as the engine sees them (R70–R73): a scope, a window and whether critical
 * releases may bypass it, assigned to machines and sets. Who may be upgraded when is derived from these
 * with pure functions, so the planner and the engine agree.
 */
import type { MaintenanceScope } from '../schedule/limits.js';
import type { MaintenanceWindow, MaintenanceWindowSpec } from '../schedule/window.js';
import { maintenanceWindow } from '../schedule/window.js';
import type { WindowUnion } from '../schedule/slots.js';
import type { Artifact } from './artifact.js';
import type { Machine } from './fleet.js';

export interface MaintenanceConfigSpec {
  /** Any stable id; the ARM layer uses the lower-cased resource id. */
  id: string;
  scope: MaintenanceScope;
  window: MaintenanceWindowSpec;
  /** R72: releases flagged critical may start batches outside this configuration's windows. */
  emergencyBypass: boolean;
}

export interface MaintenanceConfig extends MaintenanceConfigSpec {
  parsed: MaintenanceWindow;
}

/** A platform host update (R73), published for some regions (null: all). */
export interface HostUpdate {
  id: string;
  publishedAtMs: number;
  regions: string[] | null;
  impactType: 'None' | 'Freeze' | 'Restart' | 'Redeploy';
  impactDurationSec: number;
}

export interface MaintenanceState {
  configs: Map<string, MaintenanceConfig>;
  /** Target (a machine id or a set id) → ids of the configurations assigned to it. */
  assignments: Map<string, Set<string>>;
  /** Host updates in publication order. */
  hostUpdates: HostUpdate[];
  /** Machines under a Host-scope configuration: how many host updates they took, and when they last did. */
  hostApplied: Map<string, { through: number; lastMs: number }>;
}

export function emptyMaintenance(): MaintenanceState {
  return { configs: new Map(), assignments: new Map(), hostUpdates: [], hostApplied: new Map() };
}

/** Parses a configuration's window; throws a RangeError naming the problem when it is invalid. */
export function maintenanceConfig(spec: MaintenanceConfigSpec): MaintenanceConfig {
  return { ...spec, parsed: maintenanceWindow(spec.window) };
}

/** The maintenance scope that confines automatic upgrades of an artifact. */
export function scopeOf(artifact: Artifact): MaintenanceScope {
  if (artifact.kind === 'guestPatch') return 'InGuestPatch';
  return artifact.kind === 'extension' ? 'Extension' : 'OSImage';
}

/**
 * The configurations of `scope` that confine a machine: those assigned to it and to its set (scale-set
 * instances follow their set's assignment). Sorted and joined, '' when none: machines with equal keys
 * share their windows, so the planner keeps them in the same units.
 */
export function windowKeyOf(m: MaintenanceState, scope: MaintenanceScope, machine: Machine): string {
  if (m.assignments.size === 0) return '';
  const ids: string[] = [];
  const add = (target: string | null) => {
    if (target === null) return;
    for (const id of m.assignments.get(target) ?? []) if (m.configs.get(id)?.scope === scope && !ids.includes(id)) ids.push(id);
  };
  add(machine.id);
  add(machine.placement.setId);
  return ids.sort().join('\n');
}

/** The configurations behind a key (those still defined). */
export function configsOfKey(m: MaintenanceState, key: string): MaintenanceConfig[] {
  if (key === '') return [];
  const out: MaintenanceConfig[] = [];
  for (const id of key.split('\n')) {
    const c = m.configs.get(id);
    if (c) out.push(c);
  }
  return out;
}

/** The windows behind a key: the machine may be upgraded in any of them. */
export function windowsOfKey(m: MaintenanceState, key: string): WindowUnion {
  return configsOfKey(m, key).map((c) => c.parsed);
}
