/**
 * The group-commit journal's record: one group's statements and events. Statements are recorded
 * instead of run while the group is open, straight into a compact binary form (below); the apply worker
 * decodes them on the other core and replays them through the row coalescer, and writes the events with
 * its EventWriter, so the tables end exactly as a direct write.
 *
 * A record's body: [u32 LE: bytes of the statements] statements, then the events in V8's serialization.
 * Each statement is its index in STATEMENT_NAMES (one byte) and its arguments (as many as its `?`), each
 * one tagged value:
 *   0 null · 1 a new string (varint UTF-8 length, bytes; it gets the record's next string number) ·
 *   2 a string seen before in this record (varint number) · 3 an integer ≥ 240 (varint) ·
 *   4 a negative integer (varint of its absolute value) · 5 any other number (float64 LE) ·
 *   6 a bigint (varint length, decimal ASCII) · 7 bytes (varint length, bytes) ·
 *   8 a string longer than 64 UTF-16 units (as 1, but not numbered: long strings are seldom repeated) ·
 *   16–255 the integer tag − 16.
 * Varints are little-endian base 128 (at most 8 bytes: integers up to 2^53; a string's length may take
 * more bytes than it needs, which reads the same). Strings are UTF-8 as SQLite
 * binds them (better-sqlite3 turns a lone surrogate into U+FFFD either way). Why not v8.serialize: the
 * rows repeat their template's strings (name, publisher, type, settings, versions, statuses): a record
 * writes each once, and the engine thread keeps no array of arguments per group (less garbage).
 */
import { deserialize, serialize } from 'node:v8';
import type { EngineEvent } from '../../model/events.js';
import { SQL, STATEMENT_NAMES } from './rows.js';
import type { StatementName, Writers } from './rows.js';

const INDEX = new Map<StatementName, number>(STATEMENT_NAMES.map((n, i) => [n, i]));
const PUT_META = INDEX.get('putMeta')!;
/** Each statement's parameter count (its `?`): a record holds exactly that many arguments per statement. */
const ARITY = STATEMENT_NAMES.map((n) => SQL[n].split('?').length - 1);

const T_NULL = 0;
const T_NEW_STRING = 1;
const T_STRING = 2;
const T_UINT = 3;
const T_NEG_INT = 4;
const T_FLOAT = 5;
const T_BIGINT = 6;
const T_BYTES = 7;
const T_LONG_STRING = 8;
const T_SAME = 9;
const MAX_ARITY = Math.max(...ARITY);
const TABLE = process.env.PWJ_TABLE !== '0';
/** Strings longer than this are written out each time (T_LONG_STRING), not numbered. */
const SHORT_STRING = 64;
/** Tags from here up are the small integers 0–239 themselves. */
const T_SMALL = 16;
const SMALL_MAX = 255 - T_SMALL;

/**
 * The open group's record, encoded as its statements are recorded. One builder serves every group of a
 * store (`reset` at each group's start), so its buffer is reused. `meta`: the meta rows the group wrote,
 * each with its last value only (the counters change every tick, the releases' row most ticks: kilobytes
 * a tick otherwise); the meta table is written by putMeta alone, so writing them after the other
 * statements gives the same rows.
 */
export class RecordBuilder {
  private buf = Buffer.allocUnsafeSlow(1 << 16);
  private pos = 4;
  private readonly strings = new Map<string, number>();
  /** Each statement's arguments' last strings in this record (statement index × MAX_ARITY + argument). */
  private readonly last: Array<string | undefined> = new Array<string | undefined>(STATEMENT_NAMES.length * MAX_ARITY).fill(undefined);
  readonly meta = new Map<string, unknown>();
  events: EngineEvent[] = [];

  /** Starts an empty record. */
  reset(): this {
    this.pos = 4;
    this.strings.clear();
    this.last.fill(undefined);
    this.meta.clear();
    this.events = [];
    return this;
  }

  /** Records statement `id` with its arguments (from `args[0]`); throws on a value SQLite cannot bind. */
  op(id: number, args: ArrayLike<unknown>): void {
    if (args.length !== ARITY[id]) throw new Error(`statement ${STATEMENT_NAMES[id]}: ${args.length} arguments, expected ${ARITY[id]}`);
    this.room(1);
    this.buf[this.pos++] = id;
    const slot = id * MAX_ARITY;
    for (let i = 0; i < args.length; i++) {
      const v = args[i];
      if (typeof v !== 'string') this.value(v);
      else if (this.last[slot + i] === v) {
        this.room(1);
        this.buf[this.pos++] = T_SAME;
      } else {
        this.last[slot + i] = v;
        this.string(v);
      }
    }
  }

  /** The record's body (the meta rows appended as statements, the events serialized); the builder is then spent until `reset`. */
  finish(): Buffer {
    for (const [key, value] of this.meta) this.op(PUT_META, [key, value]);
    this.meta.clear();
    this.buf.writeUInt32LE(this.pos - 4, 0);
    const events = serialize(this.events);
    // A buffer of its own (not from Node's pool): it moves to the worker without a copy.
    const body = Buffer.allocUnsafeSlow(this.pos + events.length);
    this.buf.copy(body, 0, 0, this.pos);
    events.copy(body, this.pos);
    return body;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private value(v: unknown): void {
    if (typeof v === 'string') return this.string(v);
    if (typeof v === 'number') return this.number(v);
    this.room(1);
    if (v === null) {
      this.buf[this.pos++] = T_NULL;
    } else if (typeof v === 'bigint') {
      this.buf[this.pos++] = T_BIGINT;
      this.bytes(Buffer.from(v.toString(), 'latin1'));
    } else if (v instanceof Uint8Array) {
      this.buf[this.pos++] = T_BYTES;
      this.bytes(v);
    } else {
      throw new Error(`a statement argument SQLite cannot bind (${typeof v})`);
    }
  }

  private string(s: string): void {
    // Long strings (an action's JSON body, a unit's batch in flight) are made anew for each row and seldom
    // repeat: looking them up would hash each in full for nothing, so they are written out, unnumbered.
    if (s.length > SHORT_STRING || !TABLE) {
      this.room(4 + 3 * s.length);
      this.buf[this.pos++] = T_LONG_STRING;
      this.utf8(s);
      return;
    }
    const seen = this.strings.get(s);
    if (seen !== undefined) {
      this.room(9);
      this.buf[this.pos++] = T_STRING;
      this.varint(seen);
      return;
    }
    this.strings.set(s, this.strings.size);
    this.room(4 + 3 * s.length);
    this.buf[this.pos++] = T_NEW_STRING;
    this.utf8(s);
  }

  /**
   * A string's UTF-8 length (a varint) and bytes, written in one pass: the length goes in a varint of
   * fixed width, sized for the most bytes the string can take (3 per UTF-16 unit), filled in after.
   * Room for 3 + 3 × length bytes made already.
   */
  private utf8(s: string): void {
    const width = s.length <= 42 ? 1 : s.length <= 5461 ? 2 : 3; // 42 × 3 < 2^7, 5461 × 3 < 2^14
    if (s.length > 699_050) { // 3 × this ≥ 2^21: the exact length, then the bytes
      this.varint(Buffer.byteLength(s, 'utf8'));
      this.pos += this.buf.write(s, this.pos);
      return;
    }
    const at = this.pos;
    this.pos += width;
    const n = this.buf.write(s, this.pos);
    this.pos += n;
    // Little-endian base 128, every byte but the last marked as continued (a longer varint than needed reads the same).
    if (width === 1) this.buf[at] = n;
    else if (width === 2) {
      this.buf[at] = (n & 0x7f) | 0x80;
      this.buf[at + 1] = n >>> 7;
    } else {
      this.buf[at] = (n & 0x7f) | 0x80;
      this.buf[at + 1] = ((n >>> 7) & 0x7f) | 0x80;
      this.buf[at + 2] = n >>> 14;
    }
  }

  private number(v: number): void {
    this.room(9);
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
      if (v >= 0 && v <= SMALL_MAX) {
        this.buf[this.pos++] = T_SMALL + v;
      } else {
        this.buf[this.pos++] = v < 0 ? T_NEG_INT : T_UINT;
        this.varint(Math.abs(v));
      }
    } else {
      this.buf[this.pos++] = T_FLOAT;
      this.pos = this.buf.writeDoubleLE(v, this.pos);
    }
  }

  private bytes(b: Uint8Array): void {
    this.room(8 + b.length);
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A non-negative safe integer, base 128 (room for 8 bytes already made). */
  private varint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
}

/** Writers that record every statement into the open group's record (writeCommit's target while a group is open). */
export function recordingWriters(record: () => RecordBuilder): Writers {
  const writers = {} as Record<StatementName, { run(...args: unknown[]): void }>;
  for (const name of STATEMENT_NAMES) {
    const id = INDEX.get(name)!;
    writers[name] = name === 'putMeta'
      ? { run: (key: unknown, value: unknown) => void record().meta.set(key as string, value) }
      : { run: (...args: unknown[]) => record().op(id, args) };
  }
  return writers;
}

/** A record's statements and events as the worker replays them: `ops` is [statement index, argument count, ...arguments] repeated. */
export interface DecodedGroup {
  ops: unknown[];
  events: EngineEvent[];
}

/** A record that passed its checksum but is not one this code wrote (a crafted or foreign file). */
export class RecordError extends Error {}

/** Reads a body's statements, checking each step: a crafted body must fail here, never loop or run half a statement. */
class Reader {
  pos = 4;
  readonly strings: string[] = [];
  readonly last: Array<string | undefined> = [];
  constructor(private readonly b: Buffer, readonly end: number) {}

  byte(): number {
    if (this.pos >= this.end) throw new RecordError(`a statement cut short at byte ${this.pos}`);
    return this.b[this.pos++]!;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const x = this.byte();
      v += (x & 0x7f) * scale;
      if (x < 0x80) {
        if (!Number.isSafeInteger(v)) break;
        return v;
      }
      scale *= 0x80;
    }
    throw new RecordError(`a number too large at byte ${this.pos}`);
  }

  take(n: number): Buffer {
    if (n > this.end - this.pos) throw new RecordError(`a value cut short at byte ${this.pos}`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  value(slot: number): unknown {
    const tag = this.byte();
    if (tag >= T_SMALL) return tag - T_SMALL;
    switch (tag) {
      case T_SAME: {
        const s = this.last[slot];
        if (s === undefined) throw new RecordError(`a string the same as the last of its column, which has none, at byte ${this.pos - 1}`);
        return s;
      }
      case T_NULL: return null;
      case T_NEW_STRING: {
        const s = this.take(this.varint()).toString('utf8');
        this.strings.push(s);
        return (this.last[slot] = s);
      }
      case T_STRING: {
        const n = this.varint();
        if (n >= this.strings.length) throw new RecordError(`string ${n} before it was written`);
        return (this.last[slot] = this.strings[n]);
      }
      case T_LONG_STRING: return (this.last[slot] = this.take(this.varint()).toString('utf8'));
      case T_UINT: return this.varint();
      case T_NEG_INT: return -this.varint();
      case T_FLOAT: return this.take(8).readDoubleLE(0);
      case T_BIGINT: {
        const text = this.take(this.varint()).toString('latin1');
        if (!/^-?\d+$/.test(text)) throw new RecordError('a bigint that is not a number');
        return BigInt(text);
      }
      case T_BYTES: return new Uint8Array(this.take(this.varint()));
      default: throw new RecordError(`unknown value tag ${tag} at byte ${this.pos - 1}`);
    }
  }
}

/** Decodes a record body, checking its shape before anything runs (the checksum only says the disk returned what was written). */
export function decodeGroup(body: Uint8Array): DecodedGroup {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (b.length < 4) throw new RecordError('shorter than its header');
  const end = 4 + b.readUInt32LE(0);
  if (end > b.length) throw new RecordError(`statements of ${end - 4} bytes in a body of ${b.length}`);
  const r = new Reader(b, end);
  const ops: unknown[] = [];
  while (r.pos < end) {
    const id = r.byte();
    const argc = ARITY[id];
    if (argc === undefined) throw new RecordError(`unknown statement ${id} at byte ${r.pos - 1}`);
    ops.push(id, argc);
    for (let a = 0; a < argc; a++) ops.push(r.value(id * MAX_ARITY + a));
  }
  let events: unknown;
  try {
    events = deserialize(b.subarray(end));
  } catch (err) {
    throw new RecordError(`events not V8-serialized (${(err as Error).message})`);
  }
  if (!Array.isArray(events)) throw new RecordError('events not an array');
  for (const e of events) if (typeof e !== 'object' || e === null || typeof (e as { type?: unknown }).type !== 'string') throw new RecordError('an event without a type');
  return { ops, events: events as EngineEvent[] };
}

/** Runs a decoded record's statements on `writers`, in order (decodeGroup checked their framing). */
export function replayOps(ops: readonly unknown[], writers: Writers): void {
  for (let i = 0; i < ops.length;) {
    const name = STATEMENT_NAMES[ops[i] as number]!;
    const argc = ops[i + 1] as number;
    writers[name].run(...ops.slice(i + 2, i + 2 + argc));
    i += 2 + argc;
  }
}
