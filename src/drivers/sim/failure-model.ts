/**
 * How the simulated fleet misbehaves: per-version chances of a failed install, of turning unhealthy
 * after an upgrade, of a failed rollback, and how long each takes.
 */
import type { Latency } from '../../sim/random.js';

export interface FailureModel {
  installFailure: number;
  unhealthyAfterUpgrade: number;
  rollbackFailure: number;
  install: Latency;
  /** From a finished install to the first healthy report. */
  health: Latency;
  rollback: Latency;
  /** An OS image upgrade or rollback: a re-image, then the set's extensions and custom data again (R61). */
  reimage: Latency;
}

export const DEFAULT_FAILURE_MODEL: Readonly<FailureModel> = Object.freeze({
  installFailure: 0,
  unhealthyAfterUpgrade: 0,
  rollbackFailure: 0,
  install: { medianSeconds: 60, p95Seconds: 180 },
  health: { medianSeconds: 30, p95Seconds: 120 },
  rollback: { medianSeconds: 60, p95Seconds: 180 },
  reimage: { medianSeconds: 300, p95Seconds: 720 },
});

export interface SlowAgents {
  /** Share of machines whose agent is slow. */
  share: number;
  /** How many times slower they are. */
  factor: number;
}

/** A period when part of a set or region is unhealthy for reasons unrelated to any rollout (R20, R24). */
export interface BackgroundEpisode {
  atMs: number;
  durationMs: number;
  region?: string;
  setId?: string;
  share: number;
}

export interface FleetBehaviour {
  default: FailureModel;
  /** Overrides per published version (`1.31.0.0`). */
  versions: Record<string, Partial<FailureModel>>;
  slowAgents: SlowAgents;
  background: BackgroundEpisode[];
}

export function modelFor(b: FleetBehaviour, version: string): FailureModel {
  const o = b.versions[version];
  if (!o) return b.default;
  // Merged once per override, not per action: a release's million actions name one version. The cache
  // is keyed by the override and default objects, so replacing either (serve's API does) is seen.
  let cached = merged.get(o);
  if (cached === undefined || cached.base !== b.default) merged.set(o, (cached = { base: b.default, model: { ...b.default, ...o } }));
  return cached.model;
}

const merged = new WeakMap<Partial<FailureModel>, { base: FailureModel; model: FailureModel }>();
