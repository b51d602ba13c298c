/**
 * Time comes from a Clock, never from the wall: the simulator moves a virtual clock, the server
 * passes a real one (see `src/util/system-clock.ts`).
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** A clock that only moves when told to; simulations and tests use it. */
export class ManualClock implements Clock {
  constructor(private t: number) {}

  now(): number {
    return this.t;
  }

  set(t: number): void {
    if (t < this.t) throw new Error(`clock cannot go back from ${this.t} to ${t}`);
    this.t = t;
  }

  advance(ms: number): void {
    this.set(this.t + ms);
  }
}

/**
 * ISO 8601 text of an instant, cached for the common case of many events at one instant. Two entries:
 * a batch of re-images alternates the tick's instant (its events) with the notice's end (`notBefore`).
 */
let lastMs = Number.NaN;
let lastIso = '';
let olderMs = Number.NaN;
let olderIso = '';
export function isoOf(ms: number): string {
  if (ms === lastMs) return lastIso;
  if (ms === olderMs) return olderIso;
  olderMs = lastMs;
  olderIso = lastIso;
  lastMs = ms;
  lastIso = new Date(ms).toISOString();
  return lastIso;
}
