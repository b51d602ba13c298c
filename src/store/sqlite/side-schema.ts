/**
 * The tables `serve` keeps beside the engine's (the API's documents, the agents, their packages and
 * enrollment tokens, the webhooks' outbox): each owner creates its table with the statement here, and
 * the PostgreSQL mirror (`../postgres/side-load.ts`) creates the same ones in a leader's working copy.
 * One place for the DDL, so the owners and the mirror cannot drift apart.
 */

export const ARM_DOCUMENTS_DDL = `CREATE TABLE IF NOT EXISTS arm_documents (
  key TEXT PRIMARY KEY, parent TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS arm_documents_parent ON arm_documents (parent, kind);`;

// agent_status is a rowid table: rows of kilobytes write faster than in a WITHOUT ROWID b-tree.
export const AGENT_TABLES_DDL = `
CREATE TABLE IF NOT EXISTS agents (
  agent_id TEXT PRIMARY KEY, machine_id TEXT NOT NULL, resource_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
  machine_cert TEXT NOT NULL, thumbprint TEXT NOT NULL, enrolled_at INTEGER NOT NULL, revoked_at INTEGER,
  info TEXT NOT NULL, goal TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agents_machine ON agents (machine_id);
CREATE TABLE IF NOT EXISTS agent_ops (
  key TEXT PRIMARY KEY, agent_id TEXT NOT NULL, machine_id TEXT NOT NULL, artifact_key TEXT NOT NULL,
  kind TEXT NOT NULL, to_version TEXT NOT NULL, answer TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_status (
  agent_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, report TEXT NOT NULL
);`;

export const AGENT_PACKAGES_DDL = `CREATE TABLE IF NOT EXISTS agent_packages (
  artifact_key TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  signature TEXT NOT NULL, uploaded_at INTEGER NOT NULL, PRIMARY KEY (artifact_key, version)
) WITHOUT ROWID`;

export const ENROLLMENT_TOKENS_DDL = `CREATE TABLE IF NOT EXISTS agent_enrollment_tokens (
  name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, subscription_id TEXT NOT NULL, resource_group TEXT NOT NULL,
  location TEXT NOT NULL, expires_at INTEGER NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL
) WITHOUT ROWID`;

/** Created by the SQLite migration 6 (`schema.ts`); here with IF NOT EXISTS for a working copy. */
export const WEBHOOK_OUTBOX_DDL = `CREATE TABLE IF NOT EXISTS webhook_outbox (hook TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL,
  attempts INTEGER NOT NULL, PRIMARY KEY (hook, seq)) WITHOUT ROWID`;

/** Every side table, with the statement that creates it (and its indexes) when missing. */
export const SIDE_TABLES: ReadonlyArray<{ name: string; ddl: string }> = [
  { name: 'arm_documents', ddl: ARM_DOCUMENTS_DDL },
  { name: 'agents', ddl: AGENT_TABLES_DDL },
  { name: 'agent_ops', ddl: AGENT_TABLES_DDL },
  { name: 'agent_status', ddl: AGENT_TABLES_DDL },
  { name: 'agent_packages', ddl: AGENT_PACKAGES_DDL },
  { name: 'agent_enrollment_tokens', ddl: ENROLLMENT_TOKENS_DDL },
  { name: 'webhook_outbox', ddl: WEBHOOK_OUTBOX_DDL },
];
