/**
 * The durable Store on SQLite (better-sqlite3, WAL). Each engine tick is one transaction holding every
 * record the tick changed, its events and the idempotency keys of the actions it is about to send;
 * the engine sends them only after the commit. `load` rebuilds the working state after a restart.
 */
import type Database from 'better-sqlite3';
import type { Changes } from '../../engine/core/context.js';
import type { DriverAction } from '../../engine/driver.js';
import type { EngineState } from '../../engine/state.js';
import type { EngineEvent } from '../../model/events.js';
import type { Commit, Store } from '../store.js';
import { asStoreError, openDatabase, StoreError } from './database.js';
import type { OpenDatabase, OpenOptions } from './database.js';
import { loadState } from './load.js';
import { encode, statements, stringifyPlan } from './rows.js';
import type { Statements } from './rows.js';

export class SqliteStore implements Store {
  readonly tracksChanges = true;
  private readonly handle: OpenDatabase;
  private readonly db: Database.Database;
  private readonly st: Statements;
  private broken: string | null = null;
  /** The next `ord` of a machine or instance row: rows load in the order they were added (schema v4). */
  private nextOrd: number;

  private constructor(handle: OpenDatabase) {
    this.handle = handle;
    this.db = handle.db;
    this.st = statements(this.db);
    const max = (table: string) => (this.db.prepare(`SELECT max(ord) AS m FROM ${table}`).get() as { m: number | null }).m ?? 0;
    this.nextOrd = Math.max(max('machines'), max('instances')) + 1;
  }

  static open(file: string, opts: OpenOptions = { mode: 'either' }): SqliteStore {
    return new SqliteStore(openDatabase(file, opts));
  }

  /** The open database, for tables that live beside the engine's (the API's documents). */
  get database(): Database.Database {
    return this.db;
  }

  get file(): string {
    return this.handle.file;
  }

  /** True once a fleet was imported. */
  isInitialised(): boolean {
    return this.st.getMeta.get('imported') !== undefined;
  }

  /** Writes a whole engine state (fleet, catalog, and anything already running) into an empty store. */
  importState(state: EngineState): void {
    if (this.isInitialised()) throw new StoreError('STORE_EXISTS', `${this.file} already holds a fleet; it is never overwritten`);
    this.write(() => {
      const st = this.st;
      for (const r of state.fleet.regions.values()) st.putRegion.run(r.name, r.pair, JSON.stringify(r.zones));
      for (const s of state.fleet.scaleSets.values()) st.putScaleSet.run(s.id, JSON.stringify(s));
      for (const a of state.fleet.availabilitySets.values()) st.putAvailabilitySet.run(a.id, JSON.stringify(a));
      for (const m of state.fleet.machines.values()) st.putMachine.run(...encode.machine(m), this.nextOrd++);
      for (const byMachine of state.fleet.instances.values()) for (const i of byMachine.values()) st.putInstance.run(...encode.instance(i), this.nextOrd++);
      for (const [id, signals] of state.fleet.health) st.putHealth.run(id, JSON.stringify(signals));
      this.writeCatalog(state);
      for (const r of state.rollouts.values()) {
        st.putRolloutNew.run(...encode.rolloutNew(r));
        st.putPlan.run(r.id, stringifyPlan(r.plan));
        for (const p of r.phases) st.putPhase.run(...encode.phase(p));
        for (const rs of r.regions.values()) st.putRegionState.run(...encode.region(rs));
        for (const u of r.units.values()) {
          st.putUnit.run(...encode.unit(u));
          st.putGateRun.run(...encode.gateRun(u.gateRun));
        }
        for (const a of r.attempts.values()) st.putAttempt.run(...encode.attempt(a));
      }
      for (const t of state.timers.toArray()) st.putTimer.run(...encode.timer(t));
      this.writeMeta(state);
      st.putEnrollment.run(JSON.stringify([...state.enrolledSubscriptions]));
      this.writeMaintenance(state, state.maintenance.configs.keys(), state.maintenance.assignments.keys());
      this.writeHostMaintenance(state);
      st.putMeta.run('images', JSON.stringify(state.images.toJSON()));
      st.putMeta.run('releases', releasesText(state));
      st.putMeta.run('imported', new Date(0).toISOString());
    });
  }

  load(): EngineState | null {
    if (!this.isInitialised()) return null;
    try {
      return loadState(this.db);
    } catch (err) {
      throw asStoreError(err, this.file);
    }
  }

  /** Actions that were committed but never answered: after a restart they are sent again, same keys. */
  pendingActions(): DriverAction[] {
    return (this.st.pendingActions.all() as Array<{ body: string }>).map((r) => JSON.parse(r.body) as DriverAction);
  }

  commit(c: Commit): void {
    if (this.broken) throw new StoreError('STORE_IO', `the store stopped after a failed write: ${this.broken}`);
    if (!c.changes) throw new Error('SqliteStore needs the changes of each tick');
    const changes = c.changes;
    try {
      this.write(() => this.apply(c, changes));
      if (this.depth > 0) this.commitsInTransactions++;
    } catch (err) {
      // The transaction rolled back; nothing of this tick counts. The engine stops advancing.
      const e = asStoreError(err, this.file);
      this.broken = e.message;
      throw e;
    }
  }

  private write(fn: () => void): void {
    this.db.transaction(fn).immediate();
  }

  reopen(): void {
    this.broken = null;
  }

  onCommitUndone(listener: (reason: string) => void): void {
    this.undoneListeners.push(listener);
  }

  /** Deliveries waiting for the outer transaction (see `transaction`). */
  private held: Array<() => void> = [];
  private depth = 0;
  /** Engine commits made inside callers' transactions: one undone by a rollback puts memory ahead. */
  private commitsInTransactions = 0;
  private readonly undoneListeners: Array<(reason: string) => void> = [];

  afterCommit(deliver: () => void): void {
    if (this.depth > 0) this.held.push(deliver);
    else deliver();
  }

  /**
   * Runs `fn` in one transaction; engine commits inside it become savepoints, and their actions and
   * events leave only after the outermost COMMIT (none leave when it rolls back: the store never held them).
   */
  transaction<T>(fn: () => T): T {
    this.depth++;
    const commitsBefore = this.commitsInTransactions;
    let result: T;
    try {
      result = this.db.transaction(fn)();
    } catch (err) {
      if (--this.depth === 0) this.held = [];
      if (this.commitsInTransactions > commitsBefore) {
        const reason = `a transaction holding an engine commit rolled back (${(err as Error).message})`;
        for (const l of this.undoneListeners) l(reason);
      }
      throw err;
    }
    if (--this.depth > 0) return result;
    const held = this.held;
    this.held = [];
    for (const deliver of held) deliver();
    return result;
  }

  private apply(c: Commit, ch: Changes): void {
    const st = this.st;
    const state = c.state;
    for (const e of c.events) st.putEvent.run(...encode.event(e));
    const sentAt = c.now;
    for (const a of c.actions) {
      const pending = state.pendingActions.get(a.key);
      st.putAction.run(a.key, pending?.rolloutId ?? '', a.machineId, a.kind, JSON.stringify(a), sentAt);
    }
    for (const a of ch.answered) st.answerAction.run(sentAt, a.ok === null ? null : a.ok ? 1 : 0, a.key);
    this.applyFleet(state, ch);
    for (const i of ch.instances) {
      // An instance removed in this tick is not written back.
      if (state.fleet.instances.get(i.artifactKey)?.get(i.machineId) === i) st.putInstance.run(...encode.instance(i), this.nextOrd++);
    }
    for (const id of ch.health) {
      const signals = state.fleet.health.get(id);
      if (signals) st.putHealth.run(id, JSON.stringify(signals));
      else st.deleteHealth.run(id);
    }
    if (ch.catalog) this.writeCatalog(state);
    for (const r of ch.created) {
      st.putRolloutNew.run(...encode.rolloutNew(r));
      st.putPlan.run(r.id, stringifyPlan(r.plan));
    }
    for (const r of ch.created) for (const p of r.phases) st.putPhase.run(...encode.phase(p));
    for (const r of ch.rollouts) st.putRollout.run(...encode.rollout(r));
    for (const p of ch.phases) st.putPhase.run(...encode.phase(p));
    for (const rs of ch.regions) st.putRegionState.run(...encode.region(rs));
    for (const u of ch.units) st.putUnit.run(...encode.unit(u));
    for (const g of ch.gateRuns) st.putGateRun.run(...encode.gateRun(g));
    for (const a of ch.attempts) {
      if (a.status === 'succeeded') st.deleteAttempt.run(a.rolloutId, a.machineId);
      else st.putAttempt.run(...encode.attempt(a));
    }
    for (const t of ch.timersAdded) st.putTimer.run(...encode.timer(t));
    for (const t of ch.timersFired) st.deleteTimer.run(t.id);
    this.writeMeta(state);
  }

  /** Fleet changes from commands: removals first, then what is in the state now is put. */
  private applyFleet(state: EngineState, ch: Changes): void {
    const st = this.st;
    const fleet = state.fleet;
    for (const i of ch.instancesRemoved) st.deleteInstance.run(i.artifactKey, i.machineId);
    for (const m of ch.machinesRemoved) {
      st.deleteMachine.run(m.id);
      st.deleteHealth.run(m.id);
    }
    for (const m of ch.machinesAdded) if (fleet.machines.get(m.id) === m) st.putMachine.run(...encode.machine(m), this.nextOrd++);
    for (const name of ch.fleetRegions) {
      const r = fleet.regions.get(name);
      if (r) st.putRegion.run(r.name, r.pair, JSON.stringify(r.zones));
      else st.deleteRegion.run(name);
    }
    for (const id of ch.scaleSets) {
      const s = fleet.scaleSets.get(id);
      if (s) st.putScaleSet.run(id, JSON.stringify(s));
      else st.deleteScaleSet.run(id);
    }
    for (const id of ch.availabilitySets) {
      const a = fleet.availabilitySets.get(id);
      if (a) st.putAvailabilitySet.run(id, JSON.stringify(a));
      else st.deleteAvailabilitySet.run(id);
    }
    if (ch.enrollment) st.putEnrollment.run(JSON.stringify([...state.enrolledSubscriptions]));
    if (ch.maintenanceConfigs.size > 0 || ch.maintenanceTargets.size > 0) this.writeMaintenance(state, ch.maintenanceConfigs, ch.maintenanceTargets);
    if (ch.hostMaintenance) this.writeHostMaintenance(state);
    if (ch.images) this.st.putMeta.run('images', JSON.stringify(state.images.toJSON()));
    if (ch.releases) this.st.putMeta.run('releases', releasesText(state));
  }

  /** Host updates and the confined machines' records: small (only machines under a Host configuration). */
  private writeHostMaintenance(state: EngineState): void {
    const m = state.maintenance;
    this.st.putMeta.run('hostMaintenance', JSON.stringify({ updates: m.hostUpdates, applied: [...m.hostApplied] }));
  }

  /** Maintenance configurations (as specified; parsed again on load) and the assignments of the given targets. */
  private writeMaintenance(state: EngineState, configs: Iterable<string>, targets: Iterable<string>): void {
    const m = state.maintenance;
    for (const id of configs) {
      const c = m.configs.get(id);
      if (c) this.st.putMaintenanceConfig.run(id, JSON.stringify({ id: c.id, scope: c.scope, window: c.window, emergencyBypass: c.emergencyBypass }));
      else this.st.deleteMaintenanceConfig.run(id);
    }
    for (const target of targets) {
      this.st.clearAssignments.run(target);
      for (const id of m.assignments.get(target) ?? []) this.st.putAssignment.run(target, id);
    }
  }

  private writeCatalog(state: EngineState): void {
    this.st.clearCatalogVersions.run();
    this.st.clearCatalogTypes.run();
    for (const t of state.catalog.listTypes()) {
      const key = `${t.publisher}.${t.type}`.toLowerCase();
      this.st.putCatalogType.run(key, t.publisher, t.type, t.supportsAutomaticUpgrade ? 1 : 0);
      for (const v of t.versions) this.st.putCatalogVersion.run(key, v.version, JSON.stringify(v.os), v.regions ? JSON.stringify(v.regions) : null, v.publishedAtMs, v.critical ? 1 : 0, v.digest);
    }
  }

  /** The engine's counters and input positions, in one row written with every commit. */
  private writeMeta(state: EngineState): void {
    this.st.putMeta.run('counters', JSON.stringify({ eventSeq: state.eventSeq, rolloutSeq: state.rolloutSeq, timerSeq: state.timerSeq, actionSeq: state.actionSeq, marks: state.marks }));
  }

  /** Events in `seq` order, from `afterSeq` on. */
  *events(afterSeq = 0): Generator<EngineEvent> {
    for (const row of this.st.eventsAfter.iterate(afterSeq) as Iterable<{ body: string }>) yield JSON.parse(row.body) as EngineEvent;
  }

  close(): void {
    this.handle.close();
  }
}

/** Releases' evidence and holds, without what is derived on load (in-flight batches, waiting units). */
function releasesText(state: EngineState): string {
  return JSON.stringify([...state.releases.values()].map(({ inflight: _i, waiters: _w, ...stored }) => stored));
}
