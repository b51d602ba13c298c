/**
 * The maintenance-window formats (azure-api.md §8): the `recurEvery` grammar, dates, durations and time
 * zones, valid and invalid, each invalid one with the field it names and its message.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IANAZone } from 'luxon';
import { formatRecurrence, parseRecurrence } from '../src/schedule/recurrence.js';
import type { Recurrence } from '../src/schedule/recurrence.js';
import { resolveTimeZone, WINDOWS_TIME_ZONES } from '../src/schedule/time-zones.js';
import { parseDuration, parseLocalDateTime, parseMaintenanceWindow } from '../src/schedule/window.js';
import type { MaintenanceWindowSpec } from '../src/schedule/window.js';

const VALID: [string, Recurrence][] = [
  ['Day', { unit: 'day', every: 1 }],
  ['3Days', { unit: 'day', every: 3 }],
  ['1Day', { unit: 'day', every: 1 }],
  ['day', { unit: 'day', every: 1 }],
  ['Week', { unit: 'week', every: 1, weekdays: null }],
  ['2Weeks', { unit: 'week', every: 2, weekdays: null }],
  ['3Weeks', { unit: 'week', every: 3, weekdays: null }],
  ['Week Saturday,Sunday', { unit: 'week', every: 1, weekdays: [6, 7] }],
  ['week sunday, SATURDAY', { unit: 'week', every: 1, weekdays: [6, 7] }],
  ['2Weeks Monday', { unit: 'week', every: 2, weekdays: [1] }],
  ['Month', { unit: 'month', every: 1, days: null }],
  ['2Months', { unit: 'month', every: 2, days: null }],
  ['Month day23,day24', { unit: 'month', every: 1, days: [23, 24] }],
  ['Months DAY31,day1', { unit: 'month', every: 1, days: [1, 31] }],
  ['Month Last Sunday', { unit: 'month', every: 1, ordinal: -1, weekday: 7, offset: 0 }],
  ['Month Fourth Monday', { unit: 'month', every: 1, ordinal: 4, weekday: 1, offset: 0 }],
  ['Month Fourth Monday Offset-3', { unit: 'month', every: 1, ordinal: 4, weekday: 1, offset: -3 }],
  ['Month Third Sunday Offset6', { unit: 'month', every: 1, ordinal: 3, weekday: 7, offset: 6 }],
  ['Month Last Sunday Offset-6', { unit: 'month', every: 1, ordinal: -1, weekday: 7, offset: -6 }],
  ['3Months first friday', { unit: 'month', every: 3, ordinal: 1, weekday: 5, offset: 0 }],
];

for (const [text, expected] of VALID) {
  test(`recurEvery "${text}" parses`, () => {
    const r = parseRecurrence(text);
    assert.deepEqual(r, { ok: true, recurrence: expected });
    const again = parseRecurrence(formatRecurrence(expected));
    assert.deepEqual(again, { ok: true, recurrence: expected }, 'the canonical text parses back');
  });
}

const INVALID: [string, RegExp][] = [
  ['', /is not a recurrence/],
  ['Daily', /is not a recurrence/],
  ['Weekly', /is not a recurrence/],
  ['0Days', /frequency 0 out of range/],
  ['Fortnight', /is not a recurrence/],
  ['Day Monday', /a daily recurrence takes no days/],
  ['Week Caturday', /"Caturday" is not a weekday/],
  ['Week Saturday Sunday', /is not a weekday/],
  ['Month day32', /"day32" is not a day of the month/],
  ['Month day0', /"day0" is not a day of the month/],
  ['Month day-1', /negative days are not part of the grammar/],
  ['Month Fifth Monday', /"Fifth" is not an ordinal/],
  ['Month Last Funday', /"Funday" is not a weekday/],
  ['Month Third Sunday Offset7', /Offset7 out of range/],
  ['Month Third Sunday Offset-7', /Offset-7 out of range/],
  ['Month Last', /is not a monthly pattern/],
  ['-1Days', /is not a recurrence/],
];

for (const [text, message] of INVALID) {
  test(`recurEvery "${text}" is rejected`, () => {
    const r = parseRecurrence(text);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.message, message);
    const w = parseMaintenanceWindow({ ...base(), recurEvery: text });
    assert.equal(w.ok, false);
    if (!w.ok) {
      assert.deepEqual(w.errors.map((e) => e.field), ['recurEvery']);
      assert.match(w.errors[0]!.message, /^recurEvery: /);
      assert.ok(w.errors[0]!.expected.length > 0);
    }
  });
}

function base(): MaintenanceWindowSpec {
  return { startDateTime: '2026-04-30 08:00', expirationDateTime: '9999-12-31 00:00', duration: '05:00', timeZone: 'Pacific Standard Time', recurEvery: 'Week Saturday,Sunday' };
}

test('the §8 example window parses: Pacific time, 5 hours, weekends', () => {
  const r = parseMaintenanceWindow(base());
  assert.ok(r.ok);
  assert.equal(r.window.zone, 'America/Los_Angeles');
  assert.equal(r.window.startMs, Date.parse('2026-04-30T08:00:00-07:00'));
  assert.equal(r.window.durationMs, 5 * 3_600_000);
  assert.equal(r.window.expirationMs, Date.parse('9999-12-31T00:00:00-08:00'));
});

test('expiration defaults to 9999-12-31 23:59:59 local, and ends at 9999-12-31T23:59:59Z west of Greenwich', () => {
  for (const expirationDateTime of [undefined, null, '']) {
    // Tokyo: the local default is an instant of year 9999 in UTC too.
    const east = parseMaintenanceWindow({ ...base(), timeZone: 'Tokyo Standard Time', expirationDateTime });
    assert.ok(east.ok);
    assert.equal(east.window.expirationMs, Date.parse('9999-12-31T23:59:59+09:00'));
    // Pacific: 9999-12-31 23:59:59 local is in year 10000 UTC, past the last instant (docs/windows.md).
    const r = parseMaintenanceWindow({ ...base(), expirationDateTime });
    assert.ok(r.ok);
    assert.equal(r.window.expirationMs, Date.parse('9999-12-31T23:59:59Z'));
  }
});

const FIELD_ERRORS: [string, Partial<Record<keyof MaintenanceWindowSpec, unknown>>, string, RegExp][] = [
  ['an unknown time zone', { timeZone: 'Mars Standard Time' }, 'timeZone', /unknown time zone "Mars Standard Time"/],
  ['an offset is not a zone name', { timeZone: 'UTC+3' }, 'timeZone', /unknown time zone/],
  ['a start that is no date', { startDateTime: '30/04/2026 08:00' }, 'startDateTime', /is not a date and time; expected YYYY-MM-DD hh:mm/],
  ['a start on February 30', { startDateTime: '2026-02-30 08:00' }, 'startDateTime', /is not a date and time/],
  ['a start at 24:00', { startDateTime: '2026-02-03 24:00' }, 'startDateTime', /is not a date and time/],
  ['an expiration that is no date', { expirationDateTime: 'never' }, 'expirationDateTime', /is not a date and time/],
  ['an expiration before the start', { expirationDateTime: '2026-04-29 08:00' }, 'expirationDateTime', /is not after startDateTime "2026-04-30 08:00"/],
  ['an expiration at the start', { expirationDateTime: '2026-04-30 08:00' }, 'expirationDateTime', /is not after startDateTime/],
  ['a duration in ISO 8601', { duration: 'PT5H' }, 'duration', /"PT5H" is not a duration; expected HH:mm/],
  ['a duration of 24 hours', { duration: '24:00' }, 'duration', /is not a duration/],
  ['a duration of 90 minutes written as minutes', { duration: '00:90' }, 'duration', /is not a duration/],
  ['a zero duration', { duration: '00:00' }, 'duration', /is not a duration/],
  ['a duration that is not text', { duration: 5 }, 'duration', /is not a duration/],
  ['a missing recurrence', { recurEvery: undefined }, 'recurEvery', /missing/],
];

for (const [name, patch, field, message] of FIELD_ERRORS) {
  test(`a window with ${name} is rejected, naming ${field}`, () => {
    const r = parseMaintenanceWindow({ ...base(), ...patch } as MaintenanceWindowSpec);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.errors.map((e) => e.field), [field]);
    assert.match(r.errors[0]!.message, new RegExp(`^${field}: `));
    assert.match(r.errors[0]!.message, message);
  });
}

test('every field in error is reported at once', () => {
  const r = parseMaintenanceWindow({ startDateTime: 'x', expirationDateTime: 'y', duration: 'z', timeZone: 'w', recurEvery: 'v' });
  assert.equal(r.ok, false);
  if (!r.ok) assert.deepEqual(r.errors.map((e) => e.field).sort(), ['duration', 'expirationDateTime', 'recurEvery', 'startDateTime', 'timeZone']);
});

test('dates and durations', () => {
  assert.deepEqual(parseLocalDateTime('2028-02-29 23:59'), { year: 2028, month: 2, day: 29, hour: 23, minute: 59, second: 0 });
  assert.deepEqual(parseLocalDateTime('9999-12-31 23:59:59'), { year: 9999, month: 12, day: 31, hour: 23, minute: 59, second: 59 });
  assert.equal(parseLocalDateTime('2027-02-29 10:00'), null);
  assert.equal(parseLocalDateTime('2026-04-30'), null);
  assert.equal(parseDuration('05:00'), 5 * 3_600_000);
  assert.equal(parseDuration('1:30'), 90 * 60_000);
  assert.equal(parseDuration('03:55'), (3 * 60 + 55) * 60_000);
  assert.equal(parseDuration('23:59'), (23 * 60 + 59) * 60_000);
  assert.equal(parseDuration('5h'), null);
});

test('time zones: Windows names Azure uses, case-insensitive, and IANA names', () => {
  const cases: [string, string | null][] = [
    ['Pacific Standard Time', 'America/Los_Angeles'],
    ['W. Europe Standard Time', 'Europe/Berlin'],
    ['UTC', 'Etc/UTC'],
    ['GMT Standard Time', 'Europe/London'],
    ['Eastern Standard Time', 'America/New_York'],
    ['Central European Standard Time', 'Europe/Warsaw'],
    ['Tokyo Standard Time', 'Asia/Tokyo'],
    ['India Standard Time', 'Asia/Kolkata'],
    ['AUS Eastern Standard Time', 'Australia/Sydney'],
    ['pacific standard time', 'America/Los_Angeles'],
    ['Europe/Paris', 'Europe/Paris'],
    ['America/Argentina/Buenos_Aires', 'America/Argentina/Buenos_Aires'],
    ['Pacific Time', null],
    ['Europe/Atlantis', null],
    ['+05:00', null],
  ];
  for (const [name, iana] of cases) assert.equal(resolveTimeZone(name), iana, name);
});

test('the Windows zone table has the common zones, each an IANA zone luxon knows', () => {
  const entries = Object.entries(WINDOWS_TIME_ZONES);
  assert.ok(entries.length >= 40, `${entries.length} zones`);
  assert.deepEqual(entries.filter(([, iana]) => !IANAZone.isValidZone(iana)), []);
});

test('R70: recurEvery with long runs of white space is parsed in linear time (it backtracked quadratically: 100,000 spaces took two minutes)', () => {
  const spaces = ' '.repeat(100_000);
  const inputs = [`Day${spaces}x`, `Week${spaces}Monday${spaces}x`, `${spaces}x`, `Month Last${spaces}Sunday Offset${spaces}x`, `Week Monday${spaces},${spaces}Friday${spaces}`];
  const started = Date.now();
  const results = inputs.map((text) => parseRecurrence(text));
  assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  assert.deepEqual(results.map((r) => r.ok), [false, false, false, false, true]);
  assert.deepEqual(results[4]!.ok && results[4]!.recurrence, { unit: 'week', every: 1, weekdays: [1, 5] });
});

test('R70: white space (spaces, tabs, new lines, repeated) around the parts of recurEvery changes nothing', () => {
  const ws = fc.constantFrom(' ', '\t', '  ', '\n ', '');
  fc.assert(
    fc.property(fc.constantFrom(...VALID), fc.array(ws, { minLength: 40, maxLength: 40 }), ([text, expected], spaces) => {
      let i = 0;
      const next = () => spaces[i++ % spaces.length]!;
      // Space may go where the grammar allows it: around the whole, after the number, around commas, between words.
      const spaced = `${next()}${text.replace(/^(\d+)/, (n) => `${n}${next()}`).replace(/,\s*/g, () => `${next()},${next()}`).replace(/ +/g, () => ` ${next()}`)}${next()}`;
      const r = parseRecurrence(spaced);
      assert.ok(r.ok, `${JSON.stringify(spaced)}: ${r.ok ? '' : r.message}`);
      assert.deepEqual(r.recurrence, expected, JSON.stringify(spaced));
    }),
    { numRuns: 300 },
  );
});
