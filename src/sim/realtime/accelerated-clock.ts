/**
 * Simulated time that runs on the wall clock, faster by `factor`: the clock of a real-time run with
 * real processes. Every process builds it from the same three numbers, so time stays continuous
 * across a crash and restart of any of them.
 */
import type { Clock } from '../../engine/clock.js';

export interface AcceleratedTime {
  /** The simulated instant at `realStartMs`. */
  simStartMs: number;
  /** The wall-clock instant (Date.now()) the run started. */
  realStartMs: number;
  /** Simulated milliseconds per real millisecond. */
  factor: number;
}

export class AcceleratedClock implements Clock {
  private last = Number.NEGATIVE_INFINITY;

  constructor(readonly time: AcceleratedTime) {
    if (!(time.factor > 0)) throw new RangeError(`factor must be above zero, got ${time.factor}`);
  }

  now(): number {
    const t = Math.floor(this.time.simStartMs + (Date.now() - this.time.realStartMs) * this.time.factor);
    // The wall clock may step back a little (NTP); simulated time must not, within a process at least.
    this.last = Math.max(this.last, t);
    return this.last;
  }
}
