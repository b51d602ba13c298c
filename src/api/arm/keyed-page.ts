/**
 * The page of a keyed list after a key, without sorting the list: one pass keeps the `size` smallest keys
 * above it in a bounded max-heap, so a page of n items costs O(n log size) (plus sorting the page), not
 * O(n log n). Each key is split into its parts once. Keys order as `compareKeys` says (context.ts).
 */

/** A key split for comparing: lower-cased runs of digits and of other characters, and the key itself. */
export interface SplitKey {
  parts: string[];
  raw: string;
}

export function splitKey(raw: string): SplitKey {
  return { parts: raw.toLowerCase().match(/\d+|\D+/g) ?? [], raw };
}

const isDigit = (s: string) => s.charCodeAt(0) >= 48 && s.charCodeAt(0) <= 57;

/** Case aside, digit runs by value (`ss2` before `ss10`); equal that way, by the keys' code units. */
export function compareSplit(a: SplitKey, b: SplitKey): number {
  const x = a.parts;
  const y = b.parts;
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (p === q) continue;
    if (isDigit(p) && isDigit(q)) {
      const m = p.charCodeAt(0) === 48 ? p.replace(/^0+/, '') : p; // leading zeros aside
      const n = q.charCodeAt(0) === 48 ? q.replace(/^0+/, '') : q;
      if (m === n) continue;
      return m.length - n.length || (m < n ? -1 : 1);
    }
    return p < q ? -1 : 1;
  }
  return x.length - y.length || (a.raw < b.raw ? -1 : a.raw > b.raw ? 1 : 0);
}

interface Entry<T> {
  item: T;
  key: SplitKey;
}

/**
 * The first `size` items whose key is above `after` (all items when null), in key order, and whether
 * more follow them.
 */
export function pageAfter<T>(items: readonly T[], keyOf: (item: T) => string, after: string | null, size: number): { value: T[]; more: boolean } {
  const floor = after === null ? null : splitKey(after);
  const heap: Array<Entry<T>> = []; // max-heap by key: the largest of the smallest `size` on top
  let above = 0;
  for (const item of items) {
    const key = splitKey(keyOf(item));
    if (floor && compareSplit(key, floor) <= 0) continue;
    above++;
    if (heap.length < size) push(heap, { item, key });
    else if (compareSplit(key, heap[0]!.key) < 0) replaceTop(heap, { item, key });
  }
  heap.sort((a, b) => compareSplit(a.key, b.key));
  return { value: heap.map((e) => e.item), more: above > size };
}

function push<T>(heap: Array<Entry<T>>, e: Entry<T>): void {
  heap.push(e);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (compareSplit(heap[parent]!.key, heap[i]!.key) >= 0) return;
    [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
    i = parent;
  }
}

function replaceTop<T>(heap: Array<Entry<T>>, e: Entry<T>): void {
  heap[0] = e;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let top = i;
    if (l < heap.length && compareSplit(heap[l]!.key, heap[top]!.key) > 0) top = l;
    if (r < heap.length && compareSplit(heap[r]!.key, heap[top]!.key) > 0) top = r;
    if (top === i) return;
    [heap[top], heap[i]] = [heap[i]!, heap[top]!];
    i = top;
  }
}

/** One item of a sorted collection: its key split once, and the id it is fetched by. */
export interface KeyEntry {
  key: SplitKey;
  id: string;
}

/** The index of the first entry whose key is above `after` (all: 0): a binary search. */
export function firstAbove(entries: readonly KeyEntry[], after: SplitKey | null): number {
  if (after === null) return 0;
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareSplit(entries[mid]!.key, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Collections (a set's instances, a group's scale sets, a subscription's VMs …) as keys in order, each sorted
 * once and kept until its owner says something was added to it or removed (`invalidate`): a page is
 * then a binary search and a slice, O(log n + page), where it was a pass over the whole list. Sorting again
 * costs O(n log n) once after a change, read by the next page request of that collection.
 */
export class SortedKeyCache {
  private readonly sorted = new Map<string, KeyEntry[]>();

  /** The collection's entries in key order; `build` lists them when they are not known (or changed since). */
  entries(collection: string, build: () => KeyEntry[]): readonly KeyEntry[] {
    let e = this.sorted.get(collection);
    if (e === undefined) {
      e = build().sort((a, b) => compareSplit(a.key, b.key));
      this.sorted.set(collection, e);
    }
    return e;
  }

  /** Something was added to or removed from these collections (none named: any): listed again when next read. */
  invalidate(...collections: string[]): void {
    if (this.sorted.size === 0) return;
    if (collections.length === 0) this.sorted.clear();
    for (const c of collections) this.sorted.delete(c);
  }
}
