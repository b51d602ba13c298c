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
 * Given the fleet's regions map, a lookup in an index kept beside it (see `regionIndexOf`), not a scan.
 */
export function knownRegionName(names: ReadonlyMap<string, unknown> | Iterable<string>, location: string): string | undefined {
  const key = normalizeLocation(location);
  if (names instanceof Map) {
    const name = regionIndexOf(names).get(key);
    // A map emptied and filled again (a replica's reload) holds the same regions; a name gone from it is not trusted.
    return name === undefined || names.has(name) ? name : regionIndexOf(names, true).get(key);
  }
  let found: string | undefined;
  for (const name of names as Iterable<string>) {
    if (name === key) return name;
    if (found === undefined && normalizeLocation(name) === key) found = name;
  }
  return found;
}

interface RegionIndex {
  /** The map's size when the index was last brought up to date. */
  size: number;
  byKey: Map<string, string>;
}

const indexes = new WeakMap<ReadonlyMap<string, unknown>, RegionIndex>();

/**
 * Short form → the region's name, for one regions map. Regions are only ever added (the engine has no way
 * to remove one), so a map that grew is indexed again and one of the same size is unchanged: each request
 * costs one lookup where it scanned every region (and 5,000 regions in one body scanned them 5,000 times).
 */
function regionIndexOf(regions: ReadonlyMap<string, unknown>, stale = false): Map<string, string> {
  let index = indexes.get(regions);
  if (stale || index === undefined || index.size !== regions.size) {
    const byKey = new Map<string, string>();
    for (const name of regions.keys()) {
      const key = normalizeLocation(name);
      if (name === key || !byKey.has(key)) byKey.set(key, name); // the short form wins
    }
    index = { size: regions.size, byKey };
    indexes.set(regions, index);
  }
  return index.byKey;
}
