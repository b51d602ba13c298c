/** salvageCutJson: every prefix of a journal keeps exactly the records that are whole in it, never part of one. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { salvageCutJson } from '../src/agent/torn-json.js';

const record = fc.record({
  state: fc.constantFrom('Enabled', 'Failed', 'NotInstalled'),
  installedVersion: fc.option(fc.string({ maxLength: 8 })),
  history: fc.array(fc.record({ operationId: fc.string({ maxLength: 6 }), message: fc.string({ maxLength: 12 }) }), { maxLength: 3 }),
  op: fc.constant(null),
});

test('a journal cut at every byte keeps the whole records and only those; whole text and garbage are not salvaged', () => {
  fc.assert(fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), record, { maxKeys: 4 }), fc.boolean(), (generated, pretty) => {
    const extensions = JSON.parse(JSON.stringify(generated)) as Record<string, unknown>; // plain objects, as a parse gives
    const journal = { version: 1, extensions, patches: { current: null, history: [], doneIds: ['a"b,}', 'c'], eventSeq: 3 } };
    const text = JSON.stringify(journal, null, pretty ? 2 : 0);
    assert.equal(salvageCutJson(text), null, 'a whole text is parsed, not salvaged');
    for (let cut = 0; cut < text.length; cut++) {
      const got = salvageCutJson(text.slice(0, cut)) as { version?: number; extensions?: Record<string, unknown> } | null;
      assert.ok(got !== null, `cut at ${cut}`);
      for (const [name, rec] of Object.entries(got.extensions ?? {})) assert.deepEqual(rec, extensions[name], `record ${name} at cut ${cut} is whole`);
      // Each record whose text ends before the cut is kept.
      const kept = Object.keys(got.extensions ?? {});
      const whole = Object.keys(extensions).filter((n) => {
        const entry = `${JSON.stringify(n)}:${pretty ? ' ' : ''}${pretty ? JSON.stringify(extensions[n], null, 2).replace(/\n/g, '\n    ') : JSON.stringify(extensions[n])}`;
        const at = text.indexOf(entry);
        assert.ok(at > 0, entry);
        return at + entry.length <= cut;
      });
      assert.deepEqual(kept.sort(), whole.sort(), `cut at ${cut}: ${text.slice(0, cut)}`);
    }
  }), { seed: 71207, numRuns: 150 });
  assert.equal(salvageCutJson('{"a": 1}} trailing'), null);
  assert.equal(salvageCutJson('{"a": [1}'), null, 'mismatched brackets are damage, not a cut');
  assert.deepEqual(salvageCutJson(''), {});
});
