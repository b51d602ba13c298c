/**
 * The plan's timeline when maintenance windows confine some units (R70): each batch of a windowed unit is
 * placed at the first instant it can start and finish, health wait included, inside one of its windows,
 * and the phases stretch accordingly. Pure: the windows and the start instant come in.
 */
import type { Machine } from '../model/fleet.js';
import type { WindowUnion } from '../schedule/slots.js';
import { unionSlot } from '../schedule/slots.js';
import { windowAt } from '../schedule/window.js';
import type { RolloutProfile } from './profile.js';
import type { PlanPhase, UnitLimits } from './types.js';

export interface PlanWindows {
  /** The configurations confining a machine's upgrades, '' when none (`windowKeyOf`). */
  keyOf(m: Machine): string;
  /** The windows behind a key; empty when its configurations are gone. */
  unionOf(key: string): WindowUnion;
  /** True when every configuration behind the key lets a critical release bypass it (R72). */
  bypasses?(key: string): boolean;
}

/**
 * How long a batch may take, at worst: the upgrade's timeout, the health wait, and a rollback's timeout.
 * A batch starts in a window only if this much fits before the window closes, so no batch overruns one.
 */
export function batchBudgetMs(profile: Pick<RolloutProfile, 'actionTimeoutMs'>, limits: Pick<UnitLimits, 'healthWindowMs'>, noticeMs = 0): number {
  return noticeMs + 2 * profile.actionTimeoutMs + limits.healthWindowMs;
}

/** R83: how long before a re-image the machine is told (Azure's scheduled events give at least 15 minutes). */
export const REIMAGE_NOTICE_MS = 15 * 60_000;

/** R77, R83: how long before a platform patch installation's possible reboot the machine is told. */
export const REBOOT_NOTICE_MS = 15 * 60_000;

/** The notice an artifact's upgrade starts with: OS images re-image the machine, platform patches may reboot it. */
export function noticeOf(artifact: { kind: string }): number {
  return artifact.kind === 'osImage' ? REIMAGE_NOTICE_MS : artifact.kind === 'guestPatch' ? REBOOT_NOTICE_MS : 0;
}

/** The expected length of a batch when all goes well (estimates only). */
export function expectedBatchMs(profile: Pick<RolloutProfile, 'expectedUpgradeMs'>, limits: UnitLimits): number {
  return profile.expectedUpgradeMs + limits.healthWindowMs + limits.pauseBetweenBatchesMs;
}

const NO_WINDOWS: WindowUnion = [];

export interface Timeline {
  totalMs: number;
  windowedBatches: number;
  /** Units that can never run: no window of theirs is long enough before it expires. */
  unschedulable: number;
}

/**
 * Walks the phases in time from `startMs`: waves of a region one after another, units of a wave side by
 * side, batches of a unit one after another, a phase's regions side by side, then the bake. Sets the
 * estimated start and length of every phase, region and wave, and each windowed batch's window; with
 * `unitStarts`, when each unit is expected to start, in the order of the plan's units (a Map by
 * unit id hashed 50,000 joined id strings).
 */
export function timeline(
  phases: PlanPhase[], profile: RolloutProfile, bakeMs: number, startMs: number, windows: PlanWindows | undefined, notice = 0, unitStarts?: number[],
): Timeline {
  let t = startMs;
  let windowedBatches = 0;
  let unschedulable = 0;
  phases.forEach((phase, i) => {
    let phaseEnd = t;
    for (const region of phase.regions) {
      let rt = t;
      for (const wave of region.waves) {
        let waveEnd = rt;
        for (const unit of wave.units) {
          const union = windows && unit.windowKey ? windows.unionOf(unit.windowKey) : NO_WINDOWS;
          const per = expectedBatchMs(profile, unit.limits);
          let ut = rt;
          unitStarts?.push(rt);
          if (union.length === 0) {
            ut += unit.batches.length * per;
          } else {
            const budget = batchBudgetMs(profile, unit.limits, notice);
            for (const b of unit.batches) {
              const s = unionSlot(union, ut, budget);
              if (s === null) {
                unit.unschedulable = true;
                unschedulable++;
                break;
              }
              const inst = union.map((w) => windowAt(w, s)).find((x) => x !== null && s + budget <= x.end)!;
              b.window = { startMs: s - startMs, opensMs: inst.start - startMs, closesMs: inst.end - startMs };
              windowedBatches++;
              ut = s + per;
            }
          }
          waveEnd = Math.max(waveEnd, ut);
        }
        wave.estimatedMs = waveEnd - rt;
        rt = waveEnd;
      }
      region.estimatedMs = rt - t;
      phaseEnd = Math.max(phaseEnd, rt);
    }
    phase.estimatedStartMs = t - startMs;
    phase.estimatedMs = phaseEnd - t;
    phase.bakeAfterMs = i < phases.length - 1 ? bakeMs : 0;
    t = phaseEnd + phase.bakeAfterMs;
  });
  return { totalMs: t - startMs, windowedBatches, unschedulable };
}
