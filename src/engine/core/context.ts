/**
 * What one tick (or one command) works with: the state, the instant, the outbox of events and actions
 * that leave only after the tick's changes are committed, and (for stores that keep their own copy)
 * the records the tick changed.
 */
import type { ExtensionInstance } from '../../model/artifact.js';
import type { EventBody, EngineEvent } from '../../model/events.js';
import type { Machine } from '../../model/fleet.js';
import { isoOf } from '../clock.js';
import { newTimer } from '../state.js';
import type { DriverAction } from '../driver.js';
import type { RolloutSettings } from '../core/settings.js';
import type {
  AttemptState, EngineState, GateRun, PhaseState, RegionState, RolloutState, Timer, TimerKind, UnitState,
} from '../state.js';

/** The records one tick changed; the Store writes exactly these in one transaction. */
export interface Changes {
  instances: Set<ExtensionInstance>;
  rollouts: Set<RolloutState>;
  phases: Set<PhaseState>;
  /** Rollouts created in this tick: their plans are written once. */
  created: RolloutState[];
  units: Set<UnitState>;
  regions: Set<RegionState>;
  gateRuns: Set<GateRun>;
  attempts: Set<AttemptState>;
  timersAdded: Timer[];
  timersFired: Timer[];
  /** Actions answered in this tick; ok null for actions given up (a newer install superseded them, their machine was deleted). */
  answered: Array<{ key: string; ok: boolean | null }>;
  /** Machines whose health signals changed. */
  health: Set<string>;
  catalog: boolean;
  /** Fleet changes from commands (written as they are in the state: present means put, absent means deleted). */
  fleetRegions: Set<string>;
  scaleSets: Set<string>;
  availabilitySets: Set<string>;
  machinesAdded: Machine[];
  machinesRemoved: Machine[];
  /** Instances removed: their rows go (an instance in `instances` is written only while it is in the fleet). */
  instancesRemoved: ExtensionInstance[];
  /** The enrolled subscriptions (R7) changed. */
  enrollment: boolean;
  /** Maintenance configurations written or deleted, by id. */
  maintenanceConfigs: Set<string>;
  /** Targets whose assigned configurations changed. */
  maintenanceTargets: Set<string>;
  /** Host updates published or applied (R73). */
  hostMaintenance: boolean;
  /** The image catalog changed (R64). */
  images: boolean;
  /** A release's evidence or hold changed. */
  releases: boolean;
}

export interface TickContext {
  state: EngineState;
  now: number;
  events: EngineEvent[];
  actions: DriverAction[];
  /** Null when the store shares the engine's working state and needs no list of changes. */
  changes: Changes | null;
  /** The engine's rollout settings, for rollouts a tick starts by itself (a catch-up after an install). */
  settings: RolloutSettings;
}

/** After a restart, how long health deadlines that passed while the engine was down wait for fresh reports. */
export const RECOVERY_GRACE_MS = 60_000;

/** A wait of `ms` for one machine, in engine time (see `RolloutSettings.wallScale`). */
export function machineWait(ctx: TickContext, machineId: string, ms: number): number {
  const scale = ctx.settings.wallScale?.(machineId) ?? 1;
  return scale === 1 ? ms : ms * scale;
}

export function newContext(state: EngineState, now: number, trackChanges = true, settings: RolloutSettings = {}): TickContext {
  return { state, now, events: [], actions: [], changes: trackChanges ? emptyChanges() : null, settings };
}

function emptyChanges(): Changes {
  return {
    instances: new Set(), rollouts: new Set(), phases: new Set(), created: [], units: new Set(), regions: new Set(), gateRuns: new Set(),
    attempts: new Set(), timersAdded: [], timersFired: [], answered: [], health: new Set(), catalog: false,
    fleetRegions: new Set(), scaleSets: new Set(), availabilitySets: new Set(), machinesAdded: [], machinesRemoved: [], instancesRemoved: [], enrollment: false,
    maintenanceConfigs: new Set(), maintenanceTargets: new Set(), hostMaintenance: false, images: false, releases: false,
  };
}

export function emit(ctx: TickContext, body: EventBody): void {
  const event = { seq: ++ctx.state.eventSeq, time: isoOf(ctx.now), ...body } as EngineEvent;
  ctx.events.push(event);
}

export function schedule(ctx: TickContext, timer: Omit<Timer, 'id'>): Timer {
  const t = newTimer(++ctx.state.timerSeq, timer);
  t.place = ctx.state.timers.push(t);
  ctx.changes?.timersAdded.push(t);
  return t;
}

/** `schedule` for the timers every machine's attempt sets (its action's timeout, its health deadline): no object to copy. */
export function scheduleTimer(ctx: TickContext, at: number, kind: TimerKind, rolloutId: string, ref: string, token: string | number, attempt: AttemptState | undefined): Timer {
  const t: Timer = { id: ++ctx.state.timerSeq, at, kind, rolloutId, ref, token, attempt, done: false, place: -1 };
  t.place = ctx.state.timers.push(t);
  ctx.changes?.timersAdded.push(t);
  return t;
}

/**
 * A timer that can no longer do anything (its action was answered, its attempt judged healthy) leaves
 * the store and the queue now: it costs no tick. Most timers end this way, an action's timeout 90 minutes
 * early: kept queued until then, a million of them outlived the young generation and were copied by the
 * collector, then promoted (issue 13).
 */
export function cancelTimer(ctx: TickContext, t: Timer): void {
  if (t.done) return;
  t.done = true;
  t.attempt = undefined; // a done timer is never read again (in case something else still holds it)
  ctx.state.timers.remove(t, t.place);
  ctx.changes?.timersFired.push(t);
}

// Marking what changed: cheap no-ops for the in-memory store.
export const changed = {
  instance(ctx: TickContext, x: ExtensionInstance): void { ctx.changes?.instances.add(x); },
  rollout(ctx: TickContext, x: RolloutState): void { ctx.changes?.rollouts.add(x); },
  phase(ctx: TickContext, x: PhaseState): void { ctx.changes?.phases.add(x); },
  unit(ctx: TickContext, x: UnitState): void { ctx.changes?.units.add(x); },
  region(ctx: TickContext, x: RegionState): void { ctx.changes?.regions.add(x); },
  gateRun(ctx: TickContext, x: GateRun): void { ctx.changes?.gateRuns.add(x); },
  attempt(ctx: TickContext, x: AttemptState): void { ctx.changes?.attempts.add(x); },
};
