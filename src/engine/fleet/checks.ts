/** Small checks the fleet commands share; each throws a FleetError naming the field at fault. */
import type { ExtensionInstance } from '../../model/artifact.js';
import type { Machine } from '../../model/fleet.js';
import type { AttemptStatus, EngineState, RolloutState } from '../state.js';
import { getInstance, IN_FLIGHT } from '../state.js';
import { FleetError } from '../core/errors.js';
import { MAX_STORED_DEPTH, nestsDeeperThan } from '../../util/json-depth.js';

export const invalid = (target: string, message: string) => new FleetError('InvalidFleet', message, target);

export const notFound = (target: string, message: string) => new FleetError('NotFound', message, target);

export const conflict = (target: string, message: string) => new FleetError('Conflict', message, target);

export function text(value: unknown, target: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(target, `${target} must be a non-empty string`);
  return value;
}

export function int(value: unknown, target: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw invalid(target, `${target} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}

export function bool(value: unknown, target: string): boolean {
  if (typeof value !== 'boolean') throw invalid(target, `${target} must be true or false`);
  return value;
}

export function names(value: unknown, target: string): string[] {
  if (!Array.isArray(value) || value.some((z) => typeof z !== 'string' || z === '')) throw invalid(target, `${target} must be a list of names`);
  if (new Set(value).size !== value.length) throw invalid(target, `${target} lists a name twice`);
  return [...(value as string[])];
}

export function settingsOf(value: unknown, target: string): Readonly<Record<string, unknown>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(target, `${target} must be an object`);
  // Checked before anything changes: deeper data would fail the commit and halt the engine for everyone.
  if (nestsDeeperThan(value, MAX_STORED_DEPTH)) throw invalid(target, `${target} nests deeper than ${MAX_STORED_DEPTH} levels`);
  return Object.freeze(structuredClone(value as Record<string, unknown>));
}

export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The rollout attempt in flight on the instance, if any. */
export function inFlight(state: EngineState, machineId: string, artifactKey?: string): { rollout: RolloutState; status: AttemptStatus } | null {
  for (const r of state.rollouts.values()) {
    if (artifactKey !== undefined && r.artifactKey !== artifactKey) continue;
    const a = r.attempts.get(machineId);
    if (a && IN_FLIGHT.has(a.status)) return { rollout: r, status: a.status };
  }
  return null;
}

export function refuseInFlight(state: EngineState, machineId: string, artifactKey: string | undefined, what: string): void {
  const f = inFlight(state, machineId, artifactKey);
  if (f) throw conflict('machineId', `cannot ${what}: rollout ${f.rollout.id} has an attempt in flight on machine ${machineId} (${f.status}); try again once it settles`);
}

export function mustMachine(state: EngineState, machineId: string): Machine {
  const m = state.fleet.machines.get(machineId);
  if (!m) throw notFound('machineId', `machine ${machineId} does not exist`);
  return m;
}

export function mustInstance(state: EngineState, machineId: string, artifactKey: string): ExtensionInstance {
  mustMachine(state, machineId);
  const inst = getInstance(state.fleet, artifactKey, machineId);
  if (!inst) throw notFound('artifactKey', `machine ${machineId} has no extension ${artifactKey}`);
  return inst;
}

export function machinesWhere(state: EngineState, test: (m: Machine) => boolean): Machine[] {
  const out: Machine[] = [];
  for (const m of state.fleet.machines.values()) if (test(m)) out.push(m);
  return out;
}
