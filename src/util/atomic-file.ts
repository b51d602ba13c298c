/**
 * Crash-safe file writes: a temporary file in the same folder, fsync, rename, fsync of the folder.
 * A reader sees the old content or the new one, never a torn file.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';

export function tempPathFor(file: string): string {
  return join(dirname(file), `.${randomBytes(6).toString('hex')}.tmp`);
}

export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = tempPathFor(file);
  const fd = openSync(tmp, 'wx', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
  closeSync(fd);
  renameAtomic(tmp, file);
}

/** Renames and makes the rename itself durable (fsync of the folder). */
export function renameAtomic(from: string, to: string): void {
  renameSync(from, to);
  fsyncDir(dirname(to));
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
