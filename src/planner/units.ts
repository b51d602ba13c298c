/**
 * Within a region: zone waves (R11), and in each wave the units that run side by side: a scale set's
 * share of the zone (R14), an availability set (R13), or the standalone machines of one subscription
 * (R12). Each unit is cut into batches on update-domain boundaries.
 */
import type { AvailabilitySet, Machine, ScaleSet } from '../model/fleet.js';
import { DEFAULT_HEALTH_WINDOW_MS } from '../model/fleet.js';
import { durationMs, maxBatchSize } from '../model/upgrade-policy.js';
import { PRIOR_FAILURE_RATE, stopProbability } from './bound.js';
import type { PlanBatch, PlanUnit, PlanWave, UnitKind, UnitLimits } from './types.js';

export interface UnitContext {
  rolloutId: string;
  region: string;
  scaleSets: ReadonlyMap<string, ScaleSet>;
  availabilitySets: ReadonlyMap<string, AvailabilitySet>;
  /** Size of every set in the fleet, eligible or not: percentages are of the whole set. */
  setSizes: ReadonlyMap<string, number>;
  /** Machines unhealthy at planning time; `prioritizeUnhealthyInstances` moves them first. */
  unhealthy?: ReadonlySet<string>;
  /** Standalone machines go in batches of at most this share of their subscription's group. */
  standaloneBatchPercent: number;
  /** R23's limit for units without a rolling-upgrade policy (standalone groups, availability sets). */
  groupMaxUnhealthyUpgradedPercent: number;
  /** Automatic rollouts cap a scale set's batch at this share even if its policy allows more (R14). */
  maxBatchPercentCap: number;
}

const NO_ZONE = '\u0000none';
const CROSS_ZONE = '\u0000cross';

/**
 * One update domain's machines of a group: `count` ids from `start` in the grouping's `ordered` ids. `hasVm` is kept
 * here so that a machine's step touches only this.
 */
export interface UdList {
  ud: number;
  start: number;
  count: number;
  hasVm: boolean;
}

export interface UnitGroup {
  first: Machine;
  size: number;
  /** Standalone groups mix VMs and Arc machines of a subscription: R12 spreads them together. */
  hasVm: boolean;
  /** Update domains (-1 for none) in the order first met, each with its machine ids in input order. */
  uds: UdList[];
  /** Every grouped machine's id, each update domain's together (`UdList.start`), shared by all groups of a grouping. */
  ordered: string[];
  /** The maintenance configurations confining every machine of the group; '' when none. */
  windowKey: string;
}

/** Region → wave key → unit key → machines by update domain. */
export type RegionGroups = Map<string, Map<string, Map<string, UnitGroup>>>;

/**
 * Groups machines in one pass; machines keep their input order within an update domain. With `windowKeyOf`,
 * machines confined to different maintenance windows (R70) go in different units.
 */
export function groupMachines(machines: readonly Machine[], scaleSets: UnitContext['scaleSets'], windowKeyOf?: (m: Machine) => string): RegionGroups {
  const regions: RegionGroups = new Map();
  // Interned group keys: no string is built per machine.
  const keys = new Map<string, string>();
  const groupKey = (sub: string) => {
    let k = keys.get(sub);
    if (k === undefined) keys.set(sub, (k = `standalone:${sub}`));
    return k;
  };
  // Window keys are long (configuration ids): units name them by a short number.
  const windowNumbers = new Map<string, number>();
  const windowed = (unitKey: string, m: Machine) => {
    const wk = windowKeyOf!(m);
    if (wk === '') return unitKey;
    let n = windowNumbers.get(wk);
    if (n === undefined) windowNumbers.set(wk, (n = windowNumbers.size + 1));
    return `${unitKey}#w${n}`;
  };
  const crossZoneSets = new Set<string>();
  for (const [id, ss] of scaleSets) if (ss.upgradePolicy.rollingUpgradePolicy.enableCrossZoneUpgrade) crossZoneSets.add(id);
  // Machines with equal placements share one placement object (fleet.ts): its update-domain list is found
  // once per placement, not once per machine. Window keys depend on more than placement.
  const byPlacement = windowKeyOf ? null : new Map<Machine['placement'], UdList>();
  // Ids go straight into one array, each update domain's together (a counting sort): first each machine's list and
  // the lists' sizes, then the ids in place. Growing a list per update domain, then slicing it into batches, left
  // ~35 MB of lists and their slack for the garbage collector to copy.
  const n = machines.length;
  const ids: string[] = new Array(n);
  const listOf = new Int32Array(n);
  const lists: UdList[] = [];
  for (let i = 0; i < n; i++) {
    const m = machines[i]!;
    ids[i] = m.id;
    const p = m.placement;
    let list = byPlacement?.get(p);
    if (!list) {
      let waves = regions.get(p.region);
      if (!waves) regions.set(p.region, (waves = new Map()));
      const waveKey = p.setId !== null && crossZoneSets.has(p.setId) ? CROSS_ZONE : (p.zone ?? NO_ZONE);
      const plainKey = p.setId ?? groupKey(p.subscription);
      const unitKey = windowKeyOf ? windowed(plainKey, m) : plainKey;
      let units = waves.get(waveKey);
      if (!units) waves.set(waveKey, (units = new Map()));
      let group = units.get(unitKey);
      if (!group) units.set(unitKey, (group = { first: m, size: 0, hasVm: false, uds: [], ordered: EMPTY, windowKey: windowKeyOf ? windowKeyOf(m) : '' }));
      const ud = p.updateDomain ?? -1;
      // A short array, not a Map per group: 50,000 Maps were that many more objects for the garbage collector to promote.
      list = udList(group, ud);
      if (!list) {
        group.uds.push((list = { ud, start: lists.length, count: 0, hasVm: false }));
        lists.push(list);
      }
      byPlacement?.set(p, list);
    }
    if (m.kind !== 'arc') list.hasVm = true;
    list.count++;
    listOf[i] = list.start; // the list's number until the starts are known
  }
  // Each list's start, then every id in its place (input order kept within a list).
  const next = new Int32Array(lists.length);
  let at = 0;
  for (let l = 0; l < lists.length; l++) {
    next[l] = at;
    at += lists[l]!.count;
  }
  const ordered: string[] = new Array(n);
  for (let i = 0; i < n; i++) ordered[next[listOf[i]!]!++] = ids[i]!;
  for (let l = 0; l < lists.length; l++) lists[l]!.start = next[l]! - lists[l]!.count;
  // Sizes and kinds once at the end, not per machine.
  for (const waves of regions.values()) {
    for (const units of waves.values()) {
      for (const g of units.values()) {
        g.ordered = ordered;
        for (const u of g.uds) {
          g.size += u.count;
          if (u.hasVm) g.hasVm = true;
        }
      }
    }
  }
  return regions;
}

const EMPTY: string[] = [];

/** The group's list for an update domain; a loop, not `find`: with windows every machine comes here. */
function udList(group: UnitGroup, ud: number): UdList | undefined {
  for (const u of group.uds) if (u.ud === ud) return u;
  return undefined;
}

export function countMachines(waves: Map<string, Map<string, UnitGroup>>): number {
  let n = 0;
  for (const units of waves.values()) for (const g of units.values()) n += g.size;
  return n;
}

/** The ordered zone waves of one region's groups. */
export function planWaves(waves: Map<string, Map<string, UnitGroup>>, ctx: UnitContext): PlanWave[] {
  const keys = [...waves.keys()].sort(waveOrder);
  return keys.map((waveKey) => {
    const units = waves.get(waveKey)!;
    const zone = waveKey === NO_ZONE || waveKey === CROSS_ZONE ? null : waveKey;
    const crossZone = waveKey === CROSS_ZONE;
    // One prefix per wave, shared by its units' ids (a joined string per unit id would be four more objects to promote).
    const prefix = `${ctx.rolloutId}/${ctx.region}/${zone ?? (crossZone ? 'cross-zone' : 'no-zone')}/`;
    const planned = [...units.keys()].sort().map((unitKey) => planUnit(prefix + unitKey, units.get(unitKey)!, zone, crossZone, ctx));
    return {
      zone,
      crossZone,
      units: planned,
      reason: crossZone
        ? 'scale sets with enableCrossZoneUpgrade: batches may span zones, so they run alone after the zone waves'
        : zone === null
          ? 'machines without an availability zone'
          : `availability zone ${zone}: zones of a region are never upgraded at the same time (R11)`,
      estimatedMs: 0,
    };
  });
}

function waveOrder(a: string, b: string): number {
  const rank = (k: string) => (k === CROSS_ZONE ? 2 : k === NO_ZONE ? 1 : 0);
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

function planUnit(id: string, group: UnitGroup, zone: string | null, crossZone: boolean, ctx: UnitContext): PlanUnit {
  const first = group.first;
  const p = first.placement;
  const kind: UnitKind = p.setKind === 'scaleSet' ? 'scaleSet' : p.setKind === 'availabilitySet' ? 'availabilitySet' : group.hasVm ? 'standalone' : 'arc';
  const setSize = p.setId ? (ctx.setSizes.get(p.setId) ?? group.size) : group.size;
  const limits = unitLimits(kind, p.setId, setSize, ctx);
  const batches: PlanBatch[] = [];
  const batchPrefix = `${id}/b`; // shared: each batch id is then one joined string, not two
  const udOrder = group.uds.length === 1 ? group.uds : [...group.uds].sort((a, b) => a.ud - b.ud);
  const size = limits.maxBatch;
  const firstSize = kind === 'scaleSet' || kind === 'availabilitySet'
    ? firstBatchSize(udOrder.map((u) => u.count), size, limits.maxUnhealthyUpgradedInstancePercent)
    : size;
  for (const { ud, start, count } of udOrder) {
    const list = prioritize(group.ordered, start, count, kind, p.setId, ctx);
    const from = list === group.ordered ? start : 0;
    // One update domain at a time (R13, R14), in chunks that never hold a whole set or subscription group (R12).
    for (let i = 0; i < count;) {
      const n = batches.length === 0 ? firstSize : size;
      batches.push({
        id: batchPrefix + batches.length,
        index: batches.length,
        updateDomain: ud >= 0 ? ud : null,
        machineIds: copyOf(list, from + i, from + Math.min(i + n, count)),
      });
      i += n;
    }
  }
  return {
    id,
    kind,
    machineKind: kind === 'standalone' ? 'vm' : first.kind,
    setId: p.setId,
    subscription: p.subscription,
    zone,
    crossZone,
    setSize,
    limits,
    batches,
    reason: unitReason(kind, p.setId, p.subscription, setSize, group.size),
    ...(group.windowKey !== '' ? { windowKey: group.windowKey } : {}),
  };
}

function copyOf(list: string[], from: number, to: number): string[] {
  const out: string[] = new Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = list[i]!;
  return out;
}

/**
 * R40 under holds: the size of a small set's first batch. When a full batch tolerates no failure under R23
 * (its limit share of it rounds down to none: 4 instances at 20%), any failure in it stops the set for the
 * retry interval; a smaller first batch lets the next ones arrive at a count where one failure is tolerated
 * (1, then 4: one failure in 5 is not above 20%). Each first size is judged by R23's own arithmetic at the
 * assumed failure rate (`stopProbability` over the unit's first batches, update domains respected), and a
 * smaller one is taken only when it lowers the chance of a stop by at least a point: it costs one batch more.
 */
export function firstBatchSize(udSizes: readonly number[], maxBatch: number, limitPercent: number): number {
  if (maxBatch < 2 || maxBatch > SMALL_BATCH || Math.floor((limitPercent * maxBatch) / 100) > 0 || (udSizes[0] ?? 0) <= 1) return maxBatch;
  let best = maxBatch;
  let bestChance = stopProbability(batchSizes(udSizes, maxBatch, maxBatch), PRIOR_FAILURE_RATE, limitPercent);
  for (let f = 1; f < Math.min(maxBatch, udSizes[0]!); f++) {
    const chance = stopProbability(batchSizes(udSizes, maxBatch, f), PRIOR_FAILURE_RATE, limitPercent);
    if (chance <= bestChance - 0.01) {
      best = f;
      bestChance = chance;
    }
  }
  return best;
}

/** Sets whose batches are larger than this already tolerate a failure at any R23 limit of 12.5% or more. */
const SMALL_BATCH = 8;

/** The unit's first (at most 20) batch sizes: update domains one after another, the first batch of `first`. */
function batchSizes(udSizes: readonly number[], maxBatch: number, first: number): number[] {
  const sizes: number[] = [];
  for (const n of udSizes) {
    for (let left = n; left > 0 && sizes.length < 20;) {
      const b = Math.min(left, sizes.length === 0 ? first : maxBatch);
      sizes.push(b);
      left -= b;
    }
  }
  return sizes;
}

function unitLimits(kind: UnitKind, setId: string | null, setSize: number, ctx: UnitContext): UnitLimits {
  if (kind === 'scaleSet') {
    const ss = ctx.scaleSets.get(setId!)!;
    const rp = ss.upgradePolicy.rollingUpgradePolicy;
    return {
      maxBatch: maxBatchSize(setSize, Math.min(rp.maxBatchInstancePercent, ctx.maxBatchPercentCap)),
      maxUnhealthyInstancePercent: rp.maxUnhealthyInstancePercent,
      maxUnhealthyUpgradedInstancePercent: rp.maxUnhealthyUpgradedInstancePercent,
      pauseBetweenBatchesMs: durationMs(rp.pauseTimeBetweenBatches) || 0,
      healthWindowMs: ss.healthGracePeriodMs,
    };
  }
  return {
    maxBatch: maxBatchSize(setSize, ctx.standaloneBatchPercent),
    maxUnhealthyInstancePercent: kind === 'availabilitySet' ? 20 : null,
    maxUnhealthyUpgradedInstancePercent: ctx.groupMaxUnhealthyUpgradedPercent,
    pauseBetweenBatchesMs: 0,
    healthWindowMs: DEFAULT_HEALTH_WINDOW_MS,
  };
}

/** The update domain's ids (`count` from `start` of `ordered`), unhealthy ones first where the set asks; else `ordered` itself. */
function prioritize(ordered: string[], start: number, count: number, kind: UnitKind, setId: string | null, ctx: UnitContext): string[] {
  if (kind !== 'scaleSet' || !ctx.unhealthy || ctx.unhealthy.size === 0) return ordered;
  if (!ctx.scaleSets.get(setId!)!.upgradePolicy.rollingUpgradePolicy.prioritizeUnhealthyInstances) return ordered;
  const list = ordered.slice(start, start + count);
  const sick = list.filter((id) => ctx.unhealthy!.has(id));
  return sick.length === 0 ? ordered : [...sick, ...list.filter((id) => !ctx.unhealthy!.has(id))];
}

/** Why a batch holds what it holds. */
export function explainBatch(unit: PlanUnit, batch: PlanBatch): string {
  const n = batch.machineIds.length;
  const ud = batch.updateDomain ?? -1;
  const maxBatch = unit.limits.maxBatch;
  const setSize = unit.setSize;
  // The first batch cut short although its update domain has more (`firstBatchSize`).
  const small = batch.index === 0 && n < maxBatch && unit.batches[1]?.updateDomain === batch.updateDomain
    ? `; a smaller first batch, since a full one would tolerate no failure under R23 (R40)` : '';
  switch (unit.kind) {
    case 'scaleSet':
      return `update domain ${ud}: ${n} of at most ${maxBatch} instances (maxBatchInstancePercent of ${setSize}) (R14)${small}`;
    case 'availabilitySet':
      return `update domain ${ud} of the availability set: ${n} of at most ${maxBatch} machines, never two domains at once (R13)${small}`;
    default:
      return `${n} of at most ${maxBatch} standalone machines of the subscription at a time (R12)`;
  }
}

function unitReason(kind: UnitKind, setId: string | null, subscription: string, setSize: number, here: number): string {
  switch (kind) {
    case 'scaleSet':
      return `scale set ${setId} (${here} of its ${setSize} instances here), one batch at a time`;
    case 'availabilitySet':
      return `availability set ${setId}, one update domain at a time`;
    case 'arc':
      return `Arc machines of subscription ${subscription}, spread over batches`;
    default: {
      // A subscription's groups in every region and zone say the same: one string each (45,000 units in the bench plan).
      let reason = standaloneReasons.get(subscription);
      if (reason === undefined) {
        if (standaloneReasons.size >= 10_000) standaloneReasons.clear();
        standaloneReasons.set(subscription, (reason = `standalone VMs (and any Arc machines) of subscription ${subscription}, spread so they are not all upgraded at once`));
      }
      return reason;
    }
  }
}

const standaloneReasons = new Map<string, string>();
