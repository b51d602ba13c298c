/**
 * Rollout profiles decide pacing (R40): how long each phase bakes before the next opens, how phases
 * grow, and the bound the whole rollout must fit in. A manual upgrade (R6) skips pacing but keeps
 * every batch and health rule.
 */
import type { RolloutProfileName } from '../model/events.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface RolloutProfile {
  name: RolloutProfileName;
  /** Every eligible machine must be reached within this time (R40); Infinity for manual. */
  boundMs: number;
  /** Wait after a phase succeeds before the next opens, so problems surface before they spread. */
  phaseBakeMs: number;
  /** Start with a one-region canary phase. */
  canary: boolean;
  /** Each phase after the canary holds up to this many times the regions of the one before. */
  phaseGrowth: number;
  /** Used for estimates only: how long one instance upgrade is expected to take. */
  expectedUpgradeMs: number;
  /** R30: wait before retrying after a successful rollback. */
  retryIntervalArcMs: number;
  retryIntervalVmMs: number;
  /** A set held by a health gate (R20, R24) looks again after this long. */
  gateRecheckMs: number;
  /** An action not answered within this long counts as failed (agents give up after about 90 minutes). */
  actionTimeoutMs: number;
  /** A phase fails (and the rollout stops) when more than this share of its upgraded instances turned unhealthy or failed. */
  maxPhaseFailurePercent: number;
  /** ...and at least this many failed. */
  minPhaseFailures: number;
  /** A phase whose sets were stopped by R23 before this many instances were judged waits for them to run again: too little evidence to move on. */
  minPhaseSample: number;
  /** The canary is the smallest region with at least this many eligible machines (or the largest if none has). */
  canaryMinMachines: number;
  /** R23's limit applied to standalone groups and availability sets, which have no rolling-upgrade policy. */
  groupMaxUnhealthyUpgradedPercent: number;
  /** Automatic rollouts never put more than this share of a scale set in one batch, whatever its policy says (R14). */
  maxBatchPercentCap: number;
  /**
   * The release's outcomes across its rollouts are judged as they arrive, and it is held fleet-wide when
   * they show it bad; its first batches fan out gradually (docs/engine.md, "A release judged fleet-wide").
   */
  releaseVerdict: boolean;
}

const COMMON = {
  expectedUpgradeMs: 3 * 60_000,
  retryIntervalArcMs: HOUR,
  retryIntervalVmMs: 3 * DAY,
  gateRecheckMs: HOUR,
  actionTimeoutMs: 90 * 60_000,
  maxPhaseFailurePercent: 20,
  minPhaseFailures: 1,
  minPhaseSample: 10,
  groupMaxUnhealthyUpgradedPercent: 20,
  canaryMinMachines: 10,
};

export const PROFILES: Readonly<Record<RolloutProfileName, RolloutProfile>> = Object.freeze({
  standard: { name: 'standard', boundMs: 56 * DAY, phaseBakeMs: 4 * DAY, canary: true, phaseGrowth: 2, maxBatchPercentCap: 20, releaseVerdict: true, ...COMMON },
  critical: { name: 'critical', boundMs: 21 * DAY, phaseBakeMs: 1 * DAY, canary: true, phaseGrowth: 3, maxBatchPercentCap: 20, releaseVerdict: true, ...COMMON },
  manual: { name: 'manual', boundMs: Number.POSITIVE_INFINITY, phaseBakeMs: 0, canary: false, phaseGrowth: Number.POSITIVE_INFINITY, maxBatchPercentCap: 100, releaseVerdict: false, ...COMMON },
});

export function profileFor(name: RolloutProfileName, overrides: Partial<RolloutProfile> = {}): RolloutProfile {
  const profile = { ...PROFILES[name], ...overrides, name };
  const problems = validateProfile(profile);
  if (problems.length > 0) throw new RangeError(`profile ${name}: ${problems.join('; ')}`);
  return profile;
}

/** Settings that would stall or spin the engine (a zero recheck re-checks forever within one tick). */
export function validateProfile(p: RolloutProfile): string[] {
  const problems: string[] = [];
  const atLeast = (field: keyof RolloutProfile, min: number, what: string) => {
    const v = p[field] as number;
    if (!(v >= min)) problems.push(`${field} must be at least ${what}, got ${v}`);
  };
  atLeast('gateRecheckMs', 60_000, 'one minute');
  atLeast('retryIntervalArcMs', 60_000, 'one minute');
  atLeast('retryIntervalVmMs', 60_000, 'one minute');
  atLeast('actionTimeoutMs', 60_000, 'one minute');
  atLeast('phaseBakeMs', 0, 'zero');
  atLeast('boundMs', 1, 'more than zero');
  return problems;
}

export function retryIntervalMs(profile: RolloutProfile, kind: 'vm' | 'scaleSetInstance' | 'arc'): number {
  return kind === 'arc' ? profile.retryIntervalArcMs : profile.retryIntervalVmMs;
}
export const TIME = { HOUR, DAY };
