/**
 * The `recurEvery` grammar of Microsoft.Maintenance windows (azure-api.md §8) and the local dates each
 * period of a recurrence covers.
 *
 *     daily   := [N] ("Day"|"Days")
 *     weekly  := [N] ("Week"|"Weeks") [Weekday{,Weekday}]
 *     monthly := [N] ("Month"|"Months") [dayD{,dayD}]
 *              | [N] ("Month"|"Months") Ordinal Weekday [OffsetK]
 *     Ordinal := First|Second|Third|Fourth|Last ; Weekday := Monday..Sunday ; K ∈ [-6, 6]
 *
 * Keywords are case-insensitive; N defaults to 1. Periods are counted from the anchor (the start's local
 * date): period k is the day `anchor + kN`, the ISO week (Monday first) `week(anchor) + kN`, or the month
 * `month(anchor) + kN`.
 */
import { civilFromDays, daysFromCivil, daysInMonth, isoWeekday, mondayOf, monthIndexOf } from './civil.js';

export type Recurrence =
  | { readonly unit: 'day'; readonly every: number }
  /** `weekdays`: ISO weekdays (Monday 1 … Sunday 7), ascending; null: the start's weekday. */
  | { readonly unit: 'week'; readonly every: number; readonly weekdays: readonly number[] | null }
  /** `days`: days of the month, ascending; null: the start's day of the month. */
  | { readonly unit: 'month'; readonly every: number; readonly days: readonly number[] | null }
  /** `ordinal`: 1–4, or -1 for Last; `offset`: days added to the chosen day, in [-6, 6]. */
  | { readonly unit: 'month'; readonly every: number; readonly ordinal: number; readonly weekday: number; readonly offset: number };

export type RecurrenceResult = { readonly ok: true; readonly recurrence: Recurrence } | { readonly ok: false; readonly expected: string; readonly message: string };

export const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'] as const;
export const ORDINALS: Readonly<Record<string, number>> = { first: 1, second: 2, third: 3, fourth: 4, last: -1 };

/** Largest frequency accepted (a Phasewise bound that keeps the arithmetic exact; Azure documents none). */
export const MAX_EVERY = 10_000;

const GRAMMAR = '[N](Day|Days), [N](Week|Weeks) [Weekday{,Weekday}], [N](Month|Months) [dayD{,dayD}] or [N](Month|Months) Ordinal Weekday [OffsetK]';

function fail(expected: string, message: string): RecurrenceResult {
  return { ok: false, expected, message };
}

function weekdayNumber(word: string): number | null {
  const i = WEEKDAYS.findIndex((d) => d.toLowerCase() === word.toLowerCase());
  return i < 0 ? null : i + 1;
}

/** Parses a `recurEvery` value. */
export function parseRecurrence(text: string): RecurrenceResult {
  // Runs of white space become one space first: on a long run the patterns below (`\s*(.*?)\s*$`,
  // `\s*,\s*`) backtrack quadratically, 30,000 spaces taking seconds and an API request body minutes.
  const m = /^\s*(\d+)?\s*(days?|weeks?|months?)(?![a-z])\s*(.*?)\s*$/i.exec(text.trim().replace(/\s+/g, ' '));
  if (m === null) return fail(GRAMMAR, `"${text}" is not a recurrence; expected ${GRAMMAR}`);
  const every = m[1] === undefined ? 1 : Number(m[1]);
  if (!Number.isSafeInteger(every) || every < 1 || every > MAX_EVERY) {
    return fail(`a frequency from 1 to ${MAX_EVERY}`, `frequency ${m[1]} out of range; expected an integer from 1 to ${MAX_EVERY}`);
  }
  const unit = m[2]!.toLowerCase().replace(/s$/, '');
  const rest = m[3] ?? '';
  if (unit === 'day') {
    return rest === '' ? { ok: true, recurrence: { unit: 'day', every } } : fail('nothing after Day', `unexpected "${rest}" after "${m[2]}"; a daily recurrence takes no days`);
  }
  if (unit === 'week') return parseWeekly(every, rest);
  return parseMonthly(every, rest);
}

function parseWeekly(every: number, rest: string): RecurrenceResult {
  if (rest === '') return { ok: true, recurrence: { unit: 'week', every, weekdays: null } };
  const days = new Set<number>();
  for (const word of rest.split(/\s*,\s*/)) {
    const d = weekdayNumber(word);
    if (d === null) return fail('Weekday{,Weekday} with Weekday one of Monday..Sunday', `"${word}" is not a weekday; expected Monday, Tuesday, Wednesday, Thursday, Friday, Saturday or Sunday`);
    days.add(d);
  }
  return { ok: true, recurrence: { unit: 'week', every, weekdays: [...days].sort((a, b) => a - b) } };
}

function parseMonthly(every: number, rest: string): RecurrenceResult {
  if (rest === '') return { ok: true, recurrence: { unit: 'month', every, days: null } };
  if (/^day/i.test(rest)) {
    const days = new Set<number>();
    for (const word of rest.split(/\s*,\s*/)) {
      const dm = /^day(\d{1,2})$/i.exec(word);
      const d = dm === null ? NaN : Number(dm[1]);
      if (!(d >= 1 && d <= 31)) return fail('dayD{,dayD} with D from 1 to 31', `"${word}" is not a day of the month; expected day1 … day31 (negative days are not part of the grammar)`);
      days.add(d);
    }
    return { ok: true, recurrence: { unit: 'month', every, days: [...days].sort((a, b) => a - b) } };
  }
  const wm = /^([a-z]+)\s+([a-z]+)(?:\s+offset\s*([+-]?\d+))?$/i.exec(rest);
  const expected = 'Ordinal Weekday [OffsetK] with Ordinal First|Second|Third|Fourth|Last and K from -6 to 6';
  if (wm === null) return fail(expected, `"${rest}" is not a monthly pattern; expected dayD{,dayD} or ${expected}`);
  const ordinal = ORDINALS[wm[1]!.toLowerCase()];
  if (ordinal === undefined) return fail(expected, `"${wm[1]}" is not an ordinal; expected First, Second, Third, Fourth or Last`);
  const weekday = weekdayNumber(wm[2]!);
  if (weekday === null) return fail(expected, `"${wm[2]}" is not a weekday; expected Monday … Sunday`);
  const offset = wm[3] === undefined ? 0 : Number(wm[3]);
  if (!(offset >= -6 && offset <= 6)) return fail(expected, `Offset${wm[3]} out of range; expected an offset from -6 to 6 days`);
  return { ok: true, recurrence: { unit: 'month', every, ordinal, weekday, offset } };
}

/** The canonical text of a recurrence (parses back to the same value). */
export function formatRecurrence(r: Recurrence): string {
  const n = r.every === 1 ? '' : String(r.every);
  if (r.unit === 'day') return `${n}Day${n ? 's' : ''}`;
  if (r.unit === 'week') return `${n}Week${n ? 's' : ''}${r.weekdays ? ' ' + r.weekdays.map((d) => WEEKDAYS[d - 1]).join(',') : ''}`;
  const head = `${n}Month${n ? 's' : ''}`;
  if ('days' in r) return r.days ? `${head} ${r.days.map((d) => `day${d}`).join(',')}` : head;
  const ord = Object.entries(ORDINALS).find(([, v]) => v === r.ordinal)![0];
  const off = r.offset === 0 ? '' : ` Offset${r.offset}`;
  return `${head} ${ord[0]!.toUpperCase()}${ord.slice(1)} ${WEEKDAYS[r.weekday - 1]}${off}`;
}

/** The period (0 is the anchor's) whose own day, week or month holds local day `day`; may be negative. */
export function periodOf(r: Recurrence, anchorDay: number, day: number): number {
  switch (r.unit) {
    case 'day':
      return Math.floor((day - anchorDay) / r.every);
    case 'week':
      return Math.floor((mondayOf(day) - mondayOf(anchorDay)) / (7 * r.every));
    case 'month':
      return Math.floor((monthIndexOf(day) - monthIndexOf(anchorDay)) / r.every);
  }
}

/**
 * The local days (day numbers, ascending) on which period `k` has an occurrence. Days of the month past
 * the month's end are skipped; an ordinal weekday moved by its offset may fall in a neighbouring month.
 */
export function datesInPeriod(r: Recurrence, anchorDay: number, k: number): number[] {
  if (r.unit === 'day') return [anchorDay + k * r.every];
  if (r.unit === 'week') {
    const monday = mondayOf(anchorDay) + 7 * r.every * k;
    return (r.weekdays ?? [isoWeekday(anchorDay)]).map((d) => monday + d - 1);
  }
  const mi = monthIndexOf(anchorDay) + r.every * k;
  const year = Math.floor(mi / 12);
  const month = mi - year * 12 + 1;
  const first = daysFromCivil(year, month, 1);
  const length = daysInMonth(year, month);
  if ('days' in r) {
    const days = r.days ?? [civilFromDays(anchorDay).day];
    return days.filter((d) => d <= length).map((d) => first + d - 1);
  }
  let day: number;
  if (r.ordinal > 0) {
    day = first + ((r.weekday - isoWeekday(first) + 7) % 7) + 7 * (r.ordinal - 1);
  } else {
    const last = first + length - 1;
    day = last - ((isoWeekday(last) - r.weekday + 7) % 7);
  }
  return [day + r.offset];
}

/**
 * The longest gap in days between consecutive occurrence dates, or null if it is longer than any week
 * pattern (monthly recurrences, whose gaps are 28 days or more).
 */
export function maxGapDays(r: Recurrence): number | null {
  if (r.unit === 'day') return r.every;
  if (r.unit === 'week') {
    const days = r.weekdays ?? [1];
    let gap = 7 * r.every - (days[days.length - 1]! - days[0]!);
    for (let i = 1; i < days.length; i++) gap = Math.max(gap, days[i]! - days[i - 1]!);
    return gap;
  }
  return null;
}
