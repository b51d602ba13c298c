/**
 * The fleet vocabulary: regions with geo-pairs, machines of three kinds, availability sets and scale
 * sets. Plain data; rules about them live in pure functions next to the types that need them.
 */
import type { ImageRef } from './image-reference.js';
import type { UpgradePolicy } from './upgrade-policy.js';

export type MachineKind = 'vm' | 'scaleSetInstance' | 'arc';
export type OsType = 'linux' | 'windows';
export type SetKind = 'scaleSet' | 'availabilitySet' | 'none';

export interface Region {
  name: string;
  /** The geo-paired region, if any. Pairs are symmetric and never share a rollout phase (R10). */
  pair: string | null;
  /** Availability zones the region offers; empty for regions without zones. */
  zones: string[];
}

/** Where a machine sits in the failure-domain hierarchy. Every instance event carries it. */
export interface Placement {
  region: string;
  zone: string | null;
  setId: string | null;
  setKind: SetKind;
  updateDomain: number | null;
  faultDomain: number | null;
  subscription: string;
}

export interface Machine {
  id: string;
  name: string;
  kind: MachineKind;
  os: OsType;
  resourceGroup: string;
  placement: Placement;
  /** A scale-set instance's id within its set as ARM shows it (`"0"`, `"1"`); absent for other machines. */
  instanceId?: string;
}

export interface AvailabilitySet {
  id: string;
  name: string;
  region: string;
  subscription: string;
  resourceGroup: string;
  updateDomainCount: number;
  faultDomainCount: number;
}

export interface ScaleSet {
  id: string;
  name: string;
  region: string;
  subscription: string;
  resourceGroup: string;
  zones: string[];
  updateDomainCount: number;
  faultDomainCount: number;
  upgradePolicy: UpgradePolicy;
  /** How long the engine waits for an upgraded instance to turn healthy (R21); 5 minutes by default. */
  healthGracePeriodMs: number;
  /** True when the set has the Application Health extension or a load-balancer probe (R25). */
  hasApplicationHealth: boolean;
  /**
   * The set's OS image when the image catalog holds it (R60–R64); its automatic OS upgrade policy is
   * `upgradePolicy.automaticOSUpgradePolicy` (R63). Absent for sets whose image Phasewise does not manage.
   */
  image?: ImageRef;
}

/** The health window of R21 when nothing else is configured. */
export const DEFAULT_HEALTH_WINDOW_MS = 5 * 60_000;

/** Checks that geo-pairs are symmetric and refer to known regions; returns the problems found. */
export function validateRegionPairs(regions: readonly Region[]): string[] {
  const byName = new Map(regions.map((r) => [r.name, r]));
  const problems: string[] = [];
  // A region that names no pair, by the first region that names it: a second one would make it the pair of two, and
  // the pair completed for it (symmetricPairs) would be the first only: planned in one phase with the second, whose
  // batches then waited for it to finish and were never woken (R10).
  const claimedBy = new Map<string, string>();
  for (const r of regions) {
    if (r.pair === null) continue;
    if (r.pair === r.name) problems.push(`region ${r.name} is paired with itself`);
    const other = byName.get(r.pair);
    if (!other) problems.push(`region ${r.name} is paired with unknown region ${r.pair}`);
    else if (other.pair !== null && other.pair !== r.name)
      problems.push(`region ${r.name} is paired with ${r.pair}, but ${r.pair} is paired with ${other.pair}`);
    else if (other.pair === null && r.pair !== r.name) {
      const first = claimedBy.get(r.pair);
      if (first === undefined) claimedBy.set(r.pair, r.name);
      else problems.push(`region ${r.name} is paired with ${r.pair}, but ${r.pair} is the geo-pair of ${first} already; a region has at most one geo-pair`);
    }
  }
  return problems;
}

/** Completes one-sided pairs so that `pairOf(a) === b` implies `pairOf(b) === a`. */
export function symmetricPairs(regions: readonly Region[]): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const r of regions) {
    if (r.pair === null) continue;
    pairs.set(r.name, r.pair);
    if (!pairs.has(r.pair)) pairs.set(r.pair, r.name);
  }
  return pairs;
}
