/**
 * Runs the engine in real time: feeds it the driver's observations (simulated fleet, real agents) and the scenario's timed
 * actions as their instants come, and ticks it whenever something is due. The clock may run faster
 * than the wall clock (a demo or a test rehearses weeks in minutes).
 */
import type { Clock } from '../engine/clock.js';
import type { Engine } from '../engine/engine.js';
import type { DeliveringDriver } from '../drivers/routing-driver.js';
import type { TimedAction } from '../sim/scenario.js';
import { applyDueActions, tickIfDue } from '../sim/simulator.js';

/** The longest real pause between two looks at what is due; bounds the lag after an outside change. */
const MAX_IDLE_MS = 200;
/** After a failed commit, real time between two resynchronisations from the store: doubling up to the cap. */
const RESYNC_FIRST_MS = 250;
const RESYNC_MAX_MS = 30_000;

export interface RuntimeLog {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Work outside the engine that runs on the engine's clock (InGuestPatch schedules). */
export interface Stepper {
  step(now: number): void;
  nextAt(now: number): number | null;
}

export class EngineRuntime {
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private readonly steppers: Stepper[] = [];
  private resyncDelayMs = RESYNC_FIRST_MS;

  constructor(
    readonly engine: Engine,
    readonly clock: Clock,
    private readonly factor: number,
    private readonly driver: DeliveringDriver | null,
    private readonly actions: readonly TimedAction[],
    private readonly log: RuntimeLog,
    /**
     * Makes the engine's memory the store's again after it halted (see `Engine.resync`); throws while the
     * store cannot be read. Null: a halted engine stays halted.
     */
    private readonly resyncFromStore: (() => void) | null = null,
  ) {}

  addStepper(s: Stepper): void {
    this.steppers.push(s);
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Something changed from outside (an API command): look again soon. */
  kick(): void {
    if (!this.stopped) this.schedule(1);
  }

  /** Runs everything due now; exposed so tests and the bench can drive it step by step. */
  step(): void {
    const engine = this.engine;
    if (engine.haltedBecause) return;
    const now = this.clock.now();
    applyDueActions(engine, this.actions, now);
    this.driver?.deliverDue(now, (o) => engine.observe(o));
    for (const s of this.steppers) s.step(now);
    tickIfDue(engine, now);
  }

  private loop(): void {
    this.timer = null;
    if (this.stopped) return;
    if (this.engine.haltedBecause) return this.resync();
    try {
      this.step();
    } catch (err) {
      this.log.error({ err }, 'engine step failed; nothing of it is stored');
    }
    if (this.engine.haltedBecause) {
      // Read the store back after a pause that doubles while the fault lasts (a full disk stays full a while).
      this.schedule(this.resyncDelayMs);
      this.resyncDelayMs = Math.min(RESYNC_MAX_MS, this.resyncDelayMs * 2);
      return;
    }
    this.resyncDelayMs = RESYNC_FIRST_MS;
    const now = this.clock.now();
    const next = [this.engine.nextWakeAt(), this.driver?.nextAt() ?? null, this.nextActionAt(), ...this.steppers.map((s) => s.nextAt(now))].filter((t): t is number => t !== null);
    const simDelay = next.length > 0 ? Math.min(...next) - now : Number.POSITIVE_INFINITY;
    this.schedule(Math.min(MAX_IDLE_MS, Math.max(1, simDelay / this.factor)));
  }

  /** The engine halted: read the store back (again later while that fails) and carry on from it. */
  private resync(): void {
    const reason = this.engine.haltedBecause;
    if (!this.resyncFromStore) {
      this.log.error({ reason }, 'engine halted');
      return;
    }
    try {
      this.resyncFromStore();
      this.log.info({ reason }, 'engine resynchronised from the store after it halted; it advances again');
      this.schedule(1);
    } catch (err) {
      this.log.error({ err, reason, retryInMs: this.resyncDelayMs }, 'engine halted; the store cannot be read back yet');
      this.schedule(this.resyncDelayMs);
      this.resyncDelayMs = Math.min(RESYNC_MAX_MS, this.resyncDelayMs * 2);
    }
  }

  private nextActionAt(): number | null {
    const i = this.engine.state.marks.scenarioActions ?? 0;
    return this.actions[i]?.atMs ?? null;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.loop(), delayMs);
  }
}
