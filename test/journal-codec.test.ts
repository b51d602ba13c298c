/**
 * The journal record's binary form (src/store/sqlite/journal-codec.ts): whatever statements and events a
 * group records, the worker decodes exactly those (the same values, in order), and a builder reused for
 * the next group carries nothing over. Recovery of crafted records is in journal-recovery.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { EngineEvent } from '../src/model/events.js';
import { decodeGroup, RecordBuilder, recordingWriters } from '../src/store/sqlite/journal-codec.js';
import { SQL, STATEMENT_NAMES } from '../src/store/sqlite/rows.js';

const ARITY = STATEMENT_NAMES.map((n) => SQL[n].split('?').length - 1);
const PUT_META = STATEMENT_NAMES.indexOf('putMeta');

/** Anything SQLite binds: strings (repeated ones too: the record's string table), every kind of number, bigints, bytes. */
const bindable = fc.oneof(
  fc.constant(null),
  fc.constantFrom('Microsoft.Azure.Monitor', 'AzureMonitorLinuxAgent', '1.2', 'succeeded', ''),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 8 }), // any code points, astral ones too (well-formed: surrogates paired)
  fc.string({ unit: 'binary', minLength: 40, maxLength: 200 }), // long ones are written out, not numbered
  // Lengths at the edges of the length field's widths (1 byte up to 42 units, 2 up to 5,461), in 1-, 2- and 3-byte UTF-8.
  fc.constantFrom(42, 43, 64, 65, 5461, 5462, 700_000).chain((n) => fc.constantFrom('a'.repeat(n), 'é'.repeat(n), '€'.repeat(n))),
  fc.integer({ min: 0, max: 300 }),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(-0, 239, 240, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 53, 1e300, Number.NaN, Number.POSITIVE_INFINITY),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.uint8Array({ maxLength: 20 }),
);

const statement = fc.integer({ min: 0, max: STATEMENT_NAMES.length - 1 })
  .filter((id) => id !== PUT_META)
  .chain((id) => fc.tuple(fc.constant(id), fc.array(bindable, { minLength: ARITY[id]!, maxLength: ARITY[id]! })));

const record = fc.record({
  statements: fc.array(statement, { maxLength: 30 }),
  meta: fc.array(fc.tuple(fc.constantFrom('counters', 'releases', 'images'), fc.string({ maxLength: 30 })), { maxLength: 6 }),
  events: fc.array(fc.record({ type: fc.constantFrom('batch.started', 'instance.upgraded'), seq: fc.nat(), machineId: fc.string() }), { maxLength: 5 }),
});

/** What the worker must see: the statements in order, then each meta row once, with its last value, in first-written order. */
function expected(r: { statements: Array<[number, unknown[]]>; meta: Array<[string, string]> }): unknown[] {
  const ops: unknown[] = [];
  for (const [id, args] of r.statements) ops.push(id, args.length, ...args);
  for (const [key, value] of new Map(r.meta)) ops.push(PUT_META, 2, key, value);
  return ops;
}

/** Object.is for numbers (-0, NaN), bytes by content. */
function assertSameOps(got: unknown[], want: unknown[]): void {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    const w = want[i];
    if (w instanceof Uint8Array) assert.deepEqual(g, new Uint8Array(w), `value ${i}`);
    else assert.ok(Object.is(g, w), `value ${i}: ${String(g)} for ${String(w)}`);
  });
}

describe('journal record codec', () => {
  test('round trip: any statements, meta rows and events recorded come out of decodeGroup exactly, with a builder reused across records', () => {
    const builder = new RecordBuilder();
    const writers = recordingWriters(() => builder);
    fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 3 }), (records) => {
      for (const r of records) {
        builder.reset();
        for (const [id, args] of r.statements) writers[STATEMENT_NAMES[id]!].run(...args);
        for (const [key, value] of r.meta) writers.putMeta.run(key, value);
        for (const e of r.events) builder.events.push(e as unknown as EngineEvent);
        const decoded = decodeGroup(builder.finish());
        assertSameOps(decoded.ops, expected(r));
        assert.deepEqual(decoded.events, r.events.map((e) => ({ ...e }))); // fast-check's records have no prototype
      }
    }), { numRuns: 300 });
  });

  test('a record grows past its first buffer (64 KiB) and repeats strings by number: smaller than the strings written out', () => {
    const builder = new RecordBuilder().reset();
    const settings = JSON.stringify({ workspaceId: 'x'.repeat(40) }); // short enough to be numbered (64 units)
    for (let i = 0; i < 5000; i++) builder.op(STATEMENT_NAMES.indexOf('putHealth'), [`vm-${i}`, settings]);
    const body = builder.finish();
    assert.ok(body.length < 5000 * 16 + settings.length, `${body.length} bytes; written out, the settings alone take ${5000 * settings.length}`);
    const ops = decodeGroup(body).ops;
    assert.equal(ops.length, 5000 * 4);
    assert.equal(ops[4 * 4999 + 2], 'vm-4999');
    assert.equal(ops[4 * 4999 + 3], settings);
  });

  test('a lone surrogate is recorded as U+FFFD, as SQLite stores it (better-sqlite3 binds UTF-8)', () => {
    const builder = new RecordBuilder().reset();
    builder.op(STATEMENT_NAMES.indexOf('deleteHealth'), ['a\uD800b']);
    assert.equal(decodeGroup(builder.finish()).ops[2], 'a\uFFFDb');
  });

  test('a statement with the wrong argument count or an argument SQLite cannot bind is refused as it is recorded', () => {
    const builder = new RecordBuilder().reset();
    assert.throws(() => builder.op(STATEMENT_NAMES.indexOf('deleteHealth'), []), /0 arguments, expected 1/);
    assert.throws(() => builder.op(STATEMENT_NAMES.indexOf('deleteHealth'), [{ a: 1 }]), /cannot bind/);
  });
});
