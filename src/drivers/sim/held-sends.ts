/**
 * Group commit across sends, on the simulated fleet's side (issue 15, "SQLite keeps up"). The engine
 * tells the fleet of a commit's actions as soon as the commit is written (`Driver.prepare`), before the
 * group holding it is durable. The fleet decides their outcomes then, exactly when and in the order it
 * would have if each commit were durable at once, so the run and its log are the same. What it decided
 * stays held: before anything of it could be seen (an answer falls due, or a health report of a machine
 * it touched), the fleet asks for the group to be committed, which sends (releases) every held action.
 * So no action has any effect the engine can observe before its key is durable, while a group stays open
 * across the ticks that send, until the earliest answer is due (see docs/store.md, "Group commit").
 */
import type { Observation } from '../../engine/driver.js';

export class HeldSends {
  /** Keys decided and not sent yet. */
  readonly keys = new Set<string>();
  /** Machines those actions touched: a report of one must wait for the release. */
  readonly machines = new Set<string>();
  /** The earliest time anything decided for a held action falls due. */
  minDue = Number.POSITIVE_INFINITY;
  /** Answers queued for held actions, and keys first seen by them: what a rollback takes back. */
  readonly answers: Observation[] = [];
  readonly fresh: string[] = [];
  /** Broken marks set or cleared for held actions, in order: [machine, artifact key, was it marked before]. */
  readonly marks: Array<[string, string, boolean]> = [];

  /** `release` commits the store's open group; its deliveries send (and so release) every held action. */
  constructor(readonly release: () => void) {}

  get empty(): boolean {
    return this.keys.size === 0;
  }

  /** A delivery due at `at` for `machineId` (an action's answer: null) can only be seen after the release. */
  blocks(at: number, machineId: string | null): boolean {
    return at >= this.minDue || (machineId !== null && this.machines.has(machineId));
  }

  queued(at: number, answer: Observation | null): void {
    if (at < this.minDue) this.minDue = at;
    if (answer) this.answers.push(answer);
  }

  /** One held action sent; once none is left, nothing is held. */
  sent(key: string): boolean {
    if (!this.keys.delete(key)) return false;
    if (this.keys.size === 0) this.clear();
    return true;
  }

  clear(): void {
    this.keys.clear();
    this.machines.clear();
    this.minDue = Number.POSITIVE_INFINITY;
    this.answers.length = 0;
    this.fresh.length = 0;
    this.marks.length = 0;
  }
}
