/** Prepared statements and the encoding of engine records as rows. */
import type Database from 'better-sqlite3';
import type { AttemptState, GateRun, PhaseState, RegionState, RolloutState, Timer, UnitState } from '../../engine/state.js';
import type { ExtensionInstance } from '../../model/artifact.js';
import type { Machine } from '../../model/fleet.js';

/** JSON that keeps Infinity (a manual rollout's unbounded pacing), which plain JSON turns into null. */
export function stringifyPlan(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v === Number.POSITIVE_INFINITY ? '+Infinity' : v));
}

export function parsePlan<T>(text: string): T {
  return JSON.parse(text, (_k, v) => (v === '+Infinity' ? Number.POSITIVE_INFINITY : v)) as T;
}

const b = (x: boolean) => (x ? 1 : 0);

/** Settings objects are shared by the instances of one template: encode each once. */
const settingsJson = new WeakMap<object, string>();
function settingsText(settings: Readonly<Record<string, unknown>>): string {
  let text = settingsJson.get(settings);
  if (text === undefined) settingsJson.set(settings, (text = JSON.stringify(settings)));
  return text;
}

export const encode = {
  machine: (m: Machine) =>
    [
      m.id,
      m.name,
      m.kind,
      m.os,
      m.resourceGroup,
      m.placement.region,
      m.placement.zone,
      m.placement.setId,
      m.placement.setKind,
      m.placement.updateDomain,
      m.placement.faultDomain,
      m.placement.subscription,
      m.instanceId ?? null,
    ] as const,
  instance: (i: ExtensionInstance) =>
    [
      i.artifactKey,
      i.machineId,
      i.name,
      i.publisher,
      i.type,
      i.typeHandlerVersion,
      b(i.autoUpgradeMinorVersion),
      b(i.enableAutomaticUpgrade),
      settingsText(i.settings),
      i.desiredVersion,
      i.installedVersion,
      i.lastKnownGoodVersion,
      i.status,
      i.blockedReason,
      i.lastError ?? null,
      i.previousGoodVersion || null,
    ] as const,
  rolloutNew: (r: RolloutState) =>
    [
      r.id,
      JSON.stringify(r.artifact),
      r.artifactKey,
      r.toVersion,
      r.status,
      r.reason,
      r.createdAtMs,
      r.endedAtMs,
      r.currentPhase,
      r.open,
      r.caller,
      b(r.force),
    ] as const,
  rollout: (r: RolloutState) => [r.status, r.reason, r.endedAtMs, r.currentPhase, r.open, r.id] as const,
  phase: (p: PhaseState) => [p.rolloutId, p.index, p.status, p.startedAtMs, p.endedAtMs, p.upgraded, p.unhealthy] as const,
  region: (rs: RegionState) => [rs.rolloutId, rs.region, rs.wave, rs.waveRemaining, rs.openUnits, rs.unfinished] as const,
  unit: (u: UnitState) =>
    [
      u.rolloutId,
      u.plan.id,
      u.status,
      u.next,
      b(u.passDone),
      b(u.waveSettled),
      JSON.stringify(u.retryReady),
      u.retryBatches,
      u.inflight ? JSON.stringify(u.inflight) : null,
    ] as const,
  gateRun: (g: GateRun) => [g.rolloutId, g.key, g.upgraded, g.unhealthyUpgraded, g.stoppedUntil] as const,
  attempt: (a: AttemptState) =>
    [a.rolloutId, a.machineId, a.unitId, a.batchId, a.attempt, a.status, a.fromVersion, a.actionKey, a.reason, a.dueAtMs] as const,
  timer: (t: Timer) => [t.id, t.at, t.kind, t.rolloutId, t.ref, JSON.stringify(t.token)] as const,
};

/** The statements' text: SQLite's, and PostgreSQL's once `?` become `$n` (both accept this dialect). */
export const SQL = {
  getMeta: 'SELECT value FROM meta WHERE key = ?',
  putMeta: 'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  putRegion: 'INSERT INTO regions (name, pair, zones) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET pair = excluded.pair, zones = excluded.zones',
  deleteRegion: 'DELETE FROM regions WHERE name = ?',
  putScaleSet: 'INSERT INTO scale_sets (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body',
  deleteScaleSet: 'DELETE FROM scale_sets WHERE id = ?',
  putAvailabilitySet: 'INSERT INTO availability_sets (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body',
  deleteAvailabilitySet: 'DELETE FROM availability_sets WHERE id = ?',
  putMachine: `INSERT INTO machines (id, name, kind, os, resource_group, region, zone, set_id, set_kind, update_domain, fault_domain, subscription, instance_id,
    ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  deleteMachine: 'DELETE FROM machines WHERE id = ?',
  putInstance: `INSERT INTO instances (artifact_key, machine_id, name, publisher, type, type_handler_version, auto_upgrade_minor, enable_automatic_upgrade,
    settings, desired, installed, last_known_good, status, blocked_reason, last_error, previous_good, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (artifact_key, machine_id) DO UPDATE SET type_handler_version = excluded.type_handler_version,
    auto_upgrade_minor = excluded.auto_upgrade_minor, enable_automatic_upgrade = excluded.enable_automatic_upgrade, settings = excluded.settings,
    desired = excluded.desired, installed = excluded.installed, last_known_good = excluded.last_known_good, status = excluded.status,
    blocked_reason = excluded.blocked_reason, last_error = excluded.last_error, previous_good = excluded.previous_good`,
  deleteInstance: 'DELETE FROM instances WHERE artifact_key = ? AND machine_id = ?',
  putHealth: 'INSERT INTO machine_health (machine_id, signals) VALUES (?, ?) ON CONFLICT (machine_id) DO UPDATE SET signals = excluded.signals',
  deleteHealth: 'DELETE FROM machine_health WHERE machine_id = ?',
  clearCatalogTypes: 'DELETE FROM catalog_types',
  clearCatalogVersions: 'DELETE FROM catalog_versions',
  putCatalogType: 'INSERT INTO catalog_types VALUES (?, ?, ?, ?)',
  putCatalogVersion: 'INSERT INTO catalog_versions VALUES (?, ?, ?, ?, ?, ?, ?)',
  putRolloutNew: `INSERT INTO rollouts (id, artifact, artifact_key, to_version, status, reason, created_at, ended_at, current_phase, open, caller, force)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  putPlan: 'INSERT INTO rollout_plans (rollout_id, plan) VALUES (?, ?)',
  putRollout: 'UPDATE rollouts SET status = ?, reason = ?, ended_at = ?, current_phase = ?, open = ? WHERE id = ?',
  putPhase: `INSERT INTO rollout_phases VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rollout_id, idx) DO UPDATE SET status = excluded.status,
    started_at = excluded.started_at, ended_at = excluded.ended_at, upgraded = excluded.upgraded, unhealthy = excluded.unhealthy`,
  putRegionState: `INSERT INTO rollout_regions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rollout_id, region) DO UPDATE SET wave = excluded.wave,
    wave_remaining = excluded.wave_remaining, open_units = excluded.open_units, unfinished = excluded.unfinished`,
  putUnit: `INSERT INTO rollout_units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rollout_id, unit_id) DO UPDATE SET status = excluded.status,
    next = excluded.next, pass_done = excluded.pass_done, wave_settled = excluded.wave_settled, retry_ready = excluded.retry_ready,
    retry_batches = excluded.retry_batches, inflight = excluded.inflight`,
  putGateRun: `INSERT INTO gate_runs VALUES (?, ?, ?, ?, ?) ON CONFLICT (rollout_id, key) DO UPDATE SET upgraded = excluded.upgraded,
    unhealthy_upgraded = excluded.unhealthy_upgraded, stopped_until = excluded.stopped_until`,
  putAttempt: `INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rollout_id, machine_id) DO UPDATE SET unit_id = excluded.unit_id,
    batch_id = excluded.batch_id, attempt = excluded.attempt, status = excluded.status, from_version = excluded.from_version,
    action_key = excluded.action_key, reason = excluded.reason, due_at = excluded.due_at`,
  deleteAttempt: 'DELETE FROM attempts WHERE rollout_id = ? AND machine_id = ?',
  putTimer: 'INSERT INTO timers VALUES (?, ?, ?, ?, ?, ?)',
  deleteTimer: 'DELETE FROM timers WHERE id = ?',
  putAction: 'INSERT INTO actions (key, rollout_id, machine_id, kind, body, sent_at) VALUES (?, ?, ?, ?, ?, ?)',
  answerAction: 'UPDATE actions SET answered_at = ?, ok = ? WHERE key = ?',
  putEnrollment: "INSERT INTO meta (key, value) VALUES ('enrollment', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  pendingActions: 'SELECT body FROM actions WHERE answered_at IS NULL ORDER BY sent_at, key',
  putMaintenanceConfig: 'INSERT INTO maintenance_configs VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body',
  deleteMaintenanceConfig: 'DELETE FROM maintenance_configs WHERE id = ?',
  clearAssignments: 'DELETE FROM maintenance_assignments WHERE target = ?',
  putAssignment: 'INSERT INTO maintenance_assignments VALUES (?, ?)',
} as const;

export type StatementName = keyof typeof SQL;

/** Every statement's name, in a fixed order: the group-commit journal names a statement by its index here. */
export const STATEMENT_NAMES = Object.keys(SQL) as StatementName[];

/** Something that runs a statement with positional arguments: a prepared SQLite statement, or a batch's recorder. */
export interface Runner {
  run(...args: unknown[]): unknown;
}

export type Writers = Record<StatementName, Runner>;

export function statements(db: Database.Database) {
  return Object.fromEntries(Object.entries(SQL).map(([k, sql]) => [k, db.prepare(sql)])) as Record<StatementName, Database.Statement>;
}

export type Statements = ReturnType<typeof statements>;
