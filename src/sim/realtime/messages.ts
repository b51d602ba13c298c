/** What the fleet host and the engine process say to each other over the IPC channel. */
import type { DriverAction, Observation } from '../../engine/driver.js';

/** Engine process → fleet host. */
export type EngineMessage =
  | { type: 'action'; action: DriverAction }
  | { type: 'observe'; machineIds: string[] }
  /** Loaded; about to open the database. */
  | { type: 'opening' }
  /** Started and recovered; `resumed` when it continued from state already in the database. */
  | { type: 'ready'; resumed: boolean; resent: number; observed: number }
  /** Every scenario action applied and no rollout running. */
  | { type: 'done' }
  | { type: 'fatal'; error: string };

/** Fleet host → engine process. */
export type HostMessage =
  | { type: 'obs'; obs: Observation }
  | { type: 'stop' };
