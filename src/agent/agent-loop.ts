/**
 * `phasewise agent run`: three loops over one journal, plus the health monitor and the IMDS endpoint.
 *
 *   poller ── GET goalstate (If-None-Match) every pollIntervalSeconds; 5xx/network: backoff + jitter
 *     │ a new, valid goal state (a bad one is reported and the current one kept)
 *     ▼
 *   worker ── convergeOnce(goal) serially; again when a download retry is due; at start it resumes
 *     │        the operations the journal has in flight (nothing is re-run that finished)
 *     ▼
 *   reporter ─ PUT status at once on any change, else every statusIntervalSeconds (the heartbeat);
 *              a failed report is retried, and the retry sends the latest document
 */
import { statSync } from 'node:fs';
import { hostname, release, type } from 'node:os';
import { join } from 'node:path';
import type { GoalState } from '../protocol/agent-wire.js';
import { agentSeat } from './agent-seat.js';
import { AppHealthMonitor } from './app-health.js';
import { convergeOnce } from './converge.js';
import { AGENT_VERSION, loadCredentials } from './enrollment.js';
import type { AgentCredentials } from './enrollment.js';
import { pastEpochsAfter, staleGoalState } from './goal-state-order.js';
import { GoalStateError, parseGoalState } from './goal-state-schema.js';
import { MAX_OUTPUT_FILE_BYTES, trimRunOutputs } from './handler-process.js';
import { OrphanReaper } from './orphan-reaper.js';
import { ImdsServer } from './imds-server.js';
import { Journal } from './journal.js';
import { agentDir, enrollmentPath } from './layout.js';
import type { AgentDirs } from './layout.js';
import { DEFAULT_POLICY, readPolicy } from './local-policy.js';
import type { LocalPolicy } from './local-policy.js';
import { DEFAULT_TIMEOUTS_S } from './operation-context.js';
import type { AgentRuntime } from './operation-context.js';
import { downloadPackage } from './package-download.js';
import { approvePatchReboot, noteBoot, patchEvents, patchPass, readBootId } from './patch-operation.js';
import type { PatchRuntime } from './patch-operation.js';
import { DEFAULT_BIN_DIRS, detectManager } from './patching/commands.js';
import type { ManagerConfig } from './patching/commands.js';
import { ServerClient } from './server-client.js';
import { buildStatusReport, fingerprint } from './status-report.js';
import { monotonicMs, steadyClock } from './steady-clock.js';

export interface AgentOptions {
  dirs: AgentDirs;
  /** 0 disables the scheduled-events endpoint. */
  imdsPort: number;
  /** Multiplies handler timeouts, the terminal-status wait and health probe intervals (tests use < 1). */
  timeScale: number;
  log: (line: string) => void;
  /** Wall clock (default Date.now); deadlines and stamps use the steady clock built on it (steady-clock.ts). */
  now?: () => number;
  /** Monotonic ms since boot (default CLOCK_MONOTONIC); with `now` it makes the agent's steady clock. */
  mono?: () => number;
  /** Guest OS patching: which package manager, where its binaries are, how to reboot (docs/agent.md). */
  patching?: Partial<ManagerConfig> & { rebootCommand?: string; timeScale?: number };
}

function mtimeOf(path: string): number | null {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

export const DEFAULT_REBOOT_COMMAND = 'systemctl reboot';
/** Seconds a package install is assumed to take at most: none starts with less left of the window. */
const PACKAGE_BUDGET_S = 5 * 60;
const PATCH_COMMAND_TIMEOUT_S = 20 * 60;

/** A sleep that `wake()` or `stop()` can end early. */
class Waker {
  private wakeUp: (() => void) | null = null;
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake(), Math.max(0, ms));
      this.wakeUp = () => {
        clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
    });
  }
  wake(): void {
    this.wakeUp?.();
  }
}

const STATUS_WAIT_S = 15 * 60;
const STATUS_SCAN_S = 6;
/** Idle handler output files are looked for every this many status scans (a minute), and at start-up. */
const IDLE_OUTPUT_SWEEP_EVERY = 10;
const MAX_BACKOFF_MS = 5 * 60_000;
/** Seconds an orphan handler command has between SIGTERM and SIGKILL (systemd's stop timeout is 90). */
const ORPHAN_KILL_AFTER_S = 10;

export class Agent {
  private readonly journal: Journal;
  /** Replaced when the machine is enrolled again while the agent runs (reloadIfReenrolled). */
  private client: ServerClient;
  private readonly seat: string;
  private enrollmentMtime: number | null = null;
  private readonly health: AppHealthMonitor;
  private readonly rt: AgentRuntime;
  private readonly prt: PatchRuntime;
  private readonly imds: ImdsServer | null;
  private readonly orphans: OrphanReaper;
  /** The steady clock: every deadline, wait and backoff, immune to wall-clock steps. */
  private readonly now: () => number;
  /** The wall clock, for what is compared with file times or shown to the server as the time of day. */
  private readonly wall: () => number;
  private stopped = false;
  private readonly pollWaker = new Waker();
  private readonly workWaker = new Waker();
  private readonly reportWaker = new Waker();
  private workPending = true;
  private goalStateError: string | null = null;
  private processedGoalStateId = 0;
  private sweeps = 0;
  /** Convergence passes ended since start: after the first, the journal names every step that may run. */
  private passesDone = 0;
  private lastSent: { fp: string; at: number } | null = null;
  imdsPort = 0;

  constructor(
    private readonly opts: AgentOptions,
    private creds: AgentCredentials,
  ) {
    this.wall = opts.now ?? (() => Date.now());
    this.now = steadyClock({ wall: this.wall, mono: opts.mono ?? monotonicMs, bootId: readBootId(), file: join(agentDir(opts.dirs), 'clock.json'), log: opts.log });
    this.journal = new Journal(opts.dirs, opts.log);
    this.seat = agentSeat(opts.dirs.lib, readBootId());
    this.client = new ServerClient(creds, this.seat);
    this.enrollmentMtime = mtimeOf(enrollmentPath(opts.dirs));
    this.health = new AppHealthMonitor(this.now, 1000 * opts.timeScale, () => this.reportWaker.wake());
    const scaled = (s: number) => Math.max(50, Math.round(s * 1000 * opts.timeScale));
    const timeoutsMs = Object.fromEntries(Object.entries(DEFAULT_TIMEOUTS_S).map(([k, s]) => [k, scaled(s)])) as AgentRuntime['timeoutsMs'];
    const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    this.rt = {
      dirs: opts.dirs,
      journal: this.journal,
      now: this.now,
      sleep,
      pollMs: 100,
      log: opts.log,
      timeoutsMs,
      statusWaitMs: scaled(STATUS_WAIT_S),
      statusPollMs: Math.min(scaled(STATUS_SCAN_S), 1000),
      fetchPackage: (ref, dest) => downloadPackage(ref, dest, { agent: this.client.agent, attempts: 5, backoffMs: 1000, timeoutMs: 60_000, sleep }),
      health: this.health,
      policy: () => this.policy(),
      wireAddress: new URL(creds.enrollment.serverUrl).host,
      downloadRetryMs: 5_000,
    };
    // An orphan gets what its own step would have had at most: the longest handler timeout.
    this.orphans = new OrphanReaper(opts.dirs, this.now, Math.max(...Object.values(timeoutsMs)), scaled(ORPHAN_KILL_AFTER_S), opts.log);
    const pcfg = opts.patching ?? {};
    const patchScale = pcfg.timeScale ?? opts.timeScale;
    const cfg: ManagerConfig = { manager: pcfg.manager ?? 'auto', binDirs: pcfg.binDirs ?? DEFAULT_BIN_DIRS, ...(pcfg.rebootFlag ? { rebootFlag: pcfg.rebootFlag } : {}) };
    this.prt = {
      dirs: opts.dirs, journal: this.journal, now: this.now, sleep, pollMs: 100, log: opts.log,
      manager: detectManager(cfg),
      binDirs: cfg.binDirs,
      rebootCommand: pcfg.rebootCommand ?? DEFAULT_REBOOT_COMMAND,
      timeScale: patchScale,
      packageBudgetMs: PACKAGE_BUDGET_S * 1000 * patchScale,
      commandTimeoutMs: Math.max(5_000, PATCH_COMMAND_TIMEOUT_S * 1000 * opts.timeScale),
      readBootId,
      changed: () => this.reportWaker.wake(),
    };
    this.imds = opts.imdsPort > 0 ? new ImdsServer({ port: opts.imdsPort, events: () => this.events(), approve: (ids) => this.approve(ids) }) : null;
  }

  private goal(): GoalState | null {
    return this.journal.state.goalState;
  }

  /** IMDS scheduled events: the control plane's (re-images) and the agent's own (patch reboots). */
  private events(): GoalState['scheduledEvents'] {
    const fromServer = this.goal()?.scheduledEvents ?? { DocumentIncarnation: 0, Events: [] };
    const own = patchEvents(this.journal, this.creds.enrollment.resourceId);
    // The server's notice of a reboot the agent announced too (same EventId): the agent's own says where it is.
    const mine = new Set(own.map((e) => e.EventId.toLowerCase()));
    const server = fromServer.Events.filter((e) => !mine.has(e.EventId.toLowerCase()));
    // Both counters only grow, so their sum changes whenever either list does.
    return { DocumentIncarnation: fromServer.DocumentIncarnation + this.journal.state.patches.eventSeq, Events: [...server, ...own] };
  }

  /** Approvals of the agent's own reboot are kept here; the rest go to the control plane. */
  private async approve(ids: string[]): Promise<void> {
    const fromServer = new Set((this.goal()?.scheduledEvents.Events ?? []).map((e) => e.EventId.toLowerCase()));
    const local = ids.filter((id) => approvePatchReboot(this.journal, id));
    // The server's notices are approved there too (it keeps the approval with the notice).
    const remote = ids.filter((id) => !local.includes(id) || fromServer.has(id.toLowerCase()));
    if (local.length > 0) this.workWaker.wake();
    if (remote.length > 0) await this.client.approveEvents(remote);
  }

  /** Local policy; an unreadable policy file turns extension management off (the safe reading). */
  private policy(): LocalPolicy {
    try {
      return readPolicy(this.opts.dirs);
    } catch (err) {
      this.opts.log(`local policy unreadable, extensions disabled until it is fixed: ${(err as Error).message}`);
      return { ...DEFAULT_POLICY, extensionsEnabled: false };
    }
  }

  async start(): Promise<void> {
    if (this.imds) {
      try {
        this.imdsPort = await this.imds.start();
      } catch (err) {
        // Scheduled events are a convenience for the workload; the agent's own job goes on without them.
        this.opts.log(`scheduled events endpoint not started on 127.0.0.1:${this.opts.imdsPort}: ${(err as Error).message}`);
      }
    }
    this.adoptGoalStateOf(this.creds.enrollment.agentId);
    noteBoot(this.journal, readBootId());
    this.trimOutputs();
    if (!this.prt.manager) this.opts.log('patching: no package manager found (apt-get, dnf, yum, zypper); patch operations will fail saying so');
    const goal = this.goal();
    if (goal) {
      this.health.configure(goal.extensions);
      this.opts.log(`resuming with goal state ${goal.goalStateId} from the journal`);
    }
    void this.pollLoop();
    void this.workLoop();
    void this.reportLoop();
  }

  /**
   * Goal state ids and ETags count per agent: after `agent connect --force` (a new agent id) the held goal
   * state of the earlier enrollment made the new one's first goal states "older … of the same server
   * epoch" (refused until its id passed the old one), and its ETag could draw a 304. It is dropped; the
   * operations in flight finish from their own snapshots at the next pass. A file without the agent id
   * (an agent before this) is taken as this agent's.
   */
  private adoptGoalStateOf(agentId: string): void {
    const heldFor = this.journal.state.goalStateAgentId;
    if (heldFor === agentId) return;
    try {
      if (heldFor === null) this.journal.commitGoalState({ goalStateAgentId: agentId });
      else {
        this.journal.commitGoalState({ goalState: null, etag: null, goalStateAgentId: agentId });
        this.opts.log(`enrolled as agent ${agentId} now (the goal state held was agent ${heldFor}'s): dropped it; the new agent's goal state is fetched`);
      }
    } catch (err) {
      this.opts.log(`cannot record the agent id in the goal state file (${(err as Error).message}); tried again at the next start`);
    }
  }

  /**
   * `agent connect --force` while the agent runs (a revoked credential, a cloned machine given its own
   * identity) wrote a new enrollment the running agent never read: it went on with the old credential,
   * refused for ever, until someone restarted it. enrollment.json is written last, so once its time
   * changes the whole new credential is there; it is taken before the next poll.
   */
  private reloadIfReenrolled(): void {
    const m = mtimeOf(enrollmentPath(this.opts.dirs));
    if (m === null || m === this.enrollmentMtime) return;
    this.enrollmentMtime = m;
    let next: AgentCredentials;
    try {
      next = loadCredentials(this.opts.dirs);
    } catch (err) {
      this.opts.log(`the enrollment changed but cannot be used (${(err as Error).message}); going on as agent ${this.creds.enrollment.agentId}`);
      return;
    }
    const was = this.creds.enrollment;
    if (next.enrollment.agentId === was.agentId && next.enrollment.thumbprint === was.thumbprint && next.enrollment.serverUrl === was.serverUrl) return;
    const old = this.client;
    this.client = new ServerClient(next, this.seat);
    this.creds = next;
    old.close();
    this.opts.log(`enrolled again: agent ${next.enrollment.agentId} for ${next.enrollment.resourceId} at ${next.enrollment.serverUrl} from now on (was agent ${was.agentId})`);
    this.adoptGoalStateOf(next.enrollment.agentId);
  }

  /** Handler output written while nobody trimmed it (the agent down, the worker busy elsewhere) is cut here. */
  private trimOutputs(): void {
    // Idle output files (a step's end only empties them) are looked for at start-up and every tenth sweep:
    // finding who holds them reads every process's open files. Exit and pid files no open step owns are
    // removed only once a pass has ended since start: until then a step whose journal record a cut write
    // lost is known by its run files alone (runStep picks it up from them instead of running it again).
    const idle = this.sweeps++ % IDLE_OUTPUT_SWEEP_EVERY === 0;
    const openRuns = idle && this.passesDone > 0 ? this.journal.openRunIds() : undefined;
    const { trimmed, removed, leftovers, orphans } = trimRunOutputs(this.opts.dirs, MAX_OUTPUT_FILE_BYTES, idle, openRuns);
    if (orphans) this.orphans.note(orphans);
    if (trimmed > 0) this.opts.log(`cut ${trimmed} handler output file(s) in the run folder to ${MAX_OUTPUT_FILE_BYTES} bytes`);
    if (removed > 0) this.opts.log(`removed ${removed} handler output file(s) no step or process holds any more`);
    if (leftovers > 0) this.opts.log(`removed ${leftovers} exit or pid file(s) of handler commands no open operation owns`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pollWaker.wake();
    this.workWaker.wake();
    this.reportWaker.wake();
    this.health.stop();
    await this.imds?.stop();
    // Best effort, briefly: a server that does not answer (or predates the route) only means the next boot waits for the lease.
    await this.client.releaseSeat(2_000).catch(() => undefined);
    this.client.close();
  }

  private backoff(failures: number): number {
    const cap = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures, 10));
    return cap / 2 + Math.random() * (cap / 2);
  }

  private accept(body: Buffer, etag: string | null): void {
    let gs: GoalState;
    try {
      gs = parseGoalState(body);
    } catch (err) {
      if (!(err instanceof GoalStateError)) throw err;
      this.journal.commitGoalState({ etag });
      this.goalStateError = `${err.message}; keeping goal state ${this.goal()?.goalStateId ?? 'none'}`;
      this.opts.log(this.goalStateError);
      this.reportWaker.wake();
      return;
    }
    const held = this.goal();
    const stale = staleGoalState(held, gs, this.journal.state.pastEpochs);
    if (stale) {
      // Kept with its ETag like a bad one: the server is asked again with it, and answers 304 only while it still says that.
      this.journal.commitGoalState({ etag });
      this.goalStateError = `${stale}; keeping goal state ${held?.goalStateId ?? 'none'}`;
      this.opts.log(this.goalStateError);
      this.reportWaker.wake();
      return;
    }
    // Written before it is taken (commitGoalState): a failed write leaves the old ETag, so the poll fetches it again.
    this.journal.commitGoalState({ goalState: gs, etag, pastEpochs: pastEpochsAfter(held, gs, this.journal.state.pastEpochs) });
    this.goalStateError = null;
    this.health.configure(gs.extensions);
    this.opts.log(`goal state ${gs.goalStateId} (${gs.extensions.length} extensions)`);
    this.workPending = true;
    this.workWaker.wake();
    this.reportWaker.wake();
  }

  private async pollLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let wait = (this.goal()?.pollIntervalSeconds ?? this.creds.enrollment.pollIntervalSeconds ?? 15) * 1000;
      this.reloadIfReenrolled();
      try {
        const answer = await this.client.goalState(this.journal.state.etag);
        if (answer.kind === 'new') this.accept(answer.body, answer.etag);
        else if (answer.kind === 'tooLarge') {
          this.goalStateError = `${answer.message}; keeping goal state ${this.goal()?.goalStateId ?? 'none'}`;
          this.opts.log(this.goalStateError);
          this.reportWaker.wake();
        }
        // 'unchanged', and 'none' (a newly enrolled machine has no goal state yet): poll on, no backoff.
        failures = 0;
      } catch (err) {
        failures++;
        wait = this.backoff(failures);
        this.opts.log(`goal state poll failed (${(err as Error).message}); next try in ${Math.round(wait / 1000)} s`);
      }
      await this.pollWaker.wait(wait);
    }
  }

  private async workLoop(): Promise<void> {
    let retryAt: number | null = null;
    let failures = 0;
    while (!this.stopped) {
      const goal = this.goal();
      // An approved reboot starts now, whenever the approval came (also while the last pass was running).
      const reboot = this.journal.state.patches.current?.reboot;
      const due = (retryAt !== null && this.now() >= retryAt) || (reboot?.state === 'announced' && reboot.approved);
      if (goal && (this.workPending || due) && goal.requiredFeatures.length === 0) {
        this.workPending = false;
        try {
          const r = await convergeOnce(this.rt, goal);
          const rebootAt = await patchPass(this.prt, goal);
          retryAt = r.retryAt === null ? rebootAt : rebootAt === null ? r.retryAt : Math.min(r.retryAt, rebootAt);
          this.processedGoalStateId = goal.goalStateId;
          this.passesDone++;
          failures = 0;
        } catch (err) {
          // An unexpected fault (disk full …): the journal holds what was done; try the pass again later.
          failures++;
          this.opts.log(`convergence pass failed: ${(err as Error).stack ?? (err as Error).message}`);
          retryAt = this.now() + this.backoff(failures);
        }
        this.reportWaker.wake();
        continue;
      }
      await this.workWaker.wait(retryAt !== null ? Math.max(0, retryAt - this.now()) : 60_000);
    }
  }

  private report() {
    const h = this.health;
    return buildStatusReport({
      dirs: this.opts.dirs,
      journal: this.journal,
      goal: this.goal(),
      processedGoalStateId: this.processedGoalStateId,
      goalStateError: this.goalStateError,
      policy: this.policy(),
      health: h.active() && h.extensionName ? { state: h.state(), extensionName: h.extensionName } : null,
      agentVersion: AGENT_VERSION,
      os: { computerName: hostname(), osName: type(), osVersion: release() },
      nowMs: this.wall(), // heartbeat.log's mtime is a wall-clock time; the report's stamps are the time of day
    });
  }

  private async reportLoop(): Promise<void> {
    let failures = 0;
    const scan = Math.max(100, Math.round(STATUS_SCAN_S * 1000 * this.opts.timeScale));
    while (!this.stopped) {
      this.trimOutputs();
      const report = this.report();
      const fp = fingerprint(report);
      const heartbeatMs = (this.goal()?.statusIntervalSeconds ?? this.creds.enrollment.statusIntervalSeconds ?? 60) * 1000;
      let wait = scan;
      if (!this.lastSent || this.lastSent.fp !== fp || this.now() - this.lastSent.at >= heartbeatMs) {
        try {
          await this.client.putStatus(report);
          this.lastSent = { fp, at: this.now() };
          failures = 0;
        } catch (err) {
          failures++;
          wait = Math.min(this.backoff(failures), heartbeatMs);
          this.opts.log(`status report failed (${(err as Error).message}); retrying in ${Math.round(wait / 1000)} s`);
        }
      }
      await this.reportWaker.wait(wait);
    }
  }
}
