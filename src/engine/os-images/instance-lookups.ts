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

  /**
   * `oncePerMachine`: the caller asks for each machine's instance of an image at most once. An image with
   * no instances at its first ask then has none for any later ask either (only the machine asked about
   * gets one), and is answered without a lookup: the publication's pass that makes a million of them.
   */
  constructor(private readonly state: Pick<EngineState, 'fleet'>, private readonly oncePerMachine = false) {}

  /** The instance of `key` on the machine, exactly as `getInstance`. */
  of(key: string, machineId: string): ExtensionInstance | undefined {
    let lookup = this.byKey.get(key);
    if (lookup === undefined) lookup = this.reader(key);
    if (lookup !== null) return lookup.of(machineId);
    return this.oncePerMachine ? undefined : this.state.fleet.instances.get(key)?.get(machineId);
  }

  private reader(key: string): InOrderLookup<ExtensionInstance> | null {
    const byMachine = this.state.fleet.instances.get(key);
    if (byMachine && byMachine.size > 0) {
      const lookup = new InOrderLookup(byMachine, (i) => i.machineId);
      this.byKey.set(key, lookup);
      return lookup;
    }
    // None yet. Asked once per machine: none later either. Otherwise the first ones may come right after this ask.
    if (this.oncePerMachine) this.byKey.set(key, null);
    return null;
  }
}
