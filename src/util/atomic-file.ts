/**
 * Files Phasewise owns are never seen half-written: each is written to a temporary file beside it,
 * fsynced, then renamed (or linked, to create only if absent) over its name, and the folder fsynced so
 * the new name survives a crash. A reader sees the old content or the new, never an empty file.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644; secrets use 0o600). */
  mode?: number;
}

/** Writes `data` to `file`, replacing it atomically. */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const tmp = writeTemp(file, data, opts.mode ?? 0o644);
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(file));
}

/**
 * Creates `file` with `data` only if it does not exist (whole, or not at all). Returns false, and
 * changes nothing, when the file is already there.
 */
export function createFileExclusive(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): boolean {
  const tmp = writeTemp(file, data, opts.mode ?? 0o644);
  try {
    linkSync(tmp, file); // fails with EEXIST instead of replacing
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(dirname(file));
  return true;
}

/**
 * Reads `file`; when it is missing, or its content fails `valid` (an empty file left by an older,
 * non-atomic write), writes `make()` atomically first and returns that.
 */
export function readOrCreate(file: string, make: () => string, valid: (text: string) => boolean, opts: AtomicWriteOptions = {}): string {
  const current = readIfExists(file);
  if (current !== null && valid(current)) return current;
  const fresh = make();
  if (current === null) {
    // Another process may create it at the same moment: whoever links first wins, both read that.
    if (createFileExclusive(file, fresh, opts)) return fresh;
    const won = readIfExists(file);
    if (won !== null && valid(won)) return won;
  }
  writeFileAtomic(file, fresh, opts);
  return fresh;
}

export function readIfExists(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function writeTemp(file: string, data: string | Uint8Array, mode: number): string {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  return tmp;
}

/** Makes a rename or link in `dir` durable; a no-op where folders cannot be opened (Windows). */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    // Some file systems refuse fsync on a folder; the rename itself is still atomic.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL' && (err as NodeJS.ErrnoException).code !== 'EISDIR') throw err;
  } finally {
    closeSync(fd);
  }
}

/** A temporary name in the file's folder (same file system, so a rename can replace the file). */
export function tempPathFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Renames and makes the rename itself durable (fsync of the folder). */
export function renameAtomic(from: string, to: string): void {
  renameSync(from, to);
  fsyncDir(dirname(to));
}
