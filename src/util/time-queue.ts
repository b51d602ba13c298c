/**
 * A priority queue ordered by `at`, then by insertion order: the same order as `TimeHeap`, built for
 * simulations where many items share an instant (a batch's timeouts, agents answering on whole
 * seconds). Items wait in one first-in first-out bucket per distinct time, and only the distinct times
 * go through a binary heap, so a push or pop at a time already queued costs no heap work at all.
 *
 * `InstantQueue` takes the time beside the item, so items need no `at` of their own (the simulated
 * fleet queues its answers and machine ids as they are, without a wrapper per delivery);
 * `TimeQueue` is the same queue for items that carry their time.
 */
import type { Timed } from './heap.js';

interface Bucket<T> {
  at: number;
  /** Its items from `head` to `tail`; the array keeps its length when the bucket is reused, so it need not grow again. */
  items: T[];
  tail: number;
  /** The next item to pop. */
  head: number;
}

/** Slots of the ring of buckets by whole second (a power of two: 4,096 s, about 68 minutes). */
const RING = 4096;
const RING_MASK = RING - 1;

/** The largest item array a spare bucket keeps. */
const SPARE_ITEMS = 4096;

/** What a removed item leaves in its bucket until the bucket's head passes it (never at the head of a bucket that has items). */
const HOLE: unknown = Object.freeze({ removed: true });

export class InstantQueue<T> {
  /**
   * The buckets by time. Times on whole seconds from the first time pushed are keyed by that count of
   * seconds, a small integer (V8 hashes it without boxing a double, about twice as fast); any other
   * time is keyed by itself, in a map of its own so the two kinds of key never meet.
   * A bucket on a whole second sits in `ring` at its second modulo RING when that slot is free, else in
   * `bySecond`: most times queued lie within an hour of each other, so most lookups are one array read.
   */
  private readonly ring: Array<Bucket<T> | undefined> = new Array<Bucket<T> | undefined>(RING).fill(undefined);
  private readonly bySecond = new Map<number, Bucket<T>>();
  private readonly byTime = new Map<number, Bucket<T>>();
  private origin = Number.NaN;
  /** Min-heap of the distinct times that have a bucket. */
  private readonly times: number[] = [];
  /** The bucket of the earliest time, or null when empty. */
  private first: Bucket<T> | null = null;
  /** The bucket the last push went to: pushes come in runs of one time. */
  private last: Bucket<T> | null = null;
  /** Emptied buckets kept for reuse, so a long run does not allocate one per instant. */
  private readonly spare: Bucket<T>[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The earliest time queued, or null when empty. */
  nextAt(): number | null {
    const b = this.first;
    return b === null ? null : b.at;
  }

  /** The item that pops next. */
  peekItem(): T | undefined {
    const b = this.first;
    return b === null ? undefined : b.items[b.head];
  }

  /** Queues `item` at `at`; returns its place in the bucket of `at`, which `removeAt` can take to find it at once. */
  pushAt(at: number, item: T): number {
    this.count++;
    let b = this.last;
    if (b === null || b.at !== at) {
      b = this.bucketAt(at) ?? null;
      if (b === null) {
        b = this.spare.pop() ?? { at, items: [], head: 0, tail: 0 };
        b.at = at;
        this.setBucket(at, b);
        this.pushTime(at);
        if (this.first === null || at < this.first.at) this.first = b;
      }
      this.last = b;
    }
    if (b.tail < b.items.length) b.items[b.tail] = item;
    else b.items.push(item);
    return b.tail++;
  }

  pop(): T | undefined {
    const b = this.first;
    if (b === null) return undefined;
    const item = b.items[b.head]!;
    b.items[b.head] = undefined as unknown as T; // let it go: the bucket may live on for a while
    b.head++;
    this.count--;
    if (b.items[b.head] === HOLE) skipHoles(b);
    if (b.head === b.tail) this.drop(b);
    return item;
  }

  /**
   * Takes `item`, queued at `at`, out of the queue now rather than when its time comes: at `place` (what
   * `pushAt` returned) when it is there, else found by identity in the bucket of `at` (a bucket can hold a
   * thousand items). False when it is not queued there. The order of the other items does not change.
   */
  removeAt(at: number, item: T, place = -1): boolean {
    const b = this.bucketAt(at);
    if (b === undefined) return false;
    const items = b.items;
    let i = place;
    if (!(i >= b.head && i < b.tail && items[i] === item)) {
      i = b.head;
      while (i < b.tail && items[i] !== item) i++;
      if (i === b.tail) return false;
    }
    this.count--;
    if (i !== b.head) {
      items[i] = HOLE as T;
      return true;
    }
    items[i] = undefined as unknown as T;
    b.head++;
    skipHoles(b);
    // An emptied bucket that is not the earliest stays until it is (its time is somewhere in the heap).
    if (b.head === b.tail && b === this.first) this.drop(b);
    return true;
  }

  /** Everything still queued with its time, in the order it would pop (pushing it again in this order keeps that order). */
  orderedAt(): Array<[number, T]> {
    const out: Array<[number, T]> = [];
    for (const at of [...this.times].sort((x, y) => x - y)) {
      const b = this.bucketAt(at)!;
      for (let i = b.head; i < b.tail; i++) if (b.items[i] !== HOLE) out.push([at, b.items[i]!]);
    }
    return out;
  }

  /** Everything still queued, in no particular order (for persistence). */
  toArray(): T[] {
    const out: T[] = [];
    const buckets = [...this.ring.filter((b) => b !== undefined), ...this.bySecond.values(), ...this.byTime.values()];
    for (const b of buckets) for (let i = b.head; i < b.tail; i++) if (b.items[i] !== HOLE) out.push(b.items[i]!);
    return out;
  }

  private drop(b: Bucket<T>): void {
    this.deleteBucket(b.at);
    this.popTime();
    if (this.last === b) this.last = null;
    // Its slots were cleared as they popped; a very large array is let go rather than kept spare.
    if (b.items.length > SPARE_ITEMS) b.items.length = 0;
    b.head = 0;
    b.tail = 0;
    if (this.spare.length < 64) this.spare.push(b);
    this.first = this.times.length > 0 ? this.bucketAt(this.times[0]!)! : null;
    // The next bucket may have been emptied by removals: it goes too.
    if (this.first !== null && this.first.head === this.first.tail) this.drop(this.first);
  }

  private bucketAt(at: number): Bucket<T> | undefined {
    const s = (at - this.origin) / 1000;
    if ((s | 0) !== s) return this.byTime.get(at);
    const b = this.ring[s & RING_MASK];
    if (b !== undefined && b.at === at) return b;
    return this.bySecond.size > 0 ? this.bySecond.get(s) : undefined;
  }

  private setBucket(at: number, b: Bucket<T>): void {
    if (Number.isNaN(this.origin)) this.origin = Math.floor(at / 1000) * 1000;
    const s = (at - this.origin) / 1000;
    if ((s | 0) !== s) this.byTime.set(at, b);
    else if (this.ring[s & RING_MASK] === undefined) this.ring[s & RING_MASK] = b;
    else this.bySecond.set(s, b);
  }

  private deleteBucket(at: number): void {
    const s = (at - this.origin) / 1000;
    if ((s | 0) !== s) this.byTime.delete(at);
    else if (this.ring[s & RING_MASK]?.at === at) this.ring[s & RING_MASK] = undefined;
    else this.bySecond.delete(s);
  }

  private pushTime(at: number): void {
    const times = this.times;
    let i = times.length;
    times.push(at);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = times[parent]!;
      if (p <= at) break;
      times[i] = p;
      i = parent;
    }
    times[i] = at;
  }

  private popTime(): void {
    const times = this.times;
    const last = times.pop()!;
    const n = times.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && times[r]! < times[l]! ? r : l;
      if (last <= times[c]!) break;
      times[i] = times[c]!;
      i = c;
    }
    times[i] = last;
  }
}

/** Moves a bucket's head past removed items, letting go of them. */
function skipHoles<T>(b: Bucket<T>): void {
  while (b.head < b.tail && b.items[b.head] === HOLE) {
    b.items[b.head] = undefined as unknown as T;
    b.head++;
  }
}

export class TimeQueue<T extends Timed> extends InstantQueue<T> {
  peek(): T | undefined {
    return this.peekItem();
  }

  /** Takes `item` out now (see `removeAt`; `place` is what `push` returned); false when it is not queued. */
  remove(item: T, place = -1): boolean {
    return this.removeAt(item.at, item, place);
  }

  /** Queues `item` at its time; returns its place (see `pushAt`). */
  push(item: T): number {
    return this.pushAt(item.at, item);
  }

  /** Everything still queued in the order it would pop (pushing it again in this order keeps that order). */
  ordered(): T[] {
    return this.orderedAt().map(([, item]) => item);
  }
}
