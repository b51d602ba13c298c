/**
 * A binary min-heap ordered by `at`, then by insertion order, so equal times pop first-in first-out
 * and simulations stay deterministic.
 */
export interface Timed { at: number }

export class TimeHeap<T extends Timed> {
  private items: T[] = [];
  private seqs: number[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    const seqs = this.seqs;
    const seq = this.nextSeq++;
    let i = items.length;
    items.push(item);
    seqs.push(seq);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (p.at < item.at || (p.at === item.at && seqs[parent]! < seq)) break;
      items[i] = p;
      seqs[i] = seqs[parent]!;
      i = parent;
    }
    items[i] = item;
    seqs[i] = seq;
  }

  pop(): T | undefined {
    const items = this.items;
    const seqs = this.seqs;
    const top = items[0];
    if (top === undefined) return undefined;
    const last = items.pop()!;
    const lastSeq = seqs.pop()!;
    const n = items.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && (items[r]!.at < items[l]!.at || (items[r]!.at === items[l]!.at && seqs[r]! < seqs[l]!))) c = r;
        const child = items[c]!;
        if (last.at < child.at || (last.at === child.at && lastSeq < seqs[c]!)) break;
        items[i] = child;
        seqs[i] = seqs[c]!;
        i = c;
      }
      items[i] = last;
      seqs[i] = lastSeq;
    }
    return top;
  }

  /** Everything still queued in the order it would pop (pushing it again in this order keeps that order). */
  ordered(): T[] {
    const idx = this.items.map((_, i) => i);
    idx.sort((x, y) => this.items[x]!.at - this.items[y]!.at || this.seqs[x]! - this.seqs[y]!);
    return idx.map((i) => this.items[i]!);
  }

  /** Everything still queued, in no particular order (for persistence). */
  toArray(): T[] {
    return [...this.items];
  }
}
