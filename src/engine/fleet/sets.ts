/** Scale sets and availability sets at run time: create, replace (policy, zones, health) and remove. */
import type { AvailabilitySet, ScaleSet } from '../../model/fleet.js';
import { DEFAULT_HEALTH_WINDOW_MS } from '../../model/fleet.js';
import type { UpgradePolicyInput } from '../../model/upgrade-policy.js';
import { validateRollingPolicy, withDefaults } from '../../model/upgrade-policy.js';
import type { EngineState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { imageKeyOf } from '../os-images/os-images.js';
import {
  bool, conflict, int, invalid, machinesWhere, names, notFound, refuseInFlight, text,
} from './checks.js';

function setBasics(state: EngineState, input: { id: string; name: string; region: string; subscription: string; resourceGroup: string }) {
  const id = text(input?.id, 'id');
  const name = text(input.name, 'name');
  const regionName = text(input.region, 'region');
  const region = state.fleet.regions.get(regionName);
  if (!region) throw notFound('region', `region ${regionName} does not exist`);
  return { id, name, region, subscription: text(input.subscription, 'subscription'), resourceGroup: text(input.resourceGroup, 'resourceGroup') };
}

/** A set that has machines keeps its region, subscription, and the zones and domains they use. */
function checkMembers(
  state: EngineState,
  id: string,
  old: { region: string; subscription: string } | undefined,
  next: { region: string; subscription: string; zones: string[] | null; ud: number; fd: number },
): void {
  if (!old || (state.fleet.setSizes.get(id) ?? 0) === 0) return;
  if (old.region !== next.region) throw conflict('region', `set ${id} has machines in ${old.region}; it cannot move to ${next.region}`);
  if (old.subscription !== next.subscription) throw conflict('subscription', `set ${id} has machines in subscription ${old.subscription}`);
  for (const m of machinesWhere(state, (x) => x.placement.setId === id)) {
    const p = m.placement;
    if (next.zones !== null && p.zone !== null && !next.zones.includes(p.zone))
      throw conflict('zones', `machine ${m.id} of set ${id} is in zone ${p.zone}`);
    if (p.updateDomain !== null && p.updateDomain >= next.ud)
      throw conflict('updateDomainCount', `machine ${m.id} of set ${id} is in update domain ${p.updateDomain}`);
    if (p.faultDomain !== null && p.faultDomain >= next.fd)
      throw conflict('faultDomainCount', `machine ${m.id} of set ${id} is in fault domain ${p.faultDomain}`);
  }
}

/** A scale set to create or replace (upgrade policy, zones, health grace, application health). */
export function checkScaleSet(state: EngineState, input: ScaleSet): ScaleSet {
  const { id, name, region, subscription, resourceGroup } = setBasics(state, input);
  const zones = names(input.zones ?? [], 'zones');
  for (const z of zones) if (!region.zones.includes(z)) throw invalid('zones', `region ${region.name} has no zone ${z}; it has: ${region.zones.join(', ') || 'none'}`);
  const updateDomainCount = int(input.updateDomainCount ?? 5, 'updateDomainCount', 1, 20);
  const faultDomainCount = int(input.faultDomainCount ?? 5, 'faultDomainCount', 1, 20);
  const policyInput = (input.upgradePolicy ?? {}) as UpgradePolicyInput;
  if (policyInput.mode !== undefined && !['Automatic', 'Manual', 'Rolling'].includes(policyInput.mode)) throw invalid('upgradePolicy.mode', `upgradePolicy.mode must be Automatic, Manual or Rolling, got ${String(policyInput.mode)}`);
  const upgradePolicy = withDefaults(policyInput);
  for (const problem of validateRollingPolicy(upgradePolicy.rollingUpgradePolicy)) {
    const field = /^(\w+) /.exec(problem)?.[1] ?? '';
    throw invalid(`upgradePolicy.rollingUpgradePolicy.${field}`, problem);
  }
  const healthGracePeriodMs = input.healthGracePeriodMs ?? DEFAULT_HEALTH_WINDOW_MS;
  if (typeof healthGracePeriodMs !== 'number' || !Number.isFinite(healthGracePeriodMs) || healthGracePeriodMs < 0)
    throw invalid('healthGracePeriodMs', 'healthGracePeriodMs must be a duration in milliseconds, at least 0');
  const hasApplicationHealth = bool(input.hasApplicationHealth ?? false, 'hasApplicationHealth');
  if (state.fleet.availabilitySets.has(id)) throw conflict('id', `${id} is an availability set`);
  checkMembers(state, id, state.fleet.scaleSets.get(id), { region: region.name, subscription, zones, ud: updateDomainCount, fd: faultDomainCount });
  if (
    input.image !== undefined &&
    (typeof input.image !== 'object' || input.image === null || typeof (input.image as { kind?: unknown }).kind !== 'string')
  )
    throw invalid('image', 'image must be a parsed image reference');
  // Moving to another image drops the old image's instances: not while one of them is being re-imaged.
  const before = state.fleet.scaleSets.get(id)?.image;
  const oldKey = before ? imageKeyOf(before) : null;
  if (oldKey !== null && oldKey !== (input.image ? imageKeyOf(input.image) : null)) {
    for (const m of machinesWhere(state, (x) => x.placement.setId === id)) refuseInFlight(state, m.id, oldKey, `change the image of scale set ${id}`);
  }
  return {
    id,
    name,
    region: region.name,
    subscription,
    resourceGroup,
    zones,
    updateDomainCount,
    faultDomainCount,
    upgradePolicy,
    healthGracePeriodMs,
    hasApplicationHealth,
    ...(input.image ? { image: input.image } : {}),
  };
}

export function applyScaleSet(ctx: TickContext, set: ScaleSet): void {
  ctx.state.fleet.scaleSets.set(set.id, set);
  ctx.changes?.scaleSets.add(set.id);
}

export function checkAvailabilitySet(state: EngineState, input: AvailabilitySet): AvailabilitySet {
  const { id, name, region, subscription, resourceGroup } = setBasics(state, input);
  const updateDomainCount = int(input.updateDomainCount ?? 5, 'updateDomainCount', 1, 20);
  const faultDomainCount = int(input.faultDomainCount ?? 2, 'faultDomainCount', 1, 3);
  if (state.fleet.scaleSets.has(id)) throw conflict('id', `${id} is a scale set`);
  checkMembers(state, id, state.fleet.availabilitySets.get(id), { region: region.name, subscription, zones: null, ud: updateDomainCount, fd: faultDomainCount });
  return { id, name, region: region.name, subscription, resourceGroup, updateDomainCount, faultDomainCount };
}

export function applyAvailabilitySet(ctx: TickContext, set: AvailabilitySet): void {
  ctx.state.fleet.availabilitySets.set(set.id, set);
  ctx.changes?.availabilitySets.add(set.id);
}

/** A set can go once it has no machines. */
export function checkRemoveSet(state: EngineState, kind: 'scaleSet' | 'availabilitySet', id: string): void {
  const sets = kind === 'scaleSet' ? state.fleet.scaleSets : state.fleet.availabilitySets;
  if (!sets.has(id)) throw notFound('id', `${kind === 'scaleSet' ? 'scale set' : 'availability set'} ${id} does not exist`);
  const n = state.fleet.setSizes.get(id) ?? 0;
  if (n > 0) throw conflict('id', `set ${id} still has ${n} machine(s); remove them first`);
}

export function applyRemoveSet(ctx: TickContext, kind: 'scaleSet' | 'availabilitySet', id: string): void {
  const fleet = ctx.state.fleet;
  (kind === 'scaleSet' ? fleet.scaleSets : fleet.availabilitySets).delete(id);
  fleet.setSizes.delete(id);
  fleet.setUnhealthy.delete(id);
  (kind === 'scaleSet' ? ctx.changes?.scaleSets : ctx.changes?.availabilitySets)?.add(id);
  dropAssignments(ctx, id);
}

/** A deleted machine or set takes its maintenance assignments with it. */
export function dropAssignments(ctx: TickContext, target: string): void {
  if (ctx.state.maintenance.assignments.delete(target)) ctx.changes?.maintenanceTargets.add(target);
}
