/**
 * `db restore BACKUP --db FILE`: a SQLite backup put in place of a database file. Copying the backup over
 * the file by hand is a trap: the `-wal` a stopped or killed `serve` left beside the old file is replayed
 * onto the copy at the next open, so the "restored" database shows the old one's later state, or a mix of
 * the two files' pages, and `db check` still says ok. Here the old file's companions go with it, the copy
 * is made with SQLite's backup (a consistent snapshot of the backup, whole or absent), and a running
 * Phasewise (the file's lock) refuses it.
 */
import { closeSync, existsSync, fsyncSync, openSync, realpathSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { renameAtomic, tempPathFor } from '../../util/atomic-file.js';
import { acquireLock, asStoreError, openDatabase, StoreError } from './database.js';
import { journalPaths } from './journal-file.js';
import { checkDatabase } from './maintenance.js';
import { SCHEMA_VERSION } from './schema.js';

/** What SQLite and Phasewise keep beside a database file: a WAL, its index, a rollback journal, the group journal. */
export function companionsOf(file: string): string[] {
  return [`${file}-wal`, `${file}-shm`, `${file}-journal`, ...journalPaths(file)];
}

export async function restoreDatabase(backup: string, file: string, opts: { replace: boolean }): Promise<{ pages: number; replaced: boolean }> {
  if (backup.trim() === '') throw new StoreError('STORE_MISSING', 'the backup to restore needs a file name (it was empty)');
  if (!existsSync(backup)) throw new StoreError('STORE_MISSING', `${backup} does not exist; nothing was changed`);
  if (statSync(backup).isDirectory()) throw new StoreError('STORE_NOT_DATABASE', `${backup} is a folder, not a backup; nothing was changed`);
  const folder = dirname(file);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new StoreError('STORE_MISSING', `${file}: the folder ${folder} does not exist; nothing was changed`);
  if (existsSync(file)) {
    if (statSync(file).isDirectory()) throw new StoreError('STORE_NOT_DATABASE', `${file} is a folder, not a database file; nothing was changed`);
    if (realpathSync(file) === realpathSync(backup)) throw new StoreError('STORE_EXISTS', `${backup} is the database itself; nothing was changed`);
  }
  const present = [file, ...companionsOf(file)].filter((f) => existsSync(f));
  if (present.length > 0 && !opts.replace) {
    throw new StoreError('STORE_EXISTS', `${present[0]} exists; give --replace to put the backup in place of the database there (phasewise db backup it first to keep it); nothing was changed`);
  }
  // The backup: a Phasewise database, whole, and not newer than this Phasewise (serve would refuse it after the swap).
  const report = checkDatabase(backup);
  if (report.schemaVersion === 0) throw new StoreError('STORE_NOT_DATABASE', `${backup} holds no Phasewise database; nothing was changed`);
  if (report.schemaVersion > SCHEMA_VERSION) {
    throw new StoreError('STORE_NEWER', `${backup} was written by a newer Phasewise (schema ${report.schemaVersion}, this one knows ${SCHEMA_VERSION}); nothing was changed`);
  }
  if (report.integrity.length !== 1 || report.integrity[0] !== 'ok') {
    throw new StoreError('STORE_CORRUPT', `${backup} fails the integrity check (${report.integrity.slice(0, 3).join('; ')}); nothing was changed`);
  }
  // A running Phasewise holds the file's lock: STORE_LOCKED, and nothing is touched. Held until the swap is done.
  const release = acquireLock(file);
  const tmp = tempPathFor(file);
  try {
    const { db, close } = openDatabase(backup, { mode: 'existing', readonly: true });
    let pages: number;
    try {
      pages = (await db.backup(tmp)).totalPages;
    } finally {
      close();
    }
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // The old file's WAL and journals would be applied to the copy at the next open: they go first.
    for (const f of companionsOf(file)) rmSync(f, { force: true });
    renameAtomic(tmp, file);
    return { pages, replaced: present.length > 0 };
  } catch (err) {
    throw asStoreError(err, file);
  } finally {
    for (const f of [tmp, ...companionsOf(tmp)]) rmSync(f, { force: true });
    release();
  }
}
