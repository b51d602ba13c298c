/**
 * Long-running operations' status records (`arm_documents` of kind `operation`) were never removed: every
 * write that answered with `Azure-AsyncOperation` left a row for ever. Finished records are now removed a
 * day (OPERATION_RETENTION_MS, wall clock) after they finish, and at most MAX_OPERATIONS are kept, oldest
 * finished first; records still in progress are settled first and never removed (docs/api.md).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { Documents } from '../src/api/arm/documents.js';
import { MAX_OPERATIONS, OPERATION_RETENTION_MS, OPERATION_SWEEP_MS, Operations } from '../src/api/arm/operations.js';
import type { EngineState } from '../src/engine/state.js';

const HOUR = 3_600_000;

/** Operations on a fresh in-memory table, with a wall clock the test moves. */
function rig() {
  const db = new Database(':memory:');
  const docs = new Documents(db);
  let wall = Date.parse('2026-06-01T00:00:00Z');
  // The tracks used here ('done', 'result') never read the state.
  const ops = new Operations(docs, { state: () => ({}) as EngineState, now: () => new Date(wall).toISOString(), wallNow: () => wall });
  return {
    docs, ops,
    advance: (ms: number) => { wall += ms; },
    now: () => new Date(wall).toISOString(),
    stored: () => docs.countOfKind('operation'),
    close: () => db.close(),
  };
}

test('a finished operation is readable for OPERATION_RETENTION_MS, then removed at the next sweep; one in progress is kept', () => {
  const r = rig();
  try {
    const done = r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now()).path;
    const working = r.ops.begin('sub1', 'Microsoft.Compute', 'westus', r.now(), new Date(Date.parse(r.now()) + 1000 * HOUR).toISOString());
    r.advance(OPERATION_RETENTION_MS - HOUR);
    r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now()); // a sweep: nothing expired yet
    assert.equal(r.ops.read(done, {} as EngineState, r.now())?.status, 'Succeeded');
    r.advance(2 * HOUR);
    const later = r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now()).path; // sweeps: `done` is 25 h old
    assert.equal(r.ops.read(done, {} as EngineState, r.now()), undefined, 'removed after its retention');
    assert.equal(r.ops.read(working, {} as EngineState, r.now())?.status, 'InProgress', 'an operation still running is never removed');
    assert.equal(r.ops.read(later, {} as EngineState, r.now())?.status, 'Succeeded');
    assert.equal(r.stored(), 3);
    // Once it finishes, its own retention starts then, not at its start.
    r.ops.finish(working, r.now(), { result: { ok: true } });
    r.advance(OPERATION_RETENTION_MS - HOUR);
    assert.equal(r.ops.sweep(), 1, 'only the record made at 23 h is past its retention now');
    assert.equal(r.ops.read(working, {} as EngineState, r.now())?.status, 'Succeeded');
  } finally {
    r.close();
  }
});

test('no sweep runs more often than OPERATION_SWEEP_MS while under the count bound (a create costs one insert)', () => {
  const r = rig();
  try {
    const first = r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now()).path;
    r.advance(OPERATION_RETENTION_MS + 1);
    // The last sweep ran at the first create, a day ago: this create sweeps, and the next ones within the minute do not.
    r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now());
    assert.equal(r.ops.read(first, {} as EngineState, r.now()), undefined);
    const second = r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now()).path;
    r.advance(OPERATION_RETENTION_MS + 1);
    r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now());
    assert.equal(r.ops.read(second, {} as EngineState, r.now()), undefined, 'a day later the next create swept again');
    r.advance(OPERATION_SWEEP_MS / 2);
    const beforeSweep = r.stored();
    r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now());
    assert.equal(r.stored(), beforeSweep + 1);
  } finally {
    r.close();
  }
});

test('at most MAX_OPERATIONS records are kept: the oldest finished go first, a tenth is freed, the in-progress ones stay', () => {
  const r = rig();
  try {
    const running = r.ops.begin('sub1', 'Microsoft.Compute', 'westus', r.now(), new Date(Date.parse(r.now()) + 1000 * HOUR).toISOString());
    const paths: string[] = [];
    for (let i = 0; i < MAX_OPERATIONS - 1; i++) {
      r.advance(1); // each one a millisecond later: their order is the order they finished
      paths.push(r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now()).path);
    }
    assert.equal(r.stored(), MAX_OPERATIONS, 'up to the bound, nothing is removed (all are younger than a day)');
    const last = r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.now()).path; // over the bound: a sweep first
    const stored = r.stored();
    assert.ok(stored <= MAX_OPERATIONS - MAX_OPERATIONS / 10 + 1, `${stored} records kept`);
    assert.equal(r.ops.read(paths[0]!, {} as EngineState, r.now()), undefined, 'the oldest finished record went');
    assert.equal(r.ops.read(paths.at(-1)!, {} as EngineState, r.now())?.status, 'Succeeded', 'the newest stayed');
    assert.equal(r.ops.read(last, {} as EngineState, r.now())?.status, 'Succeeded');
    assert.equal(r.ops.read(running, {} as EngineState, r.now())?.status, 'InProgress', 'the oldest of all, but still running');
  } finally {
    r.close();
  }
});

/**
 * Operations with the demo's accelerated engine clock (3600x: an engine hour per wall second), the wall clock
 * apart: what `startTime`/`endTime` say (engine time) and what retention counts (wall time) differ.
 */
function fastRig(engineOriginMs: number) {
  const db = new Database(':memory:');
  const docs = new Documents(db);
  const wallStart = Date.parse('2026-06-01T00:00:00Z');
  let wall = wallStart;
  const engineNow = () => new Date(engineOriginMs + 3600 * (wall - wallStart)).toISOString();
  const ops = new Operations(docs, { state: () => ({}) as EngineState, now: engineNow, wallNow: () => wall });
  return { docs, ops, engineNow, advance: (ms: number) => { wall += ms; }, close: () => db.close() };
}

test('retention counts wall time under a 3600x engine clock: a record is kept a wall day, though its engine endTime is 150 days old', () => {
  const r = fastRig(Date.parse('2026-06-01T00:00:00Z'));
  try {
    const done = r.ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, r.engineNow()).path;
    r.advance(HOUR); // 3600 engine hours
    assert.equal(r.ops.sweep(), 0, 'an hour of wall time is not a day, however far the engine clock ran');
    assert.equal(r.ops.read(done, {} as EngineState, r.engineNow())?.status, 'Succeeded');
    r.advance(OPERATION_RETENTION_MS);
    assert.equal(r.ops.sweep(), 1);
  } finally {
    r.close();
  }
});

for (const [label, origin] of [['ahead of', '2030-01-01T00:00:00Z'], ['behind', '2020-01-01T00:00:00Z']] as const) {
  test(`records written before finishedAtMs existed, their engine endTime ${label} the wall clock: kept a wall day from the first sweep that sees them`, () => {
    const r = fastRig(Date.parse(origin));
    try {
      const old = '/subscriptions/sub1/providers/Microsoft.Compute/locations/westus/operations/old';
      const end = r.engineNow();
      r.docs.put(old, '/subscriptions/sub1', 'operation', { name: 'old', status: 'Succeeded', startTime: end, endTime: end, track: { kind: 'done' } });
      assert.equal(r.ops.sweep(), 0, 'not removed at once (an engine endTime years before the wall clock)');
      r.advance(OPERATION_RETENTION_MS - 1);
      assert.equal(r.ops.sweep(), 0);
      assert.equal(r.ops.read(old, {} as EngineState, r.engineNow())?.endTime, end, 'what clients read is unchanged');
      r.advance(2);
      assert.equal(r.ops.sweep(), 1, 'removed a wall day later (not never, for an engine endTime years after the wall clock)');
    } finally {
      r.close();
    }
  });
}

test('without clocks (a follower\'s read model) nothing is ever removed', () => {
  const db = new Database(':memory:');
  try {
    const docs = new Documents(db);
    const ops = new Operations(docs);
    ops.create('sub1', 'Microsoft.Compute', 'westus', { kind: 'done' }, '2020-01-01T00:00:00.000Z');
    assert.equal(ops.sweep(), 0);
    assert.equal(docs.countOfKind('operation'), 1);
  } finally {
    db.close();
  }
});

test('when operations in progress alone fill the bound, the next sweep waits for a tenth more of them (not one sweep per new operation)', () => {
  const r = rig();
  try {
    const far = new Date(Date.parse(r.now()) + 1000 * HOUR).toISOString();
    for (let i = 0; i < MAX_OPERATIONS; i++) r.ops.begin('sub1', 'Microsoft.Compute', 'westus', r.now(), far);
    let sweeps = 0;
    const read = r.docs.operationSummaries.bind(r.docs);
    r.docs.operationSummaries = () => { sweeps++; return read(); };
    r.ops.begin('sub1', 'Microsoft.Compute', 'westus', r.now(), far); // at the bound: a sweep, which removes nothing
    assert.equal(sweeps, 1);
    assert.equal(r.stored(), MAX_OPERATIONS + 1, 'operations in progress are never removed');
    for (let i = 0; i < MAX_OPERATIONS / 10 - 1; i++) r.ops.begin('sub1', 'Microsoft.Compute', 'westus', r.now(), far);
    assert.equal(sweeps, 1, 'no sweep within the next tenth');
    r.ops.begin('sub1', 'Microsoft.Compute', 'westus', r.now(), far);
    assert.equal(sweeps, 2);
  } finally {
    r.close();
  }
});
