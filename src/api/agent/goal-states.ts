/**
 * Each agent's goal state, precomputed: the body and its ETag stay in memory until something that
 * goes into them changes (the driver's goal, the engine's instances or notices of that machine, a
 * package upload), so an unchanged poll costs a map lookup and a 304. `goalStateId` increases only
 * when the content changes (a hash of it is persisted with the goal, so a restart keeps the id).
 * Long polls wait here and are released on change or when the server closes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { patchRunId } from '../../engine/attempts/upgrade.js';
import type { EngineState } from '../../engine/state.js';
import type { EngineEvent } from '../../model/events.js';
import type { AgentDriver } from '../../drivers/agent/agent-driver.js';
import type { AgentGoal, AgentRecord } from '../../drivers/agent/agent-store.js';
import { platformRebootEventId, scheduledEventId } from '../../model/patches.js';
import type { GoalState, GoalStateExtension, ScheduledEvent } from '../../protocol/agent-wire.js';
import { LIMITS } from '../../protocol/agent-wire.js';
import { dependencyLevels } from './dependency-levels.js';
import { encryptToCertificate } from './protected-settings.js';
import type { PackageStore } from './package-store.js';

/** How long the agent gives an upgraded extension to report healthy before it rolls back on its own. */
export const HEALTH_GATE_SECONDS = 300;

export interface GoalStateDeps {
  driver: AgentDriver;
  state: () => EngineState;
  packages: PackageStore;
  /** The sealed protected settings of an extension (null: none) and how to open them. */
  sealedProtectedSettings: (machineId: string, extensionName: string) => string | null;
  openSealed: (sealed: string) => unknown;
  /** ARM's `provisionAfterExtensions` of an extension on a machine (extension names; empty: none). */
  provisionAfter: (machineId: string, extensionName: string) => readonly string[];
  baseUrl: () => string;
  pollIntervalSeconds: number;
  statusIntervalSeconds: number;
  wallNow: () => number;
}

export interface CachedGoalState {
  goalStateId: number;
  etag: string;
  body: string;
  events: ScheduledEvent[];
}

/** Long polls one agent may hold open at once (docs/agent-server.md); a credential is not a licence for hundreds of sockets and timers. */
export const MAX_LONG_POLLS_PER_AGENT = 4;

export class GoalStates {
  private readonly cache = new Map<string, CachedGoalState>();
  private readonly dirty = new Set<string>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private closed = false;
  /**
   * This server process's epoch (agent-wire GoalState.epoch): ids are only compared within one. A restore
   * from backup sets the ids back and takes a restart, so agents see a new epoch and follow the restored ids.
   */
  readonly epoch = randomUUID();

  constructor(private readonly deps: GoalStateDeps) {
    deps.driver.onGoalChanged((id) => this.invalidate(id));
  }

  /** Something in this agent's goal state may have changed. Waiters see the new one if it did. */
  invalidate(agentId: string): void {
    this.dirty.add(agentId);
    const w = this.waiters.get(agentId);
    if (!w || w.size === 0) return;
    const before = this.cache.get(agentId)?.etag;
    queueMicrotask(() => {
      if (this.current(agentId)?.etag === before) return;
      this.release(agentId);
    });
  }

  invalidateMachine(machineId: string): void {
    const a = this.deps.driver.agentOfMachine(machineId);
    if (a) this.invalidate(a.agentId);
  }

  invalidateAll(): void {
    for (const a of this.deps.driver.agents()) this.invalidate(a.agentId);
  }

  current(agentId: string): CachedGoalState | undefined {
    const cached = this.cache.get(agentId);
    if (cached && !this.dirty.has(agentId)) return cached;
    const agent = this.deps.driver.agent(agentId);
    if (!agent) return undefined;
    this.dirty.delete(agentId);
    return this.rebuild(agent, cached);
  }

  /** Resolves when the goal state's ETag is no longer `etag`, after `ms`, or when the server closes. */
  wait(agentId: string, etag: string, ms: number, gone: AbortSignal): Promise<void> {
    if (this.closed || this.current(agentId)?.etag !== etag) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.waiters.get(agentId);
      if (!set) this.waiters.set(agentId, (set = new Set()));
      // One agent holds at most MAX_LONG_POLLS_PER_AGENT: the oldest is answered now (a 304, polled again).
      // The newest is the live one: an agent whose connection died unseen behind a NAT left the old.
      if (set.size >= MAX_LONG_POLLS_PER_AGENT) set.values().next().value!();
      const done = () => {
        clearTimeout(timer);
        gone.removeEventListener('abort', done);
        set!.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      gone.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  /**
   * R83: a schedule's reboot notice (`machine.reboot.announced`) becomes a `Reboot` scheduled event of the
   * machine, with the same EventId and NotBefore, until its run completes or is skipped. Kept with the goal
   * (persisted), so a restart still shows it.
   */
  noteEvents(events: readonly EngineEvent[]): void {
    for (const e of events) {
      if (e.type !== 'machine.reboot.announced' && e.type !== 'patch.run.completed' && e.type !== 'patch.run.skipped') continue;
      // A platform patch rollout's notices are read from its attempts instead (noticesOf), like re-images.
      if (e.type === 'machine.reboot.announced' && this.deps.state().rollouts.has(rolloutOfRun(e.runId))) continue;
      const agent = this.deps.driver.agentOfMachine(e.machineId);
      const goal = agent ? this.deps.driver.goal(agent.agentId) : undefined;
      if (!agent || !goal) continue;
      const notices = (goal.rebootNotices ??= {});
      if (e.type === 'machine.reboot.announced') {
        notices[e.eventId] = { runId: e.runId, notBeforeMs: Date.parse(e.notBefore), reason: e.reason, approved: false };
        // A run whose end was never recorded (the server restarted during it) leaves its notice: a day on, it goes.
        for (const id of Object.keys(notices)) if (notices[id]!.notBeforeMs < Date.parse(e.time) - STALE_NOTICE_MS) delete notices[id];
        // Bounded: a machine that never answers its runs keeps only the latest notices.
        const ids = Object.keys(notices).sort((a, b) => notices[a]!.notBeforeMs - notices[b]!.notBeforeMs);
        for (const id of ids.slice(0, Math.max(0, ids.length - MAX_REBOOT_NOTICES))) delete notices[id];
      } else {
        const gone = Object.keys(notices).filter((id) => notices[id]!.runId === e.runId);
        if (gone.length === 0) continue;
        for (const id of gone) delete notices[id];
      }
      this.deps.driver.saveGoal(agent.agentId);
      this.invalidate(agent.agentId);
    }
  }

  /** The machine approved these events (IMDS StartRequests): its announced reboots among them are marked so; returns how many were reboots. */
  approveReboots(agentId: string, eventIds: readonly string[]): number {
    const notices = this.deps.driver.goal(agentId)?.rebootNotices ?? {};
    let n = 0;
    let changed = false;
    for (const id of Object.keys(notices)) {
      if (!eventIds.some((x) => x.toLowerCase() === id.toLowerCase())) continue;
      n++;
      changed ||= !notices[id]!.approved;
      notices[id]!.approved = true;
    }
    if (changed) {
      this.deps.driver.saveGoal(agentId);
      this.invalidate(agentId);
    }
    return n;
  }

  /** Releases every long poll (the server is closing). */
  close(): void {
    this.closed = true;
    for (const id of [...this.waiters.keys()]) this.release(id);
  }

  private release(agentId: string): void {
    const set = this.waiters.get(agentId);
    if (!set) return;
    for (const done of [...set]) done();
  }

  private rebuild(agent: AgentRecord, cached: CachedGoalState | undefined): CachedGoalState {
    const goal = this.deps.driver.goal(agent.agentId)!;
    const state = this.deps.state();
    const plan = this.plan(agent, goal, state);
    const hash = createHash('sha256').update(JSON.stringify(plan)).digest('hex');
    if (cached && hash === goal.contentHash) return cached;
    if (hash !== goal.contentHash) {
      goal.goalStateId++;
      goal.contentHash = hash;
      this.deps.driver.saveGoal(agent.agentId);
    }
    const extensions: GoalStateExtension[] = plan.extensions.map(({ sealed, publicSettings, ...e }) => ({
      ...e,
      settings: {
        publicSettings,
        // Encrypted to the machine's own certificate: never in clear on the wire (nor on disk: sealed there).
        protectedSettings: sealed ? encryptToCertificate(this.deps.openSealed(sealed), agent.machineCertPem) : null,
        protectedSettingsCertThumbprint: sealed ? agent.thumbprint : null,
      },
    }));
    const body: GoalState = {
      schemaVersion: '1.0',
      goalStateId: goal.goalStateId,
      epoch: this.epoch,
      activityId: randomUUID(),
      createdAt: new Date(this.deps.wallNow()).toISOString(),
      requiredFeatures: [],
      pollIntervalSeconds: this.deps.pollIntervalSeconds,
      statusIntervalSeconds: this.deps.statusIntervalSeconds,
      extensions,
      scheduledEvents: { DocumentIncarnation: goal.goalStateId, Events: plan.events },
      ...(plan.patchOperations ? { patchOperations: plan.patchOperations } : {}),
    };
    const text = JSON.stringify(body);
    if (Buffer.byteLength(text) > LIMITS.goalStateBytes) throw new Error(`the goal state of agent ${agent.agentId} would exceed ${LIMITS.goalStateBytes} bytes`);
    const built: CachedGoalState = { goalStateId: goal.goalStateId, etag: `"${this.epoch}.${goal.goalStateId}"`, body: text, events: plan.events };
    this.cache.set(agent.agentId, built);
    return built;
  }

  /** What the goal state says, without anything random (CMS, activity id): hashed to detect change. */
  private plan(agent: AgentRecord, goal: AgentGoal, state: EngineState) {
    const entries = Object.values(goal.entries);
    const base = this.deps.baseUrl();
    const extensions: Array<Omit<GoalStateExtension, 'settings'> & { publicSettings: Record<string, unknown> | null; sealed: string | null }> = [];
    for (const e of entries.sort((a, b) => a.artifactKey.localeCompare(b.artifactKey)).slice(0, LIMITS.extensionsPerGoalState)) {
      const pkg = this.deps.packages.get(e.artifactKey, e.version);
      if (!pkg) continue; // the driver never sends a version without its package; a bound machine's may lack one
      const inst = state.fleet.instances.get(e.artifactKey)?.get(agent.machineId);
      extensions.push({
        name: `${e.publisher}.${e.type}`,
        extensionName: e.extensionName,
        version: e.version,
        state: e.state,
        autoUpgrade: inst?.enableAutomaticUpgrade ?? false,
        package: { uris: [`${base}/v1/packages/${pkg.sha256}`], sha256: pkg.sha256, size: pkg.size, signature: pkg.signature },
        dependencyLevel: 0,
        settingsSeqNo: e.settingsSeqNo,
        publicSettings: inst ? { ...inst.settings } : null,
        sealed: e.state === 'enabled' ? this.deps.sealedProtectedSettings(agent.machineId, e.extensionName) : null,
        operationId: e.operationId,
        rollback: { enabled: true, healthGateSeconds: HEALTH_GATE_SECONDS },
      });
    }
    const levels = dependencyLevels(extensions.map((e) => e.extensionName), (name) => this.deps.provisionAfter(agent.machineId, name));
    for (const e of extensions) e.dependencyLevel = levels.get(e.extensionName) ?? 0;
    const patches = Object.keys(goal.patchOps ?? {}).sort().map((id) => goal.patchOps![id]!.op);
    return {
      extensions, events: [...noticesOf(state, agent), ...rebootNoticesOf(goal, agent)], poll: this.deps.pollIntervalSeconds, status: this.deps.statusIntervalSeconds,
      // Only when there are some: the goal states (and their hashes) of machines never patched stay as they were.
      ...(patches.length > 0 ? { patchOperations: patches } : {}),
    };
  }
}

/**
 * R83: what the engine announced to this machine and has not started yet, as IMDS scheduled events: the
 * re-images of OS image rollouts, and the reboots platform patch baselines may need (the EventId is the
 * one of the log's `machine.reboot.announced`).
 */
export function noticesOf(state: EngineState, agent: AgentRecord): ScheduledEvent[] {
  const out: ScheduledEvent[] = [];
  for (const r of state.rollouts.values()) {
    if (r.artifact.kind === 'extension' || (r.status !== 'running' && r.status !== 'stopped')) continue;
    const a = r.attempts.get(agent.machineId);
    if (!a || a.status !== 'noticed') continue;
    const reimage = r.artifact.kind === 'osImage';
    out.push({
      EventId: reimage ? eventIdOf(r.id, agent.machineId, a.attempt) : platformRebootEventId(patchRunId(r, a)),
      EventType: reimage ? 'Reimage' : 'Reboot',
      ResourceType: 'VirtualMachine',
      Resources: [agent.resourceId],
      EventStatus: 'Scheduled',
      NotBefore: a.dueAtMs === null ? '' : new Date(a.dueAtMs).toUTCString(),
      Description: reimage
        ? `Re-image of the OS disk for rollout ${r.id} (to ${r.toVersion})`
        : `Reboot after installing platform patch baseline ${r.toVersion} (rollout ${r.id}), if the patches need one`,
      EventSource: 'Platform',
      DurationInSeconds: -1,
    });
  }
  return out;
}

/** At most this many announced reboots per machine in its goal state. */
export const MAX_REBOOT_NOTICES = 8;
/** A reboot notice whose run left no end in the log is dropped once a newer notice comes a day after it. */
export const STALE_NOTICE_MS = 24 * 3600_000;

/** R83: the reboots announced by the server's schedule runs for this machine, as IMDS `Reboot` scheduled events. */
export function rebootNoticesOf(goal: AgentGoal, agent: AgentRecord): ScheduledEvent[] {
  const notices = goal.rebootNotices ?? {};
  return Object.keys(notices).sort().map((id) => {
    const n = notices[id]!;
    return {
      EventId: id,
      EventType: 'Reboot',
      ResourceType: 'VirtualMachine',
      Resources: [agent.resourceId],
      EventStatus: 'Scheduled',
      NotBefore: new Date(n.notBeforeMs).toUTCString(),
      Description: `${n.reason}${n.approved ? ' (approved by the machine)' : ''}`,
      EventSource: 'Platform',
      DurationInSeconds: -1,
    };
  });
}

/** A stable id per announcement, in IMDS's GUID form. */
export function eventIdOf(rolloutId: string, machineId: string, attempt: number): string {
  return scheduledEventId(`${rolloutId}|${machineId}|${attempt}`);
}

/** A platform patch rollout's runs are named `ROLLOUT/…`; a schedule's run id has no rollout before a slash. */
function rolloutOfRun(runId: string): string {
  const slash = runId.indexOf('/');
  return slash > 0 ? runId.slice(0, slash) : '';
}
