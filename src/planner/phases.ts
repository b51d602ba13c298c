/**
 * R10: regions grouped into ordered phases. A small canary phase comes first, later phases grow, and
 * geo-paired regions never share a phase.
 */
export interface RegionLoad {
  region: string;
  pair: string | null;
  machines: number;
}

export interface PhaseChoice {
  regions: string[];
  reason: string;
}

export interface PhaseOptions {
  canary: boolean;
  /** Regions named as canaries; otherwise the region with the fewest eligible machines. */
  canaryRegions?: string[];
  growth: number;
  /** The canary is the smallest region with at least this many machines, or the largest if none has. */
  canaryMinMachines?: number;
}

/** Orders regions into phases. Pure and deterministic: ties break on region name. */
export function planPhases(loads: readonly RegionLoad[], opts: PhaseOptions): PhaseChoice[] {
  const remaining = [...loads].filter((l) => l.machines > 0).sort((a, b) => a.machines - b.machines || cmp(a.region, b.region));
  const phases: PhaseChoice[] = [];
  if (remaining.length === 0) return phases;

  if (opts.canary) {
    const named = (opts.canaryRegions ?? []).filter((n) => remaining.some((l) => l.region === n));
    const min = opts.canaryMinMachines ?? 1;
    const auto = remaining.find((l) => l.machines >= min) ?? remaining[remaining.length - 1]!;
    const canary = named.length > 0 ? pickCompatible(remaining, named.length, named) : [auto];
    take(remaining, canary);
    phases.push({
      regions: canary.map((l) => l.region),
      reason: named.length > 0
        ? 'canary phase: the regions named as canaries'
        : `canary phase: ${auto.region} is the smallest region with at least ${min} eligible machines (${auto.machines}): enough to judge the release, few enough to limit the harm`,
    });
  }

  let size = 1;
  while (remaining.length > 0) {
    size = phases.length === 0 ? (Number.isFinite(opts.growth) ? 1 : remaining.length) : grow(size, opts.growth);
    const chosen = pickCompatible(remaining, size);
    take(remaining, chosen);
    const skipped = remaining.filter((l) => chosen.some((c) => c.pair === l.region || l.pair === c.region));
    phases.push({
      regions: chosen.map((l) => l.region),
      reason:
        `phase ${phases.length}: up to ${Number.isFinite(size) ? size : 'all remaining'} regions, smallest first` +
        (skipped.length > 0 ? `; ${skipped.map((s) => s.region).join(', ')} ${skipped.length === 1 ? 'waits' : 'wait'} for a later phase: geo-pair in this one` : ''),
    });
  }
  return phases;
}

function grow(size: number, growth: number): number {
  return Number.isFinite(growth) ? Math.max(size + 1, Math.round(size * growth)) : Number.POSITIVE_INFINITY;
}

/**
 * Takes up to `size` regions in order, never two of one geo-pair, read in both directions: a store written before
 * the one-geo-pair check may hold two regions naming one region that names neither (C → B, A → B), and B's completed
 * pair is A only. B and C in one phase stalled: C's batches waited for B's, whose ends woke A, never C.
 */
function pickCompatible(pool: readonly RegionLoad[], size: number, only?: string[]): RegionLoad[] {
  const chosen: RegionLoad[] = [];
  const names = new Set<string>();
  const named = new Set<string>();
  for (const l of pool) {
    if (chosen.length >= size) break;
    if (only && !only.includes(l.region)) continue;
    if ((l.pair !== null && names.has(l.pair)) || named.has(l.region)) continue;
    chosen.push(l);
    names.add(l.region);
    if (l.pair !== null) named.add(l.pair);
  }
  return chosen;
}

function take(pool: RegionLoad[], chosen: RegionLoad[]): void {
  for (const c of chosen) pool.splice(pool.indexOf(c), 1);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
