/**
 * Image versions as Azure writes them: three dot-separated integers (`22.04.202601010`, `1.0.0`).
 * Parts compare numerically and may carry leading zeros (`22.04`), so `22.04.1` and `22.4.1` are the
 * same version; each part fits a signed 32-bit integer, as Azure's gallery rules require.
 */
export type ImageVersionParts = readonly [number, number, number];

const THREE_PART = /^(\d{1,10})\.(\d{1,10})\.(\d{1,10})$/;
const MAX_PART = 2 ** 31 - 1;

/** Parsed versions: few distinct ones exist, and a million-machine rollout compares them millions of times. */
const cache = new Map<string, ImageVersionParts | null>();

/** The parts of an image version, or null when `text` is not one. */
export function parseImageVersion(text: string): ImageVersionParts | null {
  const hit = cache.get(text);
  if (hit !== undefined) return hit;
  const m = THREE_PART.exec(text);
  const parts = m ? ([Number(m[1]), Number(m[2]), Number(m[3])] as const) : null;
  const valid = parts && parts.every((p) => p <= MAX_PART) ? parts : null;
  if (cache.size < 10_000) cache.set(text, valid); // bounded: arbitrary input must not grow it without end
  return valid;
}

export function isImageVersion(text: string): boolean {
  return parseImageVersion(text) !== null;
}

/** Negative when a < b, zero when they name the same version, positive when a > b; throws on a non-version. */
export function compareImageVersions(a: string, b: string): number {
  const x = parseImageVersion(a);
  const y = parseImageVersion(b);
  if (!x || !y) throw new TypeError(`"${x ? b : a}" is not an image version (three dot-separated integers such as 22.04.202601010)`);
  for (let i = 0; i < 3; i++) {
    const d = x[i]! - y[i]!;
    if (d !== 0) return d;
  }
  return 0;
}
