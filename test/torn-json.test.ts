/**
 * salvageCutJson: every prefix of a journal keeps exactly the records that are whole in it, never part of
 * one. completeTornState: a journal cut anywhere, completed from the write before it, forgets no patch id
 * done, no journaled step and no record. The Journal repairs a cut state file and drops a cut goal state;
 * other damage still stops it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { completeTornState, Journal } from '../src/agent/journal.js';
import type { AgentState, PatchState } from '../src/agent/journal.js';
import { agentDir, goalStatePath, statePath } from '../src/agent/layout.js';
import { salvageCutJson } from '../src/agent/torn-json.js';
import { writeJsonAtomic } from '../src/agent/atomic-file.js';
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

/** A journal as the agent writes it, small: extension records with their steps, the patch state. */
const journalArb = fc.record({
  exts: fc.dictionary(fc.constantFrom('A.a', 'B.b', 'C.c', 'D.d'), fc.array(fc.constantFrom('install', 'enable', 'update'), { maxLength: 3 })),
  current: fc.option(fc.record({ id: fc.constantFrom('p1', 'p2', 'p3'), steps: fc.uniqueArray(fc.constantFrom('install:a', 'install:b', 'install:c'), { maxLength: 2 }) })),
  doneIds: fc.uniqueArray(fc.constantFrom('d1', 'd2', 'd3', 'd4'), { maxLength: 4 }),
});
const step = { state: 'done', startedAt: 1, timeoutMs: 1000, pid: 42, runId: 'r', exitCode: 0, timedOut: false, restarts: 0, output: 'ok', finishedAt: 2 };
const stepsOf = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, step]));

function journalOf(g: { exts: Record<string, string[]>; current: { id: string; steps: string[] } | null; doneIds: string[] }): Pick<AgentState, 'version' | 'extensions' | 'patches'> {
  const extensions = Object.fromEntries(Object.entries(g.exts).map(([name, steps]) => [name, { name, state: 'Installing', op: { operationId: `op-${name}`, steps: stepsOf(steps) }, history: [] }]));
  const current = g.current && !g.doneIds.includes(g.current.id) ? { request: { operationId: g.current.id, kind: 'install' }, steps: stepsOf(g.current.steps), results: {} } : null;
  const patches = { current, history: g.doneIds.map((id) => ({ report: { operationId: id }, bootId: null })), doneIds: g.doneIds, eventSeq: g.doneIds.length };
  return JSON.parse(JSON.stringify({ version: 1, extensions, patches })) as Pick<AgentState, 'version' | 'extensions' | 'patches'>;
}

/** The one change a save makes: finish the patch operation, start one, a step of it, a step of an extension. */
function nextOf(prev: ReturnType<typeof journalOf>, change: number, name: string): ReturnType<typeof journalOf> {
  const next = structuredClone(prev);
  const ps = next.patches as PatchState & { current: { request: { operationId: string }; steps: Record<string, unknown> } | null };
  const cur = ps.current;
  if (change === 0 && cur) {
    ps.doneIds = [cur.request.operationId, ...ps.doneIds];
    ps.history = [{ report: { operationId: cur.request.operationId }, bootId: null } as PatchState['history'][number], ...ps.history];
    ps.current = null;
  } else if (change === 1 && !cur) ps.current = { request: { operationId: 'p9', kind: 'install' }, steps: {}, results: {} } as unknown as PatchState['current'];
  else if (change === 2 && cur) cur.steps[`install:new${Object.keys(cur.steps).length}`] = { ...step, state: 'running' };
  else {
    const rec = (next.extensions[name] ??= { name, state: 'Installing', op: { operationId: `op-${name}`, steps: {} }, history: [] } as never);
    rec.op!.steps[`step${Object.keys(rec.op!.steps).length}`] = { ...step, state: 'running' } as never;
  }
  return next;
}

test('completeTornState: a journal cut at any byte, completed from the write before it, forgets no patch id done, no step, no record', () => {
  fc.assert(fc.property(journalArb, fc.integer({ min: 0, max: 3 }), fc.constantFrom('A.a', 'E.e'), (g, change, name) => {
    const prev = journalOf(g);
    const next = nextOf(prev, change, name);
    const text = `${JSON.stringify(next, null, 2)}\n`;
    for (let cut = 0; cut < text.length; cut++) {
      const torn = salvageCutJson(text.slice(0, cut)) as Parameters<typeof completeTornState>[0] | null;
      if (torn === null) {
        JSON.parse(text.slice(0, cut)); // whole but for the last newline: read as it is, nothing to complete
        continue;
      }
      const got = completeTornState(torn, prev);
      const ps = { current: null, history: [], doneIds: [], eventSeq: 0, ...got.patches } as PatchState;
      const context = `change ${change}, cut at ${cut}: ${text.slice(0, cut)}`;
      // A patch operation done in either write is done, or still current (continued to its end, its steps journaled).
      for (const id of new Set([...prev.patches.doneIds, ...next.patches.doneIds])) {
        assert.ok(ps.doneIds.includes(id) || ps.current?.request.operationId === id, `${id} is not forgotten (${context})`);
      }
      // The operation in flight in both writes keeps every step the older write had.
      const before = prev.patches.current;
      if (before && next.patches.current?.request.operationId === before.request.operationId) {
        assert.equal(ps.current?.request.operationId, before.request.operationId, context);
        for (const k of Object.keys(before.steps)) assert.ok(ps.current!.steps[k], `step ${k} kept (${context})`);
      }
      // A patch operation is never both done and current.
      if (ps.current) assert.ok(!ps.doneIds.includes(ps.current.request.operationId), context);
      // Every record of both writes is there, as one of the two writes has it, with the older write's steps.
      for (const n of Object.keys(prev.extensions)) {
        const rec = got.extensions?.[n];
        assert.ok(rec, `record ${n} kept (${context})`);
        assert.ok([JSON.stringify(prev.extensions[n]), JSON.stringify(next.extensions[n])].includes(JSON.stringify(rec)), `record ${n} is one of the two writes' (${context})`);
      }
    }
  }), { seed: 71208, numRuns: 40 });
  assert.deepEqual(completeTornState({ version: 1, extensions: {} }, null), { version: 1, extensions: {} }, 'without a previous write: what is whole, as before');
});

test('writeJsonAtomic with a previous file: it holds the content the write replaced; a stale one goes when there is nothing to keep', () => {
  const d = tempDirs();
  mkdirSync(agentDir(d), { recursive: true });
  const path = statePath(d);
  const prev = join(agentDir(d), 'state.prev.json');
  writeFileSync(prev, 'stale, from before the state file went');
  writeJsonAtomic(path, { n: 1 }, 0o600, prev);
  assert.ok(!existsSync(prev), 'no state file was replaced: the stale previous file is removed, not kept as a fallback');
  writeJsonAtomic(path, { n: 2 }, 0o600, prev);
  writeJsonAtomic(path, { n: 3 }, 0o600, prev);
  assert.deepEqual(JSON.parse(readFileSync(prev, 'utf8')), { n: 2 });
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { n: 3 });
  assert.deepEqual(readdirSync(agentDir(d)).sort(), ['state.json', 'state.prev.json'], 'no temporary left');
  rmSync(d.root, { recursive: true, force: true });
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
  assert.deepEqual(JSON.parse(readFileSync(goalStatePath(d), 'utf8')), { goalState: null, etag: null, pastEpochs: [], goalStateAgentId: null }, 'rewritten clean');
  // Read-only (agent status): the whole part, the file left as it is.
  writeFileSync(statePath(d), '{\n  "version": 1,\n  "extensions": {\n    "a": {"name": "a"');
  assert.deepEqual(new Journal(d).state.extensions, {});
  assert.match(readFileSync(statePath(d), 'utf8'), /"a": \{"name": "a"$/);
  writeFileSync(statePath(d), '{"version": 1, "extensions": {}} and more');
  assert.throws(() => new Journal(d, () => {}), /state\.json is not valid JSON/);
  rmSync(d.root, { recursive: true, force: true });
});
