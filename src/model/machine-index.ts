/**
 * A dense integer index per machine of a fleet, given when the machine joins it and kept for its id.
 * The engine carries a machine's index with its actions (`MACHINE_HINT`), and the simulated fleet with
 * its health reports, so that each side finds the machine by an array read instead of a lookup among a
 * million id strings. The index lives in this process only: it is never stored nor sent, and a fleet
 * rebuilt from a store may number its machines differently, so an index from elsewhere is a hint that
 * is checked against the machine id (`find`) before it is used.
 */
import type { Machine } from './fleet.js';

/**
 * Key of a machine's index on a `DriverAction` or an `Observation`. A symbol, so that JSON (the store's
 * action bodies, the realtime hosts' wire) and structured clones leave it out.
 */
export const MACHINE_HINT: unique symbol = Symbol('machineIndex');

export class MachineIndex {
  private readonly slots = new Map<string, number>();
  /** The id each index was given to (an index is never given to another id). */
  private readonly ids: string[] = [];
  /** The machine by index; undefined while it is out of the fleet. */
  private readonly machines: Array<Machine | undefined> = [];

  /** Indices given so far (machines in the fleet and out of it). */
  get size(): number {
    return this.ids.length;
  }

  /** Puts `m` at its id's index (a new one the first time the id is seen) and returns the index. */
  add(m: Machine): number {
    let i = this.slots.get(m.id);
    if (i === undefined) {
      i = this.ids.length;
      this.slots.set(m.id, i);
      this.ids.push(m.id);
      this.machines.push(m);
    } else this.machines[i] = m;
    return i;
  }

  /** Takes the machine out; its index stays its id's, for when it comes back. */
  remove(id: string): void {
    const i = this.slots.get(id);
    if (i !== undefined) this.machines[i] = undefined;
  }

  /** The index of a machine in the fleet, or undefined. */
  of(id: string): number | undefined {
    const i = this.slots.get(id);
    return i !== undefined && this.machines[i] !== undefined ? i : undefined;
  }

  /**
   * The machine `id` when `i` is its index and it is in the fleet, else undefined (look it up by id then). Reads the
   * machine, not the ids: the side that sent the hint has just read it, so the check costs no cache miss.
   */
  find(i: number, id: string): Machine | undefined {
    const m = this.machines[i];
    return m !== undefined && m.id === id ? m : undefined;
  }

  /** The id index `i` was given to, or undefined when none has it. */
  idAt(i: number): string | undefined {
    return this.ids[i];
  }

  /** The machine at index `i`, or undefined when it is out of the fleet (as `FleetState.machines.get` of its id). */
  at(i: number): Machine | undefined {
    return this.machines[i];
  }
}
