/**
 * A planned batch as a range of its unit's ordered machine ids (issue 13): a million-machine plan has ~220,000
 * batches, and an id array per batch (~19 MB) was the plan's largest share of what the garbage collector copies
 * while planning. The ids are copied into their own array only when a reader first asks for `machineIds` (the
 * engine, when the batch starts); `batchSize` counts them without that. Its JSON is a plain batch's, key for key:
 * stored plans, digests and the API see no difference, and a plan read back from JSON is plain objects again.
 */
import type { PlanBatch, PlanBatchWindow } from './types.js';

export class RangeBatch implements PlanBatch {
  /** Set by the timeline (windows.ts) on windowed units only; `declare`: no own property until then. */
  declare window?: PlanBatchWindow;
  /** The ids once copied out of `list` (never changed after: readers may keep it); `list` is then let go. */
  private ids: string[] | null = null;

  constructor(
    readonly id: string,
    readonly index: number,
    readonly updateDomain: number | null,
    private list: readonly string[] | null,
    private readonly from: number,
    readonly size: number,
  ) {}

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

/** How many machines a batch holds, without copying a range batch's ids. */
export function batchSize(b: PlanBatch): number {
  return b instanceof RangeBatch ? b.size : b.machineIds.length;
}
