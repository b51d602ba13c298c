/**
 * The OS image instances of many machines, asked for in the fleet's order (sets in order, members in the
 * machines' order): that is the order the instances were made in, so each image's instances are read
 * along their map (`InOrderLookup`) instead of looked up one by one in a map of a million entries.
 * Adding instances meanwhile is safe: the map's iterator sees them at its end, and a miss is looked up.
 */
import type { ExtensionInstance } from '../../model/artifact.js';
import type { EngineState } from '../state.js';
import { InOrderLookup } from '../../util/in-order-lookup.js';

export class InstanceLookups {
  private readonly byKey = new Map<string, InOrderLookup<ExtensionInstance> | null>();

  constructor(private readonly state: Pick<EngineState, 'fleet'>) {}

  /** The instance of `key` on the machine, exactly as `getInstance`. */
  of(key: string, machineId: string): ExtensionInstance | undefined {
    let lookup = this.byKey.get(key);
    if (lookup === undefined) lookup = this.reader(key);
    return lookup === null ? this.state.fleet.instances.get(key)?.get(machineId) : lookup.of(machineId);
  }

  private reader(key: string): InOrderLookup<ExtensionInstance> | null {
    const byMachine = this.state.fleet.instances.get(key);
    // No instances yet: none to read in order (the first ones may be added right after this ask).
    const lookup = byMachine ? new InOrderLookup(byMachine, (i) => i.machineId) : null;
    if (lookup) this.byKey.set(key, lookup);
    return lookup;
  }
}
