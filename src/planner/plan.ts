/**
 * `planRollout`: from a fleet snapshot and a release, the whole plan. Pure: no I/O, no clock.
 */
import type { Artifact } from '../model/artifact.js';
import type { AvailabilitySet, Machine, Region, ScaleSet } from '../model/fleet.js';
import { symmetricPairs } from '../model/fleet.js';
import { planPhases } from './phases.js';
import type { RolloutProfile } from './profile.js';
import { retryIntervalMs } from './profile.js';
import type { Plan, PlanPhase, PlanRegion, PlanWave } from './types.js';
import { countMachines, groupMachines, planWaves } from './units.js';

export interface PlanInput {
  rolloutId: string;
  artifact: Artifact;
  toVersion: string;
  profile: RolloutProfile;
  regions: readonly Region[];
  /** The eligible machines, in a stable order. */
  machines: readonly Machine[];
  scaleSets: ReadonlyMap<string, ScaleSet>;
  availabilitySets: ReadonlyMap<string, AvailabilitySet>;
  setSizes: ReadonlyMap<string, number>;
  unhealthy?: ReadonlySet<string>;
  canaryRegions?: string[];
  standaloneBatchPercent?: number;
}

export function planRollout(input: PlanInput): Plan {
  const pairs = symmetricPairs(input.regions);
  const byRegion = groupMachines(input.machines, input.scaleSets);
  const loads = [...byRegion].map(([region, waves]) => ({ region, pair: pairs.get(region) ?? null, machines: countMachines(waves) }));
  const choices = planPhases(loads, { canary: input.profile.canary, canaryRegions: input.canaryRegions ?? [], growth: input.profile.phaseGrowth, canaryMinMachines: input.profile.canaryMinMachines });

  let batches = 0;
  const phases: PlanPhase[] = choices.map((choice, index) => {
    const regions: PlanRegion[] = choice.regions.map((region) => {
      const waves = planWaves(byRegion.get(region)!, {
        rolloutId: input.rolloutId,
        region,
        scaleSets: input.scaleSets,
        availabilitySets: input.availabilitySets,
        setSizes: input.setSizes,
        standaloneBatchPercent: input.standaloneBatchPercent ?? 20,
        maxBatchPercentCap: input.profile.maxBatchPercentCap,
        groupMaxUnhealthyUpgradedPercent: input.profile.groupMaxUnhealthyUpgradedPercent,
        ...(input.unhealthy ? { unhealthy: input.unhealthy } : {}),
      });
      for (const w of waves) {
        w.estimatedMs = estimateWave(w, input.profile);
        for (const u of w.units) batches += u.batches.length;
      }
      return {
        region,
        pair: pairs.get(region) ?? null,
        waves,
        machines: loads.find((l) => l.region === region)!.machines,
        estimatedMs: waves.reduce((t, w) => t + w.estimatedMs, 0),
      };
    });
    return { index, regions, reason: choice.reason, estimatedStartMs: 0, estimatedMs: Math.max(0, ...regions.map((r) => r.estimatedMs)), bakeAfterMs: 0 };
  });

  const estimate = pace(phases, input);
  return { rolloutId: input.rolloutId, artifact: input.artifact, toVersion: input.toVersion, profile: input.profile, phases, machines: input.machines.length, batches, estimate };
}

/** A wave lasts as long as its slowest unit; a unit runs its batches one after another. */
function estimateWave(w: PlanWave, profile: RolloutProfile): number {
  let longest = 0;
  for (const u of w.units) {
    const perBatch = profile.expectedUpgradeMs + u.limits.healthWindowMs + u.limits.pauseBetweenBatchesMs;
    longest = Math.max(longest, u.batches.length * perBatch);
  }
  return longest;
}

/**
 * R40: fits the phases and their bakes into the profile's bound, keeping an allowance for one retry.
 * Bakes shrink evenly when the default would overrun; the plan says so, and says when even that fails.
 */
function pace(phases: PlanPhase[], input: PlanInput): Plan['estimate'] {
  const { profile } = input;
  const notes: string[] = [];
  const kinds = new Set<Machine['kind']>();
  for (const p of phases) for (const r of p.regions) for (const w of r.waves) for (const u of w.units) kinds.add(u.machineKind);
  const retryAllowanceMs = Math.max(0, ...[...kinds].map((k) => retryIntervalMs(profile, k)));
  const workMs = phases.reduce((t, p) => t + p.estimatedMs, 0);
  const gaps = Math.max(0, phases.length - 1);
  let bake = profile.phaseBakeMs;
  if (Number.isFinite(profile.boundMs) && gaps > 0) {
    const room = profile.boundMs - workMs - retryAllowanceMs;
    const fit = Math.max(0, Math.floor(room / gaps));
    if (fit < bake) {
      notes.push(`phase bake shortened from ${hours(bake)} h to ${hours(fit)} h to fit the ${profile.name} bound of ${hours(profile.boundMs) / 24} days (R40)`);
      bake = fit;
    }
  }
  let t = 0;
  phases.forEach((p, i) => {
    p.estimatedStartMs = t;
    p.bakeAfterMs = i < phases.length - 1 ? bake : 0;
    t += p.estimatedMs + p.bakeAfterMs;
  });
  const totalMs = t;
  const fitsBound = totalMs + retryAllowanceMs <= profile.boundMs;
  if (!fitsBound) notes.push(`estimated ${hours(totalMs + retryAllowanceMs) / 24} days including one retry: over the ${profile.name} bound of ${hours(profile.boundMs) / 24} days (R40)`);
  return { totalMs, boundMs: profile.boundMs, fitsBound, retryAllowanceMs, notes };
}

function hours(ms: number): number {
  return Math.round((ms / 3_600_000) * 10) / 10;
}
