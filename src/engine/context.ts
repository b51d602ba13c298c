/**
 * What one tick (or one command) works with: the state, the instant, and the outbox of events and
 * actions that leave only after the tick's changes are committed.
 */
import type { EventBody, EngineEvent } from '../model/events.js';
import type { ExtensionInstance } from '../model/artifact.js';
import type { DriverAction } from './driver.js';
import { isoOf } from './clock.js';
import type { EngineState, RolloutState, Timer } from './state.js';

export interface TickContext {
  state: EngineState;
  now: number;
  events: EngineEvent[];
  actions: DriverAction[];
  /** Instances and rollouts changed in this tick, for the store's commit. */
  dirtyInstances: Set<ExtensionInstance>;
  dirtyRollouts: Set<RolloutState>;
}

/** A set that ignores additions: the in-memory store needs no list of what changed. */
class DiscardingSet<T> extends Set<T> {
  override add(): this {
    return this;
  }
}
const DISCARD_INSTANCES = new DiscardingSet<ExtensionInstance>();
const DISCARD_ROLLOUTS = new DiscardingSet<RolloutState>();

export function newContext(state: EngineState, now: number, trackChanges = true): TickContext {
  return trackChanges
    ? { state, now, events: [], actions: [], dirtyInstances: new Set(), dirtyRollouts: new Set() }
    : { state, now, events: [], actions: [], dirtyInstances: DISCARD_INSTANCES, dirtyRollouts: DISCARD_ROLLOUTS };
}

export function emit(ctx: TickContext, body: EventBody): void {
  const event = { seq: ++ctx.state.eventSeq, time: isoOf(ctx.now), ...body } as EngineEvent;
  ctx.events.push(event);
}

export function schedule(ctx: TickContext, timer: Timer): void {
  ctx.state.timers.push(timer);
}
