/**
 * Checks of a database file made before Phasewise writes anything to it: what it is (a folder, another
 * kind of file, a file cut short, another application's database, one missing its tables) and whether
 * it may be written. Each refusal is a StoreError with a one-line message naming the file.
 */
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { StoreError } from './store-error.js';

/**
 * A file this Phasewise can open holds the tables of its schema version: none at version 0 (a new
 * file), all of them after. Another application's database, or one whose tables were dropped, is
 * refused here, before a migration could write into it.
 */
export function checkSchema(db: Database.Database, file: string, version: number): void {
  const present = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name));
  const ours = expectedTables(SCHEMA_VERSION);
  if (version === 0) {
    if (present.size === 0) return;
    const tables = [...present].slice(0, 5).join(', ');
    throw new StoreError('STORE_NOT_DATABASE', `${file} is an SQLite database of another application (tables ${tables}), not a Phasewise one; check the path — the file was left untouched`);
  }
  const missing = [...expectedTables(version)].filter((t) => !present.has(t));
  if (missing.length === 0) return;
  if (![...present].some((t) => ours.has(t))) {
    throw new StoreError('STORE_NOT_DATABASE', `${file} is not a Phasewise database (none of its tables; its user_version is ${version}); check the path — the file was left untouched`);
  }
  throw new StoreError('STORE_CORRUPT', `${file} says schema version ${version} but lacks the tables ${missing.slice(0, 5).join(', ')}; restore it from a backup — it was left untouched`);
}

const tablesAt = new Map<number, Set<string>>();

/** The tables a file of `version` holds: the migrations up to it, applied to an empty database in memory (once per version). */
function expectedTables(version: number): Set<string> {
  let tables = tablesAt.get(version);
  if (!tables) {
    const mem = new Database(':memory:');
    try {
      for (const m of MIGRATIONS) {
        if (m.version > version) break;
        mem.exec(m.sql);
        m.run?.(mem);
      }
      tables = new Set((mem.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name));
    } finally {
      mem.close();
    }
    tablesAt.set(version, tables);
  }
  return tables;
}

export function checkWritable(file: string): void {
  try {
    accessSync(file, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
    const message = `${file} cannot be written (${code}): Phasewise writes its database; check the file's permissions and its file system — the file was left untouched`;
    throw new StoreError('STORE_IO', message, { cause: err });
  }
}

export function notDatabase(file: string, cause?: unknown): StoreError {
  const message = `${file} is not a database at all (it does not start with the SQLite header); check the path — the file was left untouched`;
  return new StoreError('STORE_NOT_DATABASE', message, cause === undefined ? undefined : { cause });
}

/** The first bytes of a file (fewer when it is shorter; none when it cannot be read). */
function readHead(file: string, length: number): Buffer {
  let fd: number | null = null;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(length);
    return buf.subarray(0, readSync(fd, buf, 0, length, 0));
  } catch {
    return Buffer.alloc(0);
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** True when the file begins as every SQLite database does ("SQLite format 3\0"). */
export function hasSqliteHeader(file: string): boolean {
  return readHead(file, 16).toString('latin1') === 'SQLite format 3\0';
}

/**
 * Refuses, before SQLite opens it, a file SQLite would misread: one that does not start with the header
 * (SQLite takes a file shorter than its header for an empty database, and would write a new one over
 * it), and one that ends inside a page (cut short: SQLite reads the missing bytes as zeros, silently).
 */
export function checkFileShape(file: string): void {
  const size = statSync(file).size;
  if (size === 0) return; // an empty file is a new database
  if (!hasSqliteHeader(file)) throw notDatabase(file);
  const raw = readHead(file, 18);
  const pageSize = raw.length === 18 ? (raw.readUInt16BE(16) === 1 ? 65536 : raw.readUInt16BE(16)) : 0;
  // A header with no valid page size is damaged inside: SQLite says so itself (STORE_CORRUPT below).
  const valid = pageSize >= 512 && (pageSize & (pageSize - 1)) === 0;
  if (valid && size % pageSize !== 0) {
    throw new StoreError('STORE_CORRUPT', `${file} is cut short or damaged (${size} bytes is not a whole number of ${pageSize}-byte pages); restore it from a backup — it was left untouched`);
  }
}
