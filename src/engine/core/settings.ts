import type { RolloutProfileName } from '../../model/events.js';
import type { RolloutProfile } from '../../planner/profile.js';

/** Engine-wide settings rollouts are created with. */
export interface RolloutSettings {
  /** Profile overrides by name, e.g. shorter bakes in a scenario. */
  profiles?: Partial<Record<RolloutProfileName, Partial<RolloutProfile>>>;
  canaryRegions?: string[];
  /** Who automatic actions are attributed to in the log. */
  platformCaller?: string;
  /**
   * Engine milliseconds per wall-clock millisecond for the waits of one machine (action timeouts, health
   * waits). Real agents live in wall time: under an accelerated clock their waits are stretched by the
   * clock's factor, so a 5-minute health wait is 5 real minutes. Absent (the simulator): 1 for every machine.
   */
  wallScale?: (machineId: string) => number;
}
