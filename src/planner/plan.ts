/**
 * `planRollout`: from a fleet snapshot and a release, the whole plan. Pure: no I/O, no clock.
 */
import type { Artifact } from '../model/artifact.js';
import type { AvailabilitySet, Machine, Region, ScaleSet } from '../model/fleet.js';
import { symmetricPairs } from '../model/fleet.js';
import { planPhases } from './phases.js';
import type { RolloutProfile } from './profile.js';
import { retryIntervalMs } from './profile.js';
import type { BoundOutlook, Plan, PlanPhase, PlanRegion, PlanUnit, PlanWave } from './types.js';
import { PRIOR_FAILURE_RATE, STOP_HORIZON, expectedLastReach, expectedStops as stopsExpected, placeBatches, reachAfterStop, stopHolds, stopProbability, stopsToCount } from './bound.js';
import type { StopLink, UnitCourse, UnitOutlook } from './bound.js';
import { countMachines, groupMachines, planWaves } from './units.js';
import type { WindowUnion } from '../schedule/slots.js';
import type { PlanWindows } from './windows.js';
import { batchBudgetMs, expectedBatchMs, noticeOf, timeline } from './windows.js';

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

const NO_WINDOWS: WindowUnion = [];

export function planRollout(input: PlanInput): Plan {
  const pairs = symmetricPairs(input.regions);
  const byRegion = groupMachines(input.machines, input.scaleSets, input.windows ? (m) => input.windows!.keyOf(m) : undefined);
  const loads = [...byRegion].map(([region, waves]) => ({ region, pair: pairs.get(region) ?? null, machines: countMachines(waves) }));
  const choices = planPhases(loads, { canary: input.profile.canary, canaryRegions: input.canaryRegions ?? [], growth: input.profile.phaseGrowth, canaryMinMachines: input.profile.canaryMinMachines });

  let batches = 0;
  // Each unit's R23 stop chance, in plan order, taken while the region's batches are fresh: the outlook would read
  // 200,000 batches again, from memory, once per round.
  const stopChances: number[] = [];
  const sizes: number[] = [];
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
        for (const u of w.units) {
          batches += u.batches.length;
          stopChances.push(stopChance(u, sizes));
        }
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

  const estimate = pace(phases, input, stopChances);
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
function pace(phases: PlanPhase[], input: PlanInput, stopChances: readonly number[]): Plan['estimate'] {
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
  const starts: number[] = [];
  let line = timeline(phases, profile, bake, startMs, windowed ? input.windows : undefined, notice, starts);
  // Waiting for windows stretches the work: shorten the bakes further while that helps (R40).
  for (let round = 0; windowed && round < 4 && gaps > 0 && bake > 0 && line.totalMs + retryAllowanceMs > profile.boundMs; round++) {
    const before = bake;
    bake = Math.max(0, bake - Math.ceil((line.totalMs + retryAllowanceMs - profile.boundMs) / gaps));
    starts.length = 0;
    line = timeline(phases, profile, bake, startMs, input.windows, notice, starts);
    notes.push(`maintenance windows stretch the work: phase bake shortened from ${hours(before)} h to ${hours(bake)} h (R40, R70)`);
  }
  // Each unit's stop link is the same in every round: worked out once.
  const links = planLinks();
  let outlook = Number.isFinite(profile.boundMs) ? outlookOf(phases, input, starts, stopChances, windowed, links) : undefined;
  // The expected R23 stops push the last first reach past the bound: shorten the bakes while that helps (R40).
  // A unit whose windows never hold a batch (projected end: never) is not helped: the bakes stay.
  for (let round = 0; outlook?.atRisk && Number.isFinite(outlook.projectedEndMs) && round < 4 && gaps > 0 && bake > 0; round++) {
    const before = bake;
    bake = Math.max(0, bake - Math.ceil((outlook.projectedEndMs - outlook.boundEndMs) / gaps));
    starts.length = 0;
    line = timeline(phases, profile, bake, startMs, windowed ? input.windows : undefined, notice, starts);
    outlook = outlookOf(phases, input, starts, stopChances, windowed, links);
    notes.push(`the expected R23 stops push the last first reach past the bound: phase bake shortened from ${hours(before)} h to ${hours(bake)} h (R40, R23)`);
  }
  const totalMs = line.totalMs;
  if (outlook?.atRisk) notes.push(`bound at risk (R40): ${outlook.reason}`);
  const fitsBound = totalMs + retryAllowanceMs <= profile.boundMs && line.unschedulable === 0 && !outlook?.atRisk;
  if (line.windowedBatches > 0) {
    const noticed = notice > 0 ? `the ${notice / 60_000}-minute notice (R83), ` : '';
    notes.push(`${line.windowedBatches} batches run only inside maintenance windows (R70); each starts only if ${noticed}`
      + `${hours(2 * profile.actionTimeoutMs)} h for the upgrade and a rollback, and its health wait fit before its window closes`);
  }
  if (line.unschedulable > 0) {
    notes.push(`${line.unschedulable} units can never run: none of their maintenance windows is long enough for a batch before it expires (R70)`);
  }
  if (totalMs + retryAllowanceMs > profile.boundMs) {
    notes.push(`estimated ${hours(totalMs + retryAllowanceMs) / 24} days including one retry: over the ${profile.name} bound of ${hours(profile.boundMs) / 24} days (R40)`);
  }
  return {
    startMs, totalMs, boundMs: profile.boundMs, fitsBound, retryAllowanceMs, notes,
    ...(line.windowedBatches > 0 ? { windowedBatches: line.windowedBatches } : {}),
    ...(outlook ? { outlook } : {}),
  };
}

/**
 * R40 with holds: every unit's last first reach as the timeline places it, and as it would be with one R23
 * stop, or the stops a strict limit makes likely (`stopsToCount`), each as long as the engine would make it
 * (`chooseStopMs`), at the release verdict's acceptable failure
 * rate; the projection is the instant by which the units are expected to have reached their last machine.
 */
function outlookOf(phases: PlanPhase[], input: PlanInput, starts: readonly number[], stopChances: readonly number[], windowed: boolean,
  links: PlanLinks): BoundOutlook {
  const { profile } = input;
  const startMs = input.startMs ?? 0;
  const deadline = startMs + profile.boundMs;
  const notice = noticeOf(input.artifact);
  const units: UnitOutlook[] = [];
  let expectedStops = 0;
  let unschedulable = 0;
  let index = 0; // the unit's place in `starts` and `stopChances`
  for (const p of phases) {
    for (const r of p.regions) {
      for (const [wi, w] of r.waves.entries()) {
        for (const u of w.units) {
          const bypass = profile.name === 'critical' && input.windows?.bypasses?.(u.windowKey ?? '') === true;
          const union = windowed && u.windowKey && !bypass ? input.windows!.unionOf(u.windowKey) : NO_WINDOWS;
          const course: UnitCourse = { union, perMs: expectedBatchMs(profile, u.limits), budgetMs: batchBudgetMs(profile, u.limits, notice) };
          const t0 = starts[index] ?? startMs;
          const pStop = stopChances[index++]!;
          const n = u.batches.length;
          const clear = placeBatches(course, t0, n)?.lastStart ?? null;
          if (clear === null) {
            unschedulable++;
            continue;
          }
          let stopped = clear;
          if (pStop > 0) {
            // More than one stop when the limit is strict enough that the assumed rate trips it again and again.
            const own = links.of(u);
            const many = stopsToCount(own.expected);
            expectedStops += many > 1 ? many : pStop;
            // The set's next zones wait behind a stop of this one (`stopHolds`, as the engine sizes the stop).
            const held = stopHolds(own, links.nextZones(r, wi, u));
            stopped = reachAfterStop(course, t0, held.batches, retryIntervalMs(profile, u.machineKind), deadline, stopsToCount(held.expected));
          }
          units.push({ id: u.id, clear, stopped, pStop });
        }
      }
    }
  }
  const last = expectedLastReach(units);
  const projectedEndMs = unschedulable > 0 ? Number.POSITIVE_INFINITY : last.at;
  // Reaching the bound exactly means only shortened R23 stops keep it (`reachAfterStop`): at risk too.
  const atRisk = projectedEndMs >= deadline;
  const days = (ms: number) => `${Math.round((ms / 86_400_000) * 10) / 10} days`;
  const stops = Math.round(expectedStops * 10) / 10;
  const reason = unschedulable > 0
    ? `${unschedulable} units have no maintenance window with room for a batch (R70)`
    : `the last machine is expected to be first reached after ${days(projectedEndMs - startMs)} (bound ${days(profile.boundMs)})`
      + `${projectedEndMs === deadline ? ' only if R23 stops are shortened' : ''}`
      + `${last.stop && last.unit ? `, in unit ${last.unit.id} after an R23 stop` : last.unit ? `, in unit ${last.unit.id}` : ''}`
      + `; ${stops} R23 stops expected at the assumed ${PRIOR_FAILURE_RATE * 100}% failure rate${windowed ? ', batches placed in their maintenance windows (R70)' : ''}`;
  return { atRisk, reason, projectedEndMs, boundEndMs: deadline, expectedStops: stops };
}

/**
 * Each unit's `StopLink` at the assumed failure rate, worked out once it is asked for, and a set's units in a region's
 * later waves (its next zones), indexed per region once: outlookOf asks for them at each unit a stop is likely in.
 */
type PlanLinks = ReturnType<typeof planLinks>;

function planLinks() {
  const known = new Map<PlanUnit, StopLink>();
  const bySet = new Map<PlanRegion, Map<string, Array<{ wave: number; unit: PlanUnit }>>>();
  const of = (u: PlanUnit): StopLink => {
    let link = known.get(u);
    if (!link) {
      // Only the first STOP_HORIZON batches count: the rest are not read again (they are long out of the cache).
      const sizes: number[] = [];
      for (let i = 0; i < u.batches.length && i < STOP_HORIZON; i++) sizes.push(u.batches[i]!.machineIds.length);
      const expected = stopsExpected(sizes, PRIOR_FAILURE_RATE, u.limits.maxUnhealthyUpgradedInstancePercent);
      known.set(u, (link = { batches: u.batches.length, expected }));
    }
    return link;
  };
  const nextZones = (r: PlanRegion, wave: number, u: PlanUnit): StopLink[] => {
    if (!u.setId) return [];
    let sets = bySet.get(r);
    if (!sets) {
      bySet.set(r, (sets = new Map()));
      r.waves.forEach((w, wi) => {
        for (const z of w.units) {
          if (!z.setId) continue;
          const list = sets!.get(z.setId);
          if (list) list.push({ wave: wi, unit: z });
          else sets!.set(z.setId, [{ wave: wi, unit: z }]);
        }
      });
    }
    return (sets.get(u.setId) ?? []).filter((z) => z.wave > wave && z.unit.batches.length > 0).map((z) => of(z.unit));
  };
  return { of, nextZones };
}

/** The probability that R23 stops the unit's run, from its first 20 batches, at the assumed failure rate. */
function stopChance(u: PlanUnit, sizes: number[]): number {
  const n = u.batches.length;
  if (n <= 1) return 0;
  sizes.length = 0;
  for (let i = 0; i < n && i < 20; i++) sizes.push(u.batches[i]!.machineIds.length);
  return stopProbability(sizes, PRIOR_FAILURE_RATE, u.limits.maxUnhealthyUpgradedInstancePercent);
}

function hours(ms: number): number {
  return Math.round((ms / 3_600_000) * 10) / 10;
}
