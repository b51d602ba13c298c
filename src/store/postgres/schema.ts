/**
 * The PostgreSQL schema, as ordered migrations (numbered on their own: PostgreSQL's version 1 holds
 * what SQLite reached in four). The engine's tables have SQLite's columns in SQLite's order, so both
 * stores run the same statements (`../sqlite/rows.ts`); times are BIGINT (milliseconds), flags INTEGER.
 * Beside them: the schema version, the engine lease (fencing token) and the command queue.
 */
import { EVENTS_DDL } from './events.js';

export interface PgMigration {
  version: number;
  description: string;
  sql: string;
}

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    description: 'fleet, catalog, rollouts, attempts, timers, actions, events, maintenance; the engine lease and the command queue',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE regions (name TEXT PRIMARY KEY, pair TEXT, zones TEXT NOT NULL);
      CREATE TABLE scale_sets (id TEXT PRIMARY KEY, body TEXT NOT NULL);
      CREATE TABLE availability_sets (id TEXT PRIMARY KEY, body TEXT NOT NULL);
      CREATE TABLE machines (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, os TEXT NOT NULL, resource_group TEXT NOT NULL,
        region TEXT NOT NULL, zone TEXT, set_id TEXT, set_kind TEXT NOT NULL, update_domain INTEGER, fault_domain INTEGER,
        subscription TEXT NOT NULL, instance_id TEXT, ord BIGINT
      );
      CREATE TABLE instances (
        artifact_key TEXT NOT NULL, machine_id TEXT NOT NULL, name TEXT NOT NULL, publisher TEXT NOT NULL, type TEXT NOT NULL,
        type_handler_version TEXT NOT NULL, auto_upgrade_minor INTEGER NOT NULL, enable_automatic_upgrade INTEGER NOT NULL,
        settings TEXT NOT NULL, desired TEXT NOT NULL, installed TEXT NOT NULL, last_known_good TEXT NOT NULL,
        status TEXT NOT NULL, blocked_reason TEXT, last_error TEXT, ord BIGINT,
        PRIMARY KEY (artifact_key, machine_id)
      );
      CREATE TABLE machine_health (machine_id TEXT PRIMARY KEY, signals TEXT NOT NULL);
      CREATE TABLE catalog_types (key TEXT PRIMARY KEY, publisher TEXT NOT NULL, type TEXT NOT NULL, supports_automatic_upgrade INTEGER NOT NULL);
      CREATE TABLE catalog_versions (
        type_key TEXT NOT NULL, version TEXT NOT NULL, os TEXT NOT NULL, regions TEXT, published_at BIGINT NOT NULL,
        critical INTEGER NOT NULL, digest TEXT, PRIMARY KEY (type_key, version)
      );
      CREATE TABLE rollouts (
        id TEXT PRIMARY KEY, artifact TEXT NOT NULL, artifact_key TEXT NOT NULL, to_version TEXT NOT NULL, status TEXT NOT NULL,
        reason TEXT, created_at BIGINT NOT NULL, ended_at BIGINT, current_phase INTEGER NOT NULL, open BIGINT NOT NULL,
        caller TEXT NOT NULL, force INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE rollout_plans (rollout_id TEXT PRIMARY KEY, plan TEXT NOT NULL);
      CREATE TABLE rollout_phases (
        rollout_id TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, started_at BIGINT, ended_at BIGINT,
        upgraded INTEGER NOT NULL, unhealthy INTEGER NOT NULL, PRIMARY KEY (rollout_id, idx)
      );
      CREATE TABLE rollout_regions (
        rollout_id TEXT NOT NULL, region TEXT NOT NULL, wave INTEGER NOT NULL, wave_remaining INTEGER NOT NULL,
        open_units INTEGER NOT NULL, unfinished INTEGER NOT NULL, PRIMARY KEY (rollout_id, region)
      );
      CREATE TABLE rollout_units (
        rollout_id TEXT NOT NULL, unit_id TEXT NOT NULL, status TEXT NOT NULL, next INTEGER NOT NULL, pass_done INTEGER NOT NULL,
        wave_settled INTEGER NOT NULL, retry_ready TEXT NOT NULL, retry_batches INTEGER NOT NULL, inflight TEXT,
        PRIMARY KEY (rollout_id, unit_id)
      );
      CREATE TABLE gate_runs (
        rollout_id TEXT NOT NULL, key TEXT NOT NULL, upgraded INTEGER NOT NULL, unhealthy_upgraded INTEGER NOT NULL,
        stopped_until BIGINT, PRIMARY KEY (rollout_id, key)
      );
      CREATE TABLE attempts (
        rollout_id TEXT NOT NULL, machine_id TEXT NOT NULL, unit_id TEXT NOT NULL, batch_id TEXT NOT NULL, attempt INTEGER NOT NULL,
        status TEXT NOT NULL, from_version TEXT NOT NULL, action_key TEXT, reason TEXT, due_at BIGINT,
        PRIMARY KEY (rollout_id, machine_id)
      );
      CREATE TABLE timers (id BIGINT PRIMARY KEY, at BIGINT NOT NULL, kind TEXT NOT NULL, rollout_id TEXT NOT NULL, ref TEXT NOT NULL, token TEXT NOT NULL);
      CREATE TABLE actions (
        key TEXT PRIMARY KEY, rollout_id TEXT NOT NULL, machine_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
        sent_at BIGINT NOT NULL, answered_at BIGINT, ok INTEGER
      );
      CREATE INDEX actions_pending ON actions (answered_at) WHERE answered_at IS NULL;
      ${EVENTS_DDL}
      CREATE TABLE maintenance_configs (id TEXT PRIMARY KEY, body TEXT NOT NULL);
      CREATE TABLE maintenance_assignments (target TEXT NOT NULL, config_id TEXT NOT NULL, PRIMARY KEY (target, config_id));

      -- Leadership: one row per lease; the token grows by one at every change of holder (the fencing token).
      CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT, token BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
      INSERT INTO leases VALUES ('engine', NULL, 0, '-infinity');
      -- Raises unless the caller still holds the lease with this token and it has not expired (the server's clock).
      CREATE FUNCTION phasewise_fence(lease TEXT, who TEXT, fencing BIGINT) RETURNS void LANGUAGE plpgsql AS $fence$
      BEGIN
        PERFORM 1 FROM leases WHERE name = lease AND holder = who AND token = fencing AND expires_at > clock_timestamp() FOR SHARE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'phasewise: % no longer holds the % lease with fencing token %', who, lease, fencing USING ERRCODE = 'PW001';
        END IF;
      END $fence$;

      -- API writes made on any replica, for the engine's leader to apply; done_at is set in the engine's commit.
      CREATE TABLE commands (
        id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        done_at TIMESTAMPTZ, result TEXT
      );
      CREATE INDEX commands_open ON commands (id) WHERE done_at IS NULL;
    `,
  },
  {
    version: 2,
    description: 'each instance keeps the last known good version before its current one (a withdrawal goes back there), as SQLite\'s v6',
    sql: 'ALTER TABLE instances ADD COLUMN previous_good TEXT;',
  },
  {
    version: 3,
    description: 'the load order (ord) of machines and instances indexed: loading pages along it (without, each page scans the whole table)',
    sql: 'CREATE INDEX machines_ord ON machines (ord); CREATE INDEX instances_ord ON instances (ord);',
  },
  {
    version: 4,
    description: 'the tables serve keeps beside the engine\'s (API documents, agents, packages and their files, enrollment tokens, webhook outbox), '
      + 'mirrored from the leader\'s SQLite working copy (side-load.ts, side-capture.ts): SQLite\'s columns and keys, INTEGER as BIGINT',
    sql: `
      CREATE TABLE arm_documents (key TEXT PRIMARY KEY, parent TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL);
      CREATE TABLE agents (
        agent_id TEXT PRIMARY KEY, machine_id TEXT NOT NULL, resource_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
        machine_cert TEXT NOT NULL, thumbprint TEXT NOT NULL, enrolled_at BIGINT NOT NULL, revoked_at BIGINT,
        info TEXT NOT NULL, goal TEXT NOT NULL
      );
      CREATE TABLE agent_ops (
        key TEXT PRIMARY KEY, agent_id TEXT NOT NULL, machine_id TEXT NOT NULL, artifact_key TEXT NOT NULL,
        kind TEXT NOT NULL, to_version TEXT NOT NULL, answer TEXT
      );
      CREATE TABLE agent_status (agent_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL, report TEXT NOT NULL);
      CREATE TABLE agent_packages (
        artifact_key TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL, size BIGINT NOT NULL,
        signature TEXT NOT NULL, uploaded_at BIGINT NOT NULL, PRIMARY KEY (artifact_key, version)
      );
      CREATE TABLE agent_enrollment_tokens (
        name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, subscription_id TEXT NOT NULL, resource_group TEXT NOT NULL,
        location TEXT NOT NULL, expires_at BIGINT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL
      );
      CREATE TABLE webhook_outbox (hook TEXT NOT NULL, seq BIGINT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL, attempts BIGINT NOT NULL,
        PRIMARY KEY (hook, seq));
      -- The package files themselves (DATA_DIR/packages on one machine), in parts of 1 MiB: package-files.ts.
      CREATE TABLE agent_package_files (sha256 TEXT NOT NULL, part INTEGER NOT NULL, bytes BYTEA NOT NULL, PRIMARY KEY (sha256, part));
    `,
  },
  {
    version: 5,
    description: 'serve replicas: where each answers (followers forward to the leader there) and its certificate; a version every commit bumps',
    sql: `CREATE TABLE replicas (holder TEXT PRIMARY KEY, url TEXT NOT NULL, cert TEXT NOT NULL, seen_at TIMESTAMPTZ NOT NULL);
      -- Bumped in every transaction of the engine's store: replicas reload their read snapshot when it moves,
      -- and a write's command records the version that holds it (a replica reads its own writes).
      CREATE TABLE commit_version (one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), version BIGINT NOT NULL);
      INSERT INTO commit_version (version) VALUES (0);
      ALTER TABLE commands ADD COLUMN version BIGINT;`,
  },
  {
    version: 6,
    description: 'the events of one machine indexed (the API reads a machine\'s history and availability through it), as SQLite\'s events_machine',
    sql: 'CREATE INDEX events_machine ON events (machine_id, seq) WHERE machine_id IS NOT NULL;',
  },
  {
    version: 7,
    description: 'followers apply changes: the fleet tables\' rows record the commit version that wrote them (cv, indexed), their deletions '
      + 'leave tombstones; tombstones older than tombstone_floor are pruned (a follower behind it loads whole): read-model.ts',
    sql: `
      ALTER TABLE machines ADD COLUMN cv BIGINT; ALTER TABLE instances ADD COLUMN cv BIGINT; ALTER TABLE machine_health ADD COLUMN cv BIGINT;
      CREATE INDEX machines_cv ON machines (cv); CREATE INDEX instances_cv ON instances (cv); CREATE INDEX machine_health_cv ON machine_health (cv);
      CREATE TABLE state_tombstones (cv BIGINT NOT NULL, tbl TEXT NOT NULL, k1 TEXT NOT NULL, k2 TEXT);
      CREATE INDEX state_tombstones_cv ON state_tombstones (cv);
      CREATE TABLE tombstone_floor (one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), floor BIGINT NOT NULL);
      INSERT INTO tombstone_floor (floor) VALUES (0);
      -- The version the running transaction writes: PgStore sets phasewise.cv when it bumps commit_version.
      CREATE FUNCTION phasewise_cv() RETURNS BIGINT LANGUAGE sql STABLE AS $cv$
        SELECT coalesce(nullif(current_setting('phasewise.cv', true), '')::BIGINT, (SELECT version FROM commit_version))
      $cv$;
      CREATE FUNCTION phasewise_stamp() RETURNS trigger LANGUAGE plpgsql AS $st$
      BEGIN NEW.cv := phasewise_cv(); RETURN NEW; END $st$;
      CREATE FUNCTION phasewise_tombstone() RETURNS trigger LANGUAGE plpgsql AS $tb$
      BEGIN
        IF TG_TABLE_NAME = 'instances' THEN INSERT INTO state_tombstones VALUES (phasewise_cv(), 'instances', OLD.artifact_key, OLD.machine_id);
        ELSIF TG_TABLE_NAME = 'machines' THEN INSERT INTO state_tombstones VALUES (phasewise_cv(), 'machines', OLD.id, NULL);
        ELSE INSERT INTO state_tombstones VALUES (phasewise_cv(), 'machine_health', OLD.machine_id, NULL);
        END IF;
        RETURN OLD;
      END $tb$;
      CREATE TRIGGER machines_cv BEFORE INSERT OR UPDATE ON machines FOR EACH ROW EXECUTE FUNCTION phasewise_stamp();
      CREATE TRIGGER instances_cv BEFORE INSERT OR UPDATE ON instances FOR EACH ROW EXECUTE FUNCTION phasewise_stamp();
      CREATE TRIGGER machine_health_cv BEFORE INSERT OR UPDATE ON machine_health FOR EACH ROW EXECUTE FUNCTION phasewise_stamp();
      CREATE TRIGGER machines_gone AFTER DELETE ON machines FOR EACH ROW EXECUTE FUNCTION phasewise_tombstone();
      CREATE TRIGGER instances_gone AFTER DELETE ON instances FOR EACH ROW EXECUTE FUNCTION phasewise_tombstone();
      CREATE TRIGGER machine_health_gone AFTER DELETE ON machine_health FOR EACH ROW EXECUTE FUNCTION phasewise_tombstone();
    `,
  },
  {
    version: 8,
    description: 'followers apply the rollouts\' progress and the API\'s tables by change too: their rows record the commit version that wrote them '
      + '(cv, indexed), their deletions (and a key changed by an update) leave tombstones, as migration 7 does for the fleet: read-model.ts, side-apply.ts',
    sql: versionedTablesSql([
      ['rollouts', 'id'], ['rollout_phases', 'rollout_id', 'idx'], ['rollout_regions', 'rollout_id', 'region'], ['rollout_units', 'rollout_id', 'unit_id'],
      ['gate_runs', 'rollout_id', 'key'], ['attempts', 'rollout_id', 'machine_id'], ['timers', 'id'],
      ['arm_documents', 'key'], ['agents', 'agent_id'], ['agent_ops', 'key'], ['agent_status', 'agent_id'], ['agent_packages', 'artifact_key', 'version'],
      ['agent_enrollment_tokens', 'name'], ['webhook_outbox', 'hook', 'seq'],
    ]),
  },
];

/**
 * For each table (its name, then its key's one or two columns): a `cv` column stamped by migration 7's
 * phasewise_stamp and indexed, and a function of its own that leaves its key's tombstone (keys as text).
 * Written out per table, not one function reading OLD as JSON: that would encode whole rows (kilobytes
 * of an agent's report) at each deletion. Part of migration 8: never change what it generates.
 */
function versionedTablesSql(tables: ReadonlyArray<readonly [string, string, string?]>): string {
  return tables.map(([t, k1, k2]) => {
    const keys = k2 ? `OLD.${k1}::text, OLD.${k2}::text` : `OLD.${k1}::text, NULL`;
    const changed = k2 ? `OLD.${k1} IS DISTINCT FROM NEW.${k1} OR OLD.${k2} IS DISTINCT FROM NEW.${k2}` : `OLD.${k1} IS DISTINCT FROM NEW.${k1}`;
    return `
      ALTER TABLE ${t} ADD COLUMN cv BIGINT; CREATE INDEX ${t}_cv ON ${t} (cv);
      CREATE FUNCTION phasewise_gone_${t}() RETURNS trigger LANGUAGE plpgsql AS $g$
      BEGIN INSERT INTO state_tombstones VALUES (phasewise_cv(), '${t}', ${keys}); RETURN NULL; END $g$;
      CREATE TRIGGER ${t}_cv BEFORE INSERT OR UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION phasewise_stamp();
      CREATE TRIGGER ${t}_gone AFTER DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION phasewise_gone_${t}();
      CREATE TRIGGER ${t}_rekeyed AFTER UPDATE ON ${t} FOR EACH ROW WHEN (${changed}) EXECUTE FUNCTION phasewise_gone_${t}();`;
  }).join('\n');
}

/**
 * The fleet tables' indexes as the migrations above leave them, dropped and built again inside an import's
 * transaction: one sorted build per index instead of an index insertion per row (at 300,000 machines the
 * import took 0.7× the time and wrote 0.6× the WAL). Other sessions wait for the import's table locks; an
 * import only goes into an empty database. test/pg-import-sim.test.ts checks they match a migrated database's.
 */
export const FLEET_INDEXES = {
  drop: 'ALTER TABLE machines DROP CONSTRAINT machines_pkey; DROP INDEX machines_ord; DROP INDEX machines_cv; '
    + 'ALTER TABLE instances DROP CONSTRAINT instances_pkey; DROP INDEX instances_ord; DROP INDEX instances_cv;',
  build: 'ALTER TABLE machines ADD CONSTRAINT machines_pkey PRIMARY KEY (id); CREATE INDEX machines_ord ON machines (ord); CREATE INDEX machines_cv ON machines (cv); '
    + 'ALTER TABLE instances ADD CONSTRAINT instances_pkey PRIMARY KEY (artifact_key, machine_id); CREATE INDEX instances_ord ON instances (ord); '
    + 'CREATE INDEX instances_cv ON instances (cv);',
};

export const PG_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;
