/**
 * Crash-safe files: write a temporary file, fsync it, rename it over the target, fsync the folder.
 * A reader (or the agent after `kill -9`) sees either the old content or the new, never half of one.
 * Synchronous on purpose: the journal must be on disk before the step it announces starts.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
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

export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${counter++}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    if (typeof data === 'string') writeSync(fd, data);
    else writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dir);
}

export function writeJsonAtomic(path: string, value: unknown, mode = 0o600): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/** Reads a JSON file no larger than `maxBytes`; undefined when it does not exist. */
export function readJsonFile(path: string, maxBytes: number): unknown {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (size > maxBytes) throw new Error(`${path} is ${size} bytes, over the ${maxBytes}-byte limit`);
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
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
