/**
 * salvageCutJson: every prefix of a journal keeps exactly the records that are whole in it, never part of
 * one. The Journal repairs a cut state file and drops a cut goal state; other damage still stops it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { Journal } from '../src/agent/journal.js';
import { agentDir, goalStatePath, statePath } from '../src/agent/layout.js';
import { salvageCutJson } from '../src/agent/torn-json.js';
import { tempDirs } from './helpers/agent-kit.js';

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

test('the Journal: a cut goal state is dropped (the server sends it again), logged once and rewritten; damage that is not a cut stops it', () => {
  const d = tempDirs();
  mkdirSync(agentDir(d), { recursive: true });
  writeFileSync(statePath(d), JSON.stringify({ version: 1, extensions: {}, patches: { current: null, history: [], doneIds: ['p1'], eventSeq: 4 } }));
  const goal = JSON.stringify({ goalState: { goalStateId: 7, extensions: [] }, etag: '"7"' });
  writeFileSync(goalStatePath(d), goal.slice(0, 30));
  const lines: string[] = [];
  const j = new Journal(d, (l) => lines.push(l));
  assert.equal(j.state.goalState, null);
  assert.deepEqual(j.state.patches.doneIds, ['p1'], 'the whole state file is read as it is');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /goalstate\.json was cut at byte 30 .*the server sends the goal state again/);
  assert.deepEqual(JSON.parse(readFileSync(goalStatePath(d), 'utf8')), { goalState: null, etag: null }, 'rewritten clean');
  // Read-only (agent status): the whole part, the file left as it is.
  writeFileSync(statePath(d), '{\n  "version": 1,\n  "extensions": {\n    "a": {"name": "a"');
  assert.deepEqual(new Journal(d).state.extensions, {});
  assert.match(readFileSync(statePath(d), 'utf8'), /"a": \{"name": "a"$/);
  writeFileSync(statePath(d), '{"version": 1, "extensions": {}} and more');
  assert.throws(() => new Journal(d, () => {}), /state\.json is not valid JSON/);
  rmSync(d.root, { recursive: true, force: true });
});
