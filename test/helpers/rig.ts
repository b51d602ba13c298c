/**
 * The real engine on a manual clock, with a driver that only records actions: the test plays the
 * machines (answers actions, reports health) and moves time by hand.
 */
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/engine/clock.js';
import type { Driver, DriverAction } from '../../src/engine/driver.js';
import { Engine } from '../../src/engine/engine.js';
import type { ExtensionInstance } from '../../src/model/artifact.js';
import type { EngineEvent, EventType } from '../../src/model/events.js';
import type { HealthSignals } from '../../src/model/health.js';
import type { Scenario } from '../../src/sim/scenario.js';
import { compileScenario } from '../../src/sim/scenario.js';
import { MemoryStore } from '../../src/store/memory-store.js';

export const SEC = 1000;
export const MIN = 60 * SEC;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;
export const KEY = 'extension:contoso.agent';
export const SETTINGS = { workspaceId: 'ws-42', level: 3, tags: ['a', 'b'] };

export class RecordingDriver implements Driver {
  readonly sent: DriverAction[] = [];
  send(action: DriverAction): void {
    this.sent.push(action);
  }
}

/** The real engine on a manual clock; the test plays the machines. Times are offsets from the start. */
export class Rig {
  readonly clock: ManualClock;
  readonly driver = new RecordingDriver();
  readonly store = new MemoryStore();
  readonly engine: Engine;
  readonly startMs: number;
  private readonly answered = new Set<string>();

  constructor(raw: Record<string, unknown>, prepare?: (s: Scenario) => void) {
    const scenario = compileScenario(raw, 'rig');
    prepare?.(scenario);
    this.startMs = scenario.startMs;
    this.clock = new ManualClock(scenario.startMs);
    this.engine = new Engine({ clock: this.clock, driver: this.driver, store: this.store, state: scenario.state, profiles: scenario.profiles });
  }

  get events(): readonly EngineEvent[] {
    return this.store.events();
  }

  of<T extends EventType>(type: T, machineId?: string): Array<Extract<EngineEvent, { type: T }>> {
    return this.events.filter((e) => e.type === type && (machineId === undefined || (e as { machineId?: string }).machineId === machineId)) as Array<Extract<EngineEvent, { type: T }>>;
  }

  iso(offsetMs: number): string {
    return new Date(this.startMs + offsetMs).toISOString();
  }

  /** Moves the clock to `offsetMs` after the start and lets the engine work. */
  at(offsetMs: number): void {
    this.clock.set(this.startMs + offsetMs);
    this.engine.tick();
  }

  publish(version: string): void {
    this.engine.publishVersion('Contoso', 'Agent', { version, os: ['linux', 'windows'], regions: null, publishedAtMs: this.clock.now(), critical: false, digest: null });
  }

  actions(machineId: string, kind?: 'upgrade' | 'rollback'): DriverAction[] {
    return this.driver.sent.filter((a) => a.machineId === machineId && (kind === undefined || a.kind === kind));
  }

  /** Queues the machine's answer to its open action of `kind`; the next `at` applies it. */
  answer(machineId: string, kind: 'upgrade' | 'rollback', ok: boolean, reason?: string): DriverAction {
    const open = this.actions(machineId, kind).filter((a) => !this.answered.has(a.key));
    assert.equal(open.length, 1, `expected one open ${kind} action for ${machineId}, found ${open.length}`);
    const a = open[0]!;
    this.answered.add(a.key);
    this.engine.observe({ kind: 'actionResult', key: a.key, machineId, ok, version: ok ? a.toVersion : a.fromVersion, ...(reason ? { reason } : {}) });
    return a;
  }

  report(machineId: string, signals: HealthSignals): void {
    this.engine.observe({ kind: 'health', machineId, signals });
  }

  inst(machineId: string): ExtensionInstance {
    const i = this.engine.state.fleet.instances.get(KEY)?.get(machineId);
    assert.ok(i, `no instance on ${machineId}`);
    return i;
  }

  batchesOf(setId: string) {
    return this.of('batch.started').filter((b) => b.scope.setId === setId);
  }
}

