/**
 * Rebuilding the engine's working state from the database after a restart: the fleet, the catalog,
 * and every rollout from its plan plus the rows of its progress. What the engine keeps only as an
 * index (in-flight counts, blocked units, health waiters, pending actions) is derived again here.
 */
import type Database from 'better-sqlite3';
import { Catalog } from '../../catalog/catalog.js';
import { ImageCatalog } from '../../catalog/images.js';
import type { ImageCatalogJson } from '../../catalog/images.js';
import type { HostUpdate, MaintenanceConfigSpec } from '../../model/maintenance.js';
import { maintenanceConfig } from '../../model/maintenance.js';
import type { DriverAction } from '../../engine/driver.js';
import { zoneKey } from '../../engine/rollouts/waves.js';
import { judgedByRelease, releaseOfRollout } from '../../engine/attempts/release-evidence.js';
import { newRolloutState } from '../../engine/rollouts/create.js';
import type {
  AttemptState, BatchRun, EngineState, FleetState, GateRun, PhaseStatus, ReleaseState, RolloutState, RolloutStatus, Timer, UnitState, UnitStatus,
} from '../../engine/state.js';
import {
  addHealthWaiter, addInstance, addMachine, emptyFleet, getInstance, instanceRef, newAttempt, newEngineState, newTimer, refreshMachineHealth, releaseKey, standaloneKey,
} from '../../engine/state.js';
import type { Artifact, ExtensionInstance, ProvisioningStatus } from '../../model/artifact.js';
import type {
  AvailabilitySet, Machine, MachineKind, OsType, Placement, ScaleSet, SetKind,
} from '../../model/fleet.js';
import type { Plan } from '../../planner/types.js';
import { parsePlan } from './rows.js';

export type Row = Record<string, unknown>;
const all = (db: Database.Database, sql: string, ...args: unknown[]) => db.prepare(sql).all(...args) as Row[];
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** The state from `db`; with `fleet`, its machines and instances came from elsewhere (PostgreSQL) and `db` holds the rest. */
export function loadState(db: Database.Database, fleet?: FleetLoader): EngineState {
  return loadStateWithFleet(db, fleet ? fleet.finish(db) : loadFleet(db));
}

/**
 * The state from `db` around a fleet already built (a follower's, kept in step: read-model.ts). With
 * `plans`, the rollouts' plans come from there (parsed once: a plan never changes, and it lists every machine).
 */
export function loadStateWithFleet(db: Database.Database, fleet: FleetState, plans?: ReadonlyMap<string, Plan>): EngineState {
  const state = loadStateHead(db, fleet);
  if (plans) {
    for (const r of all(db, 'SELECT * FROM rollouts ORDER BY created_at, id')) {
      const plan = plans.get(r.id as string);
      if (plan) state.rollouts.set(r.id as string, loadRollout(db, state, r, plan)); // as the join below: a rollout without its plan is not loaded
    }
  } else {
    for (const r of all(db, 'SELECT r.*, p.plan FROM rollouts r JOIN rollout_plans p ON p.rollout_id = r.id ORDER BY r.created_at, r.id')) {
      state.rollouts.set(r.id as string, loadRollout(db, state, r, parsePlan<Plan>(r.plan as string)));
    }
  }
  for (const t of all(db, 'SELECT * FROM timers ORDER BY at, id')) state.timers.push(timerOf(t));
  loadStateTail(db, state);
  return state;
}

/**
 * What a state holds besides its fleet, rollouts and timers, read whole (small: counters, catalog, maintenance,
 * images): the start of a load. A follower's read model adds the rollouts and timers it keeps, then `loadStateTail`.
 */
export function loadStateHead(db: Database.Database, fleet: FleetState): EngineState {
  const state = newEngineState(fleet, loadCatalog(db));
  const counters = db.prepare("SELECT value FROM meta WHERE key = 'counters'").get() as { value: string } | undefined;
  const c = JSON.parse(counters?.value ?? '{}') as { eventSeq?: number; rolloutSeq?: number; timerSeq?: number; actionSeq?: number; marks?: Record<string, number> };
  state.eventSeq = c.eventSeq ?? 0;
  state.rolloutSeq = c.rolloutSeq ?? 0;
  state.timerSeq = c.timerSeq ?? 0;
  state.actionSeq = c.actionSeq ?? 0;
  const enrollment = db.prepare("SELECT value FROM meta WHERE key = 'enrollment'").get() as { value: string } | undefined;
  for (const sub of JSON.parse(enrollment?.value ?? '[]') as string[]) state.enrolledSubscriptions.add(sub);
  state.marks = c.marks ?? {};
  for (const row of all(db, 'SELECT body FROM maintenance_configs')) {
    const c = maintenanceConfig(JSON.parse(row.body as string) as MaintenanceConfigSpec);
    state.maintenance.configs.set(c.id, c);
  }
  const images = db.prepare("SELECT value FROM meta WHERE key = 'images'").get() as { value: string } | undefined;
  if (images) state.images = ImageCatalog.fromJSON(JSON.parse(images.value) as ImageCatalogJson);
  const host = db.prepare("SELECT value FROM meta WHERE key = 'hostMaintenance'").get() as { value: string } | undefined;
  if (host) {
    const h = JSON.parse(host.value) as { updates: HostUpdate[]; applied: Array<[string, { through: number; lastMs: number }]> };
    state.maintenance.hostUpdates = h.updates;
    state.maintenance.hostApplied = new Map(h.applied);
  }
  for (const row of all(db, 'SELECT target, config_id FROM maintenance_assignments')) {
    const target = row.target as string;
    let ids = state.maintenance.assignments.get(target);
    if (!ids) state.maintenance.assignments.set(target, (ids = new Set()));
    ids.add(row.config_id as string);
  }
  return state;
}

/**
 * The end of a load, once the rollouts and timers are in: pending actions, releases, and the indexes derived
 * from the rollouts. `busyUnits` (a follower's read model) gives each rollout's units in flight or blocked,
 * in the rollout's unit order: the only ones the indexes come from, so the others need not be visited.
 */
export function loadStateTail(db: Database.Database, state: EngineState, busyUnits?: (r: RolloutState) => Iterable<UnitState>): void {
  for (const a of all(db, 'SELECT body, rollout_id FROM actions WHERE answered_at IS NULL ORDER BY sent_at, key')) {
    const action = JSON.parse(a.body as string) as DriverAction;
    if (action.kind === 'install' || action.kind === 'uninstall') {
      // A user's install or uninstall: the newest one per instance is the one in flight (older ones were given up).
      state.pendingActions.set(action.key, {
        rolloutId: '',
        machineId: action.machineId,
        kind: action.kind,
        artifactKey: action.artifactKey,
        toVersion: action.toVersion,
        caller: action.caller ?? 'user',
      });
      state.installing.set(instanceRef(action.artifactKey, action.machineId), action.key);
    } else {
      state.pendingActions.set(action.key, { rolloutId: a.rollout_id as string, machineId: action.machineId, kind: action.kind });
    }
  }
  loadReleases(db, state);
  deriveIndexes(state, busyUnits);
}

/**
 * The fleet built row by row: SQLite hands it its machines and instances from the file, PostgreSQL
 * page by page as they arrive (never all rows at once). Rows must come in `ord` order. Placements,
 * settings and the few distinct texts of a column (versions, statuses, regions) are shared between
 * rows, as the generator shares them: millions of machines do not each hold their own copies.
 */
export class FleetLoader {
  readonly fleet = emptyFleet();
  private readonly placements = new Map<string, Placement>();
  private readonly settings = new Map<string, Readonly<Record<string, unknown>>>();
  private readonly texts = new Map<string, string>();

  /** Regions and sets, read before any machine. */
  constructor(db: Database.Database) {
    const fleet = this.fleet;
    for (const r of all(db, 'SELECT * FROM regions')) {
      fleet.regions.set(r.name as string, { name: r.name as string, pair: (r.pair as string | null) ?? null, zones: JSON.parse(r.zones as string) as string[] });
    }
    for (const r of all(db, 'SELECT body FROM scale_sets')) { const s = JSON.parse(r.body as string) as ScaleSet; fleet.scaleSets.set(s.id, s); }
    for (const r of all(db, 'SELECT body FROM availability_sets')) { const s = JSON.parse(r.body as string) as AvailabilitySet; fleet.availabilitySets.set(s.id, s); }
  }

  /** One copy of a text that many rows repeat (bounded: a column of unique values is not cached). */
  private shared(v: unknown): string {
    const text = v as string;
    const known = this.texts.get(text);
    if (known !== undefined) return known;
    if (this.texts.size < 100_000) this.texts.set(text, text);
    return text;
  }

  machine(r: Row): void {
    const p: Placement = {
      region: r.region as string, zone: (r.zone as string | null) ?? null, setId: (r.set_id as string | null) ?? null, setKind: r.set_kind as SetKind,
      updateDomain: num(r.update_domain), faultDomain: num(r.fault_domain), subscription: r.subscription as string,
    };
    const key = `${p.region}|${p.zone}|${p.setId}|${p.updateDomain}|${p.faultDomain}|${p.subscription}`;
    let shared = this.placements.get(key);
    if (!shared) this.placements.set(key, (shared = Object.freeze(p)));
    const id = r.id as string;
    const m: Machine = {
      id, name: r.name === id ? id : (r.name as string), kind: this.shared(r.kind) as MachineKind, os: this.shared(r.os) as OsType,
      resourceGroup: this.shared(r.resource_group), placement: shared,
    };
    if (r.instance_id !== null && r.instance_id !== undefined) m.instanceId = r.instance_id as string;
    addMachine(this.fleet, m);
  }

  instance(r: Row): void {
    const text = r.settings as string;
    let s = this.settings.get(text);
    if (!s) this.settings.set(text, (s = Object.freeze(JSON.parse(text) as Record<string, unknown>)));
    const t = (v: unknown) => this.shared(v);
    const machineId = this.fleet.machines.get(r.machine_id as string)?.id ?? (r.machine_id as string);
    const inst: ExtensionInstance = {
      machineId, artifactKey: t(r.artifact_key), name: t(r.name), publisher: t(r.publisher), type: t(r.type),
      typeHandlerVersion: t(r.type_handler_version), autoUpgradeMinorVersion: r.auto_upgrade_minor === 1, enableAutomaticUpgrade: r.enable_automatic_upgrade === 1,
      settings: s, desiredVersion: t(r.desired), installedVersion: t(r.installed), lastKnownGoodVersion: t(r.last_known_good),
      status: t(r.status) as ProvisioningStatus, blockedReason: (r.blocked_reason as string | null) ?? null,
    };
    if (r.last_error !== null && r.last_error !== undefined) inst.lastError = r.last_error as string;
    if (typeof r.previous_good === 'string') inst.previousGoodVersion = t(r.previous_good);
    addInstance(this.fleet, inst);
  }

  /** Health, read after the machines; machines with a Failed extension count as unhealthy. */
  finish(db: Database.Database): FleetState {
    const fleet = this.fleet;
    for (const r of all(db, 'SELECT * FROM machine_health')) fleet.health.set(r.machine_id as string, JSON.parse(r.signals as string));
    for (const id of fleet.health.keys()) refreshMachineHealth(fleet, id);
    for (const byMachine of fleet.instances.values()) for (const i of byMachine.values()) if (i.status === 'Failed') refreshMachineHealth(fleet, i.machineId);
    return fleet;
  }
}

function loadFleet(db: Database.Database): FleetState {
  const loader = new FleetLoader(db);
  for (const r of db.prepare('SELECT * FROM machines ORDER BY ord, id').iterate() as Iterable<Row>) loader.machine(r);
  for (const r of db.prepare('SELECT * FROM instances ORDER BY ord, artifact_key, machine_id').iterate() as Iterable<Row>) loader.instance(r);
  return loader.finish(db);
}

function loadCatalog(db: Database.Database): Catalog {
  const catalog = new Catalog();
  for (const t of all(db, 'SELECT * FROM catalog_types')) catalog.addType(t.publisher as string, t.type as string, t.supports_automatic_upgrade === 1);
  for (const v of all(db, 'SELECT v.*, t.publisher, t.type FROM catalog_versions v JOIN catalog_types t ON t.key = v.type_key')) {
    catalog.publish(v.publisher as string, v.type as string, {
      version: v.version as string, os: JSON.parse(v.os as string) as OsType[], regions: v.regions ? (JSON.parse(v.regions as string) as string[]) : null,
      publishedAtMs: Number(v.published_at), critical: v.critical === 1, digest: (v.digest as string | null) ?? null,
    });
  }
  return catalog;
}

function loadRollout(db: Database.Database, state: EngineState, row: Row, plan: Plan): RolloutState {
  const r = rolloutOf(row, plan);
  const id = r.id;
  for (const p of all(db, 'SELECT * FROM rollout_phases WHERE rollout_id = ?', id)) applyPhaseRow(r, p);
  for (const g of all(db, 'SELECT * FROM rollout_regions WHERE rollout_id = ?', id)) applyRegionRow(r, g);
  for (const u of all(db, 'SELECT * FROM rollout_units WHERE rollout_id = ?', id)) applyUnitRow(r, u);
  const runs = gateRunsOf(r);
  for (const g of all(db, 'SELECT * FROM gate_runs WHERE rollout_id = ?', id)) applyGateRunRow(runs, g);
  for (const a of all(db, 'SELECT * FROM attempts WHERE rollout_id = ?', id)) r.attempts.set(a.machine_id as string, attemptOf(state.fleet, r, a));
  return r;
}

/*
 * The decoders of the rollouts' progress rows, one per table: a load applies every row of a rollout, a
 * follower's read model (../postgres/read-model.ts) only those written since its version, onto the state it keeps.
 */

/** A rollout as created from its row and plan, with the row's fields (no progress yet). */
export function rolloutOf(row: Row, plan: Plan): RolloutState {
  const req = { artifact: JSON.parse(row.artifact as string) as Artifact, toVersion: row.to_version as string, profile: plan.profile.name, caller: row.caller as string, force: row.force === 1 };
  const r = newRolloutState(row.id as string, row.artifact_key as string, req, plan, Number(row.created_at), Number(row.open));
  applyRolloutRow(r, row);
  return r;
}

/** The fields of a rollout's row that a commit changes (SQL.putRollout). */
export function applyRolloutRow(r: RolloutState, row: Row): void {
  r.status = row.status as RolloutStatus;
  r.reason = (row.reason as string | null) ?? null;
  r.endedAtMs = num(row.ended_at);
  r.currentPhase = Number(row.current_phase);
  r.open = Number(row.open);
}

export function applyPhaseRow(r: RolloutState, p: Row): void {
  Object.assign(r.phases[Number(p.idx)]!, {
    status: p.status as PhaseStatus, startedAtMs: num(p.started_at), endedAtMs: num(p.ended_at), upgraded: Number(p.upgraded), unhealthy: Number(p.unhealthy),
  });
}

export function applyRegionRow(r: RolloutState, g: Row): void {
  Object.assign(r.regions.get(g.region as string)!, { wave: Number(g.wave), waveRemaining: Number(g.wave_remaining), openUnits: Number(g.open_units), unfinished: Number(g.unfinished) });
}

export function applyUnitRow(r: RolloutState, u: Row): void {
  Object.assign(r.units.get(u.unit_id as string)!, {
    status: u.status as UnitStatus, next: Number(u.next), passDone: u.pass_done === 1, waveSettled: u.wave_settled === 1,
    retryReady: JSON.parse(u.retry_ready as string) as string[], retryBatches: Number(u.retry_batches), inflight: u.inflight ? (JSON.parse(u.inflight as string) as BatchRun) : null,
  });
}

/** A rollout's gate runs by key (the units of one set share theirs). */
export function gateRunsOf(r: RolloutState): Map<string, GateRun> {
  const runs = new Map<string, GateRun>();
  for (const u of r.units.values()) runs.set(u.gateRun.key, u.gateRun);
  return runs;
}

export function applyGateRunRow(runs: ReadonlyMap<string, GateRun>, g: Row): void {
  const run = runs.get(g.key as string);
  if (run) Object.assign(run, { upgraded: Number(g.upgraded), unhealthyUpgraded: Number(g.unhealthy_upgraded), stoppedUntil: num(g.stopped_until) });
}

export function attemptOf(fleet: FleetState, r: RolloutState, a: Row): AttemptState {
  const machineId = a.machine_id as string;
  return newAttempt({
    rolloutId: r.id, machineId, inst: getInstance(fleet, r.artifactKey, machineId)!, unitId: a.unit_id as string, batchId: a.batch_id as string,
    attempt: Number(a.attempt), status: a.status as AttemptState['status'], fromVersion: a.from_version as string, actionKey: (a.action_key as string | null) ?? null,
    reason: (a.reason as string | null) ?? null, dueAtMs: num(a.due_at),
  });
}

export function timerOf(t: Row): Timer {
  const token = JSON.parse(t.token as string) as string | number;
  return newTimer(Number(t.id), { at: Number(t.at), kind: t.kind as Timer['kind'], rolloutId: t.rollout_id as string, ref: t.ref as string, token });
}

function loadReleases(db: Database.Database, state: EngineState): void {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'releases'").get() as { value: string } | undefined;
  for (const rel of JSON.parse(row?.value ?? '[]') as Array<Omit<ReleaseState, 'inflight' | 'waiters'>>) {
    state.releases.set(rel.key, { ...rel, inflight: 0, waiters: new Map() });
  }
}

/** Indexes the engine keeps in memory only: in-flight counts, locks' waiters, health waiters. */
function deriveIndexes(state: EngineState, busyUnits: (r: RolloutState) => Iterable<UnitState> = (r) => r.units.values()): void {
  for (const r of state.rollouts.values()) {
    // Empty after a load; a follower's read model keeps its rollouts across refreshes and derives them again.
    for (const rs of r.regions.values()) {
      rs.inflight = 0;
      rs.inflightByZone.clear();
      rs.blocked.clear();
      rs.advancing = false;
    }
    for (const u of busyUnits(r)) {
      const rs = r.regions.get(u.region)!;
      if (u.inflight) {
        if (judgedByRelease(r)) releaseOfRollout(state, r).inflight += u.inflight.machineIds.length;
        const zone = zoneKey(u);
        rs.inflight++;
        rs.inflightByZone.set(zone, (rs.inflightByZone.get(zone) ?? 0) + 1);
        if (u.plan.setId) state.setInflight.set(u.plan.setId, (state.setInflight.get(u.plan.setId) ?? 0) + 1);
        else {
          const key = standaloneKey(r.id, u.phase, u.plan.subscription);
          state.standaloneInflight.set(key, (state.standaloneInflight.get(key) ?? 0) + u.inflight.machineIds.length);
        }
      }
      if (u.status === 'blocked') {
        rs.blocked.add(u);
        // It may wait for its release (held, or fanning out); a spare wake is harmless.
        if (judgedByRelease(r)) releaseOfRollout(state, r).waiters.set(u.plan.id, r.id);
        else state.releases.get(releaseKey(r.artifactKey, r.toVersion))?.waiters.set(u.plan.id, r.id); // an operator's hold
        if (u.plan.setId) {
          let waiters = state.setWaiters.get(u.plan.setId);
          if (!waiters) state.setWaiters.set(u.plan.setId, (waiters = new Map()));
          waiters.set(u.plan.id, r.id);
        } else {
          // Why it waited is not stored: a standalone unit also waits for its subscription (R12); a spare wake is harmless.
          const key = standaloneKey(r.id, u.phase, u.plan.subscription);
          let subs = state.subscriptionWaiters.get(key);
          if (!subs) state.subscriptionWaiters.set(key, (subs = new Set()));
          subs.add(u);
        }
      }
    }
    for (const a of r.attempts.values()) {
      if (a.status !== 'healthWait') continue;
      addHealthWaiter(state, a);
    }
  }
}
