/**
 * Seeded randomness for the simulator (sfc32). The engine and planner never draw random numbers;
 * the simulated fleet does, in a fixed order, so one seed always gives one run.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** The generator's position, to continue the same stream after a restart. */
  get state(): [number, number, number, number] {
    return [this.a, this.b, this.c, this.d];
  }

  set state(s: readonly number[]) {
    [this.a, this.b, this.c, this.d] = s.map((x) => x | 0) as [number, number, number, number];
  }

  /** A float in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** A standard normal draw (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/** A log-normal latency described the way people think of it: a median and a 95th percentile. */
export interface Latency {
  medianSeconds: number;
  p95Seconds: number;
}

export function sampleLatencyMs(rng: Random, l: Latency): number {
  const p = paramsOf(l);
  return Math.exp(p.mu + p.sigma * rng.normal()) * 1000;
}

/** A latency's log-normal parameters, and the figures they were computed from. */
interface LogNormal { median: number; p95: number; mu: number; sigma: number }

/**
 * The parameters of the latencies sampled last: a simulated fleet samples a few latencies a million
 * times each, alternating (install, then health). Two entries, checked against the figures, so a latency
 * changed in place is computed again.
 */
const recent: [LogNormal, LogNormal] = [{ median: Number.NaN, p95: Number.NaN, mu: 0, sigma: 0 }, { median: Number.NaN, p95: Number.NaN, mu: 0, sigma: 0 }];

function paramsOf(l: Latency): LogNormal {
  const a = recent[0];
  const b = recent[1];
  if (a.median === l.medianSeconds && a.p95 === l.p95Seconds) return a;
  if (b.median === l.medianSeconds && b.p95 === l.p95Seconds) return b;
  // The older entry makes room.
  recent[0] = b;
  recent[1] = a;
  a.median = l.medianSeconds;
  a.p95 = l.p95Seconds;
  a.mu = Math.log(Math.max(l.medianSeconds, 0.001));
  a.sigma = Math.max(0, (Math.log(Math.max(l.p95Seconds, l.medianSeconds)) - a.mu) / 1.6449);
  return a;
}

/** A stable hash of a string to [0, 1), for choices that must not depend on event order. */
export function hashUnit(text: string, seed: number): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 4294967296;
}
