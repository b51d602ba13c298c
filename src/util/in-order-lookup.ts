/**
 * Looks entries of a map up by key when the keys are asked in (nearly) the map's own order: the entry
 * asked for is then most often the next one of the map's iterator, a sequential read instead of a hash
 * lookup in a map of up to millions of entries (a few cache misses each). Any other order still gets
 * the right entry, by lookup; when most asks miss, it stops reading ahead and only looks up.
 * The map must not change while the lookup is in use (its iterator would not see the change the same way).
 */

/** How far ahead of the cursor an entry is looked for: asks for a subset of the entries keep step. */
const LOOK_AHEAD = 64;
/** Misses (beyond this many, and more than the hits) after which the order is taken not to match. */
const MISSES_TOLERATED = 32;

export class InOrderLookup<V> {
  private readonly ahead: Iterator<V>;
  private hits = 0;
  private misses = 0;

  constructor(private readonly map: ReadonlyMap<string, V>, private readonly keyOf: (v: V) => string) {
    this.ahead = map.values();
  }

  /** The entry of `key`, exactly as `map.get(key)`. */
  of(key: string): V | undefined {
    if (this.misses <= MISSES_TOLERATED || this.misses <= this.hits) {
      // Bounded, so that a few keys in another order never walk the whole map.
      for (let i = 0; i <= LOOK_AHEAD; i++) {
        const next = this.ahead.next();
        if (next.done) break;
        if (this.keyOf(next.value) === key) {
          this.hits++;
          return next.value;
        }
      }
      this.misses++;
    }
    return this.map.get(key);
  }
}
