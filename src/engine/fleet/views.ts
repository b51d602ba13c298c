/** What the API reads about an instance: its automatic-upgrade state (R80) and whether a user action is open. */
import type { AutoUpgradeState } from '../../catalog/catalog.js';
import { autoUpgradeState } from '../../catalog/catalog.js';
import type { ExtensionInstance } from '../../model/artifact.js';
import type { EngineState } from '../state.js';
import { instanceRef, isEnrolled } from '../state.js';

/** R80 for one instance, enrollment included (R7): enabled, disabled or notSupported. */
export function autoUpgradeStateOf(state: EngineState, inst: ExtensionInstance): AutoUpgradeState {
  const m = state.fleet.machines.get(inst.machineId);
  return autoUpgradeState(inst, state.catalog.getType(inst.publisher, inst.type), m ? isEnrolled(state, m) : false);
}

/** True while an install, update or uninstall the user asked for waits for its answer. */
export function userActionPending(state: EngineState, artifactKey: string, machineId: string): boolean {
  return state.installing.has(instanceRef(artifactKey, machineId));
}
