/**
 * The SQLite schema, as ordered migrations. A database records the version it reached in
 * `PRAGMA user_version`; start-up applies the missing migrations and refuses a database that is newer
 * than this code.
 */
import type Database from 'better-sqlite3';
import { migrateEventsFromV4 } from './event-log.js';
import { WEBHOOK_OUTBOX_DDL } from './side-schema.js';

export interface Migration {
  version: number;
  description: string;
  sql: string;
  /** Work SQL alone cannot do (re-encoding rows), run after `sql` in the same transaction. */
  run?: (db: Database.Database) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'fleet, catalog, rollouts and their progress, attempts, timers, actions, events',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE regions (name TEXT PRIMARY KEY, pair TEXT, zones TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE scale_sets (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE availability_sets (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE machines (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, os TEXT NOT NULL, resource_group TEXT NOT NULL,
        region TEXT NOT NULL, zone TEXT, set_id TEXT, set_kind TEXT NOT NULL, update_domain INTEGER, fault_domain INTEGER,
        subscription TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE instances (
        artifact_key TEXT NOT NULL, machine_id TEXT NOT NULL, name TEXT NOT NULL, publisher TEXT NOT NULL, type TEXT NOT NULL,
        type_handler_version TEXT NOT NULL, auto_upgrade_minor INTEGER NOT NULL, enable_automatic_upgrade INTEGER NOT NULL,
        settings TEXT NOT NULL, desired TEXT NOT NULL, installed TEXT NOT NULL, last_known_good TEXT NOT NULL,
        status TEXT NOT NULL, blocked_reason TEXT,
        PRIMARY KEY (artifact_key, machine_id)
      ) WITHOUT ROWID;
      CREATE TABLE machine_health (machine_id TEXT PRIMARY KEY, signals TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE catalog_types (key TEXT PRIMARY KEY, publisher TEXT NOT NULL, type TEXT NOT NULL, supports_automatic_upgrade INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE catalog_versions (
        type_key TEXT NOT NULL, version TEXT NOT NULL, os TEXT NOT NULL, regions TEXT, published_at INTEGER NOT NULL,
        critical INTEGER NOT NULL, digest TEXT, PRIMARY KEY (type_key, version)
      ) WITHOUT ROWID;
      CREATE TABLE rollouts (
        id TEXT PRIMARY KEY, artifact TEXT NOT NULL, artifact_key TEXT NOT NULL, to_version TEXT NOT NULL, status TEXT NOT NULL,
        reason TEXT, created_at INTEGER NOT NULL, ended_at INTEGER, current_phase INTEGER NOT NULL, open INTEGER NOT NULL,
        caller TEXT NOT NULL
      ) WITHOUT ROWID;
      -- The plan is large (every machine of the rollout) and written once: apart from the rows updated every tick.
      CREATE TABLE rollout_plans (rollout_id TEXT PRIMARY KEY, plan TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE rollout_phases (
        rollout_id TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, started_at INTEGER, ended_at INTEGER,
        upgraded INTEGER NOT NULL, unhealthy INTEGER NOT NULL, PRIMARY KEY (rollout_id, idx)
      ) WITHOUT ROWID;
      CREATE TABLE rollout_regions (
        rollout_id TEXT NOT NULL, region TEXT NOT NULL, wave INTEGER NOT NULL, wave_remaining INTEGER NOT NULL,
        open_units INTEGER NOT NULL, unfinished INTEGER NOT NULL, PRIMARY KEY (rollout_id, region)
      ) WITHOUT ROWID;
      CREATE TABLE rollout_units (
        rollout_id TEXT NOT NULL, unit_id TEXT NOT NULL, status TEXT NOT NULL, next INTEGER NOT NULL, pass_done INTEGER NOT NULL,
        wave_settled INTEGER NOT NULL, retry_ready TEXT NOT NULL, retry_batches INTEGER NOT NULL, inflight TEXT,
        PRIMARY KEY (rollout_id, unit_id)
      ) WITHOUT ROWID;
      CREATE TABLE gate_runs (
        rollout_id TEXT NOT NULL, key TEXT NOT NULL, upgraded INTEGER NOT NULL, unhealthy_upgraded INTEGER NOT NULL,
        stopped_until INTEGER, PRIMARY KEY (rollout_id, key)
      ) WITHOUT ROWID;
      CREATE TABLE attempts (
        rollout_id TEXT NOT NULL, machine_id TEXT NOT NULL, unit_id TEXT NOT NULL, batch_id TEXT NOT NULL, attempt INTEGER NOT NULL,
        status TEXT NOT NULL, from_version TEXT NOT NULL, action_key TEXT, reason TEXT, due_at INTEGER,
        PRIMARY KEY (rollout_id, machine_id)
      ) WITHOUT ROWID;
      CREATE TABLE timers (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, rollout_id TEXT NOT NULL, ref TEXT NOT NULL, token TEXT NOT NULL);
      CREATE TABLE actions (
        key TEXT PRIMARY KEY, rollout_id TEXT NOT NULL, machine_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
        sent_at INTEGER NOT NULL, answered_at INTEGER, ok INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX actions_pending ON actions (answered_at) WHERE answered_at IS NULL;
      CREATE TABLE events (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, type TEXT NOT NULL, rollout_id TEXT, machine_id TEXT, body TEXT NOT NULL);
      CREATE INDEX events_rollout ON events (rollout_id, seq) WHERE rollout_id IS NOT NULL;
    `,
  },
  {
    version: 2,
    description: 'fleet changes at run time: scale-set instance ids, the last error of a user install, forced manual rollouts',
    sql: `
      ALTER TABLE machines ADD COLUMN instance_id TEXT;
      ALTER TABLE instances ADD COLUMN last_error TEXT;
      ALTER TABLE rollouts ADD COLUMN force INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 3,
    description: 'maintenance configurations and their assignments to machines and sets (R70-R73)',
    sql: `
      CREATE TABLE maintenance_configs (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE maintenance_assignments (target TEXT NOT NULL, config_id TEXT NOT NULL, PRIMARY KEY (target, config_id)) WITHOUT ROWID;
    `,
  },
  {
    version: 4,
    description: 'machines and instances keep the order they were added in, so a restart iterates the fleet as before it',
    sql: `
      ALTER TABLE machines ADD COLUMN ord INTEGER;
      ALTER TABLE instances ADD COLUMN ord INTEGER;
    `,
  },
  {
    version: 5,
    description: 'a compact event log: placements, artifacts and other repeated values stored once, machines by id, indexed by machine',
    sql: '',
    run: migrateEventsFromV4,
  },
  {
    version: 6,
    description: 'each instance keeps the last known good version before its current one (a withdrawal goes back there); '
      + 'a rollout\'s last events of some types are read without scanning its log (the dashboard); the webhooks\' outbox',
    sql: `
      ALTER TABLE instances ADD COLUMN previous_good TEXT;
      CREATE INDEX events_rollout_shape ON events (rollout_id, shape, seq) WHERE rollout_id IS NOT NULL;
      ${WEBHOOK_OUTBOX_DDL};
    `,
  },
  {
    version: 7,
    description: 'actions in the order they were sent (a rowid table, the key in its own unique index): a tick\'s actions are appended '
      + 'together rather than each written into the middle of a table of wide rows ordered by key',
    sql: `
      CREATE TABLE actions_v7 (
        seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, rollout_id TEXT NOT NULL, machine_id TEXT NOT NULL, kind TEXT NOT NULL,
        body TEXT NOT NULL, sent_at INTEGER NOT NULL, answered_at INTEGER, ok INTEGER
      );
      INSERT INTO actions_v7 (key, rollout_id, machine_id, kind, body, sent_at, answered_at, ok)
        SELECT key, rollout_id, machine_id, kind, body, sent_at, answered_at, ok FROM actions ORDER BY sent_at, key;
      DROP TABLE actions;
      ALTER TABLE actions_v7 RENAME TO actions;
      CREATE INDEX actions_pending ON actions (answered_at) WHERE answered_at IS NULL;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
