/**
 * The discrete-event simulator: a virtual clock, the scenario's timed actions, the simulated fleet,
 * and the production engine. It jumps from one due thing to the next; nothing waits on the wall.
 */
import { ManualClock } from '../engine/clock.js';
import { Engine } from '../engine/engine.js';
import type { EventListener } from '../engine/engine.js';
import { SimDriver } from '../drivers/sim/sim-driver.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Store } from '../store/store.js';
import type { Scenario, TimedAction } from './scenario.js';

export interface SimOptions {
  store?: Store;
  /** Called with every tick's events, in order. */
  onEvents?: EventListener;
  /** Called now and then with the virtual time reached; the CLI shows it as progress. */
  onProgress?: (virtualMs: number, scenario: Scenario) => void;
  progressEveryTicks?: number;
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
  const clock = new ManualClock(scenario.startMs);
  const driver = new SimDriver(scenario.state.fleet, scenario.behaviour, () => clock.now(), scenario.seed);
  const store = opts.store ?? new MemoryStore({ retainEvents: false });
  const engine = new Engine({
    clock,
    driver,
    store,
    state: scenario.state,
    profiles: scenario.profiles,
    ...(scenario.canaryRegions ? { canaryRegions: scenario.canaryRegions } : {}),
  });
  if (opts.onEvents) engine.onEvents(opts.onEvents);
  const horizon = scenario.startMs + scenario.horizonMs;
  const actions = scenario.actions;
  let next = 0;
  let ticks = 0;
  const every = opts.progressEveryTicks ?? 50_000;
  let hitHorizon = false;

  for (;;) {
    if (next >= actions.length && !anyRunning(engine)) break;
    const t = earliest(earliest(actions[next]?.atMs ?? null, driver.nextAt()), engine.nextWakeAt());
    if (t === null) break;
    if (t > horizon) {
      hitHorizon = anyRunning(engine);
      break;
    }
    clock.set(Math.max(t, clock.now()));
    while (next < actions.length && actions[next]!.atMs <= t) apply(engine, actions[next++]!);
    driver.deliverDue(t, (o) => engine.observe(o));
    engine.tick();
    ticks++;
    if (opts.onProgress && ticks % every === 0) opts.onProgress(clock.now(), scenario);
  }
  return { engine, driver, endMs: clock.now(), ticks, hitHorizon, actionsAfterHorizon: actions.length - next };
}

function earliest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

function anyRunning(engine: Engine): boolean {
  for (const r of engine.state.rollouts.values()) if (r.status === 'running') return true;
  return false;
}

function apply(engine: Engine, a: TimedAction): void {
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
  }
}
