/**
 * Within a region: zone waves (R11), and in each wave the units that run side by side: a scale set's
 * share of the zone (R14), an availability set (R13), or the standalone machines of one subscription
 * (R12). Each unit is cut into batches on update-domain boundaries.
 */
import type { AvailabilitySet, Machine, ScaleSet } from '../model/fleet.js';
import { DEFAULT_HEALTH_WINDOW_MS } from '../model/fleet.js';
import { durationMs, maxBatchSize } from '../model/upgrade-policy.js';
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
  /** Automatic rollouts cap a scale set's batch at this share even if its policy allows more (R14). */
  maxBatchPercentCap: number;
}

const NO_ZONE = '\u0000none';
const CROSS_ZONE = '\u0000cross';

/** Splits a region's machines into ordered waves of units. Machines keep their input order within a UD. */
export function planWaves(machines: readonly Machine[], ctx: UnitContext): PlanWave[] {
  // wave key → unit key → update domain → machines
  const waves = new Map<string, Map<string, Map<number, Machine[]>>>();
  for (const m of machines) {
    const p = m.placement;
    const crossZone = p.setKind === 'scaleSet' && ctx.scaleSets.get(p.setId!)?.upgradePolicy.rollingUpgradePolicy.enableCrossZoneUpgrade === true;
    const waveKey = crossZone ? CROSS_ZONE : (p.zone ?? NO_ZONE);
    const unitKey = p.setId ?? `${m.kind === 'arc' ? 'arc' : 'standalone'}:${p.subscription}`;
    let units = waves.get(waveKey);
    if (!units) waves.set(waveKey, (units = new Map()));
    let uds = units.get(unitKey);
    if (!uds) units.set(unitKey, (uds = new Map()));
    const ud = p.updateDomain ?? -1;
    let list = uds.get(ud);
    if (!list) uds.set(ud, (list = []));
    list.push(m);
  }
  const keys = [...waves.keys()].sort(waveOrder);
  return keys.map((waveKey) => {
    const units = waves.get(waveKey)!;
    const zone = waveKey === NO_ZONE || waveKey === CROSS_ZONE ? null : waveKey;
    const crossZone = waveKey === CROSS_ZONE;
    const planned = [...units.keys()].sort().map((unitKey) => planUnit(unitKey, units.get(unitKey)!, zone, crossZone, ctx));
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

function planUnit(unitKey: string, uds: Map<number, Machine[]>, zone: string | null, crossZone: boolean, ctx: UnitContext): PlanUnit {
  const first = uds.values().next().value![0]!;
  const p = first.placement;
  const kind: UnitKind = p.setKind === 'scaleSet' ? 'scaleSet' : p.setKind === 'availabilitySet' ? 'availabilitySet' : first.kind === 'arc' ? 'arc' : 'standalone';
  const groupSize = [...uds.values()].reduce((n, l) => n + l.length, 0);
  const setSize = p.setId ? (ctx.setSizes.get(p.setId) ?? groupSize) : groupSize;
  const limits = unitLimits(kind, p.setId, setSize, ctx);
  const id = `${ctx.rolloutId}/${ctx.region}/${zone ?? (crossZone ? 'cross-zone' : 'no-zone')}/${unitKey}`;
  const batches: PlanBatch[] = [];
  const udOrder = [...uds.keys()].sort((a, b) => a - b);
  for (const ud of udOrder) {
    const list = prioritize(uds.get(ud)!, kind, p.setId, ctx);
    // One update domain at a time (R13, R14), in chunks that never hold a whole set or subscription group (R12).
    for (let i = 0; i < list.length; i += limits.maxBatch) {
      const chunk = list.slice(i, i + limits.maxBatch);
      batches.push({
        id: `${id}/b${batches.length}`,
        index: batches.length,
        updateDomain: ud >= 0 ? ud : null,
        machineIds: chunk.map((m) => m.id),
        reason: batchReason(kind, ud, chunk.length, limits.maxBatch, setSize),
      });
    }
  }
  return {
    id,
    kind,
    machineKind: first.kind,
    setId: p.setId,
    subscription: p.subscription,
    zone,
    crossZone,
    setSize,
    limits,
    batches,
    reason: unitReason(kind, p.setId, p.subscription, setSize, groupSize),
  };
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
    maxUnhealthyUpgradedInstancePercent: 20,
    pauseBetweenBatchesMs: 0,
    healthWindowMs: DEFAULT_HEALTH_WINDOW_MS,
  };
}

function prioritize(list: Machine[], kind: UnitKind, setId: string | null, ctx: UnitContext): Machine[] {
  if (kind !== 'scaleSet' || !ctx.unhealthy || ctx.unhealthy.size === 0) return list;
  if (!ctx.scaleSets.get(setId!)!.upgradePolicy.rollingUpgradePolicy.prioritizeUnhealthyInstances) return list;
  const sick = list.filter((m) => ctx.unhealthy!.has(m.id));
  return sick.length === 0 ? list : [...sick, ...list.filter((m) => !ctx.unhealthy!.has(m.id))];
}

function batchReason(kind: UnitKind, ud: number, n: number, maxBatch: number, setSize: number): string {
  switch (kind) {
    case 'scaleSet':
      return `update domain ${ud}: ${n} of at most ${maxBatch} instances (maxBatchInstancePercent of ${setSize}) (R14)`;
    case 'availabilitySet':
      return `update domain ${ud} of the availability set: ${n} of at most ${maxBatch} machines, never two domains at once (R13)`;
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
    default:
      return `standalone VMs of subscription ${subscription}, spread so they are not all upgraded at once`;
  }
}
