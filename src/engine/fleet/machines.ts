/** Machines at run time: added without extensions, deleted with their open attempts skipped. */
import type { ExtensionInstance } from '../../model/artifact.js';
import type { Machine, Placement, ScaleSet } from '../../model/fleet.js';
import type { EngineState } from '../state.js';
import { addMachine } from '../state.js';
import type { TickContext } from '../core/context.js';
import { MACHINE_DELETED } from '../attempts/skip.js';
import { dropInstance, settleRollouts } from '../rollouts/removal.js';
import { dropAssignments } from './sets.js';
import { abandonUserAction } from './user-actions.js';
import {
  conflict, int, invalid, machinesWhere, mustMachine, notFound, refuseInFlight, text,
} from './checks.js';

const KINDS = { vm: true, scaleSetInstance: true, arc: true } as const;

/**
 * A new machine, checked against its region and set. Update and fault domains left null on a set's
 * machine are spread by its position in the set; a scale-set instance without `instanceId` gets the
 * next free ordinal.
 */
export function checkAddMachine(state: EngineState, input: Machine): Machine {
  const fleet = state.fleet;
  const id = text(input?.id, 'id');
  if (fleet.machines.has(id)) throw conflict('id', `machine ${id} already exists`);
  const name = input.name === undefined ? id : text(input.name, 'name');
  if (typeof input.kind !== 'string' || !Object.hasOwn(KINDS, input.kind)) throw invalid('kind', `kind must be vm, scaleSetInstance or arc, got ${String(input.kind)}`);
  if (input.os !== 'linux' && input.os !== 'windows') throw invalid('os', `os must be linux or windows, got ${String(input.os)}`);
  const resourceGroup = text(input.resourceGroup, 'resourceGroup');
  const p = input.placement;
  if (!p || typeof p !== 'object') throw invalid('placement', 'placement is required');
  const regionName = text(p.region, 'placement.region');
  const region = fleet.regions.get(regionName);
  if (!region) throw notFound('placement.region', `region ${regionName} does not exist`);
  const subscription = text(p.subscription, 'placement.subscription');
  const zone = p.zone ?? null;
  if (zone !== null && !region.zones.includes(zone)) throw invalid('placement.zone', `region ${regionName} has no zone ${zone}; it has: ${region.zones.join(', ') || 'none'}`);
  const setKind = p.setKind ?? 'none';
  const expected = input.kind === 'scaleSetInstance' ? ['scaleSet'] : input.kind === 'arc' ? ['none'] : ['availabilitySet', 'none'];
  if (!expected.includes(setKind)) throw invalid('placement.setKind', `a machine of kind ${input.kind} cannot have setKind ${setKind}; expected ${expected.join(' or ')}`);
  if (input.kind === 'arc' && zone !== null) throw invalid('placement.zone', 'Arc machines have no availability zones');
  let updateDomain = p.updateDomain ?? null;
  let faultDomain = p.faultDomain ?? null;
  let setId: string | null = null;
  let instanceId = input.instanceId;
  if (setKind === 'none') {
    if (p.setId != null) throw invalid('placement.setId', `setId must be null when setKind is none`);
  } else {
    setId = text(p.setId, 'placement.setId');
    const set = setKind === 'scaleSet' ? fleet.scaleSets.get(setId) : fleet.availabilitySets.get(setId);
    if (!set) throw notFound('placement.setId', `${setKind === 'scaleSet' ? 'scale set' : 'availability set'} ${setId} does not exist`);
    if (set.region !== regionName) throw invalid('placement.region', `set ${setId} is in region ${set.region}, not ${regionName}`);
    if (set.subscription !== subscription) throw invalid('placement.subscription', `set ${setId} is in subscription ${set.subscription}, not ${subscription}`);
    const setZones: string[] = setKind === 'scaleSet' ? (set as ScaleSet).zones : [];
    if (setZones.length > 0 ? zone === null || !setZones.includes(zone) : zone !== null) {
      throw invalid('placement.zone', setZones.length > 0 ? `set ${setId} spans zones ${setZones.join(', ')}; expected one of them, got ${zone ?? 'none'}` : `set ${setId} has no zones; expected none, got ${zone}`);
    }
    const position = fleet.setSizes.get(setId) ?? 0;
    updateDomain = updateDomain === null ? position % set.updateDomainCount : int(updateDomain, 'placement.updateDomain', 0, set.updateDomainCount - 1);
    faultDomain = faultDomain === null ? position % set.faultDomainCount : int(faultDomain, 'placement.faultDomain', 0, set.faultDomainCount - 1);
    if (setKind === 'scaleSet') instanceId = checkInstanceId(state, setId, instanceId);
  }
  if (setKind !== 'scaleSet' && instanceId !== undefined) throw invalid('instanceId', 'only scale-set instances have an instanceId');
  const placement: Placement = Object.freeze({ region: regionName, zone, setId, setKind, updateDomain, faultDomain, subscription });
  return { id, name, kind: input.kind, os: input.os, resourceGroup, placement, ...(instanceId !== undefined ? { instanceId } : {}) };
}

/** A given instance id must be free in its set; none given takes the next ordinal. */
function checkInstanceId(state: EngineState, setId: string, given: string | undefined): string {
  const members = machinesWhere(state, (m) => m.placement.setId === setId);
  if (given !== undefined) {
    text(given, 'instanceId');
    const taken = members.find((m) => m.instanceId === given);
    if (taken) throw conflict('instanceId', `instance id ${given} of scale set ${setId} is taken by machine ${taken.id}`);
    return given;
  }
  let next = 0;
  for (const m of members) if (m.instanceId !== undefined && /^\d+$/.test(m.instanceId)) next = Math.max(next, Number(m.instanceId) + 1);
  return String(next);
}

export function applyAddMachine(ctx: TickContext, m: Machine): void {
  addMachine(ctx.state.fleet, m);
  ctx.changes?.machinesAdded.push(m);
}

/** A machine can go unless an attempt is in flight on it. */
export function checkRemoveMachine(state: EngineState, id: string): Machine {
  const m = mustMachine(state, id);
  refuseInFlight(state, id, undefined, `remove machine ${id}`);
  return m;
}

/** Every extension instance on a machine. */
export function instancesOn(state: EngineState, machineId: string): ExtensionInstance[] {
  const out: ExtensionInstance[] = [];
  for (const byMachine of state.fleet.instances.values()) {
    const inst = byMachine.get(machineId);
    if (inst) out.push(inst);
  }
  return out;
}

/**
 * Deletes a machine: its waiting or planned attempts are skipped ('machine deleted') so rollouts still
 * complete, then its instances, health and set counts go, and actions still open for it are given up.
 */
export function applyRemoveMachine(ctx: TickContext, m: Machine): void {
  const state = ctx.state;
  const fleet = state.fleet;
  const instances = instancesOn(state, m.id);
  dropAssignments(ctx, m.id);
  for (const inst of instances) settleRollouts(ctx, inst, MACHINE_DELETED);
  for (const inst of instances) dropInstance(ctx, inst);
  for (const [ref, key] of [...state.installing]) {
    if (state.pendingActions.get(key)?.machineId !== m.id) continue;
    abandonUserAction(ctx, ref.slice(0, ref.length - m.id.length - 1), m.id);
  }
  const setId = m.placement.setId;
  if (fleet.unhealthy.delete(m.id) && setId) fleet.setUnhealthy.set(setId, (fleet.setUnhealthy.get(setId) ?? 1) - 1);
  if (fleet.health.delete(m.id)) ctx.changes?.health.add(m.id);
  if (setId) fleet.setSizes.set(setId, (fleet.setSizes.get(setId) ?? 1) - 1);
  fleet.machines.delete(m.id);
  ctx.changes?.machinesRemoved.push(m);
}
