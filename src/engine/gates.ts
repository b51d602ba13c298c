/**
 * Health gates as pure functions: each returns a verdict with the figure it observed and the limit,
 * so the engine can record both (architecture principle 4).
 */
export interface GateVerdict {
  pass: boolean;
  gate: string;
  rule: string;
  observed: number;
  limit: number;
  reason: string;
}

function pct(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 100;
}

/** R20: before a batch, more than the limit of the set unhealthy for any reason holds the batch. */
export function preBatchHealthGate(unhealthy: number, setSize: number, limitPercent: number): GateVerdict {
  const observed = pct(unhealthy, setSize);
  return {
    pass: observed <= limitPercent,
    gate: 'maxUnhealthyInstancePercent',
    rule: 'R20',
    observed,
    limit: limitPercent,
    reason: `${unhealthy} of ${setSize} instances of the set are unhealthy (${observed}%, limit ${limitPercent}%)`,
  };
}

/** R24: after a batch, other activity pushing the set above the limit stops it at the batch's end. */
export function postBatchHealthGate(unhealthy: number, setSize: number, limitPercent: number): GateVerdict {
  return { ...preBatchHealthGate(unhealthy, setSize, limitPercent), rule: 'R24' };
}

/** R23: more than the limit of the instances this run upgraded turned unhealthy stops the set. */
export function upgradedHealthGate(unhealthyUpgraded: number, upgraded: number, limitPercent: number): GateVerdict {
  const observed = pct(unhealthyUpgraded, upgraded);
  return {
    pass: observed <= limitPercent,
    gate: 'maxUnhealthyUpgradedInstancePercent',
    rule: 'R23',
    observed,
    limit: limitPercent,
    reason: `${unhealthyUpgraded} of ${upgraded} upgraded instances turned unhealthy (${observed}%, limit ${limitPercent}%)`,
  };
}

/** R10: a phase succeeds unless its failure share is above the limit with at least `minFailures` failures. */
export function phaseGate(unhealthy: number, upgraded: number, limitPercent: number, minFailures = 1): GateVerdict {
  const observed = pct(unhealthy, upgraded);
  return {
    pass: observed <= limitPercent || unhealthy < minFailures,
    gate: 'maxPhaseFailurePercent',
    rule: 'R10',
    observed,
    limit: limitPercent,
    reason: `${unhealthy} of ${upgraded} instances upgraded in the phase failed or turned unhealthy (${observed}%, limit ${limitPercent}%)`,
  };
}

export interface LockView {
  /** In-flight batches of this rollout per zone key in the batch's region. */
  regionInflightByZone: ReadonlyMap<string, number>;
  /** In-flight batches of this rollout in the geo-paired region. */
  pairInflight: number;
  /** In-flight batches of this rollout in the same set (another zone or update domain). */
  setInflight: number;
}

/**
 * Admission of a batch: geo-pairs never together (R10), one zone of a region at a time (R11), one
 * batch of a set at a time (R13, R14). Returns null when admitted, else what holds it.
 */
export function admissionBlocker(zoneKey: string, view: LockView): string | null {
  if (view.pairInflight > 0) return 'the geo-paired region has a batch in flight';
  for (const [zone, n] of view.regionInflightByZone) if (n > 0 && zone !== zoneKey) return `zone ${zone} of the region has a batch in flight`;
  if (view.setInflight > 0) return 'another batch of the set is in flight';
  return null;
}
