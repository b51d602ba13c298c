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
import type { PlanWindows } from './windows.js';
import { expectedBatchMs, noticeOf, timeline } from './windows.js';

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
  /** When the rollout starts (epoch ms); 0 when unknown. Windows are placed from it. */
  startMs?: number;
  /** Maintenance windows confining the machines' upgrades (R70); absent when none are assigned. */
  windows?: PlanWindows;
}

export function planRollout(input: PlanInput): Plan {
  const pairs = symmetricPairs(input.regions);
  const byRegion = groupMachines(input.machines, input.scaleSets, input.windows ? (m) => input.windows!.keyOf(m) : undefined);
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
  for (const u of w.units) longest = Math.max(longest, u.batches.length * expectedBatchMs(profile, u.limits));
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
  const startMs = input.startMs ?? 0;
  const windowed = input.windows !== undefined && phases.some((p) => p.regions.some((r) => r.waves.some((w) => w.units.some((u) => u.windowKey !== undefined))));
  const notice = noticeOf(input.artifact);
  let line = timeline(phases, profile, bake, startMs, windowed ? input.windows : undefined, notice);
  // Waiting for windows stretches the work: shorten the bakes further while that helps (R40).
  for (let round = 0; windowed && round < 4 && gaps > 0 && bake > 0 && line.totalMs + retryAllowanceMs > profile.boundMs; round++) {
    const before = bake;
    bake = Math.max(0, bake - Math.ceil((line.totalMs + retryAllowanceMs - profile.boundMs) / gaps));
    line = timeline(phases, profile, bake, startMs, input.windows, notice);
    notes.push(`maintenance windows stretch the work: phase bake shortened from ${hours(before)} h to ${hours(bake)} h (R40, R70)`);
  }
  const totalMs = line.totalMs;
  const fitsBound = totalMs + retryAllowanceMs <= profile.boundMs && line.unschedulable === 0;
  if (line.windowedBatches > 0) notes.push(`${line.windowedBatches} batches run only inside maintenance windows (R70); each starts only if ${notice > 0 ? `the ${notice / 60_000}-minute notice (R83), ` : ''}${hours(2 * profile.actionTimeoutMs)} h for the upgrade and a rollback, and its health wait fit before its window closes`);
  if (line.unschedulable > 0) notes.push(`${line.unschedulable} units can never run: none of their maintenance windows is long enough for a batch before it expires (R70)`);
  if (totalMs + retryAllowanceMs > profile.boundMs) notes.push(`estimated ${hours(totalMs + retryAllowanceMs) / 24} days including one retry: over the ${profile.name} bound of ${hours(profile.boundMs) / 24} days (R40)`);
  return { startMs, totalMs, boundMs: profile.boundMs, fitsBound, retryAllowanceMs, notes, ...(line.windowedBatches > 0 ? { windowedBatches: line.windowedBatches } : {}) };
}

function hours(ms: number): number {
  return Math.round((ms / 3_600_000) * 10) / 10;
}
