/**
 * The reconciler's shell. Commands and observations come in, timers come due; each tick applies them
 * to the working state, commits the changes to the Store, then sends the actions and publishes the
 * events. Time comes from the Clock, actions leave through the Driver.
 */
import type { PublishedVersion } from '../catalog/catalog.js';
import { automaticTarget } from '../catalog/catalog.js';
import type { Artifact } from '../model/artifact.js';
import { artifactKey } from '../model/artifact.js';
import type { EngineEvent, RolloutProfileName } from '../model/events.js';
import type { Machine } from '../model/fleet.js';
import { isMachineHealthy } from '../model/health.js';
import { compareVersions, majorOf } from '../model/version.js';
import { planRollout } from '../planner/plan.js';
import type { RolloutProfile } from '../planner/profile.js';
import { profileFor } from '../planner/profile.js';
import type { Store } from '../store/store.js';
import type { Clock } from './clock.js';
import type { TickContext } from './context.js';
import { emit, newContext } from './context.js';
import type { Driver, Observation } from './driver.js';
import { onActionResult, onHealthDeadline, onRetryDue, skipReason, tryJudgeHealthy } from './instances.js';
import { checkRolloutDone, onInstanceSettled, openPhase, resumeUnit, tryStartBatch, wakeForRetry } from './progress.js';
import type { EngineState, GateRun, RegionState, RolloutState, Timer, UnitState } from './state.js';
import { getInstance, refreshMachineHealth } from './state.js';

export type EventListener = (events: readonly EngineEvent[]) => void;

export interface EngineOptions {
  clock: Clock;
  driver: Driver;
  store: Store;
  state: EngineState;
  /** Profile overrides by name, e.g. shorter bakes in a scenario. */
  profiles?: Partial<Record<RolloutProfileName, Partial<RolloutProfile>>>;
  canaryRegions?: string[];
  /** Who automatic actions are attributed to in the log. */
  platformCaller?: string;
}

export interface RolloutRequest {
  artifact: Artifact;
  toVersion: string;
  profile: RolloutProfileName;
  /** Restricts the rollout to these machines (manual upgrades, catch-ups); otherwise every eligible instance. */
  machineIds?: string[];
  /** With machineIds: keep only those whose automatic target is toVersion (a catch-up, not a manual upgrade). */
  automatic?: boolean;
  caller?: string;
  reason?: string;
}

export class Engine {
  readonly state: EngineState;
  private readonly clock: Clock;
  private readonly driver: Driver;
  private readonly store: Store;
  private readonly opts: EngineOptions;
  private readonly inbox: Observation[] = [];
  private readonly listeners: EventListener[] = [];
  private halted: string | null = null;

  constructor(opts: EngineOptions) {
    this.opts = opts;
    this.clock = opts.clock;
    this.driver = opts.driver;
    this.store = opts.store;
    this.state = opts.state;
  }

  onEvents(listener: EventListener): void {
    this.listeners.push(listener);
  }

  /** Why the engine stopped advancing (a failed commit), or null while it runs. */
  get haltedBecause(): string | null {
    return this.halted;
  }

  observe(obs: Observation): void {
    this.inbox.push(obs);
  }

  /** When the engine next has something to do without new observations; null when never. */
  nextWakeAt(): number | null {
    return this.state.timers.peek()?.at ?? null;
  }

  hasPendingObservations(): boolean {
    return this.inbox.length > 0;
  }

  /** Applies queued observations, then every timer due by now. */
  tick(): void {
    this.run((ctx) => {
      const inbox = this.inbox.splice(0, this.inbox.length);
      for (const obs of inbox) this.apply(ctx, obs);
      const timers = this.state.timers;
      while (timers.size > 0 && timers.peek()!.at <= ctx.now) this.fire(ctx, timers.pop()!);
    });
  }

  // ---- commands -------------------------------------------------------------------------------

  /** Publishes a version; automatic rollouts start for the instances it is the newest eligible target of. */
  publishVersion(publisher: string, type: string, version: PublishedVersion): RolloutState | null {
    return this.run((ctx) => {
      this.state.catalog.publish(publisher, type, version);
      const t = this.state.catalog.getType(publisher, type)!;
      emit(ctx, { type: 'release.published', artifact: { kind: 'extension', publisher: t.publisher, type: t.type }, version: version.version, critical: version.critical, os: version.os });
      return this.startAutomatic(ctx, { kind: 'extension', publisher: t.publisher, type: t.type }, version.version, version.critical);
    });
  }

  /** Marks a type as supporting automatic upgrade (or not); instances that opted in start to follow (R2). */
  setTypeSupport(publisher: string, type: string, supports: boolean): RolloutState[] {
    return this.run((ctx) => {
      const t = this.state.catalog.addType(publisher, type, supports);
      if (!supports) return [];
      const artifact: Artifact = { kind: 'extension', publisher: t.publisher, type: t.type };
      const newestByMajor = new Map<number, PublishedVersion>();
      for (const v of t.versions) if (v.publishedAtMs <= ctx.now) newestByMajor.set(majorOf(v.version), v);
      const started: RolloutState[] = [];
      for (const v of newestByMajor.values()) {
        const r = this.startAutomatic(ctx, artifact, v.version, v.critical);
        if (r) started.push(r);
      }
      return started;
    });
  }

  /** R6: upgrade now, regardless of pacing, with the batch and health rules kept. */
  manualUpgrade(req: { artifact: Artifact; machineIds: string[]; toVersion: string; caller: string }): RolloutState | null {
    return this.run((ctx) => this.createRollout(ctx, { ...req, profile: 'manual', reason: `manual upgrade requested by ${req.caller}` }));
  }

  /**
   * R5, R32: opt extensions in or out at any moment. Opting in again resumes a parked retry, or, when
   * no running rollout covers the instance any more, starts a catch-up rollout for it.
   */
  setAutomaticUpgrade(machineIds: string | readonly string[], key: string, enabled: boolean, caller: string): RolloutState[] {
    const ids = typeof machineIds === 'string' ? [machineIds] : machineIds;
    for (const id of ids) if (!getInstance(this.state.fleet, key, id)) throw new Error(`machine ${id} has no instance of ${key}`);
    return this.run((ctx) => {
      const behind: string[] = [];
      for (const id of ids) {
        const inst = getInstance(this.state.fleet, key, id)!;
        if (inst.enableAutomaticUpgrade === enabled) continue;
        inst.enableAutomaticUpgrade = enabled;
        ctx.dirtyInstances.add(inst);
        emit(ctx, { type: 'autoUpgrade.changed', machineId: id, artifactKey: key, enabled, caller });
        if (enabled && !this.resumeIn(ctx, key, id)) behind.push(id);
      }
      return this.catchUp(ctx, key, behind);
    });
  }

  /** True when a running automatic rollout still covers the instance (resuming it if it was parked). */
  private resumeIn(ctx: TickContext, key: string, machineId: string): boolean {
    const inst = getInstance(this.state.fleet, key, machineId)!;
    for (const r of this.state.rollouts.values()) {
      if (r.artifactKey !== key || r.status !== 'running' || r.plan.profile.name === 'manual') continue;
      const a = r.attempts.get(machineId);
      if (!a) {
        if (rolloutMembers(r).has(machineId)) return true;
        continue;
      }
      if (a.status === 'parked' || a.status === 'skipped') {
        if (skipReason(ctx, r, inst)) continue;
        r.open++;
        a.status = 'retryReady';
        wakeForRetry(ctx, r, r.units.get(a.unitId)!, machineId);
        return true;
      }
      if (a.status !== 'succeeded' && a.status !== 'failed' && a.status !== 'rolledBack') return true;
    }
    return false;
  }

  /** Instances opted in again after their rollout finished: one rollout per target version. */
  private catchUp(ctx: TickContext, key: string, machineIds: string[]): RolloutState[] {
    const byTarget = new Map<string, string[]>();
    for (const id of machineIds) {
      const inst = getInstance(this.state.fleet, key, id)!;
      const m = this.state.fleet.machines.get(id)!;
      const target = automaticTarget(this.state.catalog, inst, { os: m.os, region: m.placement.region }, ctx.now).target;
      if (!target) continue;
      let list = byTarget.get(target);
      if (!list) byTarget.set(target, (list = []));
      list.push(id);
    }
    const started: RolloutState[] = [];
    for (const [target, ids] of byTarget) {
      const inst = getInstance(this.state.fleet, key, ids[0]!)!;
      const r = this.createRollout(ctx, {
        artifact: { kind: 'extension', publisher: inst.publisher, type: inst.type },
        toVersion: target,
        profile: 'standard',
        machineIds: ids,
        automatic: true,
        caller: this.opts.platformCaller ?? 'platform',
        reason: `automatic upgrade enabled again on ${ids.length} instance(s) that missed ${target}: catching up (R32)`,
      });
      if (r) started.push(r);
    }
    return started;
  }

  cancelRollout(rolloutId: string, reason: string): void {
    this.run((ctx) => {
      const r = this.mustGet(rolloutId);
      if (r.status === 'completed' || r.status === 'cancelled') return;
      r.status = 'cancelled';
      r.reason = reason;
      r.endedAtMs = ctx.now;
      ctx.dirtyRollouts.add(r);
      emit(ctx, { type: 'rollout.cancelled', rolloutId, reason });
    });
  }

  /** Resumes a stopped rollout; the failures seen so far count as acknowledged. */
  resumeRollout(rolloutId: string, caller: string): void {
    this.run((ctx) => {
      const r = this.mustGet(rolloutId);
      if (r.status !== 'stopped') throw new Error(`rollout ${rolloutId} is ${r.status}, not stopped`);
      r.status = 'running';
      r.reason = null;
      ctx.dirtyRollouts.add(r);
      emit(ctx, { type: 'rollout.resumed', rolloutId, reason: `resumed by ${caller}; failures so far acknowledged` });
      for (const a of r.attempts.values()) {
        if (a.status === 'retryWait' && a.dueAtMs !== null && a.dueAtMs <= ctx.now && onRetryDue(ctx, r, a) === 'ready') {
          wakeForRetry(ctx, r, r.units.get(a.unitId)!, a.machineId);
        }
      }
      for (const u of r.units.values()) if (r.phases[u.phase]!.status === 'running' && u.status !== 'waiting') tryStartBatch(ctx, r, u);
      const failed = r.phases.findIndex((p) => p.status === 'failed');
      if (failed >= 0) {
        r.phases[failed]!.status = 'completed';
        if (failed + 1 < r.phases.length) openPhase(ctx, r, failed + 1);
      }
      checkRolloutDone(ctx, r);
    });
  }

  // ---- internals ------------------------------------------------------------------------------

  private mustGet(rolloutId: string): RolloutState {
    const r = this.state.rollouts.get(rolloutId);
    if (!r) throw new Error(`no rollout ${rolloutId}`);
    return r;
  }

  /** Runs one unit of work: apply, commit, then send and publish. A failed commit halts the engine. */
  private run<T>(work: (ctx: TickContext) => T): T {
    if (this.halted) throw new Error(`engine halted: ${this.halted}`);
    const ctx = newContext(this.state, this.clock.now(), this.store.tracksChanges);
    const result = work(ctx);
    try {
      this.store.commit({ state: this.state, events: ctx.events, instances: ctx.dirtyInstances, rollouts: ctx.dirtyRollouts });
    } catch (err) {
      this.halted = `store commit failed: ${(err as Error).message}`;
      throw err;
    }
    for (const a of ctx.actions) this.driver.send(a);
    if (ctx.events.length > 0) for (const l of this.listeners) l(ctx.events);
    return result;
  }

  private startAutomatic(ctx: TickContext, artifact: Artifact, version: string, critical: boolean): RolloutState | null {
    const key = artifactKey(artifact);
    const major = majorOf(version);
    for (const r of this.state.rollouts.values()) {
      if (r.artifactKey !== key || r.major !== major || r.status !== 'running' || r.plan.profile.name === 'manual') continue;
      if (compareVersions(r.toVersion, version) >= 0) return null;
      r.status = 'cancelled';
      r.reason = `superseded by ${version}`;
      r.endedAtMs = ctx.now;
      ctx.dirtyRollouts.add(r);
      emit(ctx, { type: 'rollout.cancelled', rolloutId: r.id, reason: r.reason });
    }
    return this.createRollout(ctx, {
      artifact,
      toVersion: version,
      profile: critical ? 'critical' : 'standard',
      caller: this.opts.platformCaller ?? 'platform',
      reason: critical ? `critical security release ${version}: faster rollout (R40)` : `release ${version} published`,
    });
  }

  private eligibleMachines(ctx: TickContext, key: string, req: RolloutRequest): Machine[] {
    const { fleet, catalog } = this.state;
    const byMachine = fleet.instances.get(key);
    if (!byMachine) return [];
    const out: Machine[] = [];
    if (req.machineIds) {
      for (const id of req.machineIds) {
        const inst = byMachine.get(id);
        const m = fleet.machines.get(id);
        if (!inst || !m || inst.blockedReason || compareVersions(inst.installedVersion, req.toVersion) === 0) continue;
        if (req.automatic && automaticTarget(catalog, inst, { os: m.os, region: m.placement.region }, ctx.now).target !== req.toVersion) continue;
        out.push(m);
      }
      return out;
    }
    for (const inst of byMachine.values()) {
      const m = fleet.machines.get(inst.machineId)!;
      if (automaticTarget(catalog, inst, { os: m.os, region: m.placement.region }, ctx.now).target === req.toVersion) out.push(m);
    }
    return out;
  }

  private createRollout(ctx: TickContext, req: RolloutRequest): RolloutState | null {
    const key = artifactKey(req.artifact);
    const machines = this.eligibleMachines(ctx, key, req);
    if (machines.length === 0) return null;
    const id = `ro-${++this.state.rolloutSeq}`;
    const profile = profileFor(req.profile, this.opts.profiles?.[req.profile] ?? {});
    const fleet = this.state.fleet;
    const plan = planRollout({
      rolloutId: id,
      artifact: req.artifact,
      toVersion: req.toVersion,
      profile,
      regions: [...fleet.regions.values()],
      machines,
      scaleSets: fleet.scaleSets,
      availabilitySets: fleet.availabilitySets,
      setSizes: fleet.setSizes,
      unhealthy: fleet.unhealthy,
      ...(this.opts.canaryRegions ? { canaryRegions: this.opts.canaryRegions } : {}),
    });
    const r = newRolloutState(id, key, req, plan, ctx.now, machines.length);
    this.state.rollouts.set(id, r);
    ctx.dirtyRollouts.add(r);
    emit(ctx, {
      type: 'rollout.created',
      rolloutId: id,
      artifact: req.artifact,
      toVersion: req.toVersion,
      profile: profile.name,
      phases: plan.phases.map((p) => p.regions.map((x) => x.region)),
      eligible: machines.length,
      reason: req.reason ?? '',
    });
    openPhase(ctx, r, 0);
    return r;
  }

  private apply(ctx: TickContext, obs: Observation): void {
    if (obs.kind === 'health') {
      const fleet = this.state.fleet;
      if (!fleet.machines.has(obs.machineId)) return;
      if (isMachineHealthy(obs.signals)) fleet.health.delete(obs.machineId);
      else fleet.health.set(obs.machineId, obs.signals);
      refreshMachineHealth(fleet, obs.machineId);
      const waiters = this.state.healthWaiters.get(obs.machineId);
      if (!waiters) return;
      for (const w of [...waiters]) {
        const r = this.state.rollouts.get(w.rolloutId)!;
        const a = r.attempts.get(obs.machineId)!;
        const u = r.units.get(a.unitId)!;
        if (tryJudgeHealthy(ctx, r, u, a)) this.settled(ctx, r, u, a.batchId);
      }
      return;
    }
    const pending = this.state.pendingActions.get(obs.key);
    if (!pending) return; // late or repeated answer: its key was already settled
    this.state.pendingActions.delete(obs.key);
    const r = this.state.rollouts.get(pending.rolloutId)!;
    const a = r.attempts.get(pending.machineId)!;
    if (a.actionKey !== obs.key) return;
    const u = r.units.get(a.unitId)!;
    if (onActionResult(ctx, r, u, a, pending.kind, obs.ok, obs.reason ?? (obs.ok ? '' : 'the agent reported a failure'))) this.settled(ctx, r, u, a.batchId);
  }

  private settled(ctx: TickContext, r: RolloutState, u: UnitState, batchId: string): void {
    onInstanceSettled(ctx, r, u, batchId);
    if (r.open === 0) checkRolloutDone(ctx, r);
  }

  private fire(ctx: TickContext, t: Timer): void {
    const r = this.state.rollouts.get(t.rolloutId);
    if (!r) return;
    switch (t.kind) {
      case 'healthDeadline': {
        const a = r.attempts.get(t.ref);
        if (a && a.status === 'healthWait' && a.attempt === t.token) onHealthDeadline(ctx, r, r.units.get(a.unitId)!, a);
        return;
      }
      case 'actionTimeout': {
        const key = t.token as string;
        if (!this.state.pendingActions.has(key)) return;
        const minutes = r.plan.profile.actionTimeoutMs / 60_000;
        this.apply(ctx, { kind: 'actionResult', key, machineId: t.ref, ok: false, version: '', reason: `no answer from the machine within ${minutes} minutes` });
        return;
      }
      case 'retry': {
        const a = r.attempts.get(t.ref);
        if (!a || a.attempt !== t.token) return;
        const outcome = onRetryDue(ctx, r, a);
        if (outcome === 'ready') wakeForRetry(ctx, r, r.units.get(a.unitId)!, a.machineId);
        else if (outcome === 'parked') checkRolloutDone(ctx, r);
        return;
      }
      case 'unitResume': {
        const u = r.units.get(t.ref);
        if (u) resumeUnit(ctx, r, u);
        return;
      }
      case 'phaseOpen': {
        const index = Number(t.ref);
        if (r.status === 'running' && r.phases[index]?.status === 'baking') openPhase(ctx, r, index);
        return;
      }
    }
  }
}

/** Every machine planned in a rollout; built on first use (rare: an operator opting back in). */
function rolloutMembers(r: RolloutState): Set<string> {
  if (!r.members) {
    r.members = new Set();
    for (const u of r.units.values()) for (const b of u.plan.batches) for (const id of b.machineIds) r.members.add(id);
  }
  return r.members;
}

function newRolloutState(id: string, key: string, req: RolloutRequest, plan: RolloutState['plan'], now: number, eligible: number): RolloutState {
  const units = new Map<string, UnitState>();
  const regions = new Map<string, RegionState>();
  const setRuns = new Map<string, GateRun>();
  plan.phases.forEach((phase, pi) => {
    for (const pr of phase.regions) {
      let openUnits = 0;
      pr.waves.forEach((w, wi) => {
        for (const u of w.units) {
          openUnits++;
          // Units of one set share their R23 counters and stop across zones.
          let gateRun = u.setId ? setRuns.get(u.setId) : undefined;
          if (!gateRun) {
            gateRun = { upgraded: 0, unhealthyUpgraded: 0, stoppedUntil: null };
            if (u.setId) setRuns.set(u.setId, gateRun);
          }
          units.set(u.id, { plan: u, gateRun, region: pr.region, phase: pi, wave: wi, status: 'waiting', next: 0, inflight: null, passDone: false, waveSettled: false, retryReady: [], retryBatches: 0 });
        }
      });
      regions.set(pr.region, { region: pr.region, pair: pr.pair, phase: pi, wave: 0, passDone: false, waveRemaining: -1, openUnits, unfinished: openUnits, advancing: false, inflightByZone: new Map(), inflight: 0, blocked: new Set() });
    }
  });
  return {
    id,
    artifact: req.artifact,
    artifactKey: key,
    toVersion: req.toVersion,
    major: majorOf(req.toVersion),
    plan,
    status: 'running',
    reason: null,
    createdAtMs: now,
    endedAtMs: null,
    currentPhase: 0,
    phases: plan.phases.map(() => ({ status: 'pending', startedAtMs: null, endedAtMs: null, upgraded: 0, unhealthy: 0 })),
    regions,
    units,
    attempts: new Map(),
    open: eligible,
    caller: req.caller ?? 'platform',
  };
}

