/**
 * Dense integer indices for ids seen in a stream, and growable integer arrays indexed by them. A log
 * names a million machines: state per machine kept in typed arrays costs one map lookup per event
 * (the id's index) instead of one per map, and adds no objects for the collector to walk.
 */

/** Ids to 0, 1, 2, … in the order first seen. */
export class DenseIds {
  private readonly index = new Map<string, number>();

  get size(): number {
    return this.index.size;
  }

  /** The index of `id`, given a new one when first seen. */
  of(id: string): number {
    let i = this.index.get(id);
    if (i === undefined) this.index.set(id, (i = this.index.size));
    return i;
  }
}

/** Integers by dense index, 0 where never set; grows as larger indices are set. */
export class DenseInts {
  private values: Int32Array;

  constructor(initial = 1024) {
    this.values = new Int32Array(initial);
  }

  get(i: number): number {
    return i < this.values.length ? this.values[i]! : 0;
  }

  set(i: number, value: number): void {
    if (i >= this.values.length) this.grow(i);
    this.values[i] = value;
  }

  private grow(i: number): void {
    let n = this.values.length * 2;
    while (n <= i) n *= 2;
    const next = new Int32Array(n);
    next.set(this.values);
    this.values = next;
  }
}
