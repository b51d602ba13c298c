/**
 * Maintenance windows (R70): parsing the Microsoft.Maintenance `maintenanceWindow` and pure arithmetic on
 * epoch milliseconds: which window instance holds an instant, when the next one starts, and where a job of
 * a given length fits.
 *
 * Semantics (docs/windows.md):
 * - Occurrences are anchored at `startDateTime`: every N days, weeks (ISO, Monday first) or months counted
 *   from the start's local day, week or month; none starts before `startDateTime`.
 * - Each occurrence starts at the start's local wall-clock time on its local date (a nonexistent time moves
 *   forward by the daylight-saving gap, an ambiguous one takes the earlier instant) and lasts `duration` of
 *   real elapsed time, cut short by the next occurrence's start and by `expirationDateTime`.
 * - No occurrence starts at or after `expirationDateTime`.
 */
import { civilFromDays, DAY_MS, daysFromCivil, daysInMonth, HOUR_MS, MINUTE_MS } from './civil.js';
import { datesInPeriod, parseRecurrence, periodOf } from './recurrence.js';
import type { Recurrence } from './recurrence.js';
import { epochToLocal, localToEpoch, resolveTimeZone } from './time-zones.js';

/** A maintenance window as Azure sends it (`properties.maintenanceWindow`). */
export interface MaintenanceWindowSpec {
  readonly startDateTime: string;
  readonly expirationDateTime?: string | null;
  readonly duration: string;
  readonly timeZone: string;
  readonly recurEvery: string;
}

export interface LocalDateTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

/** A parsed, validated maintenance window. Plain data: no methods, safe to copy and compare. */
export interface MaintenanceWindow {
  /** The `timeZone` as given (Windows or IANA name). */
  readonly timeZone: string;
  /** The IANA zone it stands for. */
  readonly zone: string;
  readonly recurEvery: string;
  readonly recurrence: Recurrence;
  /** `startDateTime`, local to the zone. */
  readonly start: LocalDateTime;
  /** Local day number (days since 1970-01-01) of the start: the recurrence anchor. */
  readonly anchorDay: number;
  /** Local time of day of every occurrence, in milliseconds after midnight. */
  readonly timeOfDayMs: number;
  /** The instant of `startDateTime`: the first occurrence can start no earlier. */
  readonly startMs: number;
  /** The instant of `expirationDateTime`: no occurrence starts at or after it, none lasts past it. */
  readonly expirationMs: number;
  readonly durationMs: number;
}

export type WindowField = 'startDateTime' | 'expirationDateTime' | 'duration' | 'timeZone' | 'recurEvery';

export interface WindowError {
  readonly field: WindowField;
  readonly value: unknown;
  /** What the field accepts. */
  readonly expected: string;
  readonly message: string;
}

export type WindowParseResult = { readonly ok: true; readonly window: MaintenanceWindow } | { readonly ok: false; readonly errors: readonly WindowError[] };

/** One window instance: the half-open interval [start, end) in epoch milliseconds. */
export interface WindowInstance {
  readonly start: number;
  readonly end: number;
}

export const DEFAULT_EXPIRATION = '9999-12-31 23:59:59';
/** The last instant written with a four-digit year (ISO 8601 needs a sign and six digits after it). */
export const LAST_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59);
const LAST_INSTANT_ISO = '9999-12-31T23:59:59Z';
const DATE_TIME_FORMAT = 'YYYY-MM-DD hh:mm (or hh:mm:ss)';

/** Parses `YYYY-MM-DD hh:mm[:ss]`; null if malformed or not a real date and time. */
export function parseLocalDateTime(text: string): LocalDateTime | null {
  const m = /^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?\s*$/.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute] = [1, 2, 3, 4, 5].map((i) => Number(m[i]));
  const second = m[6] === undefined ? 0 : Number(m[6]);
  if (year === undefined || month === undefined || day === undefined || hour === undefined || minute === undefined) return null;
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  return { year, month, day, hour, minute, second };
}

/** Parses a `duration` `HH:mm` (hours 0–23, minutes 0–59, not zero) into milliseconds; null if not one. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d{1,2}):(\d{2})\s*$/.exec(text);
  if (m === null) return null;
  const hours = Number(m[1]);
  const minutes = Number(m[2]);
  if (hours > 23 || minutes > 59 || hours + minutes === 0) return null;
  return hours * HOUR_MS + minutes * MINUTE_MS;
}

function localMs(d: LocalDateTime): number {
  return daysFromCivil(d.year, d.month, d.day) * DAY_MS + ((d.hour * 60 + d.minute) * 60 + d.second) * 1000;
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * Validates and parses a maintenance window. Every field in error is reported, each with what it expects.
 */
export function parseMaintenanceWindow(spec: MaintenanceWindowSpec): WindowParseResult {
  const errors: WindowError[] = [];
  const err = (field: WindowField, value: unknown, expected: string, message: string): void => {
    errors.push({ field, value, expected, message: `${field}: ${message}` });
  };

  const tzText = text(spec.timeZone);
  const zone = tzText === null ? null : resolveTimeZone(tzText);
  if (zone === null) err('timeZone', spec.timeZone, 'a Windows time zone name (e.g. Pacific Standard Time) or an IANA name', `unknown time zone ${JSON.stringify(spec.timeZone)}; expected a Windows time zone name such as "Pacific Standard Time" or an IANA name such as "America/Los_Angeles"`);

  const startText = text(spec.startDateTime);
  const start = startText === null ? null : parseLocalDateTime(startText);
  if (start === null) err('startDateTime', spec.startDateTime, DATE_TIME_FORMAT, `${JSON.stringify(spec.startDateTime)} is not a date and time; expected ${DATE_TIME_FORMAT}`);

  const expText = spec.expirationDateTime === undefined || spec.expirationDateTime === null || spec.expirationDateTime === '' ? DEFAULT_EXPIRATION : text(spec.expirationDateTime);
  const expiration = expText === null ? null : parseLocalDateTime(expText);
  if (expiration === null) err('expirationDateTime', spec.expirationDateTime, DATE_TIME_FORMAT, `${JSON.stringify(spec.expirationDateTime)} is not a date and time; expected ${DATE_TIME_FORMAT}`);

  const durText = text(spec.duration);
  const durationMs = durText === null ? null : parseDuration(durText);
  if (durationMs === null) err('duration', spec.duration, 'HH:mm from 00:01 to 23:59', `${JSON.stringify(spec.duration)} is not a duration; expected HH:mm from 00:01 to 23:59`);

  const recText = text(spec.recurEvery);
  const rec = recText === null ? null : parseRecurrence(recText);
  if (rec === null) err('recurEvery', spec.recurEvery, 'a recurrence such as Day, 2Weeks, Week Saturday,Sunday or Month Last Sunday', 'missing; expected a recurrence such as "Week Saturday,Sunday"');
  else if (!rec.ok) err('recurEvery', spec.recurEvery, rec.expected, rec.message);

  if (zone === null || start === null || expiration === null || durationMs === null || rec === null || !rec.ok) return { ok: false, errors };
  const startMs = localToEpoch(zone, localMs(start));
  // Year 9999 local is year 10000 UTC west of Greenwich: the default expiration in UTC−12 was
  // 10000-01-01T11:59:59Z, and an instant past 9999 is written `+010000-01-01…` (the dashboard showed it).
  // Instants stop at the last one with a four-digit year; a start after it is refused.
  if (startMs > LAST_INSTANT_MS) {
    const message = `${JSON.stringify(startText)} in ${tzText} is after ${LAST_INSTANT_ISO} (UTC), the last instant a window can start`;
    err('startDateTime', spec.startDateTime, `a date and time no later than ${LAST_INSTANT_ISO}`, message);
    return { ok: false, errors };
  }
  const expirationMs = Math.min(localToEpoch(zone, localMs(expiration)), LAST_INSTANT_MS);
  if (expirationMs <= startMs) {
    // The default expiration (none given) is named as such, not as "undefined".
    const given = expText === DEFAULT_EXPIRATION && spec.expirationDateTime !== DEFAULT_EXPIRATION ? `the default ${JSON.stringify(DEFAULT_EXPIRATION)}` : JSON.stringify(expText);
    err('expirationDateTime', spec.expirationDateTime, `a date and time after startDateTime (${startText})`, `${given} is not after startDateTime ${JSON.stringify(startText)}`);
    return { ok: false, errors };
  }
  const anchorDay = daysFromCivil(start.year, start.month, start.day);
  return {
    ok: true,
    window: {
      timeZone: tzText!,
      zone,
      recurEvery: recText!,
      recurrence: rec.recurrence,
      start,
      anchorDay,
      timeOfDayMs: localMs(start) - anchorDay * DAY_MS,
      startMs,
      expirationMs,
      durationMs,
    },
  };
}

/** Like parseMaintenanceWindow, but throws a RangeError listing the errors. For tests and fixtures. */
export function maintenanceWindow(spec: MaintenanceWindowSpec): MaintenanceWindow {
  const r = parseMaintenanceWindow(spec);
  if (!r.ok) throw new RangeError(r.errors.map((e) => e.message).join('; '));
  return r.window;
}

/** A recurrence on which no period has a date repeats every 400 years (4,800 months): stop after that. */
const MAX_EMPTY_PERIODS = 4_801;

function* startsFromPeriod(w: MaintenanceWindow, first: number): Generator<number> {
  let empty = 0;
  let last = Number.NEGATIVE_INFINITY;
  for (let k = Math.max(0, first); ; k++) {
    let found = false;
    for (const day of datesInPeriod(w.recurrence, w.anchorDay, k)) {
      const s = localToEpoch(w.zone, day * DAY_MS + w.timeOfDayMs);
      if (s < w.startMs) continue;
      if (s >= w.expirationMs) return;
      found = true;
      // A local day the zone skipped entirely (Pacific/Apia, 2011-12-30) moves forward by the whole gap,
      // onto the next day's start: one window, not two starting at the same instant.
      if (s <= last) continue;
      last = s;
      yield s;
    }
    empty = found ? 0 : empty + 1;
    if (empty > MAX_EMPTY_PERIODS) return;
  }
}

/** The first period that can hold an instance containing or starting after `t` (instances last < 1 day). */
function firstPeriodFor(w: MaintenanceWindow, t: number): number {
  if (t <= w.startMs) return 0;
  const localDay = Math.floor(epochToLocal(w.zone, t) / DAY_MS);
  return periodOf(w.recurrence, w.anchorDay, localDay) - 3;
}

function* instancesFromPeriod(w: MaintenanceWindow, first: number): Generator<WindowInstance> {
  const starts = startsFromPeriod(w, first);
  let cur = starts.next();
  while (cur.done !== true) {
    const next = starts.next();
    const end = Math.min(cur.value + w.durationMs, w.expirationMs, next.done === true ? Number.POSITIVE_INFINITY : next.value);
    yield { start: cur.value, end };
    cur = next;
  }
}

/**
 * Window instances in order, from the one containing `t` (or the first starting after it) on; finite only
 * when the window expires. `t` defaults to the beginning.
 */
export function* windowInstances(w: MaintenanceWindow, t: number = Number.NEGATIVE_INFINITY): Generator<WindowInstance> {
  // Nothing is open at or after the expiration; past JavaScript's last date, local days would be NaN and never end.
  if (t >= w.expirationMs) return;
  for (const inst of instancesFromPeriod(w, Number.isFinite(t) ? firstPeriodFor(w, t) : 0)) {
    if (inst.end > t) yield inst;
  }
}

function checkInstant(t: number): void {
  if (!Number.isFinite(t)) throw new RangeError(`not an instant: ${t}`);
}

/** The window instance containing `t` ({start ≤ t < end}), or null if the window is closed at `t`. */
export function windowAt(w: MaintenanceWindow, t: number): WindowInstance | null {
  checkInstant(t);
  for (const inst of windowInstances(w, t)) return inst.start <= t ? inst : null;
  return null;
}

/** The start of the first window instance starting at or after `t`; null if none does before expiration. */
export function nextWindowStart(w: MaintenanceWindow, t: number): number | null {
  checkInstant(t);
  if (t >= w.expirationMs) return null;
  for (const s of startsFromPeriod(w, firstPeriodFor(w, t))) if (s >= t) return s;
  return null;
}

/** When the window instance containing `t` closes; null if the window is closed at `t`. */
export function currentWindowEnd(w: MaintenanceWindow, t: number): number | null {
  return windowAt(w, t)?.end ?? null;
}

/**
 * R70: whether a job of `durationMs` (a batch, health wait included) started at `t` finishes before the
 * window closes: `t` is in a window instance and `t + durationMs ≤ end`.
 */
export function canFinishBefore(w: MaintenanceWindow, t: number, durationMs: number): boolean {
  checkDuration(durationMs);
  const inst = windowAt(w, t);
  return inst !== null && t + durationMs <= inst.end;
}

function checkDuration(durationMs: number): void {
  if (!(durationMs >= 0) || !Number.isFinite(durationMs)) throw new RangeError(`not a duration: ${durationMs}`);
}

/**
 * The earliest instant `s ≥ t` such that [s, s + durationMs] lies within one window instance; null if no
 * instance is long enough (the job is longer than the window, or the window expires first).
 */
export function nextSlot(w: MaintenanceWindow, t: number, durationMs: number): number | null {
  checkInstant(t);
  checkDuration(durationMs);
  if (durationMs > w.durationMs) return null;
  for (const inst of windowInstances(w, t)) {
    const s = Math.max(inst.start, t);
    if (s + durationMs <= inst.end) return s;
  }
  return null;
}

/** `startDateTime` of a window as Azure writes it (`YYYY-MM-DD hh:mm`). */
export function formatLocalDateTime(d: LocalDateTime): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.year, 4)}-${p(d.month)}-${p(d.day)} ${p(d.hour)}:${p(d.minute)}${d.second ? ':' + p(d.second) : ''}`;
}

/** The local calendar date and time of instant `t` in the window's zone (for messages and reports). */
export function localDateTimeAt(w: MaintenanceWindow, t: number): LocalDateTime {
  const local = epochToLocal(w.zone, t);
  const day = Math.floor(local / DAY_MS);
  const c = civilFromDays(day);
  const secs = Math.floor((local - day * DAY_MS) / 1000);
  return { ...c, hour: Math.floor(secs / 3600), minute: Math.floor((secs % 3600) / 60), second: secs % 60 };
}
