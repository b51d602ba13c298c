/**
 * The reconciler's shell. Commands and observations come in, timers come due; each tick applies them
 * to the working state, commits the changes to the Store, then sends the actions and publishes the
 * events. Time comes from the Clock, actions leave through the Driver.
 */
import type { PublishedVersion } from '../catalog/catalog.js';
import { approveNotices } from './attempts/upgrade.js';
import { ImageCatalog, ImageCatalogError } from '../catalog/images.js';
import type { Artifact, ExtensionInstance } from '../model/artifact.js';
import { artifactKey } from '../model/artifact.js';
import type { EngineEvent, PatchEventBody } from '../model/events.js';
import type { AvailabilitySet, Machine, Region, ScaleSet } from '../model/fleet.js';
import type { HostUpdate, MaintenanceConfigSpec } from '../model/maintenance.js';
import type { Store } from '../store/store.js';
import type { Clock } from './clock.js';
import type { Driver, DriverAction, Observation } from './driver.js';
import type { EngineState, ReleaseHoldKind, ReleaseState, RolloutState } from './state.js';
import { getInstance, releaseKey, replaceStateContents } from './state.js';
import type { TickContext } from './core/context.js';
import { emit, newContext } from './core/context.js';
import { EngineHaltedError, FleetError } from './core/errors.js';
import type { RolloutSettings } from './core/settings.js';
import { cancelRollout as cancelRolloutIn } from './rollouts/cancel.js';
import { holdByCaller, resumeRelease as resumeReleaseIn } from './rollouts/release-hold.js';
import { createRollout, startAutomatic, startForType } from './rollouts/create.js';
import { resumeStopped } from './rollouts/resume.js';
import { cancelByOperator, pauseAll, pauseRollout, resumeAll, resumeRollout } from './rollouts/operator-controls.js';
import type { FollowedMachines, RollbackResult, WithdrawResult } from './rollouts/withdraw.js';
import { rollBackWithdrawn, syncWithdrawn, withdrawVersion } from './rollouts/withdraw.js';
import { applyAutomaticUpgrade } from './opt-in/opt-in.js';
import type { PendingUpdate } from './maintenance/apply-updates.js';
import { applyNow, applyNowGroups, machinesOf, pendingUpdates } from './maintenance/apply-updates.js';
import {
  applyAssignment, applyDeleteMaintenanceConfig, applyMaintenanceConfig, checkAssignment, checkMaintenanceConfig,
} from './maintenance/configs.js';
import { publishHostUpdate } from './maintenance/host.js';
import {
  approveReimages, cancelSetPart, checkAllImageUpgrades, checkOsRollingUpgrade, syncSetImage,
} from './os-images/os-images.js';
import { applyEnrollment, checkEnrollment } from './fleet/enrollment.js';
import type { ExtensionPatch, ExtensionSpec } from './fleet/extensions.js';
import {
  applyInstall, applyRemoveExtension, applyUpdate, checkInstall, checkRemoveExtension, checkUpdate,
} from './fleet/extensions.js';
import { applyAddMachine, applyRemoveMachine, checkAddMachine, checkRemoveMachine } from './fleet/machines.js';
import { applyRegion, checkRegion } from './fleet/regions.js';
import {
  applyAvailabilitySet, applyRemoveSet, applyScaleSet, checkAvailabilitySet, checkRemoveSet, checkScaleSet,
} from './fleet/sets.js';
import { applyObservation, fireTimer } from './tick/dispatch.js';
import type { PlatformPatchSettings } from './patches/platform-patches.js';
import { publishBaseline, setPlatformPatching } from './patches/platform-patches.js';

export type { RolloutRequest } from './rollouts/create.js';
export type { RolloutSettings } from './core/settings.js';
export type { ExtensionPatch, ExtensionSpec } from './fleet/extensions.js';
export type { FleetErrorCode } from './core/errors.js';
export type { PendingUpdate } from './maintenance/apply-updates.js';
export type { FollowedMachines, RollbackResult, WithdrawResult } from './rollouts/withdraw.js';
export { FleetError } from './core/errors.js';

/** After a restart, how long overdue health deadlines wait for the reports the engine asked for. */

export type EventListener = (events: readonly EngineEvent[]) => void;

export interface EngineOptions extends RolloutSettings {
  clock: Clock;
  driver: Driver;
  store: Store;
  state: EngineState;
}

/** The rollouts whose notices a machine approves itself (R83). */
const MACHINE_NOTICES: ReadonlySet<'osImage' | 'guestPatch'> = new Set(['osImage', 'guestPatch']);

export class Engine {
  readonly state: EngineState;
  private readonly clock: Clock;
  private readonly driver: Driver;
  private readonly store: Store;
  private readonly opts: EngineOptions;
  private readonly inbox: Observation[] = [];
  private readonly listeners: EventListener[] = [];
  /** Why the engine stopped advancing; `commit`: a store write failed, `step`: a step threw, `diverged`: the store undid a commit. */
  private halted: { kind: 'commit' | 'step' | 'diverged'; reason: string } | null = null;

  constructor(opts: EngineOptions) {
    this.opts = opts;
    this.clock = opts.clock;
    this.driver = opts.driver;
    this.store = opts.store;
    this.state = opts.state;
    syncWithdrawn(this.state); // the catalog keeps no record of withdrawals; the releases' holds do
    this.store.onCommitUndone?.((reason) => this.diverged(reason));
  }

  onEvents(listener: EventListener): void {
    this.listeners.push(listener);
  }

  private haltKind(): 'commit' | 'step' | 'diverged' | null {
    return this.halted?.kind ?? null;
  }

  /** Why the engine stopped advancing (a failed commit), or null while it runs. */
  get haltedBecause(): string | null {
    return this.halted?.reason ?? null;
  }

  observe(obs: Observation): void {
    this.inbox.push(obs);
  }

  /** When the engine next has something to do without new observations; null when never. */
  nextWakeAt(): number | null {
    // Cancelled timers left the store already; passing them over here spares a tick that would do nothing.
    const timers = this.state.timers;
    while (timers.size > 0 && timers.peek()!.done) timers.pop();
    return timers.peek()?.at ?? null;
  }

  hasPendingObservations(): boolean {
    return this.inbox.length > 0;
  }

  /**
   * After a restart: sends again every action that was committed but never answered (same keys, so
   * nothing is done twice) and asks the machines with attempts in flight for fresh health reports.
   */
  recover(pending: readonly DriverAction[]): { resent: number; observed: number } {
    for (const a of pending) this.driver.send(a);
    // Health deadlines that passed while the engine was down wait for the fresh reports asked for below.
    this.state.recoveredAt = this.clock.now();
    // Machines in flight, and those last seen unhealthy: they may have recovered while nobody listened.
    const machines = new Set<string>(this.state.fleet.health.keys());
    for (const r of this.state.rollouts.values())
      for (const a of r.attempts.values())
        if (a.status === 'healthWait' || a.status === 'upgrading' || a.status === 'rollingBack') machines.add(a.machineId);
    if (machines.size > 0) this.driver.observe?.([...machines]);
    return { resent: pending.length, observed: machines.size };
  }

  /**
   * After the engine halted (see `haltedBecause`): makes the working state the store's again, as a restart
   * would, and lets the engine advance. `fresh` is the state read back from the store, `pending` its
   * committed but unanswered actions (sent again with their keys, so nothing is done twice).
   */
  resync(fresh: EngineState, pending: readonly DriverAction[]): void {
    replaceStateContents(this.state, fresh);
    syncWithdrawn(this.state);
    this.halted = null;
    // Reports applied by commits the store never made durable (a group commit rolled back) are applied again.
    this.inbox.unshift(...this.undurable.flat());
    this.undurable = [];
    this.recover(pending);
  }

  /**
   * The store undid a transaction that held one of the engine's commits (a caller's transaction rolled
   * back after an engine command): memory is ahead of the store until `resync`.
   */
  diverged(reason: string): void {
    this.halted ??= { kind: 'diverged', reason };
    this.driver.discardPrepared?.();
  }

  /** Applies queued observations, then every timer due by now. */
  tick(): void {
    // Halted: the reports wait in the inbox for the resync.
    if (this.halted) throw new EngineHaltedError(this.halted.reason);
    const inbox = this.inbox.splice(0, this.inbox.length);
    try {
      this.run((ctx) => {
        for (const obs of inbox) applyObservation(ctx, obs);
        const timers = this.state.timers;
        while (timers.size > 0 && timers.peek()!.at <= ctx.now) fireTimer(ctx, timers.pop()!);
      }, inbox);
    } catch (err) {
      // A commit that failed loses no report: they are applied again after the resync. (One that made
      // the step itself throw is dropped; the resync asks the machines in flight for fresh reports.)
      if (this.haltKind() === 'commit') this.inbox.unshift(...inbox);
      throw err;
    }
  }

  // ---- commands -------------------------------------------------------------------------------

  /** Publishes a version; automatic rollouts start for the instances it is the newest eligible target of. */
  publishVersion(publisher: string, type: string, version: PublishedVersion): RolloutState | null {
    return this.run((ctx) => {
      this.state.catalog.publish(publisher, type, version);
      if (ctx.changes) ctx.changes.catalog = true;
      const t = this.state.catalog.getType(publisher, type)!;
      emit(ctx, { type: 'release.published', artifact: { kind: 'extension', publisher: t.publisher, type: t.type }, version: version.version, critical: version.critical, os: version.os });
      return startAutomatic(ctx, this.opts, { kind: 'extension', publisher: t.publisher, type: t.type }, version.version, version.critical);
    });
  }

  /** Marks a type as supporting automatic upgrade (or not); instances that opted in start to follow (R2). */
  setTypeSupport(publisher: string, type: string, supports: boolean): RolloutState[] {
    return this.run((ctx) => {
      const t = this.state.catalog.addType(publisher, type, supports);
      if (ctx.changes) ctx.changes.catalog = true;
      return supports ? startForType(ctx, this.opts, t) : [];
    });
  }

  /**
   * R6: upgrade now, regardless of pacing, with the batch and health rules kept. With `force`, the
   * health gates (R20, R23, R24) and the phase gate never hold or stop the rollout; each unhealthy
   * instance is still rolled back (R22).
   */
  manualUpgrade(req: { artifact: Artifact; machineIds: string[]; toVersion: string; caller: string; force?: boolean }): RolloutState | null {
    const force = req.force ?? false;
    const reason = `manual upgrade requested by ${req.caller}${force ? ', forced through health failures' : ''}`;
    return this.run((ctx) => createRollout(ctx, this.opts, { artifact: req.artifact, machineIds: req.machineIds, toVersion: req.toVersion, caller: req.caller, profile: 'manual', reason, force }));
  }

  /**
   * R5, R32: opt extensions in or out at any moment. Opting in again resumes a parked retry, or, when
   * no running rollout covers the instance any more, starts a catch-up rollout for it.
   */
  setAutomaticUpgrade(machineIds: string | readonly string[], key: string, enabled: boolean, caller: string): RolloutState[] {
    const ids = typeof machineIds === 'string' ? [machineIds] : machineIds;
    for (const id of ids) if (!getInstance(this.state.fleet, key, id)) throw new FleetError('NotFound', `machine ${id} has no instance of ${key}`, 'machineId');
    return this.run((ctx) => applyAutomaticUpgrade(ctx, this.opts, ids, key, enabled, caller));
  }

  // ---- fleet changes (each checked whole before anything changes; a FleetError changes nothing) ----

  /** Creates a region, or changes the zones and geo-pair of an existing one. */
  putRegion(region: Region): void {
    const checked = checkRegion(this.state, region);
    this.run((ctx) => applyRegion(ctx, checked));
  }

  /** Creates or replaces a scale set (upgrade policy, zones, health grace, application health). Rollouts planned later use it. */
  putScaleSet(set: ScaleSet): void {
    const checked = checkScaleSet(this.state, set);
    this.run((ctx) => {
      applyScaleSet(ctx, checked);
      syncSetImage(ctx, this.opts, checked.id);
    });
  }

  putAvailabilitySet(set: AvailabilitySet): void {
    const checked = checkAvailabilitySet(this.state, set);
    this.run((ctx) => applyAvailabilitySet(ctx, checked));
  }

  /** Removes a scale set that has no machines left. */
  removeScaleSet(id: string): void {
    checkRemoveSet(this.state, 'scaleSet', id);
    this.run((ctx) => applyRemoveSet(ctx, 'scaleSet', id));
  }

  removeAvailabilitySet(id: string): void {
    checkRemoveSet(this.state, 'availabilitySet', id);
    this.run((ctx) => applyRemoveSet(ctx, 'availabilitySet', id));
  }

  /** Adds a machine (without extensions); returns it as stored, with domains and instance id filled in. */
  addMachine(m: Machine): Machine {
    const checked = checkAddMachine(this.state, m);
    this.run((ctx) => {
      applyAddMachine(ctx, checked);
      if (checked.placement.setId) syncSetImage(ctx, this.opts, checked.placement.setId, [checked]);
    });
    return checked;
  }

  /** Deletes a machine; refused while an attempt is in flight on it. Its open attempts are skipped. */
  removeMachine(id: string): void {
    const m = checkRemoveMachine(this.state, id);
    this.run((ctx) => applyRemoveMachine(ctx, m));
  }

  /** Installs an extension at its R4 version: Transitioning until the machine answers. */
  installExtension(machineId: string, spec: ExtensionSpec, caller: string): ExtensionInstance {
    const plan = checkInstall(this.state, machineId, spec, this.clock.now());
    return this.run((ctx) => applyInstall(ctx, plan, caller));
  }

  /** Changes an installed extension; version, settings or a reinstall send an install. Refused while an attempt is in flight. */
  updateExtension(machineId: string, artifactKey: string, patch: ExtensionPatch, caller: string): ExtensionInstance {
    const plan = checkUpdate(this.state, machineId, artifactKey, patch, this.clock.now());
    this.run((ctx) => applyUpdate(ctx, this.opts, plan, caller));
    return plan.inst;
  }

  /** Removes an extension at once and sends the uninstall. Refused while an attempt is in flight. */
  removeExtension(machineId: string, artifactKey: string, caller: string): void {
    const inst = checkRemoveExtension(this.state, machineId, artifactKey);
    this.run((ctx) => applyRemoveExtension(ctx, inst, caller));
  }

  /** R7: enrolls a subscription's scale sets in automatic upgrade of extensions with autoUpgradeMinorVersion (or withdraws it). */
  setSubscriptionEnrollment(subscription: string, enrolled: boolean, caller: string): RolloutState[] {
    checkEnrollment(subscription, enrolled);
    if (this.state.enrolledSubscriptions.has(subscription) === enrolled) return [];
    return this.run((ctx) => applyEnrollment(ctx, this.opts, subscription, enrolled, caller));
  }

  // ---- maintenance (R70–R73) -------------------------------------------------------------------

  /** Creates or replaces a maintenance configuration; units waiting for a window look again. */
  putMaintenanceConfiguration(spec: MaintenanceConfigSpec, caller: string): void {
    const config = checkMaintenanceConfig(spec);
    this.run((ctx) => applyMaintenanceConfig(ctx, config, caller));
  }

  /** Deletes a configuration and its assignments; what it confined is free to go. */
  deleteMaintenanceConfiguration(id: string, caller: string): void {
    this.run((ctx) => applyDeleteMaintenanceConfig(ctx, id, caller));
  }

  /** Confines the automatic upgrades of a machine or set (all its instances) to a configuration's windows. */
  assignMaintenance(target: string, configId: string, caller: string): void {
    checkAssignment(this.state, target, configId);
    this.run((ctx) => applyAssignment(ctx, target, configId, true, caller));
  }

  unassignMaintenance(target: string, configId: string, caller: string): void {
    this.run((ctx) => applyAssignment(ctx, target, configId, false, caller));
  }

  /** R73: a platform host update for some regions (null: all); confined machines take it in their windows. */
  publishHostUpdate(update: Omit<HostUpdate, 'publishedAtMs'>, caller: string): HostUpdate {
    if (this.state.maintenance.hostUpdates.some((u) => u.id === update.id)) throw new FleetError('Conflict', `host update ${update.id} was already published`, 'id');
    const published: HostUpdate = { ...update, publishedAtMs: this.clock.now() };
    this.run((ctx) => publishHostUpdate(ctx, published, caller));
    return published;
  }

  /**
   * Records what guest patching did (runs, reboot notices, availability impacts) in the event log, in one
   * commit; the work itself happens through the driver's PatchDriver, outside the engine's tick.
   */
  recordPatchEvents(bodies: readonly PatchEventBody[] | ((now: number) => readonly PatchEventBody[])): void {
    if (Array.isArray(bodies) && bodies.length === 0) return;
    this.run((ctx) => {
      // A builder sees the instant the events carry (notices count from when they are recorded, R83).
      for (const b of typeof bodies === 'function' ? bodies(ctx.now) : bodies) emit(ctx, b);
    });
  }

  /** What waits for these machines: automatic upgrades not done yet and host updates not applied. */
  pendingUpdates(machineIds: readonly string[]): PendingUpdate[] {
    return pendingUpdates(this.state, machinesOf(this.state, machineIds), this.clock.now());
  }

  /**
   * R73 `applyUpdates`: everything pending for these machines, now. Host updates apply at once; pending
   * automatic upgrades go through manual rollouts (R6), outside any window. Returns what was started.
   */
  applyUpdates(machineIds: readonly string[], caller: string): { hostApplied: number; rollouts: RolloutState[] } {
    const machines = machinesOf(this.state, machineIds);
    const groups = applyNowGroups(this.state, machines);
    return this.run((ctx) => applyNow(ctx, this.opts, machines, groups, caller));
  }

  // ---- OS images (R60–R66) ------------------------------------------------------------------------

  /**
   * Changes the image catalog (publish a version, a replication…) and lets sets that follow `latest`
   * look again (R64). An ImageCatalogError from `change` leaves everything as it was.
   */
  updateImages<T>(change: (images: ImageCatalog, now: number) => T): T {
    const probe = ImageCatalog.fromJSON(this.state.images.toJSON());
    change(probe, this.clock.now()); // throws on bad input before the real catalog is touched
    return this.run((ctx) => {
      const result = change(this.state.images, ctx.now);
      if (ctx.changes) ctx.changes.images = true;
      checkAllImageUpgrades(ctx, this.opts);
      return result;
    });
  }

  /** R65 `osRollingUpgrade`: the set to the newest image in its region now, as a manual rollout; null when it is there. */
  startOsRollingUpgrade(setId: string, caller: string): RolloutState | null {
    const plan = checkOsRollingUpgrade(this.state, setId, this.clock.now());
    if (plan.machineIds.length === 0) return null;
    return this.run((ctx) => createRollout(ctx, this.opts, { artifact: plan.artifact, toVersion: plan.version, machineIds: plan.machineIds, profile: 'manual', caller, reason: `osRollingUpgrade requested by ${caller} (R65)` }));
  }

  /** R76: a platform patch baseline for an OS is published; it rolls out to the platform-patched machines. */
  publishPatchBaseline(os: 'linux' | 'windows', version: string, critical: boolean, caller: string): RolloutState | null {
    return this.run((ctx) => publishBaseline(ctx, this.opts, os, version, critical, caller));
  }

  /** R76: a machine's patch mode became (settings) or stopped being (null) `AutomaticByPlatform`. */
  setPlatformPatching(machineId: string, settings: PlatformPatchSettings | null): void {
    this.run((ctx) => setPlatformPatching(ctx, machineId, settings));
  }

  /** R83: the workload approves the announced re-images of these machines: they start now. Returns how many did. */
  approveReimages(machineIds: readonly string[], caller: string): number {
    return this.run((ctx) => approveReimages(ctx, machineIds, caller));
  }

  /**
   * R83: a machine approves what was announced to it (its scheduled events): re-images and platform patch
   * installations start now. Returns how many did.
   */
  approveMachineNotices(machineIds: readonly string[], caller: string): number {
    return this.run((ctx) => approveNotices(ctx, machineIds, caller, MACHINE_NOTICES));
  }

  /** R65: cancels a set's part of an OS image rollout that spans other sets; returns how many instances left it. */
  cancelSetInRollout(rolloutId: string, setId: string): number {
    return this.run((ctx) => cancelSetPart(ctx, this.mustGet(rolloutId), setId));
  }

  cancelRollout(rolloutId: string, reason: string): void {
    this.run((ctx) => cancelRolloutIn(ctx, this.mustGet(rolloutId), reason));
  }

  /** Resumes a stopped rollout; the failures seen so far count as acknowledged. */
  resumeRollout(rolloutId: string, caller: string): void {
    this.run((ctx) => resumeStopped(ctx, this.mustGet(rolloutId), caller));
  }

  /** Holds a release fleet-wide: no new batch of it starts in any rollout until it is resumed. */
  holdRelease(artifact: Artifact, version: string, reason: string, caller: string, kind: ReleaseHoldKind = 'operator'): ReleaseState {
    return this.run((ctx) => holdByCaller(ctx, artifact, artifactKey(artifact), version, kind, reason, caller));
  }

  /** Resumes a held release (by its evidence or an operator); the failures so far count as acknowledged. */
  resumeRelease(artifact: Artifact, version: string, caller: string, reason?: string): ReleaseState {
    return this.run((ctx) => resumeReleaseIn(ctx, artifactKey(artifact), version, caller, reason));
  }

  // ---- operators' controls (rollouts/operator-controls.ts, rollouts/withdraw.ts) ---------------------

  /** Pauses a rollout by holding its release; returns every rollout the hold pauses. */
  pauseRollout(rolloutId: string, reason: string, caller: string): RolloutState[] {
    const r = this.mustFind(rolloutId);
    return this.run((ctx) => pauseRollout(ctx, r, reason, caller));
  }

  /**
   * The fleet-wide stop: every running rollout paused at once; `newOnly` holds only what no hold holds yet,
   * and with `createdSince` only rollouts created since then.
   */
  pauseAllRollouts(reason: string, caller: string, newOnly = false, createdSince?: number): RolloutState[] {
    return this.run((ctx) => pauseAll(ctx, reason, caller, newOnly, createdSince));
  }

  /** Ends the fleet-wide stop: the releases it held are resumed; returns the rollouts that go on. */
  resumeAllRollouts(caller: string, reason?: string): RolloutState[] {
    return this.run((ctx) => resumeAll(ctx, caller, reason));
  }

  /** Lifts what holds a rollout back (a pause, a stop, R23's set stops); returns what it did. `reason` is logged with it. */
  resumeRolloutByOperator(rolloutId: string, caller: string, reason?: string): string[] {
    const r = this.mustFind(rolloutId);
    return this.run((ctx) => resumeRollout(ctx, r, caller, reason));
  }

  cancelRolloutByOperator(rolloutId: string, reason: string, caller: string): void {
    const r = this.mustFind(rolloutId);
    this.run((ctx) => cancelByOperator(ctx, r, reason, caller));
  }

  /** Withdraws an extension or OS image version for good; with rollback its machines go back to the version before. */
  withdrawVersion(artifact: Artifact, version: string, opts: { rollback: boolean; reason: string; caller: string }): WithdrawResult {
    return this.run((ctx) => {
      const result = withdrawVersion(ctx, this.opts, artifact, version, opts);
      // `latest` may stand for an earlier version now: sets that follow it look again (R64).
      if (artifact.kind === 'osImage') checkAllImageUpgrades(ctx, this.opts);
      return result;
    });
  }

  /** Rolls back machines still on a withdrawn version that no rollout is changing (those in flight before). */
  rollBackWithdrawn(artifact: Artifact, version: string, caller: string, follow?: FollowedMachines): RollbackResult {
    return this.run((ctx) => rollBackWithdrawn(ctx, this.opts, artifact, version, caller, true, follow));
  }

  /** A release's evidence and hold, if it has any. */
  release(artifact: Artifact, version: string): ReleaseState | undefined {
    return this.state.releases.get(releaseKey(artifactKey(artifact), version));
  }

  // ---- internals ------------------------------------------------------------------------------

  private mustFind(rolloutId: string): RolloutState {
    const r = this.state.rollouts.get(rolloutId);
    if (!r) throw new FleetError('NotFound', `there is no rollout '${rolloutId}'`, 'rolloutId');
    return r;
  }

  private mustGet(rolloutId: string): RolloutState {
    const r = this.state.rollouts.get(rolloutId);
    if (!r) throw new Error(`no rollout ${rolloutId}`);
    return r;
  }

  /** Reports applied by commits whose transaction is not durable yet (group commit), oldest first. */
  private undurable: Observation[][] = [];

  /** Runs one unit of work: apply, commit, then send and publish. A failed commit halts the engine. */
  private run<T>(work: (ctx: TickContext) => T, applied: Observation[] = []): T {
    if (this.halted) throw new EngineHaltedError(this.halted.reason);
    const ctx = newContext(this.state, this.clock.now(), this.store.tracksChanges, this.opts);
    let result: T;
    try {
      result = work(ctx);
    } catch (err) {
      // Commands check before they change anything: a refusal leaves the state as it was.
      if (err instanceof FleetError || err instanceof ImageCatalogError) throw err;
      this.halted = { kind: 'step', reason: `engine step failed: ${(err as Error).message}` };
      throw err;
    }
    try {
      this.store.commit({ state: this.state, now: ctx.now, events: ctx.events, actions: ctx.actions, changes: ctx.changes });
    } catch (err) {
      // Nothing of this step is stored, part of it is in memory: halted until resynchronised from the store.
      this.halted = { kind: 'commit', reason: `store commit failed: ${(err as Error).message}` };
      this.driver.discardPrepared?.(); // a failed write in a group rolls back the group's earlier commits too
      throw err;
    }
    if (ctx.actions.length > 0) this.driver.prepare?.(ctx.actions);
    // Inside a caller's transaction the commit is a savepoint: nothing leaves before the outer COMMIT.
    if (applied.length > 0) this.undurable.push(applied);
    const deliver = () => {
      const i = applied.length > 0 ? this.undurable.indexOf(applied) : -1;
      if (i >= 0) this.undurable.splice(i, 1);
      for (const a of ctx.actions) this.driver.send(a);
      if (ctx.events.length > 0) for (const l of this.listeners) l(ctx.events);
    };
    if (this.store.afterCommit) this.store.afterCommit(deliver);
    else deliver();
    return result;
  }

}
