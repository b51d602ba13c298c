/**
 * Connecting to PostgreSQL, migrating its schema, and what its errors mean for Phasewise: a server
 * that cannot be reached, a schema newer than this code, a lost lease.
 */
import pg from 'pg';
import { StoreError } from '../sqlite/database.js';
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from './schema.js';
import { redact } from '../../util/redact-url.js';

export { redact };

/** BIGINT (milliseconds, counters) as numbers, as SQLite gives them: every value stored fits in 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//.test(spec);
}

/**
 * What pg_stat_activity shows of a connection: `phasewise PID PURPOSE`, so that an operator (or a test) can tell
 * which replica holds which connection, and end only the one meant. An application_name in the URL wins.
 */
export function applicationName(purpose?: string): string {
  return `phasewise ${process.pid}${purpose ? ` ${purpose}` : ''}`.slice(0, 63);
}

export async function connect(url: string, opts: { onError?: (err: Error) => void; timeoutMs?: number; purpose?: string } = {}): Promise<pg.Client> {
  let client: pg.Client;
  try {
    client = new pg.Client({ connectionString: url, types: TYPES, connectionTimeoutMillis: opts.timeoutMs ?? 10_000, application_name: applicationName(opts.purpose) });
  } catch (err) {
    // The driver reads sslrootcert=, sslcert= and sslkey= files here: a missing one is not a URL that cannot be parsed.
    if (typeof (err as NodeJS.ErrnoException).path === 'string') {
      throw new StoreError('STORE_BAD_URL', `a file the PostgreSQL URL names cannot be read (${(err as Error).message})`, { cause: err });
    }
    // pg parses the URL here and says only "Invalid URL": name what is wrong, never the password.
    throw new StoreError('STORE_BAD_URL', `the PostgreSQL URL cannot be parsed (${(err as Error).message}); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE`
      + ', with a port from 1 to 65535 and special characters of the password percent-encoded', { cause: err });
  }
  // A server that goes away emits 'error' on an idle client: without a listener the process would die.
  client.on('error', (err) => opts.onError?.(err));
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw new StoreError('STORE_UNREACHABLE', `cannot reach PostgreSQL at ${redact(url)}: ${(err as Error).message || (err as { code?: string }).code}`, { cause: err });
  }
  return client;
}

/** The schema version a database has reached; 0 for one Phasewise never used. */
export async function schemaVersion(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ present: boolean }>("SELECT to_regclass('phasewise_schema') IS NOT NULL AS present");
  if (!rows[0]!.present) return 0;
  const v = await client.query<{ version: number }>('SELECT version FROM phasewise_schema');
  return v.rows[0]?.version ?? 0;
}

function newerError(url: string, version: number): StoreError {
  return new StoreError('STORE_NEWER', `${redact(url)} has schema version ${version}, newer than this Phasewise (${PG_SCHEMA_VERSION}); run the newer Phasewise on every replica`);
}

/**
 * Applies the missing migrations, one transaction each, under an advisory lock so that replicas
 * starting together migrate once. Refuses a database newer than this code, changing nothing.
 */
export async function migrate(client: pg.Client, url: string): Promise<number> {
  // A database already at this version needs no statement that creates: a user without CREATE rights (the tables migrated
  // by their owner, the replicas running as a user that only reads and writes rows) starts too.
  const current = await schemaVersion(client).catch(() => -1);
  if (current > PG_SCHEMA_VERSION) throw newerError(url, current);
  if (current === PG_SCHEMA_VERSION) return PG_SCHEMA_VERSION;
  try {
    return await migrateLocked(client, url);
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    throw new StoreError('STORE_IO', `${redact(url)} has schema version ${Math.max(0, current)}, older than this Phasewise (${PG_SCHEMA_VERSION}), and its user may not `
      + `migrate it (${(err as Error).message}): start one replica once with the URL of a user that owns the database (or may CREATE in its schema)`, { cause: err });
  }
}

async function migrateLocked(client: pg.Client, url: string): Promise<number> {
  await client.query('SELECT pg_advisory_lock(7077001)');
  try {
    await client.query('CREATE TABLE IF NOT EXISTS phasewise_schema (version INTEGER NOT NULL)');
    await client.query('INSERT INTO phasewise_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM phasewise_schema)');
    const version = await schemaVersion(client);
    if (version > PG_SCHEMA_VERSION) throw newerError(url, version);
    for (const m of PG_MIGRATIONS) {
      if (m.version <= version) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('UPDATE phasewise_schema SET version = $1', [m.version]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
    return PG_SCHEMA_VERSION;
  } finally {
    await client.query('SELECT pg_advisory_unlock(7077001)').catch(() => {});
  }
}

/** Refuses (without changing anything) a database that is not exactly at this code's version. */
export async function checkSchemaCurrent(client: pg.Client, url: string): Promise<void> {
  const version = await schemaVersion(client);
  if (version > PG_SCHEMA_VERSION) throw newerError(url, version);
  if (version < PG_SCHEMA_VERSION) {
    throw new StoreError('STORE_IO', `${redact(url)} has schema version ${version}, older than this Phasewise (${PG_SCHEMA_VERSION}); start one replica of this Phasewise (serve) to migrate it`);
  }
}

/**
 * Part of every engine commit: fails it when another Phasewise migrated the schema meanwhile (a
 * replica of an older version must not write rows it no longer understands).
 */
export const SCHEMA_GUARD = `DO $guard$ BEGIN
  IF (SELECT version FROM phasewise_schema) <> ${PG_SCHEMA_VERSION} THEN
    RAISE EXCEPTION 'phasewise: the database schema changed under this replica (it runs version ${PG_SCHEMA_VERSION}); restart it with the Phasewise that migrated it'
      USING ERRCODE = 'PW002';
  END IF;
END $guard$`;

/** A database error as a StoreError with the code the CLI maps to an exit code. */
export function pgStoreError(err: unknown, url: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = (err as Error).message;
  if (code === 'PW001') return new StoreError('STORE_FENCED', message, { cause: err });
  if (code === 'PW002') return new StoreError('STORE_NEWER', message, { cause: err });
  if (/^(08|57P)/.test(code) || /ECONNREFUSED|ECONNRESET|Connection terminated|not queryable|ETIMEDOUT|EPIPE/.test(message)) {
    return new StoreError('STORE_UNREACHABLE', `PostgreSQL at ${redact(url)} went away: ${message}`, { cause: err });
  }
  return new StoreError('STORE_IO', `PostgreSQL at ${redact(url)}: ${message}`, { cause: err });
}
