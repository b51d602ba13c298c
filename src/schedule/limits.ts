/**
 * Per-scope limits of maintenance windows (R71, azure-api.md §8, seed 003):
 * - OSImage and Extension: windows of at least 5 hours, recurring at most a week apart (`Day` … `7Days`,
 *   `Week` with any weekdays; `2Weeks` and every `Month` recurrence are too rare).
 * - Host: windows of at least 2 hours. (Deferral up to 35 days, R73, is the engine's business.)
 * - InGuestPatch: windows from 1 h 30 min to 3 h 55 min, repeating at least 6 hours apart (every recurrence
 *   of the grammar is at least a day apart, so the last always holds).
 * - Resource, SQLDB, SQLManagedInstance: no documented limit.
 */
import { HOUR_MS, MINUTE_MS } from './civil.js';
import { maxGapDays } from './recurrence.js';
import type { MaintenanceWindow } from './window.js';

export const MAINTENANCE_SCOPES = ['Host', 'Resource', 'OSImage', 'Extension', 'InGuestPatch', 'SQLDB', 'SQLManagedInstance'] as const;
export type MaintenanceScope = (typeof MAINTENANCE_SCOPES)[number];

export type WindowLimit = 'minDuration' | 'maxDuration' | 'maxRecurrenceInterval' | 'minRepeatInterval';

export interface LimitViolation {
  readonly scope: MaintenanceScope;
  readonly limit: WindowLimit;
  readonly field: 'duration' | 'recurEvery';
  readonly message: string;
}

export interface ScopeLimits {
  readonly minDurationMs?: number;
  readonly maxDurationMs?: number;
  /** Longest allowed gap between consecutive occurrence dates, in days. */
  readonly maxIntervalDays?: number;
  /** Shortest allowed time between consecutive occurrence starts, in milliseconds. */
  readonly minRepeatMs?: number;
}

export const SCOPE_LIMITS: Readonly<Record<MaintenanceScope, ScopeLimits>> = {
  OSImage: { minDurationMs: 5 * HOUR_MS, maxIntervalDays: 7 },
  Extension: { minDurationMs: 5 * HOUR_MS, maxIntervalDays: 7 },
  Host: { minDurationMs: 2 * HOUR_MS },
  InGuestPatch: { minDurationMs: 90 * MINUTE_MS, maxDurationMs: 3 * HOUR_MS + 55 * MINUTE_MS, minRepeatMs: 6 * HOUR_MS },
  Resource: {},
  SQLDB: {},
  SQLManagedInstance: {},
};

function hm(ms: number): string {
  const minutes = Math.round(ms / MINUTE_MS);
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** The limits a window breaks in a scope; empty when it may be used there. */
export function checkScopeLimits(scope: MaintenanceScope, w: MaintenanceWindow): LimitViolation[] {
  const limits = SCOPE_LIMITS[scope];
  const out: LimitViolation[] = [];
  if (limits.minDurationMs !== undefined && w.durationMs < limits.minDurationMs) {
    out.push({ scope, limit: 'minDuration', field: 'duration', message: `duration: ${scope} windows last at least ${hm(limits.minDurationMs)}; got ${hm(w.durationMs)}` });
  }
  if (limits.maxDurationMs !== undefined && w.durationMs > limits.maxDurationMs) {
    out.push({ scope, limit: 'maxDuration', field: 'duration', message: `duration: ${scope} windows last at most ${hm(limits.maxDurationMs)}; got ${hm(w.durationMs)}` });
  }
  if (limits.maxIntervalDays !== undefined) {
    const gap = maxGapDays(w.recurrence);
    if (gap === null || gap > limits.maxIntervalDays) {
      out.push({ scope, limit: 'maxRecurrenceInterval', field: 'recurEvery', message: `recurEvery: ${scope} windows recur at most ${limits.maxIntervalDays} days apart; "${w.recurEvery}" leaves ${gap === null ? 'a month' : `${gap} days`} between windows` });
    }
  }
  // Every recurrence of the grammar repeats at least a day apart (minus a daylight-saving hour).
  if (limits.minRepeatMs !== undefined && 23 * HOUR_MS < limits.minRepeatMs) {
    out.push({ scope, limit: 'minRepeatInterval', field: 'recurEvery', message: `recurEvery: ${scope} windows repeat at least ${hm(limits.minRepeatMs)} apart` });
  }
  return out;
}
