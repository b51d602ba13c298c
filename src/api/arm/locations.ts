/**
 * ARM location names. ARM reads a location without regard to case or spaces: `East US`, `EastUS` and
 * `eastus` are one location, and it answers with the short form. The engine's regions are keyed by name,
 * so every request's location is compared, and a new region named, in that form.
 */

/** A location's short form: `East US 2` → `eastus2`. */
export const normalizeLocation = (l: string): string => l.replace(/\s+/g, '').toLowerCase();

/** Whether two location names are the same location. */
export const sameLocation = (a: string, b: string): boolean => normalizeLocation(a) === normalizeLocation(b);

/**
 * The name a known region goes by, matched as ARM matches locations; undefined when none is. A region
 * spelled in the short form wins: a database from before this rule may also hold a stray `east us`.
 */
export function knownRegionName(names: Iterable<string>, location: string): string | undefined {
  const key = normalizeLocation(location);
  let found: string | undefined;
  for (const name of names) {
    if (name === key) return name;
    if (found === undefined && normalizeLocation(name) === key) found = name;
  }
  return found;
}
