/**
 * The fleet side of a real-time run: the simulated machines (a SimDriver on the accelerated clock)
 * and the engine process it forks, talks to over IPC, and may kill with SIGKILL and start again.
 * Observations due while no engine is up and running are lost, as in a network cut; recovery has to cope.
 */
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SimDriver } from '../../drivers/sim/sim-driver.js';
import type { DriverAction } from '../../engine/driver.js';
import type { Scenario } from '../scenario.js';
import { loadScenarioFile } from '../scenario.js';
import type { AcceleratedTime } from './accelerated-clock.js';
import { AcceleratedClock } from './accelerated-clock.js';
import type { EngineMessage, HostMessage } from './messages.js';

export interface FleetHostOptions {
  scenarioFile: string;
  dbFile: string;
  /** Simulated milliseconds per real millisecond. */
  factor: number;
  /** Real milliseconds between deliveries of due observations. */
  deliverEveryMs?: number;
}

export interface FleetHostStats {
  starts: number;
  kills: number;
  /** Kills before the run was done, by what the engine was doing: loading its code, opening the
   * database and recovering (importing, loading, resending, re-observing), or running. */
  killsWhileLoading: number;
  killsWhileRecovering: number;
  killsWhileRunning: number;
  /** Actions the engines resent on recovery. */
  resent: number;
  /** Keys the fleet executed, and resends of keys it had already (answered from memory or in flight). */
  executed: number;
  duplicates: number;
  delivered: number;
  /** Observations due while no engine was up to take them. */
  lost: number;
}

export type EnginePhase = 'loading' | 'recovering' | 'running';

const ENGINE_PROCESS = fileURLToPath(new URL('./engine-process.js', import.meta.url));

export class FleetHost {
  readonly scenario: Scenario;
  readonly time: AcceleratedTime;
  readonly clock: AcceleratedClock;
  readonly driver: SimDriver;
  /** Every key the fleet executed, with the action that carried it. */
  readonly executed = new Map<string, DriverAction>();
  readonly stats: FleetHostStats = { starts: 0, kills: 0, killsWhileLoading: 0, killsWhileRecovering: 0, killsWhileRunning: 0, resent: 0, executed: 0, duplicates: 0, delivered: 0, lost: 0 };
  /** What must never happen: a key done twice, a key reused for another action, an engine that died by itself. */
  readonly problems: string[] = [];
  private child: ChildProcess | null = null;
  private phase: EnginePhase | null = null;
  private doneSeen = false;
  /** Engines this host killed or stopped: their exits are expected. */
  private readonly ended = new WeakSet<ChildProcess>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: FleetHostOptions) {
    this.scenario = loadScenarioFile(opts.scenarioFile);
    this.time = { simStartMs: this.scenario.startMs, realStartMs: Date.now(), factor: opts.factor };
    this.clock = new AcceleratedClock(this.time);
    this.driver = new SimDriver(this.scenario.state.fleet, this.scenario.behaviour, () => this.clock.now(), this.scenario.seed);
    this.timer = setInterval(() => this.deliver(), opts.deliverEveryMs ?? 5);
  }

  /** True once an engine reported that every scenario action is applied and no rollout runs. */
  get done(): boolean {
    return this.doneSeen;
  }

  /** What the current engine process is doing, or null when none is up. */
  get engine(): EnginePhase | null {
    return this.phase;
  }

  /** Forks an engine process on the database. */
  start(): void {
    if (this.child) throw new Error('an engine process is already running');
    const { simStartMs, realStartMs, factor } = this.time;
    const child = fork(ENGINE_PROCESS, [this.opts.scenarioFile, this.opts.dbFile, String(simStartMs), String(realStartMs), String(factor)], {
      execArgv: [], // not the test runner's flags
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child = child;
    this.phase = 'loading';
    this.stats.starts++;
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr = (stderr + s).slice(-4000); });
    // Messages a killed engine wrote before it died still arrive: its actions really left it.
    child.on('message', (m: EngineMessage) => this.onMessage(child, m));
    child.on('error', () => {}); // a send racing the child's death; the exit handler judges the death
    child.on('exit', (code, signal) => {
      if (this.child === child) {
        this.child = null;
        this.phase = null;
      }
      if (!this.ended.has(child)) this.problems.push(`engine process ${child.pid} exited by itself (code ${code}, signal ${signal}): ${stderr.trim() || '(no output)'}`);
    });
  }

  /** SIGKILL: no chance to finish a write, flush a message or release the lock. Resolves once it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.stats.kills++;
    if (!this.doneSeen) {
      if (this.phase === 'loading') this.stats.killsWhileLoading++;
      else if (this.phase === 'recovering') this.stats.killsWhileRecovering++;
      else this.stats.killsWhileRunning++;
    }
    await this.end(child, () => child.kill('SIGKILL'));
  }

  /** Asks the engine to close its store and exit; kills it if it does not within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    const child = this.child;
    if (!child) return;
    await this.end(child, () => {
      if (child.connected) child.send({ type: 'stop' } satisfies HostMessage);
      else child.kill('SIGKILL');
      setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
    });
  }

  /** Stops delivering and kills any engine still running. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const child = this.child;
    if (child) await this.end(child, () => child.kill('SIGKILL'));
  }

  private end(child: ChildProcess, how: () => void): Promise<void> {
    this.ended.add(child);
    this.child = null;
    this.phase = null;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    // 'exit' comes after the process is reaped: only then is its lock's pid really free.
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    how();
    return gone;
  }

  private onMessage(child: ChildProcess, m: EngineMessage): void {
    switch (m.type) {
      case 'action':
        return this.onAction(m.action);
      case 'observe':
        this.driver.observe(m.machineIds);
        return;
      case 'opening':
        if (child === this.child) this.phase = 'recovering';
        return;
      case 'ready':
        this.stats.resent += m.resent;
        if (child === this.child) this.phase = 'running';
        return;
      case 'done':
        this.doneSeen = true;
        return;
      case 'fatal':
        this.problems.push(`engine process ${child.pid} failed: ${m.error}`);
        return;
    }
  }

  private onAction(action: DriverAction): void {
    const before = this.driver.stats.actions;
    this.driver.send(action);
    if (this.driver.stats.actions === before) {
      this.stats.duplicates++;
      const first = this.executed.get(action.key);
      if (!first) this.problems.push(`key ${action.key} answered as a duplicate but never executed`);
      else if (JSON.stringify(first) !== JSON.stringify(action)) this.problems.push(`key ${action.key} reused for another action: ${JSON.stringify(first)} then ${JSON.stringify(action)}`);
      return;
    }
    this.stats.executed++;
    if (this.executed.has(action.key)) this.problems.push(`key ${action.key} executed twice`);
    this.executed.set(action.key, action);
  }

  /** Hands the engine what the fleet has to say by now; with no engine up, it is lost. */
  private deliver(): void {
    const child = this.phase === 'running' ? this.child : null;
    this.driver.deliverDue(this.clock.now(), (obs) => {
      if (child?.connected) {
        child.send({ type: 'obs', obs } satisfies HostMessage);
        this.stats.delivered++;
      } else this.stats.lost++;
    });
  }
}
