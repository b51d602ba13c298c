/**
 * R70: properties of window arithmetic on random windows (zones with and without daylight saving, every
 * form of the grammar, start times inside daylight-saving gaps) and random instants.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IANAZone } from 'luxon';
import { formatRecurrence } from '../src/schedule/recurrence.js';
import type { Recurrence } from '../src/schedule/recurrence.js';
import { canFinishBefore, maintenanceWindow, nextSlot, nextWindowStart, windowAt, windowInstances } from '../src/schedule/window.js';
import type { MaintenanceWindow } from '../src/schedule/window.js';

const DAY = 86_400_000;
const ZONES = ['UTC', 'Pacific Standard Time', 'W. Europe Standard Time', 'AUS Eastern Standard Time', 'India Standard Time', 'Lord Howe Standard Time', 'Pacific SA Standard Time', 'Europe/London'];

const recurrence: fc.Arbitrary<Recurrence> = fc.oneof(
  fc.record({ unit: fc.constant('day' as const), every: fc.integer({ min: 1, max: 10 }) }),
  fc.record({
    unit: fc.constant('week' as const),
    every: fc.integer({ min: 1, max: 4 }),
    weekdays: fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }).map((a) => [...a].sort((x, y) => x - y)), { nil: null }),
  }),
  fc.record({
    unit: fc.constant('month' as const),
    every: fc.integer({ min: 1, max: 6 }),
    days: fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 31 }), { minLength: 1, maxLength: 5 }).map((a) => [...a].sort((x, y) => x - y)), { nil: null }),
  }),
  fc.record({
    unit: fc.constant('month' as const),
    every: fc.integer({ min: 1, max: 6 }),
    ordinal: fc.constantFrom(1, 2, 3, 4, -1),
    weekday: fc.integer({ min: 1, max: 7 }),
    offset: fc.integer({ min: -6, max: 6 }),
  }),
);

const pad = (n: number): string => String(n).padStart(2, '0');

const window: fc.Arbitrary<MaintenanceWindow> = fc
  .record({
    zone: fc.constantFrom(...ZONES),
    rec: recurrence,
    day: fc.integer({ min: 0, max: 3 * 365 }),
    // Times of day around the usual daylight-saving hours are over-represented.
    hour: fc.oneof(fc.integer({ min: 0, max: 23 }), fc.constantFrom(1, 2, 3)),
    minute: fc.constantFrom(0, 15, 30, 59),
    durationMinutes: fc.oneof(fc.integer({ min: 1, max: 23 * 60 + 59 }), fc.constantFrom(90, 235, 300, 23 * 60 + 30)),
    expires: fc.option(fc.integer({ min: 1, max: 3 * 365 }), { nil: null }),
  })
  .map(({ zone, rec, day, hour, minute, durationMinutes, expires }) => {
    const start = new Date(Date.UTC(2025, 0, 1) + day * DAY);
    const date = (d: Date): string => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    return maintenanceWindow({
      startDateTime: `${date(start)} ${pad(hour)}:${pad(minute)}`,
      expirationDateTime: expires === null ? null : `${date(new Date(start.getTime() + expires * DAY))} 12:00`,
      duration: `${pad(Math.floor(durationMinutes / 60))}:${pad(durationMinutes % 60)}`,
      timeZone: zone,
      recurEvery: formatRecurrence(rec),
    });
  });

const instant = (w: MaintenanceWindow): fc.Arbitrary<number> => fc.integer({ min: w.startMs - 40 * DAY, max: w.startMs + 4 * 365 * DAY });
const windowAndInstant = window.chain((w) => fc.tuple(fc.constant(w), instant(w)));
const windowAndTwoInstants = window.chain((w) => fc.tuple(fc.constant(w), instant(w), instant(w)));
const job = fc.integer({ min: 0, max: 24 * 3_600_000 });

const RUNS = { numRuns: 300 };

test('R70: nextWindowStart(w, t) ≥ t, and windowAt of it is the instance starting there', () => {
  fc.assert(
    fc.property(windowAndInstant, ([w, t]) => {
      const s = nextWindowStart(w, t);
      if (s === null) return;
      assert.ok(s >= t);
      assert.ok(s >= w.startMs && s < w.expirationMs);
      const inst = windowAt(w, s);
      assert.ok(inst !== null && inst.start === s && inst.end > s);
    }),
    RUNS,
  );
});

test('R70: window instances are ordered, none overlaps the next, none exceeds the duration or expiration', () => {
  fc.assert(
    fc.property(windowAndInstant, ([w, t]) => {
      let prev: { start: number; end: number } | null = null;
      let n = 0;
      for (const inst of windowInstances(w, t)) {
        assert.ok(inst.start < inst.end, 'not empty');
        assert.ok(inst.end - inst.start <= w.durationMs);
        assert.ok(inst.end <= w.expirationMs);
        if (prev !== null) assert.ok(prev.end <= inst.start, `${JSON.stringify(prev)} overlaps ${JSON.stringify(inst)}`);
        prev = inst;
        if (++n === 12) break;
      }
    }),
    RUNS,
  );
});

test('R70: windowAt agrees with walking every instance from the start', () => {
  fc.assert(
    fc.property(windowAndInstant, ([w, t]) => {
      let expected = null;
      for (const inst of windowInstances(w)) {
        if (inst.start > t) break;
        if (t < inst.end) expected = inst;
      }
      assert.deepEqual(windowAt(w, t), expected);
    }),
    { numRuns: 100 },
  );
});

test('R70: between t and nextWindowStart(w, t) no window starts', () => {
  fc.assert(
    fc.property(windowAndInstant, ([w, t]) => {
      const s = nextWindowStart(w, t);
      const inst = windowAt(w, t);
      if (inst !== null && inst.start < t) assert.ok(s === null || s >= inst.end, 'the next start is after the current instance');
      if (s !== null && s > t) assert.ok(windowAt(w, s - 1) === null || windowAt(w, s - 1)!.start < t);
    }),
    RUNS,
  );
});

test('R70: nextSlot lies at or after t within one window instance, and canFinishBefore holds there', () => {
  fc.assert(
    fc.property(windowAndInstant, job, ([w, t], d) => {
      const s = nextSlot(w, t, d);
      if (s === null) {
        assert.equal(canFinishBefore(w, t, d), false);
        return;
      }
      assert.ok(s >= t);
      const inst = windowAt(w, s);
      assert.ok(inst !== null, 'the slot is inside a window');
      assert.ok(s + d <= inst.end, 'the job ends before the instance closes');
      assert.equal(canFinishBefore(w, s, d), true);
      if (s > t) assert.equal(canFinishBefore(w, t, d), false, 'a later slot only when t itself does not fit');
    }),
    RUNS,
  );
});

test('R70: nextWindowStart and nextSlot are monotone in t', () => {
  const inf = (x: number | null): number => x ?? Number.POSITIVE_INFINITY;
  fc.assert(
    fc.property(windowAndTwoInstants, job, ([w, a, b], d) => {
      const [t1, t2] = a <= b ? [a, b] : [b, a];
      assert.ok(inf(nextWindowStart(w, t1)) <= inf(nextWindowStart(w, t2)));
      assert.ok(inf(nextSlot(w, t1, d)) <= inf(nextSlot(w, t2, d)));
    }),
    RUNS,
  );
});

test('R70: every occurrence starts at the start wall-clock time, or later by a daylight-saving gap', () => {
  fc.assert(
    fc.property(windowAndInstant, ([w, t]) => {
      const s = nextWindowStart(w, t);
      if (s === null) return;
      const fmt = new Intl.DateTimeFormat('en-GB', { timeZone: w.zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
      const [h, m] = fmt.format(s).split(':').map(Number);
      const got = h! * 60 + m!;
      const want = w.start.hour * 60 + w.start.minute;
      assert.ok(got === want || (got > want && got - want <= 120), `${got} vs ${want}`);
    }),
    RUNS,
  );
});

/**
 * Zones with odd rules, each with instants near its clock changes: 30-minute daylight saving (Lord Howe),
 * +12:45/+13:45 (Chatham), +5:45 (Kathmandu), a whole day skipped (Samoa, Tokelau, 2011-12-30),
 * daylight saving at midnight and then abolished in 2019 (Sao Paulo), a 2-hour change (Troll), changes
 * twice a year around Ramadan (Casablanca), and far-future dates.
 */
const ODD_ZONES = [
  'Australia/Lord_Howe', 'Pacific/Chatham', 'Asia/Kathmandu', 'Pacific/Apia', 'Pacific/Fakaofo', 'America/Sao_Paulo', 'Antarctica/Troll', 'Africa/Casablanca',
  'America/St_Johns', 'Pacific Standard Time',
];
/** Offset from UTC in minutes, read from luxon (the window code's own conversions are what is tested). */
const offsetMinutes = (zone: string, t: number): number => IANAZone.create(zone === 'Pacific Standard Time' ? 'America/Los_Angeles' : zone).offset(t);

/** Local days (days since 1970-01-01) just before a change of offset, found by walking days at noon UTC. */
const changesOf = new Map<string, number[]>();
function changeDays(zone: string): number[] {
  let days = changesOf.get(zone);
  if (days) return days;
  days = [];
  const span = [Date.UTC(2005, 0, 1), Date.UTC(2035, 0, 1), Date.UTC(9998, 0, 1), Date.UTC(9999, 11, 1)];
  for (let p = 0; p < span.length; p += 2) {
    for (let t = span[p]! + 12 * 3_600_000; t < span[p + 1]!; t += DAY) if (offsetMinutes(zone, t) !== offsetMinutes(zone, t + DAY)) days.push(Math.floor(t / DAY));
    days.push(Math.floor(span[p]! / DAY) + 100); // a quiet day too (and far in the future)
  }
  changesOf.set(zone, days);
  return days;
}

const oddWindow = fc
  .record({
    zone: fc.constantFrom(...ODD_ZONES),
    pick: fc.nat(),
    dayShift: fc.integer({ min: -3, max: 1 }),
    minuteOfDay: fc.oneof(fc.integer({ min: 0, max: 24 * 60 - 1 }), fc.integer({ min: 0, max: 16 }).map((q) => q * 15)),
    every: fc.integer({ min: 1, max: 3 }),
    unit: fc.constantFrom('Day', 'Week'),
    durationMinutes: fc.constantFrom(1, 90, 300, 23 * 60 + 59),
  })
  .map(({ zone, pick, dayShift, minuteOfDay, every, unit, durationMinutes }) => {
    const days = changeDays(zone);
    const d = new Date((days[pick % days.length]! + dayShift) * DAY);
    const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    const hm = (minutes: number) => `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
    const spec = { startDateTime: `${date} ${hm(minuteOfDay)}`, duration: hm(durationMinutes), timeZone: zone, recurEvery: `${every}${unit}s` };
    return { spec, w: maintenanceWindow(spec), periodDays: every * (unit === 'Day' ? 1 : 7) };
  });

test('R70: in zones with odd rules, around their clock changes, no window is skipped, doubled or emptied, and each keeps its wall-clock start', () => {
  fc.assert(
    fc.property(oddWindow, ({ spec, w, periodDays }) => {
      const list: { start: number; end: number }[] = [];
      for (const inst of windowInstances(w)) if (list.push(inst) >= 6) break;
      const at = (t: number) => new Date(t).toISOString();
      const localOf = (t: number) => t + offsetMinutes(w.zone, t) * 60_000;
      /** Whether some instant reads local time `local` (tried in the offsets in force at the two instants given). */
      const exists = (local: number, a: number, b: number) => [a, b].some((t) => localOf(local - offsetMinutes(w.zone, t) * 60_000) === local);
      let prevNominal = 0;
      for (let i = 0; i < list.length; i++) {
        const { start, end } = list[i]!;
        const where = `${JSON.stringify(spec)}: window ${i} at ${at(start)}`;
        assert.ok(end > start && end - start <= w.durationMs, `${where}: empty or too long (ends ${at(end)})`);
        // Wall clock: the start's time of day, or later by the gap when that local time does not exist.
        const local = localOf(start);
        const tod = ((local % DAY) + DAY) % DAY;
        const gap = (offsetMinutes(w.zone, start) - offsetMinutes(w.zone, start - DAY)) * 60_000;
        const moved = tod !== w.timeOfDayMs;
        assert.ok(!moved || (gap > 0 && (tod - w.timeOfDayMs + DAY) % DAY === gap % DAY), `${where}: local time of day ${tod / 60_000} min`);
        const nominal = moved ? local - gap : local;
        if (moved) assert.ok(!exists(nominal, start, start - DAY), `${where}: moved although ${at(nominal)} (local) exists`);
        if (i > 0) {
          const prev = list[i - 1]!;
          assert.ok(start > prev.start && prev.end <= start, `${where}: not after the previous window (${at(prev.start)}–${at(prev.end)})`);
          // One window per period: a period is passed over only when its local start time never happened.
          for (let n = prevNominal + periodDays * DAY; n < nominal; n += periodDays * DAY) {
            assert.ok(!exists(n, prev.start, start), `${where}: no window at ${at(n)} (local), which exists`);
          }
          assert.ok(nominal > prevNominal, `${where}: local start ${at(nominal)} not after the previous one`);
          assert.deepEqual(windowAt(w, start), list[i], `${where}: windowAt`);
          assert.equal(nextWindowStart(w, prev.start + 1), start, `${where}: nextWindowStart`);
        }
        prevNominal = nominal;
      }
    }),
    { numRuns: 300 },
  );
});
