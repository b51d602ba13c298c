/**
 * The group-commit journal's record: one group's statements and events, as compact as V8's own
 * serializer makes them. Statements are a flat array (statement index, argument count, arguments…),
 * recorded instead of run while the group is open; the apply worker replays them through the row
 * coalescer and writes the events with its EventWriter, so the tables end exactly as a direct write.
 */
import { deserialize, serialize } from 'node:v8';
import type { EngineEvent } from '../../model/events.js';
import { STATEMENT_NAMES } from './rows.js';
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
      run: (...args: unknown[]) => {
        const ops = record().ops;
        ops.push(id, args.length);
        for (const a of args) ops.push(a);
      },
    };
  }
  return writers;
}

const PUT_META = INDEX.get('putMeta')!;

export function encodeGroup(record: GroupRecord): Buffer {
  const ops = record.ops;
  for (const [key, value] of record.meta) ops.push(PUT_META, 2, key, value);
  record.meta.clear();
  return serialize([ops, record.events]);
}

export function decodeGroup(body: Uint8Array): GroupRecord {
  const [ops, events] = deserialize(body) as [unknown[], EngineEvent[]];
  return { ops, meta: new Map(), events };
}

/** Runs a record's statements on `writers`, in order. */
export function replayOps(ops: readonly unknown[], writers: Writers): void {
  for (let i = 0; i < ops.length;) {
    const name = STATEMENT_NAMES[ops[i] as number];
    const argc = ops[i + 1] as number;
    if (name === undefined || !Number.isSafeInteger(argc)) throw new Error(`journal record: bad statement at ${i}`);
    writers[name].run(...ops.slice(i + 2, i + 2 + argc));
    i += 2 + argc;
  }
}
