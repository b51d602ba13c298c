/**
 * Opening the database file safely: one running Phasewise per file (a lock file naming the owner's
 * pid and start time; a lock left by a killed process is taken over), versioned migrations, and clear errors for a
 * file that is corrupt, newer than this code, or missing. Never re-initialises an existing file.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { createFileExclusive, readIfExists } from '../../util/atomic-file.js';
import { checkFileShape, checkSchema, checkWritable, hasSqliteHeader, notDatabase } from './file-checks.js';
import { StoreError } from './store-error.js';
import { isRunning, selfIdentity } from '../../util/process-identity.js';
import type { ProcessIdentity } from '../../util/process-identity.js';

export { StoreError } from './store-error.js';
export type { StoreErrorCode } from './store-error.js';

export interface OpenOptions {
  /** `new`: the file must not exist; `existing`: it must; `either`: create it if missing. */
  mode: 'new' | 'existing' | 'either';
  /** Read-only access for inspection (no lock, no migration). */
  readonly?: boolean;
}

export interface OpenDatabase {
  db: Database.Database;
  file: string;
  /** Releases the lock and closes the file. */
  close(): void;
}

export function openDatabase(file: string, opts: OpenOptions): OpenDatabase {
  const exists = existsSync(file);
  if (opts.mode === 'new' && exists) throw new StoreError('STORE_EXISTS', `${file} already exists; choose a new file or remove it first`);
  if (opts.mode === 'existing' && !exists) throw new StoreError('STORE_MISSING', `${file} does not exist`);
  if (exists && statSync(file).isDirectory()) {
    throw new StoreError('STORE_NOT_DATABASE', `${file} is a folder, not a database file; check the path — nothing was changed`);
  }
  // SQLite takes a file shorter than its header for an empty database, and would write a new one over it.
  if (exists) checkFileShape(file);
  // SQLite opens a file it may not write read-only without a word; the first write would fail much later.
  if (exists && !opts.readonly) checkWritable(file);
  const release = opts.readonly ? () => {} : acquireLock(file);
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.mode === 'existing' || (opts.readonly ?? false) });
    checkReadable(db, file);
    // Everything that refuses a file comes before the first write (WAL mode is written into the file's header).
    const version = checkVersion(db, file);
    checkSchema(db, file, version);
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      // FULL: a commit survives power loss. NORMAL (PHASEWISE_SQLITE_SYNC=NORMAL, about twice as fast
      // here) survives a crash of the process but may lose the last commits to a power cut.
      db.pragma(`synchronous = ${process.env.PHASEWISE_SQLITE_SYNC === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
      migrate(db, version);
      // Another program writing the file (an sqlite3 shell in a transaction) is found now, after the busy
      // timeout, rather than at the first write of a start that has done half its work.
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
    }
  } catch (err) {
    // Closed, so a refused file keeps no handle (nor, once closed, a WAL beside it) in a process that goes on.
    try {
      db?.close();
    } catch {
      // the error that matters is the one below
    }
    release();
    throw asStoreError(err, file);
  }
  const open = db;
  return {
    db: open,
    file,
    close: () => {
      try {
        open.close();
      } finally {
        release();
      }
    },
  };
}

/** Touches the schema, which fails at once on a file that is not an SQLite database. */
function checkReadable(db: Database.Database, file: string): void {
  try {
    db.pragma('schema_version', { simple: true });
  } catch (err) {
    throw asStoreError(err, file);
  }
}

function checkVersion(db: Database.Database, file: string): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  // No Phasewise writes a negative version; taken as "before 0" it ran every migration and failed with "table meta already exists".
  if (version < 0) {
    throw new StoreError('STORE_NOT_DATABASE', `${file} has user_version ${version}, which no Phasewise writes: not a Phasewise database; check the path — the file was left untouched`);
  }
  if (version > SCHEMA_VERSION) {
    throw new StoreError('STORE_NEWER', `${file} has schema version ${version}, newer than this Phasewise (${SCHEMA_VERSION}); use a newer Phasewise, or a backup taken before the upgrade`);
  }
  return version;
}

function migrate(db: Database.Database, version: number): void {
  for (const m of MIGRATIONS) {
    if (m.version <= version) continue;
    db.transaction(() => {
      db.exec(m.sql);
      m.run?.(db);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}

export function asStoreError(err: unknown, file: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = (err as Error).message;
  // Not a damaged database but another kind of file: a wrong path, not something to restore.
  if (code === 'SQLITE_NOTADB' && !hasSqliteHeader(file)) return notDatabase(file, err);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new StoreError('STORE_CORRUPT', `${file} is not a readable Phasewise database (${message}); restore it from a backup (phasewise db backup) — it was left untouched`, { cause: err });
  }
  if (code === 'SQLITE_FULL') return new StoreError('STORE_IO', `${file}: the disk is full (${message})`, { cause: err });
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_READONLY' || code === 'SQLITE_CANTOPEN') return new StoreError('STORE_IO', `${file}: ${message}`, { cause: err });
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new StoreError('STORE_LOCKED', `${file} is locked by another program writing to it (${message}); stop it, or wait for it to finish`, { cause: err });
  }
  return new StoreError('STORE_IO', `${file}: ${message}`, { cause: err });
}

/**
 * One Phasewise per database: `FILE.lock` names the owner (pid and start time, written whole). A lock
 * whose process is gone, or whose pid now belongs to another process (reused after a reboot), is stale
 * and taken over.
 */
export function acquireLock(file: string): () => void {
  const lock = `${file}.lock`;
  const me = selfIdentity();
  for (let tries = 0; tries < 2; tries++) {
    let created: boolean;
    try {
      created = createFileExclusive(lock, JSON.stringify(me));
    } catch (err) {
      throw new StoreError('STORE_IO', `cannot create ${lock}: ${(err as Error).message}`, { cause: err });
    }
    if (created) return () => rmSync(lock, { force: true });
    const owner = lockOwner(readIfExists(lock) ?? '');
    if (owner && (owner.pid === process.pid || isRunning(owner))) {
      throw new StoreError('STORE_LOCKED', `${file} is in use by another running Phasewise (pid ${owner.pid}); stop it first, or use a copy (phasewise db backup)`);
    }
    rmSync(lock, { force: true }); // stale: its owner is gone
  }
  throw new StoreError('STORE_LOCKED', `${file}: could not take the lock ${lock}`);
}

/** The owner a lock names: JSON, or a bare pid (older versions); null when unreadable. */
export function lockOwner(text: string): ProcessIdentity | null {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { pid: Number(t), start: null };
  try {
    const v = JSON.parse(t) as { pid?: unknown; start?: unknown };
    if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) return null;
    return { pid: v.pid as number, start: typeof v.start === 'string' ? v.start : null };
  } catch {
    return null;
  }
}
