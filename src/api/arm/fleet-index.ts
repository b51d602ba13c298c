/**
 * Finds the engine's machines and sets by ARM id, and the ARM id of each. The engine keeps its own
 * ids (a scenario's names, or the lower-cased ARM id for resources created through the API); this
 * index is the only place that knows both.
 */
import type { Machine, ScaleSet } from '../../model/fleet.js';
import type { EngineState } from '../../engine/state.js';
import { SortedKeyCache } from './keyed-page.js';
import { arcMachineId, availabilitySetId, keyOf, resourceGroupId, scaleSetId, scaleSetVmId, vmId } from './ids.js';

/** The names of the paged collections the index keeps sorted (SortedKeyCache), as routes and the index name them. */
export const COLLECTIONS = {
  members: (setId: string) => `members:${setId}`,
  vms: (sub: string, rg?: string) => `vm:${sub.toLowerCase()}${rg === undefined ? '' : `/${rg.toLowerCase()}`}`,
  arc: (sub: string, rg?: string) => `arc:${sub.toLowerCase()}${rg === undefined ? '' : `/${rg.toLowerCase()}`}`,
  sets: (sub: string, rg?: string) => `sets:${sub.toLowerCase()}${rg === undefined ? '' : `/${rg.toLowerCase()}`}`,
};

/** The collections a machine is listed in. */
function collectionsOf(m: Machine): string[] {
  const sub = m.placement.subscription;
  if (m.kind === 'vm') return [COLLECTIONS.vms(sub), COLLECTIONS.vms(sub, m.resourceGroup)];
  if (m.kind === 'arc') return [COLLECTIONS.arc(sub), COLLECTIONS.arc(sub, m.resourceGroup)];
  return m.placement.setId ? [COLLECTIONS.members(m.placement.setId)] : [];
}

/** The collections a scale set is listed in. */
function collectionsOfSet(s: ScaleSet): string[] {
  return [COLLECTIONS.sets(s.subscription), COLLECTIONS.sets(s.subscription, s.resourceGroup)];
}

export class FleetIndex {
  private readonly machineByKey = new Map<string, string>();
  private readonly setByKey = new Map<string, string>();
  private readonly setMembers = new Map<string, Set<string>>();
  /** The VMs of each availability set: its view lists them, which was a pass over the whole fleet per set. */
  private readonly availabilityMembers = new Map<string, Set<string>>();
  /**
   * The ids in each scoped collection (COLLECTIONS: a group's or subscription's VMs, Arc machines, scale sets):
   * a list of one group is a lookup of its members, not a filter of the whole fleet per request.
   */
  private readonly scopes = new Map<string, Set<string>>();
  private readonly groups = new Set<string>();
  /** Each subscription's groups by key, with the names they were first seen under (the list of a subscription's groups). */
  private readonly groupNames = new Map<string, Map<string, { subscription: string; resourceGroup: string }>>();
  private readonly subs = new Set<string>();
  /** Paged lists' keys in order (keyed-page.ts): a collection's are forgotten when one of its machines or sets comes or goes. */
  readonly sortedKeys = new SortedKeyCache();

  constructor(private readonly state: EngineState, subscriptions: readonly string[]) {
    for (const s of subscriptions) this.subs.add(s.toLowerCase());
    this.rebuild();
  }

  /** Indexes the fleet as it is now (at start, and after the engine's state was read back from the store). */
  rebuild(): void {
    this.sortedKeys.invalidate();
    this.machineByKey.clear();
    this.setByKey.clear();
    this.setMembers.clear();
    this.availabilityMembers.clear();
    this.scopes.clear();
    const fleet = this.state.fleet;
    for (const s of fleet.scaleSets.values()) this.addSet(s);
    for (const a of fleet.availabilitySets.values()) this.addGroup(a.subscription, a.resourceGroup);
    for (const m of fleet.machines.values()) this.addMachine(m);
  }

  armIdOfMachine(m: Machine): string {
    const sub = m.placement.subscription;
    if (m.kind === 'arc') return arcMachineId(sub, m.resourceGroup, m.name);
    if (m.kind === 'scaleSetInstance' && m.placement.setId) {
      const set = this.state.fleet.scaleSets.get(m.placement.setId);
      if (set) return scaleSetVmId(sub, set.resourceGroup, set.name, this.instanceIdOf(m));
    }
    return vmId(sub, m.resourceGroup, m.name);
  }

  /** The instance id ARM shows for a scale-set machine. */
  instanceIdOf(m: Machine): string {
    return m.instanceId ?? m.name.slice(m.name.lastIndexOf('_') + 1);
  }

  armIdOfSet(s: ScaleSet): string {
    return scaleSetId(s.subscription, s.resourceGroup, s.name);
  }

  availabilitySetArmId(setId: string): string | null {
    const a = this.state.fleet.availabilitySets.get(setId);
    return a ? availabilitySetId(a.subscription, a.resourceGroup, a.name) : null;
  }

  machine(armId: string): Machine | undefined {
    const id = this.machineByKey.get(keyOf(armId));
    return id === undefined ? undefined : this.state.fleet.machines.get(id);
  }

  scaleSet(armId: string): ScaleSet | undefined {
    const id = this.setByKey.get(keyOf(armId));
    return id === undefined ? undefined : this.state.fleet.scaleSets.get(id);
  }

  /** Machines of a set, in instance-id order. */
  members(setId: string): Machine[] {
    const ids = this.setMembers.get(setId);
    if (!ids) return [];
    const out: Machine[] = [];
    for (const id of ids) {
      const m = this.state.fleet.machines.get(id);
      if (m) out.push(m);
    }
    return out.sort((a, b) => Number(this.instanceIdOf(a)) - Number(this.instanceIdOf(b)) || this.instanceIdOf(a).localeCompare(this.instanceIdOf(b)));
  }

  /** The machines of a scoped collection (COLLECTIONS.vms, .arc), in no particular order. */
  machinesIn(collection: string): Machine[] {
    return this.resolve(collection, this.state.fleet.machines);
  }

  /** The scale sets of a scoped collection (COLLECTIONS.sets), in no particular order. */
  setsIn(collection: string): ScaleSet[] {
    return this.resolve(collection, this.state.fleet.scaleSets);
  }

  /** The VMs of an availability set, in no particular order. */
  availabilitySetMembers(setId: string): Machine[] {
    const out: Machine[] = [];
    for (const id of this.availabilityMembers.get(setId) ?? []) {
      const m = this.state.fleet.machines.get(id);
      if (m) out.push(m);
    }
    return out;
  }

  private resolve<T>(collection: string, from: ReadonlyMap<string, T>): T[] {
    const out: T[] = [];
    for (const id of this.scopes.get(collection) ?? []) {
      const item = from.get(id); // gone without the index hearing of it (a replica's refresh): not listed
      if (item !== undefined) out.push(item);
    }
    return out;
  }

  private enter(collections: readonly string[], id: string): void {
    for (const c of collections) {
      let ids = this.scopes.get(c);
      if (!ids) this.scopes.set(c, (ids = new Set()));
      ids.add(id);
    }
  }

  private leave(collections: readonly string[], id: string): void {
    for (const c of collections) {
      const ids = this.scopes.get(c);
      ids?.delete(id);
      if (ids?.size === 0) this.scopes.delete(c);
    }
  }

  hasSubscription(sub: string): boolean {
    return this.subs.has(sub.toLowerCase());
  }

  hasGroup(sub: string, rg: string): boolean {
    return this.groups.has(keyOf(resourceGroupId(sub, rg)));
  }

  addGroup(sub: string, rg: string): void {
    this.subs.add(sub.toLowerCase());
    const key = keyOf(resourceGroupId(sub, rg));
    if (this.groups.has(key)) return;
    this.groups.add(key);
    let named = this.groupNames.get(sub.toLowerCase());
    if (!named) this.groupNames.set(sub.toLowerCase(), (named = new Map()));
    named.set(key, { subscription: sub, resourceGroup: rg });
  }

  /** The resource groups the index knows in a subscription (of its machines, sets and created groups), by key. */
  groupsOf(sub: string): ReadonlyMap<string, { subscription: string; resourceGroup: string }> {
    return this.groupNames.get(sub.toLowerCase()) ?? new Map();
  }

  addSet(s: ScaleSet): void {
    if (!this.setByKey.has(keyOf(this.armIdOfSet(s)))) this.sortedKeys.invalidate(COLLECTIONS.sets(s.subscription), COLLECTIONS.sets(s.subscription, s.resourceGroup));
    this.setByKey.set(keyOf(this.armIdOfSet(s)), s.id);
    this.enter(collectionsOfSet(s), s.id);
    this.addGroup(s.subscription, s.resourceGroup);
  }

  removeSet(s: ScaleSet): void {
    this.sortedKeys.invalidate(COLLECTIONS.sets(s.subscription), COLLECTIONS.sets(s.subscription, s.resourceGroup), COLLECTIONS.members(s.id));
    this.setByKey.delete(keyOf(this.armIdOfSet(s)));
    this.setMembers.delete(s.id);
    this.leave(collectionsOfSet(s), s.id);
  }

  addMachine(m: Machine): void {
    this.sortedKeys.invalidate(...collectionsOf(m));
    this.machineByKey.set(keyOf(this.armIdOfMachine(m)), m.id);
    this.addGroup(m.placement.subscription, m.resourceGroup);
    this.enter(collectionsOf(m), m.id);
    const setId = m.placement.setId;
    const members = !setId ? null : m.kind === 'scaleSetInstance' ? this.setMembers : m.placement.setKind === 'availabilitySet' ? this.availabilityMembers : null;
    if (setId && members) {
      let s = members.get(setId);
      if (!s) members.set(setId, (s = new Set()));
      s.add(m.id);
    }
  }

  removeMachine(m: Machine): void {
    this.sortedKeys.invalidate(...collectionsOf(m));
    this.machineByKey.delete(keyOf(this.armIdOfMachine(m)));
    this.leave(collectionsOf(m), m.id);
    if (m.placement.setId) {
      this.setMembers.get(m.placement.setId)?.delete(m.id);
      this.availabilityMembers.get(m.placement.setId)?.delete(m.id);
    }
  }
}
