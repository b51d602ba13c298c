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
  lastIso = formatIso(ms);
  return lastIso;
}

const DAY_MS = 86_400_000;
/** The UTC day `formatIso` last formatted: its first instant and the character codes of its text up to the `T`. */
let dayStartMs = Number.NaN;
const day = new Uint8Array(11);
const ZERO = 48;

/**
 * Exactly `new Date(ms).toISOString()`. A simulation's instants move forward through a day at a time, so the
 * date part is kept and only the time of day is written: `toISOString` (a Date and a C++ call per new tick
 * instant) was about 1% of bench:sim. Written in one `fromCharCode`, the text is one flat string, as
 * `toISOString`'s is: joined from parts it would be a tree of eight strings wherever an event keeps it.
 */
export function formatIso(ms: number): string {
  const t = ms - dayStartMs;
  if (t >= 0 && t < DAY_MS && Number.isInteger(ms)) {
    const h = Math.floor(t / 3_600_000);
    const m = Math.floor((t - h * 3_600_000) / 60_000);
    const rest = t - h * 3_600_000 - m * 60_000;
    const s = Math.floor(rest / 1000);
    const milli = rest - s * 1000;
    return String.fromCharCode(
      day[0]!, day[1]!, day[2]!, day[3]!, day[4]!, day[5]!, day[6]!, day[7]!, day[8]!, day[9]!, day[10]!,
      ZERO + Math.floor(h / 10), ZERO + (h % 10), 58, ZERO + Math.floor(m / 10), ZERO + (m % 10), 58, ZERO + Math.floor(s / 10), ZERO + (s % 10),
      46, ZERO + Math.floor(milli / 100), ZERO + (Math.floor(milli / 10) % 10), ZERO + (milli % 10), 90,
    );
  }
  const iso = new Date(ms).toISOString(); // throws for an invalid time, as before
  // Years 0 to 9999 only (others have six-digit years), and whole milliseconds (a Date drops fractions).
  if (iso.length === 24 && Number.isInteger(ms)) {
    dayStartMs = ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
    for (let i = 0; i < 11; i++) day[i] = iso.charCodeAt(i);
  }
  return iso;
}
