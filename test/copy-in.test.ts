/**
 * The PostgreSQL import's COPY text (issue 15: import ≥ 100,000 machines/s): rows gathered into chunks
 * must be byte for byte the rows encoded one by one with copyField, split only between rows.
 * (test/pg-import-sim.test.ts sends such text to a real server and reads it back.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { copyField, CopyChunks } from '../src/store/postgres/copy-in.js';

const value = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: fc.constantFrom('a', '\\', '\t', '\n', '\r', 'é', '😀', 'N') }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);

test('CopyChunks writes each row as copyField would, tab-separated and newline-ended, in chunks that end with a row', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 6 }).chain((w) => fc.tuple(fc.constant(w), fc.array(fc.array(value, { minLength: w, maxLength: w }), { maxLength: 60 }))), ([width, rows]) => {
    const chunks = new CopyChunks(width);
    const taken: Buffer[] = [];
    for (const row of rows) if (chunks.row(row)) taken.push(chunks.take());
    if (chunks.size > 0) taken.push(chunks.take());
    const expected = rows.map((r) => r.map(copyField).join('\t') + '\n').join('');
    assert.equal(Buffer.concat(taken).toString('utf8'), expected);
    for (const t of taken) assert.equal(t[t.length - 1], 0x0a);
  }), { numRuns: 300 });
});

test('CopyChunks sends a chunk once it holds about 32 K characters, never a row split across two', () => {
  const chunks = new CopyChunks(2);
  const long = 'x'.repeat(1000);
  let rows = 0;
  while (!chunks.row([long, rows])) rows++;
  const text = chunks.take().toString('utf8');
  assert.ok(text.length >= 1 << 15 && text.length < (1 << 15) + 1100, `${text.length} characters`);
  assert.equal(text.split('\n').length - 1, rows + 1);
  assert.equal(chunks.size, 0);
});

test('CopyChunks refuses a row of the wrong width and a number COPY cannot carry', () => {
  const chunks = new CopyChunks(2);
  assert.throws(() => chunks.row(['a']), /a row of 1 values for 2 columns/);
  assert.throws(() => chunks.row(['a', Number.POSITIVE_INFINITY]), /cannot store the number Infinity/);
  assert.equal(copyField('a\\b\tc\nd\re'), 'a\\\\b\\tc\\nd\\re');
  assert.equal(copyField(null), '\\N');
});
