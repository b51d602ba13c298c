/**
 * Finds the machines of instances visited in the order they were added. Machines and their instances are
 * nearly always added in the same order (the fleet generator, both stores' loads along `ord`), so the
 * machine asked for is most often the next one in the machines' own order: a sequential read instead of a
 * lookup in a map of up to millions of entries (a few cache misses each: three quarters of the eligibility
 * pass at 10,000,000 machines). Any other order still gets the right machine, by lookup.
 */
import type { Machine } from '../../model/fleet.js';
import { InOrderLookup } from '../../util/in-order-lookup.js';

export class MachineCursor extends InOrderLookup<Machine> {
  constructor(machines: ReadonlyMap<string, Machine>) {
    super(machines, (m) => m.id);
  }
}
