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

/** The share for display, rounded to hundredths; verdicts compare exactly with `above`. */
function pct(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 100;
}

/**
 * True when part/whole is strictly above limitPercent, in exact integer arithmetic. The share gates below
 * (R20, R23, R24) fail exactly when this holds: the engine asks it first and builds a verdict, with its
 * reason text, only for a failing gate (two or three per batch otherwise, a million strings for nothing).
 */
export function above(part: number, whole: number, limitPercent: number): boolean {
  return whole > 0 && part * 100 > limitPercent * whole;
}

/** R20: before a batch, more than the limit of the set unhealthy for any reason holds the batch. */
export function preBatchHealthGate(unhealthy: number, setSize: number, limitPercent: number): GateVerdict {
  const observed = pct(unhealthy, setSize);
  return {
    pass: !above(unhealthy, setSize, limitPercent),
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
    pass: !above(unhealthyUpgraded, upgraded, limitPercent),
    gate: 'maxUnhealthyUpgradedInstancePercent',
    rule: 'R23',
    observed,
    limit: limitPercent,
    reason: `${unhealthyUpgraded} of ${upgraded} upgraded instances turned unhealthy (${observed}%, limit ${limitPercent}%)`,
  };
}

/** z for a one-sided 90% confidence bound. */
const Z90 = 1.2816;

/** Wilson score lower bound of a proportion: how low the true failure rate can plausibly be. */
export function wilsonLowerBound(part: number, whole: number, z = Z90): number {
  if (whole === 0) return 0;
  const p = part / whole;
  const z2 = z * z;
  const centre = p + z2 / (2 * whole);
  const margin = z * Math.sqrt((p * (1 - p)) / whole + z2 / (4 * whole * whole));
  return Math.max(0, (centre - margin) / (1 + z2 / whole));
}

/**
 * R10: a phase fails when its failure rate is confidently above the limit (the 90% lower bound of
 * the observed share exceeds it) with at least `minFailures` failures; a few unlucky machines in a
 * small phase do not halt a release, a bad release fails its canary.
 */
export function phaseGate(unhealthy: number, upgraded: number, limitPercent: number, minFailures = 1): GateVerdict {
  const observed = pct(unhealthy, upgraded);
  const lower = Math.round(wilsonLowerBound(unhealthy, upgraded) * 10_000) / 100;
  return {
    pass: unhealthy < minFailures || lower * 100 <= limitPercent * 100,
    gate: 'maxPhaseFailurePercent',
    rule: 'R10',
    observed,
    limit: limitPercent,
    reason: `${unhealthy} of ${upgraded} instances upgraded in the phase failed or turned unhealthy (${observed}%; at least ${lower}% with 90% confidence; limit ${limitPercent}%)`,
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

/**
 * R12 across regions: a subscription's standalone machines of one phase (in any of its regions) are
 * never all in flight together. A batch waits while, with those already in flight, it would take every
 * one of them; a subscription with a single standalone machine, or nothing in flight, is never held.
 */
export function subscriptionSpreadBlocker(inflight: number, batch: number, total: number): string | null {
  if (total <= 1 || inflight === 0 || inflight + batch < total) return null;
  return `${inflight} of the subscription's ${total} standalone machines in this phase are being upgraded; this batch of ${batch} would take the rest (R12)`;
}
