/**
 * Request bodies are measured before they are parsed: nesting depth, values, members of one object,
 * key and string lengths, duplicate keys, numbers that do not fit a double. The scan is one loop with
 * no recursion, so a body nested thousands of levels deep is refused without touching the stack, and
 * nothing deeper than MAX_DEPTH ever reaches the engine, the store or JSON.stringify.
 */
import { badRequest } from './errors.js';
import type { ArmError } from './errors.js';

export const JSON_LIMITS = {
  /** Objects and arrays inside one another; ARM's own resources nest about 8 deep. */
  maxDepth: 32,
  /** Every value in the body (members and array elements). */
  maxValues: 20_000,
  /** Members of one object. */
  maxMembers: 1_000,
  /** Characters of a property name: ARM's longest tag name (a tag's name is a key of `tags`). */
  maxKeyLength: 512,
  /** Characters of one string value (decoded length is at most this). */
  maxStringLength: 32_768,
} as const;

type Limits = typeof JSON_LIMITS;

const limitError = (name: keyof Limits, what: string, limits: Limits): ArmError =>
  badRequest('InvalidRequestContent', `The request body ${what} (limit ${name}: ${limits[name]}; see docs/api.md#limits).`, name);

/** Parses a JSON body after checking it against the limits; an ArmError (400) names the limit passed. */
export function parseLimitedJson(text: string, limits: Limits = JSON_LIMITS, channel?: ChannelBounds): unknown {
  // Named, not shown: the JSON parser's message quoted the invisible character. (The ARM surface reads past
  // one before it gets here; the agent channel stores bodies as sent and refuses it.)
  if (text.charCodeAt(0) === 0xfeff) {
    throw badRequest('InvalidRequestContent', 'The request body starts with a UTF-8 byte order mark (U+FEFF, bytes EF BB BF); send the JSON without it.');
  }
  const keys = scan(text, limits, channel);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest('InvalidRequestContent', `The request content is not valid JSON: ${(err as Error).message}`);
  }
  // A key named twice in one object is one property once parsed: fewer properties than keys in the text.
  // Only then is the text scanned again, with a set per object, to name it.
  if (countKeys(value) !== keys) {
    scanForDuplicates(text);
    throw badRequest('InvalidRequestContent', 'The request body names a property twice in one object.');
  }
  // U+0000 (written \u0000 in JSON): SQLite would store it, PostgreSQL's text cannot, so a write that one
  // store takes and the other cannot commit is refused on both. Only a body with the escape is walked.
  if (text.includes('\\u0000') && holdsNul(value)) {
    throw badRequest('InvalidRequestContent', 'The request body holds the character U+0000 (\\u0000) in a string or property name; it is not accepted.');
  }
  // An unpaired surrogate (`\ud800` alone) is no character: stored as sent it reached an agent or a UTF-8
  // encoder as U+FFFD, so what was stored was not what is used. UTF-8 bytes cannot hold one; only an escape can.
  // The agent channel (`channel`) is left as it was: its strings are the agent's own, possibly cut mid-pair.
  if (channel === undefined && /\\u[dD][89a-fA-F]/.test(text) && holdsLoneSurrogate(value)) {
    throw badRequest('InvalidRequestContent', 'The request body holds an unpaired UTF-16 surrogate (an escape such as \\ud800 without its pair) in a string or property name; it is not a character.');
  }
  return value;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A string or property name holding an unpaired surrogate anywhere in a parsed value (depth bounded by the scan). */
function holdsLoneSurrogate(v: unknown): boolean {
  if (typeof v === 'string') return LONE_SURROGATE.test(v);
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return v.some(holdsLoneSurrogate);
  for (const k in v) if (LONE_SURROGATE.test(k) || holdsLoneSurrogate((v as Record<string, unknown>)[k])) return true;
  return false;
}

/** A string or property name holding U+0000 anywhere in a parsed value (its depth is bounded by the scan). */
function holdsNul(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\0');
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return v.some(holdsNul);
  for (const k in v) if (k.includes('\0') || holdsNul((v as Record<string, unknown>)[k])) return true;
  return false;
}

/** Properties in a parsed value (its depth is bounded by the scan, so the recursion is too). */
function countKeys(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  let n = 0;
  if (Array.isArray(v)) {
    for (const x of v) n += countKeys(x);
    return n;
  }
  for (const k in v) n += 1 + countKeys((v as Record<string, unknown>)[k]);
  return n;
}

/**
 * A channel's own bounds on top of the limits (the agent channel's, src/api/agent/status-schema.ts):
 * its depth replaces `maxDepth`, and it counts every key in the body. Checked in the same pass.
 */
export interface ChannelBounds {
  maxDepth: number;
  maxKeys: number;
  tooDeep: () => ArmError;
  tooManyKeys: () => ArmError;
}

/**
 * One pass over the text. Malformed JSON is left for JSON.parse to describe. Strings (most of a body)
 * are skipped with indexOf; numbers are only converted when they could overflow a double.
 */
function scan(text: string, limits: Limits, channel: ChannelBounds | undefined): number {
  const maxDepth = channel ? channel.maxDepth : limits.maxDepth;
  const maxKeys = channel ? channel.maxKeys : Infinity;
  // Per open container: the members of an object so far, or -1 for an array.
  const stack: number[] = [];
  let values = 0;
  let keys = 0;
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (end < 0) return keys; // unterminated: JSON.parse says so
      if (expectKey) {
        const len = end - i - 1;
        if (len > limits.maxKeyLength * 6) throw limitError('maxKeyLength', `has a property name longer than ${limits.maxKeyLength} characters`, limits);
        if (++keys > maxKeys) throw channel!.tooManyKeys();
        if (++stack[stack.length - 1]! > limits.maxMembers) throw limitError('maxMembers', `has an object with more than ${limits.maxMembers} properties`, limits);
        // Only a key that is long or escaped is decoded; duplicates are found after parsing (parseLimitedJson).
        if (len > limits.maxKeyLength || hasEscape(text, i + 1, end)) checkKeyName(decode(text.slice(i, end + 1)), limits);
        else if (len === 9 && text.startsWith('__proto__', i + 1)) checkKeyName('__proto__', limits);
        expectKey = false;
      } else if (end - i - 1 > limits.maxStringLength) {
        // Escapes only make the text longer than the string, so this is exact enough and never too strict.
        if ((decode(text.slice(i, end + 1)) ?? '').length > limits.maxStringLength) throw limitError('maxStringLength', `has a string longer than ${limits.maxStringLength} characters`, limits);
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= maxDepth) {
        if (channel) throw channel.tooDeep();
        throw limitError('maxDepth', `nests objects and arrays deeper than ${limits.maxDepth} levels`, limits);
      }
      stack.push(c === 0x7b ? 0 : -1);
      expectKey = c === 0x7b;
      if (++values > limits.maxValues) throw limitError('maxValues', `holds more than ${limits.maxValues} values`, limits);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack.length > 0 && stack[stack.length - 1]! >= 0;
      if (!expectKey && ++values > limits.maxValues) throw limitError('maxValues', `holds more than ${limits.maxValues} values`, limits);
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      // Plain digits of modest length always fit a double; a fraction, an exponent or 300+ digits are converted.
      let j = i + 1;
      let plain = true;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d >= 0x30 && d <= 0x39) continue;
        if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) plain = false;
        else break;
      }
      if ((!plain || j - i > 300) && !Number.isFinite(Number(text.slice(i, j)))) {
        throw badRequest('InvalidRequestContent', `The request body has a number out of range: ${text.slice(i, Math.min(j, i + 40))}.`);
      }
      i = j - 1;
    }
  }
  return keys;
}

function hasEscape(text: string, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (text.charCodeAt(k) === 0x5c) return true;
  return false;
}

/** A property name's length and whether it is '__proto__'. */
function checkKeyName(key: string | null, limits: Limits): void {
  if (key === null) return;
  if (key.length > limits.maxKeyLength) throw limitError('maxKeyLength', `has a property name longer than ${limits.maxKeyLength} characters`, limits);
  if (key === '__proto__') throw badRequest('InvalidRequestContent', "The request body has a property named '__proto__', which is not accepted.", key);
}

/** Throws naming the first key repeated in one object (the text is valid JSON within the limits). */
function scanForDuplicates(text: string): void {
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = decode(text.slice(i, end + 1)) ?? '';
        if (top.has(key)) throw badRequest('InvalidRequestContent', `The request body names the property '${key.slice(0, 64)}' twice in one object.`, key);
        top.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) {
      stack.push(c === 0x7b ? new Set() : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
  }
}

/** Index of the closing quote of the string opening at `start` (one not preceded by an odd number of backslashes), or -1. */
function stringEnd(text: string, start: number): number {
  let j = start;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) return -1;
    let b = 0;
    while (text.charCodeAt(j - 1 - b) === 0x5c) b++;
    if ((b & 1) === 0) return j;
  }
}

function decode(quoted: string): string | null {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return null; // a bad escape: JSON.parse of the whole body reports it
  }
}
