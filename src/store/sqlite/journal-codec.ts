/**
 * The group-commit journal's record: one group's statements and events, as compact as V8's own
 * serializer makes them. Statements are a flat array (statement index, argument count, arguments…),
 * recorded instead of run while the group is open; the apply worker replays them through the row
 * coalescer and writes the events with its EventWriter, so the tables end exactly as a direct write.
 */
import { deserialize, serialize } from 'node:v8';
import type { EngineEvent } from '../../model/events.js';
import { SQL, STATEMENT_NAMES } from './rows.js';
import type { StatementName, Writers } from './rows.js';

/**
 * One group as recorded: `ops` is [statement index, argument count, ...arguments] repeated; `meta`
 * the meta rows the group wrote, each with its last value only (the counters change every tick, the
 * releases' row most ticks: kilobytes a tick otherwise). The meta table is written by putMeta alone, so
 * writing them after the other statements gives the same rows.
 */
export interface GroupRecord {
  ops: unknown[];
  meta: Map<string, unknown>;
  events: EngineEvent[];
}

const INDEX = new Map<StatementName, number>(STATEMENT_NAMES.map((n, i) => [n, i]));

/** Writers that record every statement into `record.ops` (writeCommit's target while a group is open). */
export function recordingWriters(record: () => GroupRecord): Writers {
  const writers = {} as Record<StatementName, { run(...args: unknown[]): void }>;
  for (const name of STATEMENT_NAMES) {
    const id = INDEX.get(name)!;
    writers[name] = name === 'putMeta' ? { run: (key: unknown, value: unknown) => void record().meta.set(key as string, value) } : {
      // One push of all the arguments: a push per argument (6 million in the example) cost 4-18% more (docs/benchmarks.md, session 20).
      run: (...args: unknown[]) => void record().ops.push(id, args.length, ...args),
    };
  }
  return writers;
}

const PUT_META = INDEX.get('putMeta')!;
/** Each statement's parameter count (its `?`): a record's argument count must match it. */
const ARITY = STATEMENT_NAMES.map((n) => SQL[n].split('?').length - 1);
/** What SQLite can bind; anything else in a record was not written by recordingWriters. */
const bindable = (v: unknown): boolean => v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'bigint' || v instanceof Uint8Array;

export function encodeGroup(record: GroupRecord): Buffer {
  const ops = record.ops;
  for (const [key, value] of record.meta) ops.push(PUT_META, 2, key, value);
  record.meta.clear();
  return serialize([ops, record.events]);
}

/** A record that passed its checksum but is not one this code wrote (a crafted or foreign file). */
export class RecordError extends Error {}

/**
 * Decodes a record body, checking its shape before anything runs: a body V8 accepts may still be any
 * value, and a statement's argument count steers the replay (a negative one would loop for ever).
 */
export function decodeGroup(body: Uint8Array): GroupRecord {
  let value: unknown;
  try {
    value = deserialize(body);
  } catch (err) {
    throw new RecordError(`not a V8-serialized value (${(err as Error).message})`);
  }
  if (!Array.isArray(value) || value.length !== 2 || !Array.isArray(value[0]) || !Array.isArray(value[1])) {
    throw new RecordError('not a [statements, events] pair');
  }
  const [ops, events] = value as [unknown[], unknown[]];
  for (let i = 0; i < ops.length;) {
    const argc = ops[i + 1] as number; // compared with the arity below, whatever its type
    const name = STATEMENT_NAMES[ops[i] as number];
    if (!Number.isSafeInteger(ops[i]) || name === undefined) throw new RecordError(`unknown statement ${String(ops[i])} at ${i}`);
    if (argc !== ARITY[ops[i] as number] || i + 2 + argc > ops.length) throw new RecordError(`statement ${name} at ${i}: bad argument count ${String(argc)}`);
    for (let a = i + 2; a < i + 2 + argc; a++) if (!bindable(ops[a])) throw new RecordError(`statement ${name} at ${i}: an argument SQLite cannot bind`);
    i += 2 + argc;
  }
  for (const e of events) if (typeof e !== 'object' || e === null || typeof (e as { type?: unknown }).type !== 'string') throw new RecordError('an event without a type');
  return { ops, meta: new Map(), events: events as EngineEvent[] };
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
