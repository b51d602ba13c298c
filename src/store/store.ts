/**
 * The Store persists what a tick changed, in one transaction, before the tick's actions leave.
 * The in-memory store keeps everything in the engine's working state; the SQLite store (its own
 * issue) writes the same commits to disk and loads them back after a restart.
 */
import type { Changes } from '../engine/core/context.js';
import type { DriverAction } from '../engine/driver.js';
import type { EngineState } from '../engine/state.js';
import type { EngineEvent } from '../model/events.js';

export interface Commit {
  state: EngineState;
  /** The engine's clock when the tick ran. */
  now: number;
  events: readonly EngineEvent[];
  /** Actions about to be sent: their idempotency keys are saved before they leave. */
  actions: readonly DriverAction[];
  /** What the tick changed; null for stores that share the engine's working state. */
  changes: Changes | null;
}

export interface Store {
  /** False when the store needs no list of changed records (it shares the engine's working state). */
  readonly tracksChanges: boolean;
  /** The state saved earlier, or null for a new store. */
  load(): EngineState | null;
  /** Persists one tick's changes atomically; throws if it cannot, and then nothing of the tick counts. */
  commit(commit: Commit): void;
  /**
   * Runs `deliver` (the commit's sends and event publication) once the outermost transaction holding
   * the last commit is durable: at once outside a transaction; at the outer COMMIT when the commit was a
   * savepoint of a caller's transaction; never when that transaction rolls back. Absent: at once.
   */
  afterCommit?(deliver: () => void): void;
  /**
   * Registers who to tell when a caller's transaction that held an engine commit rolls back: the
   * engine's memory is then ahead of the store. Absent: the store never undoes a commit it accepted.
   */
  onCommitUndone?(listener: (reason: string) => void): void;
  /**
   * Group commit (SQLite): commits the open group of engine commits now and runs the deliveries it held.
   * Absent, or with no group open: nothing to do.
   */
  flush?(): void;
  /**
   * Group commit across sends: asks a store that groups commits to keep its group open across commits
   * with actions; true if it will. The caller must then `flush` before anything of those actions can be
   * seen (the simulator's fleet holds what it decided until then: drivers/sim/held-sends.ts).
   */
  groupAcrossSends?(): boolean;
  /** After a failed write: accept commits again (the next one finds out whether the fault is gone). */
  reopen?(): void;
  close(): void;
}
