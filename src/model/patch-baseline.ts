/**
 * Platform patch baselines (R76): a baseline is a date, year.month.day (2026.1.12), standing for the
 * Critical and Security patches of an OS published by the end of that day (UTC). Its versions order as
 * three-part image versions do.
 */
import { isImageVersion } from './image-version.js';

const BASELINE = /^(\d{4})\.(\d{1,2})\.(\d{1,2})$/;

export function isBaselineVersion(v: string): boolean {
  const m = BASELINE.exec(v);
  return m !== null && isImageVersion(v) && Number(m[2]) >= 1 && Number(m[2]) <= 12 && Number(m[3]) >= 1 && Number(m[3]) <= 31;
}

/** The last instant a baseline covers: the end of its day, UTC. */
export function baselineCutoffMs(v: string): number {
  const [y, m, d] = v.split('.').map(Number) as [number, number, number];
  return Date.UTC(y, m - 1, d + 1) - 1;
}
