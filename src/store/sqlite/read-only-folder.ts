/**
 * Reading a WAL database whose folder this user may not write (`db check`, `db backup`).
 *
 * SQLite reads a WAL database through its `-shm` file, which it creates beside the database: in a
 * read-only folder with no `-shm` there (no program has the database open) the open fails with
 * "attempt to write a readonly database". SQLite's immutable open would do, but better-sqlite3 is built
 * without URI file names. With no `-shm`, no program has the file open, so its bytes (and a `-wal` left
 * by a crash) are a consistent database: they are copied into a private temporary folder and read
 * there. If the files change during the copy (a program that may write the folder opened the database),
 * the copy is refused: run again. A live database (its `-shm` present) is read in place, as before.
 */
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { StoreError } from './store-error.js';

/** Whether this user may write the database and its folder (a left journal is applied in place only then). */
export function mayWrite(file: string): boolean {
  try {
    accessSync(dirname(file), constants.W_OK);
    accessSync(file, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether the database must be read from a copy: WAL mode, no `-shm`, and a folder this user may not write. */
export function needsPrivateCopy(file: string): boolean {
  if (existsSync(`${file}-shm`) || !isWalFile(file)) return false;
  try {
    accessSync(dirname(file), constants.W_OK);
    return false;
  } catch {
    return true;
  }
}

/** Bytes 18 and 19 of the header are 2 in WAL mode (SQLite's file format, 1.3). */
function isWalFile(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return false; // the open that follows names the problem
  }
  try {
    const header = Buffer.alloc(20);
    return readSync(fd, header, 0, 20, 0) === 20 && header[18] === 2 && header[19] === 2;
  } catch {
    return false; // a folder (EISDIR): the open that follows names the problem
  } finally {
    closeSync(fd);
  }
}

interface Snapshot { size: number; mtimeMs: number; ino: number }

function snapshot(path: string): Snapshot | null {
  try {
    const s = statSync(path);
    return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
  } catch {
    return null;
  }
}

const same = (a: Snapshot | null, b: Snapshot | null) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Copies the database (and its `-wal`, if one was left, and the files `beside` named by their suffix: a
 * Phasewise journal) into a new private folder; returns the copy's path and how to remove it. Throws
 * STORE_LOCKED when the files changed during the copy, STORE_IO when the copy cannot be made (the
 * temporary folder full), naming the way out.
 */
export function privateCopy(file: string, beside: readonly string[] = []): { copy: string; remove: () => void } {
  const folder = mkdtempSync(join(tmpdir(), 'phasewise-read-'));
  const remove = () => rmSync(folder, { recursive: true, force: true });
  const copy = join(folder, basename(file));
  const suffixes = ['-wal', ...beside];
  const before = [snapshot(file), ...suffixes.map((x) => snapshot(`${file}${x}`))];
  const hadShm = existsSync(`${file}-shm`);
  try {
    copyFileSync(file, copy);
    chmodSync(copy, 0o600); // the copy is ours to write (a left journal is applied to it), whatever the file's mode
    suffixes.forEach((x, i) => { if (before[i + 1]) copyFileSync(`${file}${x}`, `${copy}${x}`); });
  } catch (err) {
    remove();
    throw new StoreError('STORE_IO', `${file}: its folder cannot be written, so SQLite cannot create ${basename(file)}-shm beside it to read it, and the copy read instead `
      + `could not be made in ${tmpdir()} (${(err as Error).message}); free space there (or set TMPDIR), or run as a user that may write ${dirname(file)}`, { cause: err });
  }
  const after = [snapshot(file), ...suffixes.map((x) => snapshot(`${file}${x}`))];
  // A -shm that appeared: a program opened the database meanwhile (one left by a crash was there before).
  if (before.some((b, i) => !same(b, after[i]!)) || (!hadShm && existsSync(`${file}-shm`))) {
    remove();
    throw new StoreError('STORE_LOCKED', `${file} changed while it was read (a program opened it); run the command again, or stop that program first`);
  }
  return { copy, remove };
}
