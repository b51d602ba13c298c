/**
 * Four-part versions (`major.minor.build.revision`) as Azure extension and image versions use them.
 * Parts compare numerically, so `1.10.0.0` is newer than `1.9.0.0`.
 */
export type VersionParts = readonly [number, number, number, number];

const FOUR_PART = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/;
const PREFIX = /^(0|[1-9]\d{0,8})(\.(0|[1-9]\d{0,8})){0,3}$/;

const cache = new Map<string, VersionParts>();

/** True when `text` is exactly four dot-separated non-negative integers. */
export function isVersion(text: string): boolean {
  return FOUR_PART.test(text);
}

/** True for one to four dot-separated integers, as `typeHandlerVersion` allows (`1.30`). */
export function isVersionPrefix(text: string): boolean {
  return PREFIX.test(text);
}

/** Parses a four-part version; throws on anything else. Parsed values are cached: few distinct versions exist. */
export function parseVersion(text: string): VersionParts {
  const hit = cache.get(text);
  if (hit) return hit;
  const m = FOUR_PART.exec(text);
  if (!m) throw new TypeError(`"${text}" is not a four-part version (major.minor.build.revision)`);
  const parts = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] as const;
  cache.set(text, parts);
  return parts;
}

/** Parses a prefix of one to four parts (`1`, `1.30`, `1.30.2`, `1.30.2.0`). */
export function parsePrefix(text: string): number[] {
  if (!PREFIX.test(text)) throw new TypeError(`"${text}" is not a version (one to four numbers separated by dots)`);
  return text.split('.').map(Number);
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 4; i++) {
    const d = x[i]! - y[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

export function majorOf(version: string): number {
  return parseVersion(version)[0];
}

/** True when every part of `prefix` equals the leading parts of `version` (`1.30` matches `1.30.2.0`). */
export function matchesPrefix(version: string, prefix: string): boolean {
  const v = parseVersion(version);
  const p = parsePrefix(prefix);
  return p.every((part, i) => v[i] === part);
}

/** The newest of `versions`, or undefined for an empty list. */
export function newest(versions: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const v of versions) if (best === undefined || compareVersions(v, best) > 0) best = v;
  return best;
}
