/**
 * Crash-safe files: write a temporary file, fsync it, rename it over the target, fsync the folder.
 * A reader (or the agent after `kill -9`) sees either the old content or the new, never half of one.
 * Synchronous on purpose: the journal must be on disk before the step it announces starts.
 */
import { closeSync, constants, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

let counter = 0;

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * With `previous`, the file being replaced stays there under that name (a hard link, no copy): its data
 * was made durable by its own write, so it is whole even when the new file's data is lost to a disk that
 * acknowledged an fsync it had not done. At every moment `path` exists.
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600, previous: string | null = null): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${counter++}.tmp`);
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      // write(2) may write less than asked (a disk that fills up, a file-size limit): loop until all
      // of it is written or it fails, so a short write never becomes a truncated journal.
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (previous !== null) keepPrevious(path, previous, `${tmp}.prev`);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true }); // a full disk must not also collect half-written temporaries
    throw err;
  }
  fsyncDir(dir);
}

/**
 * Links `path` to `previous` (replacing it). When `path` does not exist yet, or cannot be linked (a file
 * system without hard links), the save goes on and the old `previous` is removed: a fallback more than
 * one write behind could bring back a step as not done.
 */
function keepPrevious(path: string, previous: string, tmp: string): void {
  try {
    linkSync(path, tmp);
  } catch (err) {
    rmSync(previous, { force: true });
    return;
  }
  try {
    renameSync(tmp, previous);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function writeJsonAtomic(path: string, value: unknown, mode = 0o600, previous: string | null = null): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode, previous);
}

/** A file that is not a plain file: a FIFO, a device, a folder, or (when not followed) a symlink. */
export class NotRegularFile extends Error {}

/**
 * Reads at most `maxBytes` of a regular file. Opened without blocking and checked after opening: a FIFO
 * nobody writes to would otherwise block the agent's only thread. With `follow: false` a symlink is
 * refused (a handler's file linked to /etc/shadow must not be read as root and sent to the server).
 */
export function readRegularFile(path: string, maxBytes: number, follow = true): { text: string; size: number; mtimeMs: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (follow ? 0 : constants.O_NOFOLLOW));
  } catch (err) {
    if (!follow && (err as NodeJS.ErrnoException).code === 'ELOOP') throw new NotRegularFile(`${path} is a symbolic link; only a regular file is read`);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NotRegularFile(`${path} is not a regular file (a FIFO, a device or a folder)`);
    const buf = Buffer.alloc(Math.min(st.size, maxBytes));
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return { text: buf.subarray(0, n).toString('utf8'), size: st.size, mtimeMs: st.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** Reads a JSON file no larger than `maxBytes`; undefined when it does not exist. */
export function readJsonFile(path: string, maxBytes: number, follow = true): unknown {
  let file: { text: string; size: number };
  try {
    file = readRegularFile(path, maxBytes + 1, follow);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (file.size > maxBytes) throw new Error(`${path} is ${file.size} bytes, over the ${maxBytes}-byte limit`);
  try {
    return JSON.parse(file.text) as unknown;
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Depth of a parsed JSON value (a scalar is 0): bounded before a value reaches state. */
export function jsonDepth(value: unknown, limit: number): number {
  const walk = (v: unknown, d: number): number => {
    if (d > limit) return d;
    if (v === null || typeof v !== 'object') return d;
    let max = d;
    for (const child of Object.values(v as Record<string, unknown>)) {
      max = Math.max(max, walk(child, d + 1));
      if (max > limit) return max;
    }
    return max;
  };
  return walk(value, 0);
}
