/**
 * Builds the fleet a scenario describes: regions, scale sets, availability sets, standalone VMs and
 * Arc machines, written out or generated, each machine with its extension instances.
 */
import type { Catalog } from '../catalog/catalog.js';
import { installVersion } from '../catalog/catalog.js';
import type { FleetState } from '../engine/state.js';
import { addInstance, addMachine, emptyFleet } from '../engine/state.js';
import { guestPatchInstance } from '../engine/patches/platform-patches.js';
import type { ExtensionInstance } from '../model/artifact.js';
import type { Machine, MachineKind, OsType, Placement, Region } from '../model/fleet.js';
import { DEFAULT_HEALTH_WINDOW_MS, validateRegionPairs } from '../model/fleet.js';
import { validateRollingPolicy, withDefaults } from '../model/upgrade-policy.js';
import type { UpgradePolicyInput } from '../model/upgrade-policy.js';
import { Duration } from 'luxon';
import type { ImageRef } from '../model/image-reference.js';
import { IdHashes } from './id-hashes.js';
import { hashUnit, Random } from './random.js';
import type { ImageRefInput, ScenarioInput } from './scenario-schema.js';
import { listed } from './issue-lists.js';

type Issues = Array<{ path: string; message: string }>;

/** The message for a region name that is neither written out nor generated. */
export function unknownRegion(name: string, regions: ReadonlyMap<string, Region>): string {
  return `unknown region "${name}"; expected one of: ${[...regions.keys()].slice(0, 12).join(', ')}`;
}

export interface Selector {
  scaleSet?: string | undefined;
  region?: string | undefined;
  machines?: string[] | undefined;
  share?: number | undefined;
}

export interface BuiltFleet {
  fleet: FleetState;
  /** Scale set and availability set names to ids. */
  setIds: Map<string, string>;
  /** The machines a selector picks, after checking its names; with `scan` false only the check (the event fails anyway). */
  select(sel: Selector, path: string, salt: number, issues: Issues, scan?: boolean): string[];
  /** The scale sets that name an image, to be checked against the scenario's `images`. */
  imageSets: ImageSetUse[];
  /** The `patchSettings` of the machines whose fleet entry gives them (machine id → settings). */
  patchSettings: Map<string, MachinePatchSettings>;
}

export interface MachinePatchSettings { patchMode: string; rebootSetting?: string | undefined; bypassPlatformSafetyChecksOnUserSchedule?: boolean | undefined }

/** A scale set entry that names an image: where (for issues), its region and OS, and the reference. */
export interface ImageSetUse {
  path: string;
  setId: string;
  region: string;
  os: OsType;
  ref: Extract<ImageRef, { kind: 'platform' }>;
}

/** A scenario's `image` as the engine's image reference (`latest` when no version is named). */
export function imageRefOf(i: ImageRefInput): Extract<ImageRef, { kind: 'platform' }> {
  return { kind: 'platform', publisher: i.publisher, offer: i.offer, sku: i.sku, version: i.version ?? 'latest' };
}

export function buildFleet(input: ScenarioInput, catalog: Catalog, startMs: number, seed: number, issues: Issues): BuiltFleet {
  const fleet = emptyFleet();
  const setIds = new Map<string, string>();
  const rng = new Random(seed ^ 0x2545f491);
  addRegions(input, fleet, issues);
  const ctx: Ctx = {
    input, catalog, startMs, fleet, issues, setIds, installed: new Map(), placements: new Map(), settings: new Map(), strings: new Map(), imageSets: [], seed, patchSettings: new Map(),
  };

  const region = (name: string, path: string) => {
    const r = fleet.regions.get(name);
    if (!r) issues.push({ path, message: unknownRegion(name, fleet.regions) });
    return r;
  };
  // Checked once per entry, not once per machine: a set of 500 would repeat the same line 500 times.
  const checkExtensions = (names: string[] | undefined, path: string) => {
    for (const [i, ref] of (names ?? []).entries()) {
      if (!input.extensions[ref]) issues.push({ path: `${path}[${i}]`, message: `unknown extension "${ref}"; expected one of: ${listed(Object.keys(input.extensions))}` });
    }
  };
  const checkZones = (r: Region, zones: string[] | undefined, path: string) => {
    for (const [i, z] of (zones ?? []).entries()) if (!r.zones.includes(z)) issues.push({ path: `${path}[${i}]`, message: `region ${r.name} has no zone "${z}"; it has: ${listed(r.zones, 'none')}` });
  };

  (input.fleet.scaleSets ?? []).forEach((s, i) => {
    const path = `fleet.scaleSets[${i}]`;
    checkExtensions(s.extensions, `${path}.extensions`);
    checkPolicy(s.upgradePolicy as UpgradePolicyInput | undefined, `${path}.upgradePolicy`, issues);
    const r = region(s.region, `${path}.region`);
    if (!r) return;
    checkZones(r, s.zones, `${path}.zones`);
    for (let c = 0; c < (s.count ?? 1); c++) {
      const name = s.count ? `${s.name}-${c}` : s.name;
      addScaleSet(ctx, path, { name, region: r.name, subscription: s.subscription, resourceGroup: s.resourceGroup, zones: s.zones ?? [], capacity: s.capacity, ud: s.updateDomains ?? 5, fd: s.faultDomains ?? 5, policy: s.upgradePolicy as UpgradePolicyInput | undefined, appHealth: s.applicationHealth ?? false, graceMs: s.healthGracePeriod ? Duration.fromISO(s.healthGracePeriod).toMillis() : DEFAULT_HEALTH_WINDOW_MS, os: s.os ?? 'linux', extensions: s.extensions ?? [], image: s.image ? { ref: imageRefOf(s.image), path: `${path}.image` } : undefined });
    }
  });
  (input.fleet.availabilitySets ?? []).forEach((a, i) => {
    const path = `fleet.availabilitySets[${i}]`;
    checkExtensions(a.extensions, `${path}.extensions`);
    const r = region(a.region, `${path}.region`);
    if (!r) return;
    for (let c = 0; c < (a.count ?? 1); c++) {
      const name = a.count ? `${a.name}-${c}` : a.name;
      addAvailabilitySet(ctx, path, {
        name,
        region: r.name,
        subscription: a.subscription,
        resourceGroup: a.resourceGroup,
        vms: a.vms,
        ud: a.updateDomains ?? 5,
        fd: a.faultDomains ?? 2,
        os: a.os ?? 'windows',
        extensions: a.extensions ?? [],
      });
    }
  });
  const groups = (list: ScenarioInput['fleet']['vms'], kind: MachineKind, field: string) =>
    (list ?? []).forEach((g, i) => {
      const path = `fleet.${field}[${i}]`;
      checkExtensions(g.extensions, `${path}.extensions`);
      const r = region(g.region, `${path}.region`);
      if (!r) return;
      checkZones(r, g.zones, `${path}.zones`);
      if (kind === 'arc' && g.zones && g.zones.length > 0) issues.push({ path: `${path}.zones`, message: 'Arc machines have no availability zones' });
      const prefix = g.name ?? `${kind === 'arc' ? 'arc' : 'vm'}-${r.name}-${g.subscription}-${i}`;
      for (let c = 0; c < g.count; c++) {
        const zone = g.zones && g.zones.length > 0 ? g.zones[c % g.zones.length]! : null;
        addStandalone(ctx, path, { id: `${prefix}-${c}`, kind, region: r.name, zone, subscription: g.subscription, resourceGroup: g.resourceGroup, os: g.os ?? 'linux', extensions: g.extensions ?? [] });
      }
    });
  groups(input.fleet.vms, 'vm', 'vms');
  groups(input.fleet.arcMachines, 'arc', 'arcMachines');
  if (input.fleet.generate) {
    checkExtensions(input.fleet.generate.extensions, 'fleet.generate.extensions');
    generate(ctx, input.fleet.generate, rng);
  }

  let hashes: IdHashes | null = null;
  return {
    fleet,
    setIds,
    imageSets: ctx.imageSets,
    patchSettings: ctx.patchSettings,
    select(sel, path, salt, iss, scan = true) {
      const setId = sel.scaleSet === undefined ? undefined : setIds.get(sel.scaleSet);
      if (sel.scaleSet !== undefined && !setId) iss.push({ path: `${path}.scaleSet`, message: `unknown scale set or availability set "${sel.scaleSet}"` });
      if (sel.region !== undefined && !fleet.regions.has(sel.region)) iss.push({ path: `${path}.region`, message: `unknown region "${sel.region}"` });
      if (sel.machines) {
        sel.machines.forEach((id, i) => { if (!fleet.machines.has(id)) iss.push({ path: `${path}.machines[${i}]`, message: `unknown machine "${id}"` }); });
        return sel.machines.filter((id) => fleet.machines.has(id));
      }
      if (!scan) return [];
      const out: string[] = [];
      // A share hashes each machine's id with the event's salt: thousands of such events share the ids' prefixes.
      if (sel.share !== undefined && (hashes === null || hashes.ids.length !== fleet.machines.size)) hashes = new IdHashes([...fleet.machines.keys()]);
      let j = -1;
      for (const m of fleet.machines.values()) {
        j++;
        if (setId && m.placement.setId !== setId) continue;
        if (sel.region && m.placement.region !== sel.region) continue;
        if (sel.share !== undefined && (hashes!.ids[j] === m.id ? hashes!.unit(j, salt) : hashUnit(m.id, salt)) >= sel.share) continue;
        out.push(m.id);
      }
      return out;
    },
  };
}

interface Ctx {
  input: ScenarioInput;
  catalog: Catalog;
  startMs: number;
  fleet: FleetState;
  issues: Issues;
  setIds: Map<string, string>;
  /** Resolved starting version per (extension, os, region), so a million machines resolve it once. */
  installed: Map<string, string | null>;
  /** Equal placements share one frozen object: a million machines have a few thousand placements. */
  placements: Map<string, Placement>;
  /** One frozen settings object per extension template. */
  settings: Map<string, Readonly<Record<string, unknown>>>;
  /**
   * Strings many machines share (artifact keys, resource groups, scale-set instance ids), one copy each:
   * built per machine they were a million equal strings, about 80 MB of the heap the collector walks.
   */
  strings: Map<string, string>;
  imageSets: ImageSetUse[];
  seed: number;
  patchSettings: Map<string, MachinePatchSettings>;
}

/** One copy of `s` for the whole fleet. */
function shared(ctx: Ctx, s: string): string {
  const known = ctx.strings.get(s);
  if (known !== undefined) return known;
  ctx.strings.set(s, s);
  return s;
}

function placementOf(ctx: Ctx, p: Placement): Placement {
  const key = `${p.region}|${p.zone}|${p.setId}|${p.updateDomain}|${p.faultDomain}|${p.subscription}`;
  let shared = ctx.placements.get(key);
  if (!shared) ctx.placements.set(key, (shared = Object.freeze(p)));
  return shared;
}

/** The set's policy as the engine will see it, with defaults, checked the way the API checks it. */
function checkPolicy(policy: UpgradePolicyInput | undefined, path: string, issues: Issues): void {
  for (const problem of validateRollingPolicy(withDefaults(policy).rollingUpgradePolicy)) {
    // "<field> must be <what>, got <value>" becomes "<path>.<field>: expected <what>, got <value>".
    const m = /^(\w+) must be (.+)$/.exec(problem);
    issues.push(m ? { path: `${path}.rollingUpgradePolicy.${m[1]}`, message: `expected ${m[2]}` } : { path: `${path}.rollingUpgradePolicy`, message: problem });
  }
}

function addRegions(input: ScenarioInput, fleet: FleetState, issues: Issues): void {
  (input.regions ?? []).forEach((r, i) => {
    if (fleet.regions.has(r.name)) issues.push({ path: `regions[${i}].name`, message: `region "${r.name}" is listed twice` });
    fleet.regions.set(r.name, { name: r.name, pair: r.pair ?? null, zones: r.zones ?? [] });
  });
  const g = input.fleet.generate?.regions;
  if (g) {
    const prefix = g.prefix ?? 'region';
    const taken: string[] = [];
    for (let i = 0; i < g.count; i++) {
      const name = `${prefix}${String(i).padStart(2, '0')}`;
      if (fleet.regions.has(name)) taken.push(name);
      const pairIndex = i % 2 === 0 ? i + 1 : i - 1;
      const pair = pairIndex < g.count ? `${prefix}${String(pairIndex).padStart(2, '0')}` : null;
      const zones = Array.from({ length: g.zones ?? 3 }, (_, z) => String(z + 1));
      fleet.regions.set(name, { name, pair, zones });
    }
    // A generated region would silently replace the written-out one of the same name.
    if (taken.length > 0) {
      const path = g.prefix === undefined ? 'fleet.generate.regions' : 'fleet.generate.regions.prefix';
      const names = taken.length === 1 ? `region name ${taken[0]} is` : `region names ${taken.join(', ')} are`;
      issues.push({ path, message: `generated ${names} already used in regions; expected a prefix that gives new names` });
    }
  }
  const regions = [...fleet.regions.values()];
  for (const problem of validateRegionPairs(regions)) {
    const i = regions.findIndex((r) => problem.startsWith(`region ${r.name} `));
    issues.push({ path: `regions[${Math.max(0, i)}].pair`, message: problem });
  }
}

function instancesFor(ctx: Ctx, machine: Machine, names: string[]): void {
  for (const ref of names) {
    // Unknown templates and types are reported once, by their entry and by the template check.
    const t = ctx.input.extensions[ref];
    if (!t || !ctx.catalog.getType(t.publisher, t.type)) continue;
    const memoKey = `${ref}|${machine.os}|${machine.placement.region}`;
    let version = ctx.installed.get(memoKey);
    if (version === undefined) {
      version =
        t.installed ??
        installVersion(
          ctx.catalog,
          {
            publisher: t.publisher,
            type: t.type,
            typeHandlerVersion: t.typeHandlerVersion,
            autoUpgradeMinorVersion: t.autoUpgradeMinorVersion ?? true,
          },
          { os: machine.os, region: machine.placement.region },
          ctx.startMs,
        );
      ctx.installed.set(memoKey, version);
      if (!version) ctx.issues.push({ path: `extensions.${ref}.typeHandlerVersion`, message: `no published version of ${t.publisher}.${t.type} matches ${t.typeHandlerVersion} for ${machine.os} in ${machine.placement.region}` });
    }
    if (!version) continue;
    const inst: ExtensionInstance = {
      machineId: machine.id,
      artifactKey: shared(ctx, `extension:${t.publisher}.${t.type}`.toLowerCase()),
      name: ref,
      publisher: t.publisher,
      type: t.type,
      typeHandlerVersion: t.typeHandlerVersion,
      autoUpgradeMinorVersion: t.autoUpgradeMinorVersion ?? true,
      // R3: on by default on Arc machines; on VMs and scale sets it must be set per extension.
      enableAutomaticUpgrade: t.enableAutomaticUpgrade ?? machine.kind === 'arc',
      settings: sharedSettings(ctx, ref, t.settings),
      desiredVersion: version,
      installedVersion: version,
      lastKnownGoodVersion: version,
      status: 'Succeeded',
      blockedReason: null,
    };
    addInstance(ctx.fleet, inst);
  }
}

function sharedSettings(ctx: Ctx, ref: string, settings: Record<string, unknown> | undefined): Readonly<Record<string, unknown>> {
  let shared = ctx.settings.get(ref);
  if (!shared) ctx.settings.set(ref, (shared = Object.freeze({ ...settings })));
  return shared;
}

function put(ctx: Ctx, path: string, m: Machine, extensions: string[]): void {
  if (ctx.fleet.machines.has(m.id)) {
    ctx.issues.push({ path, message: `machine name "${m.id}" is used twice` });
    return;
  }
  addMachine(ctx.fleet, m);
  instancesFor(ctx, m, extensions);
  const patch = patchSettingsAt(ctx.input, path);
  if (patch) ctx.patchSettings.set(m.id, patch);
  // R76: with bypassPlatformSafetyChecksOnUserSchedule the user's schedules patch the machine, never the platform (as in Azure).
  if (patch?.patchMode === 'AutomaticByPlatform' && patch.bypassPlatformSafetyChecksOnUserSchedule !== true)
    addInstance(ctx.fleet, guestPatchInstance(m, { rebootSetting: patch.rebootSetting ?? 'IfRequired' }));
}

/** The `patchSettings` of the fleet entry at `path` (`fleet.vms[2]`); generated machines have none. */
function patchSettingsAt(input: ScenarioInput, path: string) {
  const m = /^fleet\.(scaleSets|availabilitySets|vms|arcMachines)\[(\d+)\]$/.exec(path);
  return m ? input.fleet[m[1] as 'vms']?.[Number(m[2])]?.patchSettings : undefined;
}

interface ScaleSetSpec {
  name: string; region: string; subscription: string; resourceGroup: string | undefined; zones: string[]; capacity: number;
  ud: number; fd: number; policy: UpgradePolicyInput | undefined; appHealth: boolean; graceMs: number; os: OsType; extensions: string[];
  /** The OS image the set follows (R60), and the path of its `image` field. */
  image: { ref: Extract<ImageRef, { kind: 'platform' }>; path: string } | undefined;
}

function addScaleSet(ctx: Ctx, path: string, s: ScaleSetSpec): void {
  if (ctx.setIds.has(s.name)) {
    ctx.issues.push({ path: `${path}.name`, message: `set name "${s.name}" is used twice` });
    return;
  }
  const id = s.name;
  ctx.setIds.set(s.name, id);
  const rg = s.resourceGroup ?? `rg-${s.subscription}`;
  ctx.fleet.scaleSets.set(id, {
    id,
    name: s.name,
    region: s.region,
    subscription: s.subscription,
    resourceGroup: rg,
    zones: s.zones,
    updateDomainCount: s.ud,
    faultDomainCount: s.fd,
    upgradePolicy: withDefaults(s.policy),
    healthGracePeriodMs: s.graceMs,
    hasApplicationHealth: s.appHealth,
    ...(s.image ? { image: s.image.ref } : {}),
  });
  if (s.image) ctx.imageSets.push({ path: s.image.path, setId: id, region: s.region, os: s.os, ref: s.image.ref });
  const zoneCount = Math.max(1, s.zones.length);
  for (let i = 0; i < s.capacity; i++) {
    const zone = s.zones.length > 0 ? s.zones[i % zoneCount]! : null;
    const inZone = Math.floor(i / zoneCount);
    const placement = placementOf(ctx, { region: s.region, zone, setId: id, setKind: 'scaleSet', updateDomain: inZone % s.ud, faultDomain: inZone % s.fd, subscription: s.subscription });
    const machineId = `${s.name}/${i}`;
    put(ctx, path, { id: machineId, name: machineId, kind: 'scaleSetInstance', os: s.os, resourceGroup: rg, placement, instanceId: shared(ctx, String(i)) }, s.extensions);
  }
}

interface AvailabilitySetSpec { name: string; region: string; subscription: string; resourceGroup: string | undefined; vms: number; ud: number; fd: number; os: OsType; extensions: string[] }

function addAvailabilitySet(ctx: Ctx, path: string, a: AvailabilitySetSpec): void {
  if (ctx.setIds.has(a.name)) {
    ctx.issues.push({ path: `${path}.name`, message: `set name "${a.name}" is used twice` });
    return;
  }
  ctx.setIds.set(a.name, a.name);
  const rg = a.resourceGroup ?? `rg-${a.subscription}`;
  ctx.fleet.availabilitySets.set(a.name, { id: a.name, name: a.name, region: a.region, subscription: a.subscription, resourceGroup: rg, updateDomainCount: a.ud, faultDomainCount: a.fd });
  for (let i = 0; i < a.vms; i++) {
    const placement = placementOf(ctx, { region: a.region, zone: null, setId: a.name, setKind: 'availabilitySet', updateDomain: i % a.ud, faultDomain: i % a.fd, subscription: a.subscription });
    const id = `${a.name}-vm${i}`;
    put(ctx, path, { id, name: id, kind: 'vm', os: a.os, resourceGroup: rg, placement }, a.extensions);
  }
}

interface StandaloneSpec { id: string; kind: MachineKind; region: string; zone: string | null; subscription: string; resourceGroup: string | undefined; os: OsType; extensions: string[] }

function addStandalone(ctx: Ctx, path: string, s: StandaloneSpec): void {
  const placement = placementOf(ctx, { region: s.region, zone: s.zone, setId: null, setKind: 'none', updateDomain: null, faultDomain: null, subscription: s.subscription });
  put(ctx, path, { id: s.id, name: s.id, kind: s.kind, os: s.os, resourceGroup: s.resourceGroup ?? shared(ctx, `rg-${s.subscription}`), placement }, s.extensions);
}

/** Large fleets from a few numbers, spread over the regions with a seeded generator. */
function generate(ctx: Ctx, g: NonNullable<ScenarioInput['fleet']['generate']>, rng: Random): void {
  const regions = [...ctx.fleet.regions.values()];
  if (regions.length === 0) {
    ctx.issues.push({ path: 'fleet.generate.regions', message: 'expected regions to place the generated machines in' });
    return;
  }
  const subs = Array.from({ length: g.subscriptions ?? 10 }, (_, i) => `sub-${String(i).padStart(3, '0')}`);
  const os: OsType = g.os ?? 'linux';
  const path = 'fleet.generate';
  const pick = <T>(list: T[]) => list[rng.int(0, list.length - 1)]!;
  const ss = g.scaleSets;
  // One reference shared by every generated set; osUpgradeShare turns automatic OS upgrade on for a
  // stable share of them (by name, so the generator's other draws stay as they were without images).
  const image = ss?.image ? { ref: Object.freeze(imageRefOf(ss.image)), path: `${path}.scaleSets.image` } : undefined;
  for (let i = 0; ss && i < ss.count; i++) {
    const r = regions[i % regions.length]!;
    const zonal = r.zones.length > 0 && rng.chance(ss.zonalShare ?? 0.7);
    const name = `gss${String(i).padStart(5, '0')}`;
    const policy: UpgradePolicyInput | undefined = image ? { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: hashUnit(name, ctx.seed ^ 0x05e1a6e5) < (ss.osUpgradeShare ?? 1) } } : undefined;
    addScaleSet(ctx, path, {
      name,
      region: r.name,
      subscription: pick(subs),
      resourceGroup: undefined,
      zones: zonal ? r.zones : [],
      capacity: rng.int(ss.capacity.min, ss.capacity.max),
      ud: 5,
      fd: 5,
      policy,
      appHealth: rng.chance(ss.applicationHealthShare ?? 0.5),
      graceMs: DEFAULT_HEALTH_WINDOW_MS,
      os,
      extensions: g.extensions,
      image,
    });
  }
  const as = g.availabilitySets;
  for (let i = 0; as && i < as.count; i++) {
    const r = regions[i % regions.length]!;
    addAvailabilitySet(ctx, path, { name: `gas${String(i).padStart(5, '0')}`, region: r.name, subscription: pick(subs), resourceGroup: undefined, vms: rng.int(as.vms.min, as.vms.max), ud: 5, fd: 2, os, extensions: g.extensions });
  }
  for (let i = 0; i < (g.vms ?? 0); i++) {
    const r = regions[i % regions.length]!;
    const zone = r.zones.length > 0 && rng.chance(0.6) ? pick(r.zones) : null;
    addStandalone(ctx, path, { id: `gvm${String(i).padStart(7, '0')}`, kind: 'vm', region: r.name, zone, subscription: pick(subs), resourceGroup: undefined, os, extensions: g.extensions });
  }
  for (let i = 0; i < (g.arcMachines ?? 0); i++) {
    const r = regions[i % regions.length]!;
    addStandalone(ctx, path, { id: `garc${String(i).padStart(7, '0')}`, kind: 'arc', region: r.name, zone: null, subscription: pick(subs), resourceGroup: undefined, os, extensions: g.extensions });
  }
  // Standalone VMs fill the fleet up to totalMachines, so a benchmark gets an exact size.
  const fill = g.totalMachines === undefined ? 0 : g.totalMachines - ctx.fleet.machines.size;
  for (let i = 0; i < fill; i++) {
    const r = regions[i % regions.length]!;
    const zone = r.zones.length > 0 && rng.chance(0.6) ? pick(r.zones) : null;
    addStandalone(ctx, path, { id: `gfill${String(i).padStart(7, '0')}`, kind: 'vm', region: r.name, zone, subscription: pick(subs), resourceGroup: undefined, os, extensions: g.extensions });
  }
}
