/**
 * The fleet side of a real-time run with several replicas on PostgreSQL: the simulated machines, and
 * the replica processes it forks, kills (SIGKILL), pauses (SIGSTOP) and resumes. Actions from any
 * replica reach the fleet (only a leader's commits produce them); observations go to the replica that
 * leads. It records what must never happen (a key executed twice or reused, a replica dying by itself)
 * and what a paused replica sent once resumed (each must be a key committed before the pause).
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
import type { HostMessage, ReplicaMessage } from './messages.js';

const REPLICA_PROCESS = fileURLToPath(new URL('./replica-process.js', import.meta.url));

export interface Replica {
  child: ChildProcess;
  name: string;
  port: number | null;
  /** The fencing token it leads with, once it took the lease. */
  token: number | null;
  ready: boolean;
  firstCommitAtMs: number | null;
  /** Set when it was resumed after a pause: any action it sends afterwards is a fault. */
  resumedAtMs: number | null;
  exit: { code: number | null; signal: string | null } | null;
  stderr: string;
}

export class ReplicaHost {
  readonly scenario: Scenario;
  readonly time: AcceleratedTime;
  readonly clock: AcceleratedClock;
  readonly driver: SimDriver;
  readonly executed = new Map<string, DriverAction>();
  readonly problems: string[] = [];
  readonly replicas: Replica[] = [];
  duplicates = 0;
  /** Actions a replica sent after it was resumed from a pause. */
  readonly afterResume: DriverAction[] = [];
  private doneSeen = false;
  private readonly expectedEnd = new WeakSet<ChildProcess>();
  private readonly timer: NodeJS.Timeout;
  private started = 0;

  constructor(private readonly opts: { scenarioFile: string; url: string; factor: number; leaseMs: number }) {
    this.scenario = loadScenarioFile(opts.scenarioFile);
    this.time = { simStartMs: this.scenario.startMs, realStartMs: Date.now(), factor: opts.factor };
    this.clock = new AcceleratedClock(this.time);
    this.driver = new SimDriver(this.scenario.state.fleet, this.scenario.behaviour, () => this.clock.now(), this.scenario.seed);
    this.timer = setInterval(() => this.deliver(), 5);
  }

  get done(): boolean {
    return this.doneSeen;
  }

  /** The replica that leads now (the newest token among the live ready ones). */
  get leader(): Replica | null {
    let best: Replica | null = null;
    for (const r of this.replicas) if (r.exit === null && r.ready && r.token !== null && (!best || r.token > best.token!)) best = r;
    return best;
  }

  get live(): Replica[] {
    return this.replicas.filter((r) => r.exit === null);
  }

  start(): Replica {
    const { simStartMs, realStartMs, factor } = this.time;
    const child = fork(REPLICA_PROCESS, [this.opts.scenarioFile, this.opts.url, String(simStartMs), String(realStartMs), String(factor), String(this.opts.leaseMs)], {
      execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const r: Replica = { child, name: `replica-${++this.started}`, port: null, token: null, ready: false, firstCommitAtMs: null, resumedAtMs: null, exit: null, stderr: '' };
    this.replicas.push(r);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (r.stderr = (r.stderr + s).slice(-4000)));
    child.on('message', (m: ReplicaMessage) => this.onMessage(r, m));
    child.on('error', () => {});
    child.on('exit', (code, signal) => {
      r.exit = { code, signal };
      // Exit 7 is a replica stepping down after it lost the lease: expected of one that was paused.
      if (!this.expectedEnd.has(child) && !(code === 7 && r.resumedAtMs !== null)) {
        this.problems.push(`${r.name} (pid ${child.pid}) exited by itself (code ${code}, signal ${signal}): ${r.stderr.trim() || '(no output)'}`);
      }
    });
    return r;
  }

  async kill(r: Replica): Promise<void> {
    this.expectedEnd.add(r.child);
    if (r.exit) return;
    const gone = new Promise<void>((resolve) => r.child.once('exit', () => resolve()));
    r.child.kill('SIGKILL');
    await gone;
  }

  pause(r: Replica): void {
    r.child.kill('SIGSTOP');
  }

  resume(r: Replica): void {
    r.resumedAtMs = Date.now();
    r.child.kill('SIGCONT');
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const r of this.replicas) {
      if (r.exit) continue;
      try {
        r.child.kill('SIGCONT');
      } catch {
        /* gone */
      }
      await this.kill(r);
    }
  }

  private onMessage(r: Replica, m: ReplicaMessage): void {
    switch (m.type) {
      case 'listening':
        r.port = m.port;
        return;
      case 'leading':
        r.token = m.token;
        return;
      case 'ready':
        r.ready = true;
        return;
      case 'firstCommit':
        r.firstCommitAtMs ??= m.atMs;
        return;
      case 'action':
        // A commit that was durable before the pause may still deliver after it: its key must be in the actions table.
        if (r.resumedAtMs !== null) this.afterResume.push(m.action);
        return this.onAction(m.action);
      case 'observe':
        this.driver.observe(m.machineIds);
        return;
      case 'done':
        this.doneSeen = true;
        return;
      case 'fatal':
        this.problems.push(`${r.name} failed: ${m.error}`);
        return;
      case 'opening':
        return;
    }
  }

  private onAction(action: DriverAction): void {
    const before = this.driver.stats.actions;
    this.driver.send(action);
    if (this.driver.stats.actions === before) {
      this.duplicates++;
      const first = this.executed.get(action.key);
      if (!first) this.problems.push(`key ${action.key} answered as a duplicate but never executed`);
      else if (JSON.stringify(first) !== JSON.stringify(action)) this.problems.push(`key ${action.key} reused for another action`);
      return;
    }
    if (this.executed.has(action.key)) this.problems.push(`key ${action.key} executed twice`);
    this.executed.set(action.key, action);
  }

  /** Hands the leader what the fleet has to say by now; with no leader up, it is lost (a network cut). */
  private deliver(): void {
    const child = this.leader?.child;
    this.driver.deliverDue(this.clock.now(), (obs) => {
      if (child?.connected) child.send({ type: 'obs', obs } satisfies HostMessage);
    });
  }
}
