import type { RolloutProfileName } from '../../model/events.js';
import type { RolloutProfile } from '../../planner/profile.js';

/** Engine-wide settings rollouts are created with. */
export interface RolloutSettings {
  /** Profile overrides by name, e.g. shorter bakes in a scenario. */
  profiles?: Partial<Record<RolloutProfileName, Partial<RolloutProfile>>>;
  canaryRegions?: string[];
  /** Who automatic actions are attributed to in the log. */
  platformCaller?: string;
}
