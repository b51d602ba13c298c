/**
 * R40 under holds: when the last eligible machine is expected to be first reached once R23 stops and
 * maintenance windows (R70) are counted, and how long an R23 stop may last so that the bound still holds.
 * Pure: the plan and the engine both use it (docs/engine.md, "The bound holds under holds").
 */
import type { WindowUnion } from '../schedule/slots.js';
import { unionSlot } from '../schedule/slots.js';
import type { MaintenanceWindow } from '../schedule/window.js';
import { nextSlot, windowAt } from '../schedule/window.js';

const HOUR = 3_600_000;

/**
 * The failure rate a release is assumed to have before its outcomes say otherwise: the release verdict's
 * acceptable rate (p0 = 5%); a release that fails more often is halted fleet-wide instead.
 */
export const PRIOR_FAILURE_RATE = 0.05;
/** How many outcomes the prior weighs, so that the first few outcomes do not swing the estimate. */
export const PRIOR_WEIGHT = 20;
/** R23 names no length for its stop: the engine never stops a set for less than this (a quarter of a day). */
export const MIN_R23_STOP_MS = 6 * HOUR;

/**
 * How much of a unit, summed over the units, may be expected to end later than the projection: a tenth,
 * so that "fits" means about nine chances in ten, and with many small sets one of them being stopped
 * somewhere counts.
 */
export const LATE_MASS = 0.1;

/**
 * How rarely the engine may meet more R23 stops than it allows for when it chooses how long to stop a set
 * (`stopsToAllowFor`): one chance in a hundred. Nine in ten (LATE_MASS) is the outlook a plan reports; a
 * stop's length must be surer, because each shortened stop re-spends what the last one left and R40 is a
 * promise (bench:bound-slow: with nine in ten, 11 of 79 runs with 10% slow agents missed it).
 */
export const STOP_ALLOWANCE_MASS = 0.01;

/** The release's failure rate as far as its judged outcomes show, pulled towards the prior. */
export function failureRateEstimate(failed: number, judged: number): number {
  return (failed + PRIOR_FAILURE_RATE * PRIOR_WEIGHT) / (judged + PRIOR_WEIGHT);
}

/** P(X ≤ k) for X ~ Binomial(n, p). */
function binomialCdf(n: number, p: number, k: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  let term = (1 - p) ** n;
  let sum = term;
  for (let i = 1; i <= k; i++) {
    term *= ((n - i + 1) / i) * (p / (1 - p));
    sum += term;
  }
  return Math.min(1, sum);
}

/**
 * The probability that R23 stops a run of a unit over batches of these sizes, each instance failing with
 * probability `p`; `done` instances of the run already passed. A batch stops the run when its failures are
 * above `limitPercent` of the instances the run upgraded (the gate compares `part × 100 > limit × whole`);
 * earlier batches are taken as clean, the likeliest path.
 */
export function stopProbability(sizes: readonly number[], p: number, limitPercent: number, done = 0): number {
  let clean = 1;
  let stop = 0;
  let upgraded = done;
  for (const b of sizes) {
    upgraded += b;
    const allowed = Math.floor((limitPercent * upgraded) / 100);
    const trip = 1 - binomialCdf(b, p, allowed);
    stop += clean * trip;
    clean *= 1 - trip;
    if (clean < 1e-9) break;
  }
  return Math.min(1, stop);
}

/** How a unit's batches follow each other: back to back, or each in the first window slot with room. */
export interface UnitCourse {
  /** Empty: no windows confine the unit. */
  union: WindowUnion;
  /** Expected length of a batch, pause included. */
  perMs: number;
  /** Room a batch needs in a window (R70's batch budget). */
  budgetMs: number;
}

interface Slot {
  s: number;
  closes: number;
}

/** Slots already found, per window (windows are immutable once parsed): projections look up the same ones often. */
const slotMemo = new WeakMap<MaintenanceWindow, Map<string, Slot | null>>();

/** The earliest start ≥ at with `budgetMs` of room in one window, and when that window instance closes. */
function slotIn(w: MaintenanceWindow, at: number, budgetMs: number): Slot | null {
  let memo = slotMemo.get(w);
  if (!memo) slotMemo.set(w, (memo = new Map()));
  if (memo.size > 20_000) memo.clear();
  const key = `${at}|${budgetMs}`;
  let v = memo.get(key);
  if (v === undefined) {
    const s = nextSlot(w, at, budgetMs);
    v = s === null ? null : { s, closes: windowAt(w, s)?.end ?? s + budgetMs };
    memo.set(key, v);
  }
  return v;
}

/** When the last of `n` batches starts (the unit's last first reach) and when it ends; null when no window has room. */
export function placeBatches(c: UnitCourse, t: number, n: number): { lastStart: number; end: number } | null {
  if (n <= 0) return { lastStart: t, end: t };
  if (c.union.length === 0) return { lastStart: t + (n - 1) * c.perMs, end: t + n * c.perMs };
  let at = t;
  let last = t;
  let closes = Number.NEGATIVE_INFINITY; // the window instance the last batch ran in: later ones that fit need no search
  for (let i = 0; i < n; i++) {
    let s = at;
    if (at + c.budgetMs > closes) {
      let best: Slot | null = null;
      for (const w of c.union) {
        const x = slotIn(w, at, c.budgetMs);
        if (x && (best === null || x.s < best.s)) best = x;
      }
      if (best === null) return null;
      s = best.s;
      closes = best.closes;
    }
    last = s;
    at = s + c.perMs;
  }
  return { lastStart: last, end: at };
}

/**
 * The unit's last first reach (and end) if its remaining batches run from `t` with `stops` R23 stops of `stopMs`:
 * the first after its first batch (the likeliest place: a run's first instances weigh most), the others
 * spread evenly over the rest; null when no window has room. A stop after the last batch delays no first reach.
 */
export function placeWithStop(c: UnitCourse, t: number, n: number, stopMs: number, stops = 1): { lastStart: number; end: number } | null {
  const k = Math.min(stops, n - 1);
  if (k <= 0) return placeBatches(c, t, n);
  let placed = placeBatches(c, t, 1);
  for (let i = 0; i < k && placed; i++) {
    // The n − 1 batches after the first stop in k runs, as even as whole batches allow.
    const run = Math.floor(((i + 1) * (n - 1)) / k) - Math.floor((i * (n - 1)) / k);
    placed = placeBatches(c, placed.end + stopMs, run);
  }
  return placed;
}

export function lastReachWithStop(c: UnitCourse, t: number, n: number, stopMs: number, stops = 1): number | null {
  return placeWithStop(c, t, n, stopMs, stops)?.lastStart ?? null;
}

/**
 * The unit's last first reach after `stops` R23 stops as the engine would make them (`chooseStopMs`), cheaply:
 * with the full interval when that fits the deadline, else with the shortest stop (the engine picks in between);
 * exactly `deadline` when only shortened stops fit, which the outlooks report as at risk.
 */
export function reachAfterStop(c: UnitCourse, t: number, n: number, intervalMs: number, deadline: number, stops = 1): number {
  const full = lastReachWithStop(c, t, n, intervalMs, stops) ?? Number.POSITIVE_INFINITY;
  if (full <= deadline) return full;
  const short = lastReachWithStop(c, t, n, Math.min(intervalMs, MIN_R23_STOP_MS), stops) ?? Number.POSITIVE_INFINITY;
  return short <= deadline ? deadline : short;
}

/** No more batches than this are looked at for `expectedStops` (a unit's first 200 batches: 1% batches). */
export const STOP_HORIZON = 200;

/**
 * How many R23 stops a unit's remaining batches are expected to meet, each instance failing with probability
 * `p`: the sum of each batch's chance to trip the gate on the likeliest (clean) path, a run's counters
 * starting again once a whole stop is expected (R23 resumes with fresh counters). With a strict limit (0%)
 * and a failing share it is about one stop per failure; with the default 20% a run is rarely stopped twice.
 */
export function expectedStops(sizes: readonly number[], p: number, limitPercent: number, done = 0): number {
  let upgraded = done;
  let expected = 0;
  let sinceReset = 0;
  for (const b of sizes.length > STOP_HORIZON ? sizes.slice(0, STOP_HORIZON) : sizes) {
    upgraded += b;
    const trip = 1 - binomialCdf(b, p, Math.floor((limitPercent * upgraded) / 100));
    expected += trip;
    sinceReset += trip;
    if (sinceReset >= 1) {
      sinceReset -= 1;
      upgraded = 0;
    }
  }
  return expected;
}

/**
 * The R23 stops a projection counts for a unit whose remaining batches are expected to meet `expected` of them:
 * one while fewer than one is expected (as many outlooks as the stop's chance weighs, `expectedLastReach`), and
 * when more are (a strict limit, a failing share), as many as are not exceeded nine times in ten (`LATE_MASS`,
 * the stops taken as a Poisson count): with 3 expected, 5.
 */
export function stopsToCount(expected: number, mass = LATE_MASS): number {
  if (!(expected >= 1)) return 1;
  return poissonQuantile(expected, mass);
}

/** The least k such that a Poisson count of mean `expected` exceeds k with probability below `mass`. */
function poissonQuantile(expected: number, mass: number): number {
  let k = 0;
  let term = Math.exp(-expected);
  let cdf = term;
  while (cdf < 1 - mass && k < 10_000) {
    k++;
    term *= expected / k;
    cdf += term;
  }
  return k;
}

/**
 * The R23 stops still to come that a stop's length leaves room for (`chooseStopMs`): as many as a Poisson
 * count of mean `expected` exceeds once in a hundred — none while fewer than 0.01 are expected (a set far
 * from its limit), one from there, three at 0.65.
 */
export function stopsToAllowFor(expected: number): number {
  return expected > 0 ? poissonQuantile(expected, STOP_ALLOWANCE_MASS) : 0;
}

/** A unit in what an R23 stop holds up: its batches still to run and the R23 stops they are expected to meet. */
export interface StopLink {
  batches: number;
  expected: number;
}

/**
 * What an R23 stop of one zone of a scale set holds up: R23 stops all of the set and R11 runs its zones one after
 * another, so the set's next zones wait for it, their batches behind the stopped zone's, with the stops they are
 * expected to meet. One rule for how long the engine stops the set (`r23StopMs`) and for how far the outlooks (the
 * plan's, and the running rollout's `boundRisk`) see a stop reach.
 */
export function stopHolds(own: StopLink, nextZones: readonly StopLink[]): StopLink {
  let { batches, expected } = own;
  for (const z of nextZones) {
    batches += z.batches;
    expected += z.expected;
  }
  return { batches, expected };
}

/** One unit's expected last first reach: without a stop, and with one, and how likely the stop is. */
export interface UnitOutlook {
  id: string;
  clear: number;
  stopped: number;
  pStop: number;
}

/**
 * The instant by which every unit is expected to have reached its last machine: the latest instant T such
 * that the units expected to end at T or later add up to at least LATE_MASS of a unit (each unit ends at `clear`
 * or, with probability `pStop`, at `stopped`). With many small sets, one of them being stopped somewhere
 * is near certain, and the projection counts it.
 */
export function expectedLastReach(units: readonly UnitOutlook[]): { at: number; unit: UnitOutlook | null; stop: boolean } {
  // Only the latest ends matter: sort those at or after a cut-off, lowering it until they hold LATE_MASS. The
  // stable sort keeps them in the order a sort of all the ends would, so the answer is the same (a plan has 100,000 ends).
  const times = new Float64Array(2 * units.length);
  let count = 0;
  for (const u of units) {
    times[count++] = u.clear;
    if (u.pStop > 0) times[count++] = u.stopped;
  }
  const ascending = times.subarray(0, count).sort();
  const hasNaN = count > 0 && Number.isNaN(ascending[count - 1]); // NaN sorts last; then only sorting them all is the same
  for (let k = 64; ; k *= 8) {
    const all = k >= count || hasNaN;
    const cut = all ? Number.NEGATIVE_INFINITY : ascending[count - k]!;
    const ends: Array<{ t: number; w: number; unit: UnitOutlook; stop: boolean }> = [];
    for (const u of units) {
      if (all || u.clear >= cut) ends.push({ t: u.clear, w: 1 - u.pStop, unit: u, stop: false });
      if (u.pStop > 0 && (all || u.stopped >= cut)) ends.push({ t: u.stopped, w: u.pStop, unit: u, stop: true });
    }
    ends.sort((a, b) => b.t - a.t);
    let mass = 0;
    for (const e of ends) {
      mass += e.w;
      if (mass >= LATE_MASS) return { at: e.t, unit: e.unit, stop: e.stop };
    }
    if (all) {
      const last = ends[ends.length - 1];
      return last ? { at: last.t, unit: last.unit, stop: last.stop } : { at: Number.NEGATIVE_INFINITY, unit: null, stop: false };
    }
  }
}

/**
 * How long R23 stops a set (R23 itself names no length). The retry interval, unless resuming after it would
 * reach the set's last machine after `deadline` (or, with `after`, the last machine of the work that waits
 * for the set to end), with the `later` stops the set is expected to meet again each as short as the floor:
 * then the longest stop, down to MIN_R23_STOP_MS, that fits those stops (at least one) each as long as itself (the room
 * spread evenly), or failing that fits the most of them it can at the floor (none at the last). A stop that ends outside
 * the set's windows is stretched to the next slot, where it would resume anyway.
 */
export function chooseStopMs(
  now: number, intervalMs: number, deadline: number, c: UnitCourse, remaining: number, after?: (unitEnd: number) => number, later = 0,
): { stopMs: number; shortened: boolean } {
  const floor = Math.min(intervalMs, MIN_R23_STOP_MS);
  const reach = (stop: number, again: number, againMs = floor) => {
    const placed = again > 0 ? placeWithStop(c, now + stop, remaining, againMs, again) : placeBatches(c, now + stop, remaining);
    if (!placed) return Number.POSITIVE_INFINITY;
    return after ? Math.max(placed.lastStart, after(placed.end)) : placed.lastStart;
  };
  if ((remaining === 0 && !after) || !Number.isFinite(deadline) || reach(intervalMs, later, intervalMs) <= deadline) return { stopMs: intervalMs, shortened: false };
  const candidates: number[] = [];
  for (let s = intervalMs * 0.75; s > floor; s *= 0.75) candidates.push(Math.floor(s));
  candidates.push(floor);
  // Pressed: the longest stop that the stops allowed for (at least one) could each take as well, so that the room left
  // is spread over them instead of spent by this one and then by the next (each stop at the floor after a long one
  // re-spends what it leaves: bench:bound-slow, 20% slow agents). Failing that, the longest stop that fits the most
  // further stops of the floor, from the expected ones down to none.
  const allowed = Math.max(1, later);
  let pick = candidates.find((s) => reach(s, allowed, s) <= deadline);
  for (let again = allowed; pick === undefined && again >= 0; again--) pick = candidates.find((s) => reach(s, again) <= deadline);
  pick ??= floor;
  const slot = c.union.length > 0 ? unionSlot(c.union, now + pick, c.budgetMs) : null;
  const stopMs = slot === null ? pick : Math.min(intervalMs, Math.max(pick, slot - now));
  return { stopMs, shortened: stopMs < intervalMs };
}
