/**
 * R70: window arithmetic on fixed instants. Next-window starts across daylight-saving changes in Pacific
 * and W. Europe time, monthly patterns in long and short months, February 29, and where a batch fits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canFinishBefore, currentWindowEnd, maintenanceWindow, nextSlot, nextWindowStart, parseMaintenanceWindow, windowAt, windowInstances } from '../src/schedule/window.js';
import type { MaintenanceWindow, MaintenanceWindowSpec } from '../src/schedule/window.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const at = (iso: string): number => {
  const t = Date.parse(iso);
  assert.ok(Number.isFinite(t), iso);
  return t;
};

function win(recurEvery: string, startDateTime: string, duration = '05:00', timeZone = 'UTC', expirationDateTime?: string): MaintenanceWindow {
  const spec: MaintenanceWindowSpec = { startDateTime, duration, timeZone, recurEvery, ...(expirationDateTime ? { expirationDateTime } : {}) };
  return maintenanceWindow(spec);
}

/** The first `n` window starts at or after `from`, as ISO instants. */
function starts(w: MaintenanceWindow, from: number, n: number): string[] {
  const out: string[] = [];
  let t = from;
  while (out.length < n) {
    const s = nextWindowStart(w, t);
    if (s === null) break;
    out.push(new Date(s).toISOString());
    t = s + 1;
  }
  return out;
}

const NEXT: [string, MaintenanceWindow, string, string[]][] = [
  ['daily from the start, UTC', win('Day', '2026-01-01 22:00'), '2025-12-01T00:00:00Z', ['2026-01-01T22:00:00.000Z', '2026-01-02T22:00:00.000Z', '2026-01-03T22:00:00.000Z']],
  ['every third day, counted from the start', win('3Days', '2026-01-01 22:00'), '2026-01-02T00:00:00Z', ['2026-01-04T22:00:00.000Z', '2026-01-07T22:00:00.000Z']],
  ['weekly on the start weekday (Thursday)', win('Week', '2026-01-01 08:00'), '2026-01-01T08:00:01Z', ['2026-01-08T08:00:00.000Z', '2026-01-15T08:00:00.000Z']],
  ['every second week, Monday weeks counted from the start', win('2Weeks Monday,Friday', '2026-01-01 08:00'), '2026-01-01T00:00:00Z', ['2026-01-02T08:00:00.000Z', '2026-01-12T08:00:00.000Z', '2026-01-16T08:00:00.000Z', '2026-01-26T08:00:00.000Z']],
  ['weekends, the start a Thursday', win('Week Saturday,Sunday', '2026-04-30 08:00', '05:00', 'Pacific Standard Time'), '2026-04-30T00:00:00Z', ['2026-05-02T15:00:00.000Z', '2026-05-03T15:00:00.000Z', '2026-05-09T15:00:00.000Z']],
  ['monthly on the start day', win('Month', '2026-01-15 03:00'), '2026-01-16T00:00:00Z', ['2026-02-15T03:00:00.000Z', '2026-03-15T03:00:00.000Z']],
  ['every second month on days 23 and 24', win('2Months day23,day24', '2026-01-01 03:00'), '2026-01-01T00:00:00Z', ['2026-01-23T03:00:00.000Z', '2026-01-24T03:00:00.000Z', '2026-03-23T03:00:00.000Z', '2026-03-24T03:00:00.000Z']],
  ['Month Last Sunday: May 2026 (31 days) ends on a Sunday, June (30 days) on a Tuesday', win('Month Last Sunday', '2026-05-01 01:00'), '2026-05-01T00:00:00Z', ['2026-05-31T01:00:00.000Z', '2026-06-28T01:00:00.000Z', '2026-07-26T01:00:00.000Z']],
  ['Month Last Sunday in April (30 days, ends a Thursday)', win('Month Last Sunday', '2026-04-01 01:00'), '2026-04-01T00:00:00Z', ['2026-04-26T01:00:00.000Z']],
  ['Month Fourth Monday Offset-3: the Friday before', win('Month Fourth Monday Offset-3', '2026-02-01 20:00'), '2026-02-01T00:00:00Z', ['2026-02-20T20:00:00.000Z', '2026-03-20T20:00:00.000Z']],
  ['Month Third Sunday Offset6: the Saturday after', win('Month Third Sunday Offset6', '2026-02-01 20:00'), '2026-02-01T00:00:00Z', ['2026-02-21T20:00:00.000Z', '2026-03-21T20:00:00.000Z']],
  ['Month Last Sunday Offset6 runs into the next month', win('Month Last Sunday Offset6', '2026-05-01 01:00'), '2026-05-01T00:00:00Z', ['2026-06-06T01:00:00.000Z', '2026-07-04T01:00:00.000Z']],
  ['Month First Monday Offset-6 runs into the previous month, none before the start', win('Month First Monday Offset-6', '2026-02-01 01:00'), '2026-01-01T00:00:00Z', ['2026-02-24T01:00:00.000Z', '2026-03-31T01:00:00.000Z']],
  ['Month day31 skips 30-day months and February', win('Month day31', '2026-01-31 10:00'), '2026-01-31T10:00:01Z', ['2026-03-31T10:00:00.000Z', '2026-05-31T10:00:00.000Z', '2026-07-31T10:00:00.000Z', '2026-08-31T10:00:00.000Z']],
  ['Month day29 skips February 2027 but not February 29, 2028', win('Month day29', '2027-01-29 10:00'), '2027-01-30T00:00:00Z', ['2027-03-29T10:00:00.000Z']],
  ['Month day29 in 2028, a leap year', win('Month day29', '2027-01-29 10:00'), '2028-02-01T00:00:00Z', ['2028-02-29T10:00:00.000Z', '2028-03-29T10:00:00.000Z']],
  ['Month from a start on the 31st keeps the 31st', win('Month', '2026-01-31 10:00'), '2026-02-01T00:00:00Z', ['2026-03-31T10:00:00.000Z']],
  ['12Months from February 29 comes back only in leap years', win('12Months', '2028-02-29 10:00'), '2028-03-01T00:00:00Z', ['2032-02-29T10:00:00.000Z']],
  ['Day across February 29, 2028', win('Day', '2028-02-28 23:00', '02:00', 'Tokyo Standard Time'), '2028-02-28T15:00:00Z', ['2028-02-29T14:00:00.000Z', '2028-03-01T14:00:00.000Z']],
];

for (const [name, w, from, expected] of NEXT) {
  test(`R70: next windows, ${name}`, () => {
    assert.deepEqual(starts(w, at(from), expected.length), expected);
  });
}

test('R70: Pacific Standard Time, spring forward 2026-03-08: 02:30 does not exist and moves to 03:30 PDT', () => {
  const w = win('Day', '2026-03-06 02:30', '05:00', 'Pacific Standard Time');
  assert.deepEqual(starts(w, at('2026-03-06T00:00:00Z'), 4), [
    '2026-03-06T10:30:00.000Z', // 02:30 PST
    '2026-03-07T10:30:00.000Z', // 02:30 PST
    '2026-03-08T10:30:00.000Z', // 03:30 PDT: the gap, moved forward
    '2026-03-09T09:30:00.000Z', // 02:30 PDT
  ]);
});

test('R70: Pacific Standard Time, a window spanning the spring-forward change lasts 5 real hours', () => {
  const w = win('Day', '2026-03-07 23:00', '05:00', 'Pacific Standard Time');
  const inst = windowAt(w, at('2026-03-08T09:00:00Z'));
  assert.deepEqual(inst, { start: at('2026-03-07T23:00:00-08:00'), end: at('2026-03-08T05:00:00-07:00') });
  assert.equal(inst!.end - inst!.start, 5 * HOUR);
  assert.equal(nextWindowStart(w, inst!.start + 1), at('2026-03-08T23:00:00-07:00'));
  // The wall-clock start is kept: 23 real hours between the two starts.
  assert.equal(at('2026-03-08T23:00:00-07:00') - inst!.start, 23 * HOUR);
});

test('R70: Pacific Standard Time, fall back 2026-11-01: 01:30 happens twice and takes the first (PDT)', () => {
  const w = win('Day', '2026-10-31 01:30', '05:00', 'Pacific Standard Time');
  assert.deepEqual(starts(w, at('2026-10-31T00:00:00Z'), 3), ['2026-10-31T08:30:00.000Z', '2026-11-01T08:30:00.000Z', '2026-11-02T09:30:00.000Z']);
  const inst = windowAt(w, at('2026-11-01T12:00:00Z'));
  assert.deepEqual(inst, { start: at('2026-11-01T01:30:00-07:00'), end: at('2026-11-01T05:30:00-08:00') });
});

test('R70: W. Europe Standard Time, spring forward 2026-03-29 and fall back 2026-10-25, weekly on Sunday', () => {
  const w = win('Week Sunday', '2026-03-01 02:30', '05:00', 'W. Europe Standard Time');
  assert.equal(nextWindowStart(w, at('2026-03-23T00:00:00Z')), at('2026-03-29T03:30:00+02:00'));
  assert.equal(nextWindowStart(w, at('2026-03-22T00:00:00Z')), at('2026-03-22T02:30:00+01:00'));
  assert.equal(nextWindowStart(w, at('2026-03-30T00:00:00Z')), at('2026-04-05T02:30:00+02:00'));
  assert.equal(nextWindowStart(w, at('2026-10-19T00:00:00Z')), at('2026-10-25T02:30:00+02:00'));
  assert.equal(nextWindowStart(w, at('2026-10-26T00:00:00Z')), at('2026-11-01T02:30:00+01:00'));
  const fall = windowAt(w, at('2026-10-25T04:00:00Z'));
  assert.deepEqual(fall, { start: at('2026-10-25T00:30:00Z'), end: at('2026-10-25T05:30:00Z') });
});

test('R70: W. Europe Standard Time, an evening window keeps its wall-clock start across both changes', () => {
  const w = win('Day', '2026-03-27 22:00', '08:00', 'W. Europe Standard Time');
  assert.deepEqual(starts(w, at('2026-03-28T00:00:00Z'), 2), ['2026-03-28T21:00:00.000Z', '2026-03-29T20:00:00.000Z']);
  const across = windowAt(w, at('2026-03-29T04:00:00Z'));
  assert.deepEqual(across, { start: at('2026-03-28T21:00:00Z'), end: at('2026-03-29T05:00:00Z') });
  assert.deepEqual(starts(w, at('2026-10-24T00:00:00Z'), 2), ['2026-10-24T20:00:00.000Z', '2026-10-25T21:00:00.000Z']);
});

test('R70: windowAt and currentWindowEnd', () => {
  const w = win('Week Saturday,Sunday', '2026-04-30 08:00', '05:00', 'Pacific Standard Time');
  const sat = at('2026-05-02T08:00:00-07:00');
  assert.deepEqual(windowAt(w, sat), { start: sat, end: sat + 5 * HOUR });
  assert.deepEqual(windowAt(w, sat + 5 * HOUR - 1), { start: sat, end: sat + 5 * HOUR });
  assert.equal(windowAt(w, sat + 5 * HOUR), null, 'the end is outside the window');
  assert.equal(windowAt(w, sat - 1), null);
  assert.equal(currentWindowEnd(w, sat + HOUR), sat + 5 * HOUR);
  assert.equal(currentWindowEnd(w, sat - HOUR), null);
  assert.equal(windowAt(w, at('2026-04-30T12:00:00Z')), null, 'the start day is a Thursday');
});

test('R70: a batch starts only if it can finish, health wait included, before the window closes', () => {
  const w = win('Day', '2026-01-01 22:00', '05:00');
  const open = at('2026-01-05T22:00:00Z');
  const batch = 40 * MINUTE;
  const health = 20 * MINUTE;
  assert.equal(canFinishBefore(w, open, batch + health), true);
  assert.equal(canFinishBefore(w, open + 4 * HOUR, batch + health), true, 'finishes exactly at the close');
  assert.equal(canFinishBefore(w, open + 4 * HOUR + 1, batch + health), false);
  assert.equal(canFinishBefore(w, open - 1, 0), false, 'the window is closed');
  assert.equal(nextSlot(w, open + 4 * HOUR + 1, batch + health), open + DAY);
  assert.equal(nextSlot(w, open + HOUR, batch + health), open + HOUR);
  assert.equal(nextSlot(w, open - 3 * HOUR, batch + health), open);
  assert.equal(nextSlot(w, open, 5 * HOUR), open);
  assert.equal(nextSlot(w, open, 5 * HOUR + 1), null, 'longer than any window');
});

const DAY = 24 * HOUR;

test('R70: expiration ends the schedule and cuts the last window short', () => {
  const w = win('Day', '2026-01-01 22:00', '05:00', 'UTC', '2026-01-03 23:00');
  assert.deepEqual([...windowInstances(w)], [
    { start: at('2026-01-01T22:00:00Z'), end: at('2026-01-02T03:00:00Z') },
    { start: at('2026-01-02T22:00:00Z'), end: at('2026-01-03T03:00:00Z') },
    { start: at('2026-01-03T22:00:00Z'), end: at('2026-01-03T23:00:00Z') },
  ]);
  assert.equal(nextWindowStart(w, at('2026-01-03T22:00:01Z')), null);
  assert.equal(nextSlot(w, at('2026-01-03T12:00:00Z'), 2 * HOUR), null);
  assert.equal(nextSlot(w, at('2026-01-03T12:00:00Z'), HOUR), at('2026-01-03T22:00:00Z'));
});

test('R70: a recurrence that never occurs has no window and does not loop', () => {
  const w = win('12Months day30', '2026-02-01 10:00');
  assert.equal(nextWindowStart(w, at('2026-01-01T00:00:00Z')), null);
  assert.equal(windowAt(w, at('2030-02-01T00:00:00Z')), null);
  assert.equal(nextSlot(w, at('2026-01-01T00:00:00Z'), HOUR), null);
});

test('R70: far instants are reached without walking the schedule', () => {
  const w = win('Day', '2026-01-01 22:00', '05:00', 'Pacific Standard Time');
  assert.equal(nextWindowStart(w, at('2999-06-15T00:00:00Z')), at('2999-06-14T22:00:00-07:00'));
  assert.equal(nextWindowStart(w, at('9999-12-31T23:00:00-08:00')), null);
});

test('R70: a window longer than the gap across a spring-forward night ends when the next one starts', () => {
  const w = win('Day', '2026-03-07 12:00', '23:30', 'Pacific Standard Time');
  const first = windowAt(w, at('2026-03-07T12:00:00-08:00'));
  assert.deepEqual(first, { start: at('2026-03-07T12:00:00-08:00'), end: at('2026-03-08T12:00:00-07:00') });
  assert.deepEqual(windowAt(w, first!.end), { start: first!.end, end: first!.end + 23.5 * HOUR });
});

test('R70: a day the zone skipped (Samoa and Tokelau, 2011-12-30) gives one window on the next day, not two at one instant', () => {
  for (const zone of ['Samoa Standard Time', 'Pacific/Apia', 'Pacific/Fakaofo']) {
    const w = win('Day', '2011-12-28 10:00', '05:00', zone);
    const list: { start: number; end: number }[] = [];
    for (const i of windowInstances(w)) if (list.push(i) >= 4) break;
    const offset = zone === 'Pacific/Fakaofo' ? ['-11:00', '+13:00'] : ['-10:00', '+14:00'];
    assert.deepEqual(list.map((i) => new Date(i.start).toISOString()), [
      new Date(at(`2011-12-28T10:00:00${offset[0]}`)).toISOString(),
      new Date(at(`2011-12-29T10:00:00${offset[0]}`)).toISOString(),
      new Date(at(`2011-12-31T10:00:00${offset[1]}`)).toISOString(),
      new Date(at(`2012-01-01T10:00:00${offset[1]}`)).toISOString(),
    ], zone);
    for (const i of list) assert.equal(i.end - i.start, 5 * HOUR, `${zone}: every window lasts its duration`);
  }
  // Weekly on Friday: the Friday that never was moves to Saturday 10:00 (forward by the gap), kept once.
  const fri = win('Week Friday', '2011-12-20 10:00', '05:00', 'Pacific/Apia');
  assert.deepEqual(starts(fri, at('2011-12-27T00:00:00Z'), 2), ['2011-12-30T20:00:00.000Z', '2012-01-05T20:00:00.000Z']);
});

test('R70: without an expirationDateTime, a start at the default expiration is refused naming the default', () => {
  assert.throws(() => win('Day', '9999-12-31 23:59:59', '01:00'), /expirationDateTime: the default "9999-12-31 23:59:59" is not after startDateTime "9999-12-31 23:59:59"/);
  assert.throws(() => win('Day', '2026-01-01 10:00', '01:00', 'UTC', '2026-01-01 10:00'), /expirationDateTime: "2026-01-01 10:00" is not after startDateTime "2026-01-01 10:00"/);
});

test('R70: instants at or after the expiration, up to and past the last JavaScript date, answer at once (nextWindowStart looped forever past it)', () => {
  for (const zone of ['UTC', 'W. Europe Standard Time']) {
    const w = win('Day', '2026-01-01 10:00', '05:00', zone);
    for (const t of [w.expirationMs, 8.64e15, 8.64e15 + 1, 1e16, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE]) {
      assert.equal(nextWindowStart(w, t), null, `${zone} ${t}`);
      assert.equal(windowAt(w, t), null);
      assert.equal(nextSlot(w, t, HOUR), null);
      assert.equal(canFinishBefore(w, t, 0), false);
      assert.equal(windowInstances(w, t).next().done, true);
    }
    // Far before the start, the first window is found as usual.
    assert.equal(nextWindowStart(w, -8.64e15 - 1), w.startMs);
  }
});

test('west of Greenwich, year 9999 local stays within year 9999 UTC: no instant is written +010000-… (dashboard, UTC−12)', () => {
  // The default expiration, 9999-12-31 23:59:59 local, was 10000-01-01T11:59:59Z in UTC−12.
  const LAST_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59);
  const w = win('Day', '2026-01-01 13:00', '01:00', 'Dateline Standard Time');
  assert.ok(w.expirationMs <= LAST_INSTANT_MS, new Date(w.expirationMs).toISOString());
  const late = at('9999-12-31T20:00:00Z');
  const next = nextWindowStart(w, late);
  assert.ok(next === null || new Date(next).toISOString().startsWith('9999-'), String(next));
  for (const inst of windowInstances(w, at('9999-12-30T00:00:00Z'))) {
    assert.ok(inst.end <= LAST_INSTANT_MS && /^\d{4}-/.test(new Date(inst.end).toISOString()), new Date(inst.end).toISOString());
  }
  // A start that is itself after the last four-digit instant is refused, naming the field.
  const r = parseMaintenanceWindow({ startDateTime: '9999-12-31 23:00', duration: '01:00', timeZone: 'Dateline Standard Time', recurEvery: 'Day' });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.errors[0]!.field === 'startDateTime' && /9999-12-31T23:59:59Z/.test(r.errors[0]!.message), JSON.stringify(r));
  assert.ok(!r.ok && !r.errors[0]!.message.includes('+0'), 'the message shows no six-digit year');
});
