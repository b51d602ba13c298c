/**
 * A scale set's `upgradePolicy` with every field and documented default of the ARM contract
 * (`reference/azure-api.md` §4). Durations stay ISO 8601 on the wire; `pauseMs` compiles them.
 */
import { Duration } from 'luxon';

export type UpgradeMode = 'Automatic' | 'Manual' | 'Rolling';

export interface RollingUpgradePolicy {
  maxBatchInstancePercent: number;
  maxUnhealthyInstancePercent: number;
  maxUnhealthyUpgradedInstancePercent: number;
  pauseTimeBetweenBatches: string;
  enableCrossZoneUpgrade: boolean;
  prioritizeUnhealthyInstances: boolean;
  rollbackFailedInstancesOnPolicyBreach: boolean;
  maxSurge: boolean;
}

export interface AutomaticOSUpgradePolicy {
  enableAutomaticOSUpgrade: boolean;
  disableAutomaticRollback: boolean;
  useRollingUpgradePolicy: boolean;
  osRollingUpgradeDeferral: boolean;
}

export interface UpgradePolicy {
  mode: UpgradeMode;
  rollingUpgradePolicy: RollingUpgradePolicy;
  automaticOSUpgradePolicy: AutomaticOSUpgradePolicy;
}

export const DEFAULT_ROLLING_UPGRADE_POLICY: Readonly<RollingUpgradePolicy> = Object.freeze({
  maxBatchInstancePercent: 20,
  maxUnhealthyInstancePercent: 20,
  maxUnhealthyUpgradedInstancePercent: 20,
  pauseTimeBetweenBatches: 'PT0S',
  enableCrossZoneUpgrade: false,
  prioritizeUnhealthyInstances: false,
  rollbackFailedInstancesOnPolicyBreach: false,
  maxSurge: false,
});

export const DEFAULT_AUTOMATIC_OS_UPGRADE_POLICY: Readonly<AutomaticOSUpgradePolicy> = Object.freeze({
  enableAutomaticOSUpgrade: false,
  disableAutomaticRollback: false,
  useRollingUpgradePolicy: false,
  osRollingUpgradeDeferral: false,
});

export interface UpgradePolicyInput {
  mode?: UpgradeMode;
  rollingUpgradePolicy?: Partial<RollingUpgradePolicy>;
  automaticOSUpgradePolicy?: Partial<AutomaticOSUpgradePolicy>;
}

/** Fills every missing field with its documented default. */
export function withDefaults(input: UpgradePolicyInput = {}): UpgradePolicy {
  return {
    mode: input.mode ?? 'Manual',
    rollingUpgradePolicy: { ...DEFAULT_ROLLING_UPGRADE_POLICY, ...input.rollingUpgradePolicy },
    automaticOSUpgradePolicy: { ...DEFAULT_AUTOMATIC_OS_UPGRADE_POLICY, ...input.automaticOSUpgradePolicy },
  };
}

/**
 * The longest duration a set's policy takes (the API's and a scenario's). Unbounded, a pause of P99999999999D put a
 * rollout's estimated end past what a date holds: `plan` and `GET /phasewise/rollouts` failed on it.
 */
export const MAX_POLICY_DURATION = 'P30D';
export const MAX_POLICY_DURATION_MS = 30 * 86_400_000;

/** Milliseconds of an ISO 8601 duration such as `PT0S` or `PT2M30S`; NaN when it is not one. */
export function durationMs(iso: string): number {
  const d = Duration.fromISO(iso);
  return d.isValid ? d.toMillis() : Number.NaN;
}

/** Problems with a policy's numbers, each naming the field; empty when the policy is valid. */
export function validateRollingPolicy(p: RollingUpgradePolicy): string[] {
  const problems: string[] = [];
  const pct = (field: keyof RollingUpgradePolicy, min: number) => {
    const v = p[field] as number;
    if (!Number.isInteger(v) || v < min || v > 100) problems.push(`${field} must be an integer from ${min} to 100, got ${v}`);
  };
  pct('maxBatchInstancePercent', 1);
  pct('maxUnhealthyInstancePercent', 1);
  pct('maxUnhealthyUpgradedInstancePercent', 0);
  const pause = durationMs(p.pauseTimeBetweenBatches);
  if (!Number.isFinite(pause) || pause < 0) problems.push(`pauseTimeBetweenBatches must be an ISO 8601 duration such as PT0S, got ${p.pauseTimeBetweenBatches}`);
  else if (pause > MAX_POLICY_DURATION_MS) problems.push(`pauseTimeBetweenBatches must be at most ${MAX_POLICY_DURATION} (30 days), got ${p.pauseTimeBetweenBatches}`);
  return problems;
}

/**
 * R14: the largest batch of a set of `setSize` instances: at most the percentage, at least one, and
 * never the whole set when it has more than one instance.
 */
export function maxBatchSize(setSize: number, maxBatchInstancePercent: number): number {
  const byPercent = Math.floor((setSize * maxBatchInstancePercent) / 100);
  return Math.max(1, setSize > 1 ? Math.min(byPercent, setSize - 1) : byPercent);
}
