import type { Clock } from '../engine/clock.js';

/** The wall clock, for the server. The engine itself never reads it. */
export const systemClock: Clock = { now: () => Date.now() };
