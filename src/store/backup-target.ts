/**
 * Where `db backup` writes: a new file, checked before anything is read, and written under a temporary
 * name beside it that takes the file's name only once the copy is complete. A backup that fails or is
 * killed halfway leaves no file that looks like a backup (a partial copy would pass `db check`).
 */
import { accessSync, constants, existsSync, linkSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './sqlite/database.js';
import { fsyncDir, tempPathFor } from '../util/atomic-file.js';

/** Refuses, before any work, a target that is empty, exists (a file or a folder), or lies in a missing folder or one this user may not write. */
export function checkBackupTarget(destination: string): void {
  if (destination.trim() === '') throw new StoreError('STORE_MISSING', 'the backup needs a file name (it was empty)');
  if (existsSync(destination)) {
    const what = statSync(destination).isDirectory() ? 'is a folder; name a new file in it' : 'already exists; a backup never overwrites a file';
    throw new StoreError('STORE_EXISTS', `${destination} ${what}`);
  }
  const folder = dirname(destination);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new StoreError('STORE_MISSING', `${destination}: the folder ${folder} does not exist; create it first`);
  // SQLite would only say "unable to open database file" once the source was opened.
  try {
    accessSync(folder, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
    throw new StoreError('STORE_IO', `${destination}: the folder ${folder} cannot be written (${code}); back up into a folder this user may write`);
  }
}

/**
 * Runs `write(tmp)` on a temporary file beside `destination`, then gives it the name (a link: a file
 * created there meanwhile is never replaced). The temporary file is removed whatever happens.
 */
export async function writeBackup<T>(destination: string, write: (tmp: string) => Promise<T>): Promise<T> {
  checkBackupTarget(destination);
  const tmp = tempPathFor(destination);
  const companions = [tmp, `${tmp}-journal`, `${tmp}-wal`, `${tmp}-shm`];
  try {
    const result = await write(tmp);
    selfContained(tmp);
    try {
      linkSync(tmp, destination);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new StoreError('STORE_EXISTS', `${destination} already exists; a backup never overwrites a file`);
      throw err;
    }
    fsyncDir(dirname(destination));
    return result;
  } finally {
    for (const f of companions) rmSync(f, { force: true });
  }
}

/**
 * The copy in rollback-journal mode: a WAL-mode file (the online backup keeps the source's mode) is not
 * one file. Opened read-only, as `db check` and `db restore` open a backup, it left `-wal` and `-shm` files
 * beside it (SQLite needs them for a WAL file, so the folder had to be writable).
 */
function selfContained(file: string): void {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
}
