/**
 * Changing the fleet at run time: regions, scale sets, availability sets, machines, the extensions on
 * them, and scale-set enrollment (R7). Each command comes in two halves: `check*` reads the state and
 * throws a FleetError on anything wrong, before anything changes; `apply*` then makes the change inside
 * one unit of engine work (apply → commit → send → publish), so a refused command changes nothing and an
 * accepted one is saved whole or not at all.
 */
import { MAX_STORED_DEPTH, nestsDeeperThan } from '../util/json-depth.js';
import type { AutoUpgradeState } from '../catalog/catalog.js';
import { autoUpgradeState, effectiveAutoUpgrade, installVersion } from '../catalog/catalog.js';
import type { ExtensionInstance } from '../model/artifact.js';
import { artifactKey as keyOf, isExtensionKey } from '../model/artifact.js';
import type { AvailabilitySet, Machine, Placement, Region, ScaleSet } from '../model/fleet.js';
import { DEFAULT_HEALTH_WINDOW_MS, validateRegionPairs } from '../model/fleet.js';
import type { UpgradePolicyInput } from '../model/upgrade-policy.js';
import { validateRollingPolicy, withDefaults } from '../model/upgrade-policy.js';
import { isVersionPrefix } from '../model/version.js';
import type { TickContext } from './context.js';
import { changed, emit } from './context.js';
import { EXTENSION_REMOVED, MACHINE_DELETED, skipGone } from './instances.js';
import { applyAutomaticUpgrade, catchUp, resumeIn } from './opt-in.js';
import { checkRolloutDone } from './progress.js';
import type { RolloutSettings } from './rollouts.js';
import type { AttemptStatus, EngineState, RolloutState } from './state.js';
import { addInstance, addMachine, getInstance, instanceRef, isEnrolled, machineContext, refreshMachineHealth } from './state.js';
import { abandonUserAction, artifactOf, sendInstall, sendUninstall } from './user-actions.js';
import { imageKeyOf } from './os-images.js';

export type FleetErrorCode = 'Conflict' | 'NotFound' | 'VersionNotFound' | 'InvalidFleet';

/** A fleet command refused; nothing changed. `target` names the field or resource at fault. */
export class FleetError extends Error {
  constructor(readonly code: FleetErrorCode, message: string, readonly target: string | null = null) {
    super(message);
    this.name = 'FleetError';
  }
}

/** An extension to install on a machine (ARM's extension properties). */
export interface ExtensionSpec {
  name: string;
  publisher: string;
  type: string;
  typeHandlerVersion: string;
  autoUpgradeMinorVersion: boolean;
  enableAutomaticUpgrade: boolean;
  settings: Record<string, unknown>;
}

/** A change to an installed extension; `reinstall` asks for an install of the same version (a new forceUpdateTag). */
export interface ExtensionPatch {
  typeHandlerVersion?: string;
  autoUpgradeMinorVersion?: boolean;
  enableAutomaticUpgrade?: boolean;
  settings?: Record<string, unknown>;
  reinstall?: boolean;
}

const IN_FLIGHT: ReadonlySet<AttemptStatus> = new Set(['noticed', 'upgrading', 'healthWait', 'rollingBack']);

// ---- small checks ---------------------------------------------------------------------------------

const invalid = (target: string, message: string) => new FleetError('InvalidFleet', message, target);
const notFound = (target: string, message: string) => new FleetError('NotFound', message, target);
const conflict = (target: string, message: string) => new FleetError('Conflict', message, target);

function text(value: unknown, target: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(target, `${target} must be a non-empty string`);
  return value;
}

function int(value: unknown, target: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw invalid(target, `${target} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}

function bool(value: unknown, target: string): boolean {
  if (typeof value !== 'boolean') throw invalid(target, `${target} must be true or false`);
  return value;
}

function names(value: unknown, target: string): string[] {
  if (!Array.isArray(value) || value.some((z) => typeof z !== 'string' || z === '')) throw invalid(target, `${target} must be a list of names`);
  if (new Set(value).size !== value.length) throw invalid(target, `${target} lists a name twice`);
  return [...(value as string[])];
}

function settingsOf(value: unknown, target: string): Readonly<Record<string, unknown>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(target, `${target} must be an object`);
  // Checked before anything changes: deeper data would fail the commit and halt the engine for everyone.
  if (nestsDeeperThan(value, MAX_STORED_DEPTH)) throw invalid(target, `${target} nests deeper than ${MAX_STORED_DEPTH} levels`);
  return Object.freeze(structuredClone(value as Record<string, unknown>));
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The rollout attempt in flight on the instance, if any. */
function inFlight(state: EngineState, machineId: string, artifactKey?: string): { rollout: RolloutState; status: AttemptStatus } | null {
  for (const r of state.rollouts.values()) {
    if (artifactKey !== undefined && r.artifactKey !== artifactKey) continue;
    const a = r.attempts.get(machineId);
    if (a && IN_FLIGHT.has(a.status)) return { rollout: r, status: a.status };
  }
  return null;
}

function refuseInFlight(state: EngineState, machineId: string, artifactKey: string | undefined, what: string): void {
  const f = inFlight(state, machineId, artifactKey);
  if (f) throw conflict('machineId', `cannot ${what}: rollout ${f.rollout.id} has an attempt in flight on machine ${machineId} (${f.status}); try again once it settles`);
}

function mustMachine(state: EngineState, machineId: string): Machine {
  const m = state.fleet.machines.get(machineId);
  if (!m) throw notFound('machineId', `machine ${machineId} does not exist`);
  return m;
}

function mustInstance(state: EngineState, machineId: string, artifactKey: string): ExtensionInstance {
  mustMachine(state, machineId);
  const inst = getInstance(state.fleet, artifactKey, machineId);
  if (!inst) throw notFound('artifactKey', `machine ${machineId} has no extension ${artifactKey}`);
  return inst;
}

function machinesWhere(state: EngineState, test: (m: Machine) => boolean): Machine[] {
  const out: Machine[] = [];
  for (const m of state.fleet.machines.values()) if (test(m)) out.push(m);
  return out;
}

// ---- regions ----------------------------------------------------------------------------------------

/** A region to create, or new zones and pair for an existing one; zones in use stay, pairs stay consistent. */
export function checkRegion(state: EngineState, input: Region): Region {
  const name = text(input?.name, 'name');
  const zones = names(input.zones ?? [], 'zones');
  const pair = input.pair ?? null;
  if (pair !== null) text(pair, 'pair');
  const region: Region = { name, pair, zones };
  const before = new Set(validateRegionPairs([...state.fleet.regions.values()]));
  const next = new Map(state.fleet.regions).set(name, region);
  const problems = validateRegionPairs([...next.values()]).filter((p) => !before.has(p));
  if (problems.length > 0) throw invalid('pair', problems.join('; '));
  const old = state.fleet.regions.get(name);
  const dropped = old ? old.zones.filter((z) => !zones.includes(z)) : [];
  if (dropped.length > 0) {
    for (const s of state.fleet.scaleSets.values()) {
      if (s.region === name && s.zones.some((z) => dropped.includes(z))) throw conflict('zones', `scale set ${s.id} uses zone(s) ${dropped.join(', ')} of region ${name}`);
    }
    const m = machinesWhere(state, (x) => x.placement.region === name && x.placement.zone !== null && dropped.includes(x.placement.zone))[0];
    if (m) throw conflict('zones', `machine ${m.id} is in zone ${m.placement.zone} of region ${name}`);
  }
  return region;
}

export function applyRegion(ctx: TickContext, region: Region): void {
  ctx.state.fleet.regions.set(region.name, region);
  ctx.changes?.fleetRegions.add(region.name);
}

// ---- sets -------------------------------------------------------------------------------------------

function setBasics(state: EngineState, input: { id: string; name: string; region: string; subscription: string; resourceGroup: string }) {
  const id = text(input?.id, 'id');
  const name = text(input.name, 'name');
  const regionName = text(input.region, 'region');
  const region = state.fleet.regions.get(regionName);
  if (!region) throw notFound('region', `region ${regionName} does not exist`);
  return { id, name, region, subscription: text(input.subscription, 'subscription'), resourceGroup: text(input.resourceGroup, 'resourceGroup') };
}

/** A set that has machines keeps its region, subscription, and the zones and domains they use. */
function checkMembers(state: EngineState, id: string, old: { region: string; subscription: string } | undefined, next: { region: string; subscription: string; zones: string[] | null; ud: number; fd: number }): void {
  if (!old || (state.fleet.setSizes.get(id) ?? 0) === 0) return;
  if (old.region !== next.region) throw conflict('region', `set ${id} has machines in ${old.region}; it cannot move to ${next.region}`);
  if (old.subscription !== next.subscription) throw conflict('subscription', `set ${id} has machines in subscription ${old.subscription}`);
  for (const m of machinesWhere(state, (x) => x.placement.setId === id)) {
    const p = m.placement;
    if (next.zones !== null && p.zone !== null && !next.zones.includes(p.zone)) throw conflict('zones', `machine ${m.id} of set ${id} is in zone ${p.zone}`);
    if (p.updateDomain !== null && p.updateDomain >= next.ud) throw conflict('updateDomainCount', `machine ${m.id} of set ${id} is in update domain ${p.updateDomain}`);
    if (p.faultDomain !== null && p.faultDomain >= next.fd) throw conflict('faultDomainCount', `machine ${m.id} of set ${id} is in fault domain ${p.faultDomain}`);
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
  if (typeof healthGracePeriodMs !== 'number' || !Number.isFinite(healthGracePeriodMs) || healthGracePeriodMs < 0) throw invalid('healthGracePeriodMs', 'healthGracePeriodMs must be a duration in milliseconds, at least 0');
  const hasApplicationHealth = bool(input.hasApplicationHealth ?? false, 'hasApplicationHealth');
  if (state.fleet.availabilitySets.has(id)) throw conflict('id', `${id} is an availability set`);
  checkMembers(state, id, state.fleet.scaleSets.get(id), { region: region.name, subscription, zones, ud: updateDomainCount, fd: faultDomainCount });
  if (input.image !== undefined && (typeof input.image !== 'object' || input.image === null || typeof (input.image as { kind?: unknown }).kind !== 'string')) throw invalid('image', 'image must be a parsed image reference');
  // Moving to another image drops the old image's instances: not while one of them is being re-imaged.
  const before = state.fleet.scaleSets.get(id)?.image;
  const oldKey = before ? imageKeyOf(before) : null;
  if (oldKey !== null && oldKey !== (input.image ? imageKeyOf(input.image) : null)) {
    for (const m of machinesWhere(state, (x) => x.placement.setId === id)) refuseInFlight(state, m.id, oldKey, `change the image of scale set ${id}`);
  }
  return { id, name, region: region.name, subscription, resourceGroup, zones, updateDomainCount, faultDomainCount, upgradePolicy, healthGracePeriodMs, hasApplicationHealth, ...(input.image ? { image: input.image } : {}) };
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
function dropAssignments(ctx: TickContext, target: string): void {
  if (ctx.state.maintenance.assignments.delete(target)) ctx.changes?.maintenanceTargets.add(target);
}

// ---- machines ---------------------------------------------------------------------------------------

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
function instancesOn(state: EngineState, machineId: string): ExtensionInstance[] {
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

/** Rollouts that may still attempt the instance skip it now; a rollout left with nothing open completes. */
function settleRollouts(ctx: TickContext, inst: ExtensionInstance, reason: string): void {
  for (const r of ctx.state.rollouts.values()) {
    if (r.artifactKey !== inst.artifactKey || (r.status !== 'running' && r.status !== 'stopped')) continue;
    if (skipGone(ctx, r, inst, reason) && r.open === 0) checkRolloutDone(ctx, r);
  }
}

/** Takes instances out of the fleet (a set moved to another image): the rollouts that hold them skip them. */
export function removeInstances(ctx: TickContext, insts: readonly ExtensionInstance[], reason: string): void {
  for (const inst of insts) settleRollouts(ctx, inst, reason);
  for (const inst of insts) dropInstance(ctx, inst);
}

function dropInstance(ctx: TickContext, inst: ExtensionInstance): void {
  const byMachine = ctx.state.fleet.instances.get(inst.artifactKey);
  byMachine?.delete(inst.machineId);
  if (byMachine && byMachine.size === 0) ctx.state.fleet.instances.delete(inst.artifactKey);
  ctx.changes?.instancesRemoved.push(inst);
}

// ---- extensions ---------------------------------------------------------------------------------

export interface InstallPlan {
  inst: ExtensionInstance;
  version: string;
}

/** R4: a new extension on a machine, at the version its typeHandlerVersion and autoUpgradeMinorVersion resolve to. */
export function checkInstall(state: EngineState, machineId: string, spec: ExtensionSpec, now: number): InstallPlan {
  const m = mustMachine(state, machineId);
  const name = text(spec?.name, 'name');
  const publisherIn = text(spec.publisher, 'publisher');
  const typeIn = text(spec.type, 'type');
  const typeHandlerVersion = text(spec.typeHandlerVersion, 'typeHandlerVersion');
  if (!isVersionPrefix(typeHandlerVersion)) throw invalid('typeHandlerVersion', `typeHandlerVersion must be one to four numbers separated by dots (1.30), got ${typeHandlerVersion}`);
  const autoUpgradeMinorVersion = bool(spec.autoUpgradeMinorVersion, 'autoUpgradeMinorVersion');
  const enableAutomaticUpgrade = bool(spec.enableAutomaticUpgrade, 'enableAutomaticUpgrade');
  const settings = settingsOf(spec.settings ?? {}, 'settings');
  const t = state.catalog.getType(publisherIn, typeIn);
  const publisher = t?.publisher ?? publisherIn;
  const type = t?.type ?? typeIn;
  const artifactKey = keyOf({ kind: 'extension', publisher, type });
  if (getInstance(state.fleet, artifactKey, machineId)) throw conflict('type', `machine ${machineId} already has an extension of type ${publisher}.${type}`);
  const sameName = instancesOn(state, machineId).find((i) => i.name.toLowerCase() === name.toLowerCase());
  if (sameName) throw conflict('name', `machine ${machineId} already has an extension named ${sameName.name} (${sameName.publisher}.${sameName.type})`);
  const version = installVersion(state.catalog, { publisher, type, typeHandlerVersion, autoUpgradeMinorVersion }, machineContext(state, m), now);
  if (!version) throw new FleetError('VersionNotFound', `no published version of ${publisher}.${type} matches typeHandlerVersion ${typeHandlerVersion} for ${m.os} in ${m.placement.region}`, 'typeHandlerVersion');
  const inst: ExtensionInstance = {
    machineId, artifactKey, name, publisher, type, typeHandlerVersion, autoUpgradeMinorVersion, enableAutomaticUpgrade, settings,
    desiredVersion: version, installedVersion: '', lastKnownGoodVersion: '', status: 'Transitioning', blockedReason: null,
  };
  return { inst, version };
}

export function applyInstall(ctx: TickContext, plan: InstallPlan, caller: string): ExtensionInstance {
  addInstance(ctx.state.fleet, plan.inst);
  sendInstall(ctx, plan.inst, plan.version, caller, `install requested by ${caller}`);
  return plan.inst;
}

export interface UpdatePlan {
  inst: ExtensionInstance;
  typeHandlerVersion: string;
  autoUpgradeMinorVersion: boolean;
  settings: Readonly<Record<string, unknown>> | null;
  /** The version to install, or null when the change needs no install. */
  install: string | null;
  why: string;
  enableAutomaticUpgrade: boolean | undefined;
}

/**
 * R4 on a model update: a new typeHandlerVersion or autoUpgradeMinorVersion that resolves to another
 * version installs it (a user may cross a major by hand; automatic upgrades never do, R1); new
 * settings or a reinstall install again the version in place. Refused while a rollout attempt is in
 * flight on the instance.
 */
export function checkUpdate(state: EngineState, machineId: string, artifactKey: string, patch: ExtensionPatch, now: number): UpdatePlan {
  const inst = mustInstance(state, machineId, artifactKey);
  const m = state.fleet.machines.get(machineId)!;
  if (patch === null || typeof patch !== 'object') throw invalid('patch', 'expected an object of changes');
  const typeHandlerVersion = patch.typeHandlerVersion === undefined ? inst.typeHandlerVersion : text(patch.typeHandlerVersion, 'typeHandlerVersion');
  if (!isVersionPrefix(typeHandlerVersion)) throw invalid('typeHandlerVersion', `typeHandlerVersion must be one to four numbers separated by dots (1.30), got ${typeHandlerVersion}`);
  const autoUpgradeMinorVersion = patch.autoUpgradeMinorVersion === undefined ? inst.autoUpgradeMinorVersion : bool(patch.autoUpgradeMinorVersion, 'autoUpgradeMinorVersion');
  const enableAutomaticUpgrade = patch.enableAutomaticUpgrade === undefined ? undefined : bool(patch.enableAutomaticUpgrade, 'enableAutomaticUpgrade');
  const reinstall = patch.reinstall === undefined ? false : bool(patch.reinstall, 'reinstall');
  const settings = patch.settings === undefined || sameJson(patch.settings, inst.settings) ? null : settingsOf(patch.settings, 'settings');
  refuseInFlight(state, machineId, artifactKey, `change extension ${inst.name} on ${machineId}`);
  const resolve = () => {
    const v = installVersion(state.catalog, { publisher: inst.publisher, type: inst.type, typeHandlerVersion, autoUpgradeMinorVersion }, machineContext(state, m), now);
    if (!v) throw new FleetError('VersionNotFound', `no published version of ${inst.publisher}.${inst.type} matches typeHandlerVersion ${typeHandlerVersion} for ${m.os} in ${m.placement.region}`, 'typeHandlerVersion');
    return v;
  };
  let install: string | null = null;
  let why = '';
  if (typeHandlerVersion !== inst.typeHandlerVersion || autoUpgradeMinorVersion !== inst.autoUpgradeMinorVersion) {
    const v = resolve();
    if (v !== inst.installedVersion) [install, why] = [v, `typeHandlerVersion ${typeHandlerVersion} (autoUpgradeMinorVersion ${autoUpgradeMinorVersion}) resolves to ${v}`];
  }
  if (install === null && (settings !== null || reinstall)) {
    install = inst.installedVersion !== '' ? inst.installedVersion : resolve();
    why = settings !== null ? 'settings changed' : 'reinstall requested';
  }
  return { inst, typeHandlerVersion, autoUpgradeMinorVersion, settings, install, why, enableAutomaticUpgrade };
}

export function applyUpdate(ctx: TickContext, settings: RolloutSettings, plan: UpdatePlan, caller: string): RolloutState[] {
  const inst = plan.inst;
  if (inst.typeHandlerVersion !== plan.typeHandlerVersion || inst.autoUpgradeMinorVersion !== plan.autoUpgradeMinorVersion || plan.settings !== null) {
    inst.typeHandlerVersion = plan.typeHandlerVersion;
    inst.autoUpgradeMinorVersion = plan.autoUpgradeMinorVersion;
    if (plan.settings !== null) inst.settings = plan.settings;
    changed.instance(ctx, inst);
  }
  // The install goes first: a catch-up for an instance being installed waits for the install's answer.
  if (plan.install !== null) sendInstall(ctx, inst, plan.install, caller, `${plan.why}; requested by ${caller}`);
  if (plan.enableAutomaticUpgrade === undefined) return [];
  return applyAutomaticUpgrade(ctx, settings, [inst.machineId], inst.artifactKey, plan.enableAutomaticUpgrade, caller);
}

export function checkRemoveExtension(state: EngineState, machineId: string, artifactKey: string): ExtensionInstance {
  const inst = mustInstance(state, machineId, artifactKey);
  refuseInFlight(state, machineId, artifactKey, `remove extension ${inst.name} from ${machineId}`);
  return inst;
}

/** Removes the instance at once and sends the uninstall; rollouts skip it ('extension removed'). */
export function applyRemoveExtension(ctx: TickContext, inst: ExtensionInstance, caller: string): void {
  const m = ctx.state.fleet.machines.get(inst.machineId)!;
  settleRollouts(ctx, inst, EXTENSION_REMOVED);
  dropInstance(ctx, inst);
  refreshMachineHealth(ctx.state.fleet, inst.machineId);
  emit(ctx, { type: 'instance.removed', machineId: inst.machineId, placement: m.placement, artifact: artifactOf(inst), version: inst.installedVersion, caller, reason: `removed by ${caller}` });
  sendUninstall(ctx, inst, caller);
}

// ---- enrollment (R7) --------------------------------------------------------------------------------

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

// ---- reading ------------------------------------------------------------------------------------

/** R80 for one instance, enrollment included (R7): enabled, disabled or notSupported. */
export function autoUpgradeStateOf(state: EngineState, inst: ExtensionInstance): AutoUpgradeState {
  const m = state.fleet.machines.get(inst.machineId);
  return autoUpgradeState(inst, state.catalog.getType(inst.publisher, inst.type), m ? isEnrolled(state, m) : false);
}

/** True while an install, update or uninstall the user asked for waits for its answer. */
export function userActionPending(state: EngineState, artifactKey: string, machineId: string): boolean {
  return state.installing.has(instanceRef(artifactKey, machineId));
}
