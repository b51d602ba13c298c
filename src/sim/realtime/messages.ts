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

/** A replica process (PostgreSQL, several at once) → fleet host: an engine's messages, plus its role. */
export type ReplicaMessage =
  | EngineMessage
  /** Its health endpoints listen on this loopback port. */
  | { type: 'listening'; port: number }
  /** It took the engine lease with this fencing token (wall-clock ms). */
  | { type: 'leading'; token: number; atMs: number }
  /** Its first engine commit as leader is durable (wall-clock ms): the end of a takeover. */
  | { type: 'firstCommit'; token: number; atMs: number };
