/**
 * A JSON file cut short (power loss or a full disk on a file system that does not journal data): what is
 * whole in it is kept. The text is scanned once; a member of an object (or an element of an array) at
 * depth `keep` or above counts only if it ended before the cut; the containers still open are closed
 * after the last whole one. So a journal `{ "extensions": { "a": {…}, "b": {…` keeps record `a` whole and
 * drops `b`, never keeping half a record. Text that is damaged otherwise (not a prefix of JSON) is not
 * repaired: null.
 */
import { readJsonFile, readRegularFile } from './atomic-file.js';

/** The whole part of a cut JSON text, or null when the text is whole (parse it) or not a cut JSON at all. */
export function salvageCutJson(text: string, keep = 2): unknown {
  const open: string[] = []; // '}' or ']' for each container still open
  const safe: number[] = [0]; // per depth: where the last whole member of the open container ended
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      open.push(c === '{' ? '}' : ']');
      safe[open.length] = i + 1;
    } else if (c === '}' || c === ']') {
      if (open.pop() !== c) return null;
      if (open.length === 0) return null; // the root closed: the text is whole (or has more after it)
      safe[open.length] = i + 1;
    } else if (c === ',') safe[open.length] = i;
  }
  if (open.length === 0) return text.trim() === '' ? {} : null;
  const depth = Math.min(open.length, keep);
  const closers = open.slice(0, depth).reverse().join('');
  try {
    return JSON.parse(text.slice(0, safe[depth]) + closers) as unknown;
  } catch {
    return null;
  }
}

/**
 * Reads a JSON file no larger than `maxBytes` (undefined when it does not exist); a file cut short gives
 * its whole part and `cutAt`, its length. Other damage throws, as `readJsonFile` does.
 */
export function readJsonKeepingWhole(path: string, maxBytes: number): { value: unknown; cutAt: number | null } {
  try {
    return { value: readJsonFile(path, maxBytes), cutAt: null };
  } catch (err) {
    if (!/is not valid JSON/.test((err as Error).message)) throw err;
    const file = readRegularFile(path, maxBytes);
    const value = salvageCutJson(file.text);
    if (value === null) throw err;
    return { value, cutAt: file.size };
  }
}
