/**
 * The shape of a plan: phases → regions → zone waves → units (a set's share of a wave, or a group of
 * standalone machines) → batches. Every level says why it is where it is.
 */
import type { Artifact } from '../model/artifact.js';
import type { BatchScope } from '../model/events.js';
import type { MachineKind } from '../model/fleet.js';
import type { RolloutProfile } from './profile.js';

export type UnitKind = 'scaleSet' | 'availabilitySet' | 'standalone' | 'arc';

export interface UnitLimits {
  /** Largest batch (R14), already resolved to instances. */
  maxBatch: number;
  /** R20/R24; null where the rule does not apply (standalone machines). */
  maxUnhealthyInstancePercent: number | null;
  /** R23. */
  maxUnhealthyUpgradedInstancePercent: number;
  pauseBetweenBatchesMs: number;
  healthWindowMs: number;
}

/** A batch of a unit. Its reason is derived on demand (`explainBatch`): a million-machine plan has ~300k batches. */
export interface PlanBatch {
  id: string;
  index: number;
  updateDomain: number | null;
  machineIds: string[];
  /**
   * Only in units confined to maintenance windows (R70): offsets from the rollout's start of when the
   * batch is expected to start and of the window instance it is expected to run in.
   */
  window?: PlanBatchWindow;
}

export interface PlanBatchWindow {
  startMs: number;
  opensMs: number;
  closesMs: number;
}

export interface PlanUnit {
  id: string;
  kind: UnitKind;
  machineKind: MachineKind;
  setId: string | null;
  subscription: string;
  zone: string | null;
  crossZone: boolean;
  /** All instances of the set (eligible or not); the base of the percentages. For groups, the group size. */
  setSize: number;
  limits: UnitLimits;
  batches: PlanBatch[];
  reason: string;
  /** The maintenance configurations confining the unit's machines (`windowKeyOf`); absent when none. */
  windowKey?: string;
  /** True when no window of the unit is long enough for a batch before its configurations expire. */
  unschedulable?: boolean;
}

export interface PlanWave {
  zone: string | null;
  crossZone: boolean;
  units: PlanUnit[];
  reason: string;
  estimatedMs: number;
}

export interface PlanRegion {
  region: string;
  pair: string | null;
  waves: PlanWave[];
  machines: number;
  estimatedMs: number;
}

export interface PlanPhase {
  index: number;
  regions: PlanRegion[];
  reason: string;
  /** Offsets from the rollout start, estimated. */
  estimatedStartMs: number;
  estimatedMs: number;
  /** Bake after this phase before the next opens. */
  bakeAfterMs: number;
}

export interface PlanEstimate {
  /** The instant the plan was made for (epoch ms); windows are placed from it. */
  startMs: number;
  totalMs: number;
  boundMs: number;
  fitsBound: boolean;
  retryAllowanceMs: number;
  notes: string[];
  /** Batches expected to wait for a maintenance window (R70). */
  windowedBatches?: number;
  /** R40 with the expected R23 stops and the windows counted (automatic rollouts only). */
  outlook?: BoundOutlook;
}

/** Whether the last eligible machine is expected to be first reached within R40's bound, and why (instants in epoch ms). */
export interface BoundOutlook {
  atRisk: boolean;
  reason: string;
  /** When the last eligible machine is expected to be first reached. */
  projectedEndMs: number;
  /** The bound's instant: the rollout's start plus 8 weeks (standard) or 3 (critical). */
  boundEndMs: number;
  /** R23 stops expected over the rest of the rollout. */
  expectedStops: number;
}

export interface Plan {
  rolloutId: string;
  artifact: Artifact;
  toVersion: string;
  profile: RolloutProfile;
  phases: PlanPhase[];
  machines: number;
  batches: number;
  estimate: PlanEstimate;
  /** A rollout back to an earlier version (a withdrawn version's rollback): it moves machines down, never up. */
  downgrade?: boolean;
}

export function batchScope(unit: PlanUnit, region: string, batch: Pick<PlanBatch, 'updateDomain'>): BatchScope {
  return {
    region,
    zone: unit.zone,
    setId: unit.setId,
    updateDomain: batch.updateDomain,
    subscription: unit.subscription,
    ...(unit.crossZone ? { crossZone: true } : {}),
  };
}
