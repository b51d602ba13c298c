/**
 * R71 and azure-api.md §8: per-scope window limits. OSImage and Extension windows last at least five hours
 * and recur at most a week apart; Host windows at least two hours; InGuestPatch 1 h 30 – 3 h 55.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkScopeLimits } from '../src/schedule/limits.js';
import type { MaintenanceScope } from '../src/schedule/limits.js';
import { maintenanceWindow } from '../src/schedule/window.js';

function limits(scope: MaintenanceScope, recurEvery: string, duration: string): string[] {
  const w = maintenanceWindow({ startDateTime: '2026-04-30 08:00', duration, timeZone: 'Pacific Standard Time', recurEvery });
  return checkScopeLimits(scope, w).map((v) => v.limit);
}

const CASES: [string, MaintenanceScope, string, string, string[]][] = [
  ['R71: OSImage, five hours weekly on weekends is allowed', 'OSImage', 'Week Saturday,Sunday', '05:00', []],
  ['R71: OSImage, four hours 59 is too short', 'OSImage', 'Week Saturday,Sunday', '04:59', ['minDuration']],
  ['R71: OSImage, daily is allowed', 'OSImage', 'Day', '06:00', []],
  ['R71: OSImage, every 7 days is allowed', 'OSImage', '7Days', '06:00', []],
  ['R71: OSImage, every 8 days is too rare', 'OSImage', '8Days', '06:00', ['maxRecurrenceInterval']],
  ['R71: OSImage, weekly on one day is allowed', 'OSImage', 'Week', '05:00', []],
  ['R71: OSImage, every second week is too rare', 'OSImage', '2Weeks', '05:00', ['maxRecurrenceInterval']],
  ['R71: OSImage, every second week on every day is still too rare', 'OSImage', '2Weeks Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday', '05:00', ['maxRecurrenceInterval']],
  ['R71: OSImage, monthly is too rare', 'OSImage', 'Month Last Sunday', '05:00', ['maxRecurrenceInterval']],
  ['R71: OSImage, monthly on many days is too rare', 'OSImage', 'Month day1,day8,day15,day22,day29', '05:00', ['maxRecurrenceInterval']],
  ['R71: Extension, both limits at once', 'Extension', 'Month', '02:00', ['minDuration', 'maxRecurrenceInterval']],
  ['R71: Extension, five hours weekly is allowed', 'Extension', 'Week Sunday', '05:00', []],
  ['Host, two hours monthly is allowed', 'Host', 'Month Last Sunday', '02:00', []],
  ['Host, one hour 59 is too short', 'Host', 'Week', '01:59', ['minDuration']],
  ['InGuestPatch, 1 h 30 is allowed', 'InGuestPatch', 'Day', '01:30', []],
  ['InGuestPatch, 3 h 55 is allowed', 'InGuestPatch', 'Month', '03:55', []],
  ['InGuestPatch, 1 h 29 is too short', 'InGuestPatch', 'Day', '01:29', ['minDuration']],
  ['InGuestPatch, 3 h 56 is too long', 'InGuestPatch', 'Day', '03:56', ['maxDuration']],
  ['Resource has no documented limit', 'Resource', '3Months', '00:10', []],
];

for (const [name, scope, recurEvery, duration, expected] of CASES) {
  test(`${name} (${recurEvery}, ${duration})`, () => assert.deepEqual(limits(scope, recurEvery, duration), expected));
}

test('R71: a violation names the limit, the field and the bound', () => {
  const w = maintenanceWindow({ startDateTime: '2026-04-30 08:00', duration: '04:00', timeZone: 'UTC', recurEvery: '2Weeks' });
  assert.deepEqual(checkScopeLimits('OSImage', w), [
    { scope: 'OSImage', limit: 'minDuration', field: 'duration', message: 'duration: OSImage windows last at least 05:00; got 04:00' },
    { scope: 'OSImage', limit: 'maxRecurrenceInterval', field: 'recurEvery', message: 'recurEvery: OSImage windows recur at most 7 days apart; "2Weeks" leaves 14 days between windows' },
  ]);
});
