/**
 * What a commit writes, as statements on `Writers`: SQLite runs them on prepared statements; the
 * PostgreSQL store records them into one batch. Both stores thus write exactly the same rows.
 */
import type { Changes } from '../../engine/core/context.js';
import type { EngineState } from '../../engine/state.js';
import type { EngineEvent } from '../../model/events.js';
import type { Commit } from '../store.js';
import { encode, stringifyPlan } from './rows.js';
import type { Writers } from './rows.js';

/** The next `ord` of a machine or instance row: rows load in the order they were added (schema v4). */
export interface OrdCounter {
  next: number;
}

/** A whole engine state (fleet, catalog, and anything already running) into an empty store. */
export function writeImport(st: Writers, state: EngineState, ord: OrdCounter): void {
  writeImportSets(st, state);
  for (const row of machineRows(state, ord)) st.putMachine.run(...row);
  for (const row of instanceRows(state, ord)) st.putInstance.run(...row);
  for (const row of healthRows(state)) st.putHealth.run(...row);
  writeImportRest(st, state);
}

/**
 * The fleet's rows of an import, table by table, in the order (and with the `ord`) writeImport gives
 * them: PostgreSQL streams them with COPY (millions of rows are never all held as text).
 */
export function* machineRows(state: EngineState, ord: OrdCounter): Generator<unknown[]> {
  for (const m of state.fleet.machines.values()) yield [...encode.machine(m), ord.next++];
}

export function* instanceRows(state: EngineState, ord: OrdCounter): Generator<unknown[]> {
  for (const byMachine of state.fleet.instances.values()) for (const i of byMachine.values()) yield [...encode.instance(i), ord.next++];
}

export function* healthRows(state: EngineState): Generator<unknown[]> {
  for (const [id, signals] of state.fleet.health) yield [id, JSON.stringify(signals)];
}

/** The head of an import: regions and sets (before the machines). */
export function writeImportSets(st: Writers, state: EngineState): void {
  for (const r of state.fleet.regions.values()) st.putRegion.run(r.name, r.pair, JSON.stringify(r.zones));
  for (const s of state.fleet.scaleSets.values()) st.putScaleSet.run(s.id, JSON.stringify(s));
  for (const a of state.fleet.availabilitySets.values()) st.putAvailabilitySet.run(a.id, JSON.stringify(a));
}

/** The rest of an import, after the fleet's rows: catalog, rollouts, timers, meta; 'imported' is written last. */
export function writeImportRest(st: Writers, state: EngineState): void {
  writeCatalog(st, state);
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
  writeMeta(st, state);
  st.putEnrollment.run(JSON.stringify([...state.enrolledSubscriptions]));
  writeMaintenance(st, state, state.maintenance.configs.keys(), state.maintenance.assignments.keys());
  writeHostMaintenance(st, state);
  st.putMeta.run('images', JSON.stringify(state.images.toJSON()));
  st.putMeta.run('releases', releasesText(state));
  st.putMeta.run('imported', new Date(0).toISOString());
}

/**
 * One tick's changes, its events and the keys of the actions about to leave. The event log has a
 * layout of its own per store (SQLite's is compact, see event-log.ts): `writeEvents` writes it.
 */
export function writeCommit(st: Writers, c: Commit, ch: Changes, ord: OrdCounter, writeEvents: (events: readonly EngineEvent[]) => void): void {
  const state = c.state;
  if (c.events.length > 0) writeEvents(c.events);
  const sentAt = c.now;
  for (const a of c.actions) {
    const pending = state.pendingActions.get(a.key);
    st.putAction.run(a.key, pending?.rolloutId ?? '', a.machineId, a.kind, JSON.stringify(a), sentAt);
  }
  for (const a of ch.answered) st.answerAction.run(sentAt, a.ok === null ? null : a.ok ? 1 : 0, a.key);
  writeFleet(st, state, ch, ord);
  for (const i of ch.instances) {
    // An instance removed in this tick is not written back.
    if (state.fleet.instances.get(i.artifactKey)?.get(i.machineId) === i) st.putInstance.run(...encode.instance(i), ord.next++);
  }
  for (const id of ch.health) {
    const signals = state.fleet.health.get(id);
    if (signals) st.putHealth.run(id, JSON.stringify(signals));
    else st.deleteHealth.run(id);
  }
  if (ch.catalog) writeCatalog(st, state);
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
  writeMeta(st, state);
}

/** Fleet changes from commands: removals first, then what is in the state now is put. */
function writeFleet(st: Writers, state: EngineState, ch: Changes, ord: OrdCounter): void {
  const fleet = state.fleet;
  for (const i of ch.instancesRemoved) st.deleteInstance.run(i.artifactKey, i.machineId);
  for (const m of ch.machinesRemoved) {
    st.deleteMachine.run(m.id);
    st.deleteHealth.run(m.id);
  }
  for (const m of ch.machinesAdded) if (fleet.machines.get(m.id) === m) st.putMachine.run(...encode.machine(m), ord.next++);
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
  if (ch.maintenanceConfigs.size > 0 || ch.maintenanceTargets.size > 0) writeMaintenance(st, state, ch.maintenanceConfigs, ch.maintenanceTargets);
  if (ch.hostMaintenance) writeHostMaintenance(st, state);
  if (ch.images) st.putMeta.run('images', JSON.stringify(state.images.toJSON()));
  if (ch.releases) st.putMeta.run('releases', releasesText(state));
}

/** Host updates and the confined machines' records: small (only machines under a Host configuration). */
function writeHostMaintenance(st: Writers, state: EngineState): void {
  const m = state.maintenance;
  st.putMeta.run('hostMaintenance', JSON.stringify({ updates: m.hostUpdates, applied: [...m.hostApplied] }));
}

/** Maintenance configurations (as specified; parsed again on load) and the assignments of the given targets. */
function writeMaintenance(st: Writers, state: EngineState, configs: Iterable<string>, targets: Iterable<string>): void {
  const m = state.maintenance;
  for (const id of configs) {
    const c = m.configs.get(id);
    if (c) st.putMaintenanceConfig.run(id, JSON.stringify({ id: c.id, scope: c.scope, window: c.window, emergencyBypass: c.emergencyBypass }));
    else st.deleteMaintenanceConfig.run(id);
  }
  for (const target of targets) {
    st.clearAssignments.run(target);
    for (const id of m.assignments.get(target) ?? []) st.putAssignment.run(target, id);
  }
}

function writeCatalog(st: Writers, state: EngineState): void {
  st.clearCatalogVersions.run();
  st.clearCatalogTypes.run();
  for (const t of state.catalog.listTypes()) {
    const key = `${t.publisher}.${t.type}`.toLowerCase();
    st.putCatalogType.run(key, t.publisher, t.type, t.supportsAutomaticUpgrade ? 1 : 0);
    for (const v of t.versions) st.putCatalogVersion.run(key, v.version, JSON.stringify(v.os), v.regions ? JSON.stringify(v.regions) : null, v.publishedAtMs, v.critical ? 1 : 0, v.digest);
  }
}

/** The engine's counters and input positions, in one row written with every commit. */
function writeMeta(st: Writers, state: EngineState): void {
  st.putMeta.run('counters', JSON.stringify({ eventSeq: state.eventSeq, rolloutSeq: state.rolloutSeq, timerSeq: state.timerSeq, actionSeq: state.actionSeq, marks: state.marks }));
}

/** Releases' evidence and holds, without what is derived on load (in-flight batches, waiting units). */
function releasesText(state: EngineState): string {
  return JSON.stringify([...state.releases.values()].map(({ inflight: _i, waiters: _w, ...stored }) => stored));
}
