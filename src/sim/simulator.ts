/**
 * The discrete-event simulator: a virtual clock, the scenario's timed actions, the simulated fleet,
 * and the production engine. It jumps from one due thing to the next; nothing waits on the wall.
 */
import { ManualClock } from '../engine/clock.js';
import { Engine } from '../engine/engine.js';
import type { EventListener } from '../engine/engine.js';
import { SimDriver } from '../drivers/sim/sim-driver.js';
import type { SimDriverSnapshot } from '../drivers/sim/sim-driver.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Store } from '../store/store.js';
import type { DriverAction, Observation } from '../engine/driver.js';
import type { EngineState } from '../engine/state.js';
import { IN_FLIGHT } from '../engine/state.js';
import type { Scenario, TimedAction } from './scenario.js';
import { applyImageOps } from './scenario-images.js';
import { SimPatchSchedules } from './patch-schedules.js';

export interface SimOptions {
  store?: Store;
  /** Called with every tick's events, in order. */
  onEvents?: EventListener;
  /** Called now and then with the virtual time reached; the CLI shows it as progress. */
  onProgress?: (virtualMs: number, scenario: Scenario) => void;
  progressEveryTicks?: number;
  /** Machines whose waits are wall time (see `RolloutSettings.wallScale`); the simulated fleet has none. */
  wallScale?: (machineId: string) => number;
}

export interface SimResult {
  engine: Engine;
  driver: SimDriver;
  endMs: number;
  ticks: number;
  /** True when the run reached the horizon with a rollout still running. */
  hitHorizon: boolean;
  /** Scenario events later than the horizon, never applied. */
  actionsAfterHorizon: number;
}

export function runSimulation(scenario: Scenario, opts: SimOptions = {}): SimResult {
  return new Simulation(scenario, opts).run();
}

/**
 * A simulation that can be stepped, and whose engine can be replaced by one rebuilt from its store:
 * what a restart after a crash does. The simulated fleet (driver) and the clock live on.
 */
export class Simulation {
  readonly clock: ManualClock;
  driver: SimDriver;
  engine: Engine;
  private store: Store;
  private readonly horizon: number;
  /** When the last replication of the scenario's images completes. */
  private readonly lastReplicationMs: number;
  private readonly patchSchedules: SimPatchSchedules;
  private ticks = 0;
  /** Hands the fleet's observations to whichever engine runs now (one function for the whole run). */
  private readonly observe = (o: Observation): void => this.engine.observe(o);
  private hitHorizon = false;
  private done = false;

  constructor(readonly scenario: Scenario, private readonly opts: SimOptions = {}) {
    this.clock = new ManualClock(scenario.startMs);
    this.driver = new SimDriver(scenario.state.fleet, scenario.behaviour, () => this.clock.now(), scenario.seed);
    this.store = opts.store ?? new MemoryStore({ retainEvents: false });
    this.horizon = scenario.startMs + scenario.horizonMs;
    this.lastReplicationMs = lastReplication(scenario.actions);
    this.engine = this.newEngine(scenario.state);
    this.patchSchedules = new SimPatchSchedules(scenario.patchSchedules, scenario.patchSettings);
    this.holdSends();
  }

  /**
   * Group commit across sends: when the store can keep a group open across commits with actions, the
   * simulated fleet decides them when committed and holds them until the group is committed, which it
   * asks for before anything of them could be seen (drivers/sim/held-sends.ts).
   */
  private holdSends(): void {
    if (this.store.groupAcrossSends?.()) this.driver.holdUntilSent(() => this.store.flush?.());
  }

  private newEngine(state: EngineState): Engine {
    const engine = new Engine({
      clock: this.clock,
      driver: this.driver,
      store: this.store,
      state,
      profiles: this.scenario.profiles,
      ...(this.scenario.canaryRegions ? { canaryRegions: this.scenario.canaryRegions } : {}),
      ...(this.opts.wallScale ? { wallScale: this.opts.wallScale } : {}),
    });
    if (this.opts.onEvents) engine.onEvents(this.opts.onEvents);
    return engine;
  }

  /** Scenario events applied so far; kept in the engine state so it survives a restart. */
  private get next(): number {
    return this.engine.state.marks.scenarioActions ?? 0;
  }

  /** Runs one tick: the next due thing. False once the simulation is over. */
  step(): boolean {
    if (this.done) return false;
    const engine = this.engine;
    const actions = this.scenario.actions;
    // A replication completing after the last event still starts a rollout then (R64): wait for it.
    if (this.next >= actions.length && !anyRunning(engine) && !anyActing(engine) && this.clock.now() >= this.lastReplicationMs) return this.finish();
    // Schedules run while the scenario does (until its last event and rollout): they wake it when a window opens.
    const schedules = this.patchSchedules.size > 0 ? this.patchSchedules.nextAt(engine, this.clock.now()) : null;
    const t = earliest(earliest(earliest(actions[this.next]?.atMs ?? null, this.driver.nextAt()), engine.nextWakeAt()), schedules);
    if (t === null) return this.finish();
    if (t > this.horizon) {
      this.hitHorizon = anyRunning(engine);
      return this.finish();
    }
    this.clock.set(Math.max(t, this.clock.now()));
    applyDueActions(engine, actions, t);
    this.driver.deliverDue(t, this.observe);
    if (this.patchSchedules.size > 0) {
      this.driver.releaseHeld(); // the schedules read the machines' patches, which a held installation changes
      this.patchSchedules.step(engine, this.driver.patches, this.clock.now());
    }
    engine.tick();
    this.ticks++;
    if (this.opts.onProgress && this.ticks % (this.opts.progressEveryTicks ?? 50_000) === 0) this.opts.onProgress(this.clock.now(), this.scenario);
    return true;
  }

  run(): SimResult {
    while (this.step());
    return this.result();
  }

  /**
   * Runs with a store that commits asynchronously (PostgreSQL): after each tick, waits until its commit
   * is durable and its deliveries (sends, events) are done, so the run is the one `run` makes.
   */
  async runCommitted(settled: () => Promise<void>): Promise<SimResult> {
    while (this.step()) await settled();
    await settled();
    return this.result();
  }

  /**
   * Replaces the engine with one rebuilt from `store` (after a crash), and lets it recover. With
   * `fleet`, the simulated fleet is rebuilt too, from its seed and that snapshot (a restart of `serve`).
   */
  restart(store: Store & { pendingActions?(): DriverAction[] }, fleet?: SimDriverSnapshot): void {
    const state = store.load();
    if (!state) throw new Error('the store holds no state to restart from');
    this.driver.discardPrepared(); // the crashed engine's open group is lost with it
    this.store = store;
    if (fleet) {
      this.driver = new SimDriver(state.fleet, this.scenario.behaviour, () => this.clock.now(), this.scenario.seed);
      this.driver.restore(fleet);
    }
    this.holdSends();
    this.driver.useFleet(state.fleet); // machines added or removed from now on are the rebuilt state's
    this.engine = this.newEngine(state);
    this.engine.recover(store.pendingActions?.() ?? []);
  }

  result(): SimResult {
    return { engine: this.engine, driver: this.driver, endMs: this.clock.now(), ticks: this.ticks, hitHorizon: this.hitHorizon, actionsAfterHorizon: this.scenario.actions.length - this.next };
  }

  private finish(): false {
    this.done = true;
    // Group commit: the last group commits, and its events are published, before the run reports its end.
    this.store.flush?.();
    return false;
  }
}

function lastReplication(actions: readonly TimedAction[]): number {
  let last = Number.NEGATIVE_INFINITY;
  for (const a of actions) if (a.kind === 'updateImages') for (const o of a.ops) if (o.op === 'replicate') last = Math.max(last, o.completedAtMs);
  return last;
}

function earliest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

function anyRunning(engine: Engine): boolean {
  for (const r of engine.state.rollouts.values()) if (r.status === 'running') return true;
  return false;
}

/**
 * An attempt still in flight in a rollout that is over (cancelled, superseded, stopped): it finishes,
 * rollback included, and what it settles may start more (a catch-up). Looked at only once nothing runs.
 */
function anyActing(engine: Engine): boolean {
  for (const r of engine.state.rollouts.values()) {
    if (r.open === 0) continue;
    // A re-image waiting for the workload's approval (osRollingUpgradeDeferral) waits for no one in a simulation.
    for (const a of r.attempts.values()) if (IN_FLIGHT.has(a.status) && !(a.status === 'noticed' && a.dueAtMs === null)) return true;
  }
  return false;
}

/**
 * Applies the scenario's actions due at `now` that are not applied yet. Their count is a mark of the
 * engine's state, committed with each action's own effects, so a restart neither skips nor repeats one.
 */
export function applyDueActions(engine: Engine, actions: readonly TimedAction[], now: number): void {
  const state = engine.state;
  for (let next = state.marks.scenarioActions ?? 0; next < actions.length && actions[next]!.atMs <= now; next++) {
    state.marks.scenarioActions = next + 1;
    applyScenarioAction(engine, actions[next]!);
  }
}

/** Ticks when something is due: an idle tick would still commit (and fsync) a transaction. */
export function tickIfDue(engine: Engine, now: number): void {
  const wake = engine.nextWakeAt();
  if (engine.hasPendingObservations() || (wake !== null && wake <= now)) engine.tick();
}

/** Carries out one scenario event through the engine's commands. */
export function applyScenarioAction(engine: Engine, a: TimedAction): void {
  switch (a.kind) {
    case 'publish':
      engine.publishVersion(a.publisher, a.type, a.version);
      return;
    case 'supportAutomaticUpgrade':
      engine.setTypeSupport(a.publisher, a.type, a.supported);
      return;
    case 'setAutomaticUpgrade':
      engine.setAutomaticUpgrade(a.machineIds.filter((id) => engine.state.fleet.instances.get(a.artifactKey)?.has(id)), a.artifactKey, a.enabled, 'scenario');
      return;
    case 'manualUpgrade':
      engine.manualUpgrade({ artifact: a.artifact, machineIds: a.machineIds, toVersion: a.version, caller: 'scenario' });
      return;
    case 'putMaintenance':
      engine.putMaintenanceConfiguration(a.spec, 'scenario');
      return;
    case 'updateImages':
      engine.updateImages((catalog) => applyImageOps(catalog, a.ops));
      return;
    case 'publishPatchBaseline':
      engine.publishPatchBaseline(a.os, a.version, a.critical, 'scenario');
      return;
    case 'assignMaintenance': {
      // A served engine's fleet and configurations can change through the API meanwhile: skip what is gone.
      const f = engine.state.fleet;
      if (!engine.state.maintenance.configs.has(a.configuration)) return;
      for (const target of a.targets.filter((t) => f.machines.has(t) || f.scaleSets.has(t) || f.availabilitySets.has(t))) {
        if (a.assigned) engine.assignMaintenance(target, a.configuration, 'scenario');
        else engine.unassignMaintenance(target, a.configuration, 'scenario');
      }
      return;
    }
  }
}
