/**
 * The in-memory Store: state lives in the engine's working set; the event log is kept (or only
 * counted, for very large simulations where a listener streams it elsewhere).
 */
import type { EngineEvent } from '../model/events.js';
import type { EngineState } from '../engine/state.js';
import type { Commit, Store } from './store.js';

export interface MemoryStoreOptions {
  /** Keep every event in memory (default true); simulations of a million machines stream instead. */
  retainEvents?: boolean;
}

export class MemoryStore implements Store {
  private state: EngineState | null = null;
  private readonly retained: EngineEvent[] = [];
  private readonly retain: boolean;
  readonly tracksChanges = false;

  constructor(opts: MemoryStoreOptions = {}) {
    this.retain = opts.retainEvents ?? true;
  }

  load(): EngineState | null {
    return this.state;
  }

  commit(c: Commit): void {
    this.state = c.state;
    if (this.retain) for (const e of c.events) this.retained.push(e);
  }

  /** The event log so far, in `seq` order. */
  events(): readonly EngineEvent[] {
    return this.retained;
  }

  close(): void {}
}
