/**
 * A planned batch as a range of its unit's ordered machine ids (issue 13): a million-machine plan has ~220,000
 * batches, and an id array per batch (~19 MB) was a large share of what the garbage collector copies while planning.
 * The ids are copied into their own array only when a reader first asks for `machineIds` (the engine, when the batch
 * starts); `batchSize` counts them without that. Its JSON is a plain batch's, key for key: stored plans, digests and
 * the API see no difference, and a plan read back from JSON is plain objects again.
 */
import type { PlanBatch, PlanBatchWindow } from './types.js';

class RangeBatch implements PlanBatch {
  declare id: string;
  declare index: number;
  declare updateDomain: number | null;
  /** Set by the timeline (windows.ts) on windowed units only. */
  declare window?: PlanBatchWindow;
  /** `size` ids from `from` of the unit's list; the list is let go once the ids are copied out. */
  declare list: readonly string[] | null;
  declare from: number;
  declare size: number;
  /** The ids once copied out (never changed after: readers may keep the array). */
  declare ids: string[] | null;

  get machineIds(): string[] {
    if (this.ids === null) {
      const out: string[] = new Array(this.size);
      for (let i = 0; i < this.size; i++) out[i] = this.list![this.from + i]!;
      this.ids = out;
      this.list = null;
    }
    return this.ids;
  }

  /** A plain batch's keys in a plain batch's order. */
  toJSON(): PlanBatch {
    // Not kept: storing the plan must not copy out every batch's ids for good.
    const machineIds = this.ids ?? this.list!.slice(this.from, this.from + this.size);
    const plain: PlanBatch = { id: this.id, index: this.index, updateDomain: this.updateDomain, machineIds };
    if (this.window !== undefined) plain.window = this.window;
    return plain;
  }
}

/**
 * A batch of `size` ids from `from` of `list` (kept, not copied: `list` must not change). An object literal, not `new
 * RangeBatch`: V8 allocates a literal whose objects survive straight in the old generation (allocation-site pretenuring),
 * while objects made by `new` are copied by the scavenger twice; with `new` the plan promoted more than with id arrays.
 */
export function rangeBatch(id: string, index: number, updateDomain: number | null, list: readonly string[], from: number, size: number): PlanBatch {
  return { __proto__: RangeBatch.prototype, ids: null, id, index, updateDomain, list, from, size } as unknown as RangeBatch;
}

/** How many machines a batch holds, without copying a range batch's ids. */
export function batchSize(b: PlanBatch): number {
  return b instanceof RangeBatch ? b.size : b.machineIds.length;
}
