/**
 * The event log reader's contract: the same events written into SQLite (a SqliteStore's schema, compact rows
 * through EventWriter) and into a real PostgreSQL (embedded, the store's migrations, rows as PgStore writes
 * them) answer every query the same: random events of the real types on random machines and rollouts,
 * random queries (and the routes' own), counts per minute, the last seq. Bad queries are refused on both.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import type { Artifact } from '../src/model/artifact.js';
import type { BatchScope, EngineEvent, EventBody } from '../src/model/events.js';
import type { Placement } from '../src/model/fleet.js';
import type { EventLogReader, EventQuery } from '../src/store/event-log-reader.js';
import { MAX_EVENTS_PER_READ } from '../src/store/event-log-reader.js';
import { connect, migrate } from '../src/store/postgres/connect.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import type { EmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { PgEventLogReader } from '../src/store/postgres/event-log-reader.js';
import { eventRow } from '../src/store/postgres/events.js';
import { EventWriter } from '../src/store/sqlite/event-log.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { ACTIVITY_EVENT_TYPES } from '../src/api/arm/activity-log.js';
import { AVAILABILITY_EVENT_TYPES } from '../src/model/availability.js';
import { CHART_TYPES, RolloutCharts } from '../src/dashboard/rollout-chart.js';

const MACHINES = ['vm-a', 'vm-b', 'vm-c', '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-d'];
const ROLLOUTS = ['r-1', 'r-2', 'R-3'];
const START_MS = Date.parse('2026-01-05T10:00:00.000Z');
const SPAN_MS = 3 * 3600_000;

// ---- random events of the real types ---------------------------------------------------------------------

const word = fc.constantFrom('a', 'b', 'c', 'Ünï', 'x y', '');
const placement: fc.Arbitrary<Placement> = fc.record({
  region: fc.constantFrom('eastus', 'westus'), zone: fc.constantFrom(null, '1', '2'), setId: fc.constantFrom(null, 'ss-1', 'as-1'),
  setKind: fc.constantFrom('scaleSet', 'availabilitySet', 'none') as fc.Arbitrary<Placement['setKind']>,
  updateDomain: fc.constantFrom(null, 0, 3), faultDomain: fc.constantFrom(null, 0, 1), subscription: fc.constantFrom('s1', 's2'),
});
const artifact: fc.Arbitrary<Artifact> = fc.oneof(
  fc.record({ kind: fc.constant('extension' as const), publisher: fc.constantFrom('Microsoft.Azure.Monitor', 'p'), type: fc.constantFrom('AMA', 't') }),
  fc.record({ kind: fc.constant('osImage' as const), publisher: fc.constant('Canonical'), offer: fc.constant('ubuntu'), sku: fc.constantFrom('22_04', '24_04') }),
);
const scope: fc.Arbitrary<BatchScope> = fc.record(
  { region: fc.constantFrom('eastus', 'westus'), zone: fc.constantFrom(null, '1'), setId: fc.constantFrom(null, 'ss-1'), subscription: fc.constantFrom('s1', 's2'), crossZone: fc.boolean() },
  { requiredKeys: ['region', 'subscription'] },
);
const machineId = fc.constantFrom(...MACHINES);
const rolloutId = fc.constantFrom(...ROLLOUTS);
const version = fc.constantFrom('1.0.0.0', '1.1.0.0', '2.0');
const caller = fc.constantFrom('alice@example.com', 'platform', 'bob');
const ids = { rolloutId, batchId: fc.constantFrom('b-1', 'b-2'), machineId, placement, artifact, attempt: fc.integer({ min: 1, max: 3 }) };

/** Every body the routes read, and others around them; `fc.record` keeps the keys in the order given (as the engine writes them). */
const body: fc.Arbitrary<EventBody> = fc.oneof(
  fc.record({
    type: fc.constantFrom('instance.upgrade.started', 'instance.upgrade.succeeded', 'instance.upgrade.failed', 'instance.health.unhealthy',
      'instance.rollback.started', 'instance.rollback.succeeded', 'instance.rollback.failed', 'instance.rollback.skipped'),
    ...ids, fromVersion: version, toVersion: version, reason: word,
  }, { requiredKeys: ['type', 'rolloutId', 'batchId', 'machineId', 'placement', 'artifact', 'attempt', 'fromVersion', 'toVersion'] }),
  fc.record({ type: fc.constant('instance.skipped'), ...ids, reason: word }),
  fc.record({
    type: fc.constant('instance.reimaged'), fromVersion: version, toVersion: version, extensions: fc.array(word, { maxLength: 2 }), customData: fc.boolean(),
    dataDisksKept: fc.boolean(), ...ids,
  }),
  fc.record({
    type: fc.constantFrom('instance.install.started', 'instance.install.succeeded', 'instance.install.failed'),
    machineId, placement, artifact, fromVersion: version, toVersion: version, caller, reason: word,
  }),
  fc.record({
    type: fc.constantFrom('batch.started', 'batch.completed'), rolloutId, batchId: fc.constantFrom('b-1', 'b-2'), scope,
    instances: fc.array(machineId, { maxLength: 3 }), setSize: fc.nat(10), reason: word, retry: fc.boolean(),
  }, { requiredKeys: ['type', 'rolloutId', 'batchId', 'scope', 'instances', 'reason'] }),
  fc.record({
    type: fc.constantFrom('gate.held', 'gate.breached', 'gate.cleared'), rolloutId, gate: fc.constantFrom('unhealthy', 'failed'),
    observed: fc.nat(100), limit: fc.nat(100), scope, reason: word, rule: fc.constantFrom('R20', 'R23'),
  }),
  fc.record({ type: fc.constant('window.waiting'), rolloutId, scope, opensAt: fc.constantFrom(null, '2026-01-06T00:00:00.000Z'), configurations: fc.array(word, { maxLength: 2 }), reason: word }),
  fc.record({ type: fc.constant('window.bypassed'), rolloutId, batchId: fc.constant('b-1'), scope, configurations: fc.array(word, { maxLength: 2 }), reason: word }),
  fc.record(
    { type: fc.constantFrom('rollout.paused', 'rollout.resumed', 'rollout.cancelled', 'rollout.completed'), rolloutId, reason: word, caller },
    { requiredKeys: ['type', 'rolloutId', 'reason'] },
  ),
  fc.record({ type: fc.constant('autoUpgrade.changed'), machineId, artifactKey: fc.constant('extension:p.t'), enabled: fc.boolean(), caller }),
  fc.record({ type: fc.constant('enrollment.changed'), subscription: fc.constantFrom('s1', 's2'), enrolled: fc.boolean(), caller, reason: word }),
  fc.record({ type: fc.constant('host.update.applied'), machineId, placement, updates: fc.array(word, { maxLength: 2 }), reason: word, caller }),
  fc.record({
    type: fc.constant('availability.impact'), machineId, placement, cause: fc.constantFrom('Reboot', 'Reimage', 'Freeze', 'Redeploy', 'Unhealthy'),
    state: fc.constantFrom('Unavailable', 'Degraded'), startTime: fc.constant('2026-01-05T11:00:00.000Z'), durationSec: fc.nat(600), planned: fc.boolean(), reason: word,
  }),
  fc.record({ type: fc.constant('release.resumed'), artifact, artifactKey: fc.constant('extension:p.t'), toVersion: version, caller, reason: word }),
) as fc.Arbitrary<EventBody>;

/** A log: increasing seqs with gaps, times in any order within a few hours (canonical ISO, as the engine writes them). */
/** A time on a coarse grid (whole minutes, and a millisecond either side of them), so that time bounds often fall on events. */
const instantArb = (minutes: number, before = 0) => fc.tuple(fc.integer({ min: -before, max: minutes }), fc.constantFrom(0, 1, 59_999, 30_500))
  .map(([m, ms]) => START_MS + m * 60_000 + ms);
const logArb: fc.Arbitrary<EngineEvent[]> = fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), instantArb(SPAN_MS / 60_000), body), { maxLength: 150, size: 'max' }).map((rows) => {
  let seq = 0;
  return rows.map(([gap, t, b]) => ({ seq: (seq += gap), time: new Date(t).toISOString(), ...b }) as EngineEvent);
});

const ALL_TYPES = [...new Set([...ACTIVITY_EVENT_TYPES, ...AVAILABILITY_EVENT_TYPES, ...CHART_TYPES, 'batch.started', 'gate.held', 'window.waiting', 'rollout.completed'])];
/** A condition present in one query of three: queries with every condition would match almost nothing. */
const opt = <T>(a: fc.Arbitrary<T>) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 2 }, { arbitrary: a, weight: 1 });
/** A seq around the log's (most of them within it, so that bounds fall on events). */
const seqArb = fc.integer({ min: -2, max: 310 });
const timeArb = instantArb(SPAN_MS / 60_000 + 1, 1);

const queryArb: fc.Arbitrary<EventQuery> = fc.record({
  order: fc.constantFrom('asc', 'desc'), limit: fc.integer({ min: 1, max: 150 }),
  afterSeq: opt(seqArb), beforeSeq: opt(seqArb), types: opt(fc.subarray(ALL_TYPES)),
  rolloutId: opt(fc.constantFrom(...ROLLOUTS, 'r-none')), machineId: opt(fc.constantFrom(...MACHINES, 'vm-none')),
  fromMs: opt(timeArb), toMs: opt(timeArb),
  noRolloutOr: opt(fc.record({ rolloutIds: fc.subarray([...ROLLOUTS, 'r-none']), orTypes: fc.subarray(['rollout.paused', 'rollout.resumed', 'rollout.cancelled']) })),
}, { requiredKeys: ['order', 'limit'] }) as fc.Arbitrary<EventQuery>;

// ---- the two stores ---------------------------------------------------------------------------------------

let server: EmbeddedPostgres;
let client: pg.Client;
const dir = mkdtempSync(join(tmpdir(), 'phasewise-reader-'));

before(async () => {
  server = await startEmbeddedPostgres();
  client = await connect(server.url);
  await migrate(client, server.url);
});
after(async () => {
  store?.close();
  await client?.end();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Pair { sqlite: EventLogReader; pg: EventLogReader }

let store: SqliteStore;

/**
 * The same events in the SQLite store and in PostgreSQL, in place of the last run's (one store for every run: shrinking a
 * failure writes thousands of logs). SQLite's dictionaries stay; the rows refer to them as a store's rows do.
 */
async function write(events: readonly EngineEvent[]): Promise<Pair> {
  store ??= SqliteStore.open(join(dir, 'events.sqlite'), { mode: 'new' });
  const db = store.database;
  const writer = new EventWriter(db);
  db.transaction(() => {
    db.exec('DELETE FROM events');
    writer.sync();
    for (const e of events) writer.write(e);
  })();
  // The rows PgStore writes (eventRow), in one statement: a column array each.
  const cols = [0, 1, 2, 3, 4, 5].map((i) => events.map((e) => eventRow(e)[i]));
  await client.query('BEGIN');
  await client.query('DELETE FROM events');
  await client.query('INSERT INTO events SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])', cols);
  await client.query('COMMIT');
  return { sqlite: store.eventLog, pg: new PgEventLogReader(client) };
}

/** Both answers, and the answer a plain filter of the events gives (the contract itself). */
function expected(events: readonly EngineEvent[], q: EventQuery): EngineEvent[] {
  const has = (e: EngineEvent, k: 'rolloutId' | 'machineId') => (k in e ? (e as unknown as Record<string, unknown>)[k] : undefined);
  const ms = (e: EngineEvent) => Date.parse(e.time);
  const out = events.filter((e) =>
    (q.afterSeq === undefined || e.seq > q.afterSeq) && (q.beforeSeq === undefined || e.seq < q.beforeSeq)
    && (q.types === undefined || q.types.includes(e.type)) && (q.rolloutId === undefined || has(e, 'rolloutId') === q.rolloutId)
    && (q.machineId === undefined || has(e, 'machineId') === q.machineId)
    && (q.fromMs === undefined || ms(e) >= q.fromMs) && (q.toMs === undefined || ms(e) <= q.toMs)
    && (q.noRolloutOr === undefined || has(e, 'rolloutId') === undefined || q.noRolloutOr.orTypes.includes(e.type)
      || q.noRolloutOr.rolloutIds.includes(has(e, 'rolloutId') as string)));
  if (q.order === 'desc') out.reverse();
  return out.slice(0, q.limit);
}

const lines = (events: readonly EngineEvent[]) => events.map((e) => JSON.stringify(e));
/** The rollout of a log's first chart event (the first rollout when there is none). */
const rolloutIdOf = (events: readonly EngineEvent[]) => events.find((e) => CHART_TYPES.includes(e.type) && 'rolloutId' in e)?.['rolloutId' as keyof EngineEvent];
const r0 = (id: unknown) => (typeof id === 'string' ? id : ROLLOUTS[0]!);

describe('the event log reader, on SQLite and PostgreSQL', () => {
  test('random queries over random logs: both stores answer the events a plain filter gives, byte for byte, in order', async () => {
    await fc.assert(fc.asyncProperty(logArb, fc.array(queryArb, { minLength: 1, maxLength: 12 }), async (events, queries) => {
      const pair = await write(events);
      for (const q of queries) {
        const want = lines(expected(events, q));
        assert.deepEqual(lines(await pair.sqlite.read(q)), want, `SQLite: ${JSON.stringify(q)}`);
        assert.deepEqual(lines(await pair.pg.read(q)), want, `PostgreSQL: ${JSON.stringify(q)}`);
      }
      const last = events.length > 0 ? events[events.length - 1]!.seq : 0;
      assert.equal(await pair.sqlite.lastSeq(), last);
      assert.equal(await pair.pg.lastSeq(), last);
    }), { numRuns: 60 });
  });

  test('the routes\' queries (history, availability, activity page, install start, export, dashboard) answer the same on both', async () => {
    await fc.assert(fc.asyncProperty(logArb, machineId, rolloutId, seqArb, async (events, m, r, seq) => {
      const pair = await write(events);
      const queries: EventQuery[] = [
        { machineId: m, order: 'desc', limit: 200 },
        { machineId: m, types: AVAILABILITY_EVENT_TYPES, order: 'desc', limit: 2000 },
        { fromMs: START_MS + 600_000, toMs: START_MS + SPAN_MS - 600_000, types: ACTIVITY_EVENT_TYPES, order: 'desc', limit: 7, beforeSeq: seq },
        { types: ACTIVITY_EVENT_TYPES, rolloutId: r, order: 'desc', limit: 500, beforeSeq: Number.MAX_SAFE_INTEGER, fromMs: 0, toMs: START_MS + SPAN_MS },
        { types: ACTIVITY_EVENT_TYPES, noRolloutOr: { rolloutIds: [r], orTypes: ['rollout.paused', 'rollout.resumed', 'rollout.cancelled'] }, order: 'desc', limit: 500 },
        { machineId: m, types: ['instance.install.started'], beforeSeq: seq, afterSeq: seq - 20, order: 'desc', limit: 20 },
        { afterSeq: seq, order: 'asc', limit: 11 },
        { afterSeq: seq, rolloutId: r, order: 'asc', limit: 11 },
        { rolloutId: r, types: ['batch.started', 'batch.completed'], order: 'desc', limit: 50 },
      ];
      for (const q of queries) {
        const want = lines(expected(events, q));
        assert.deepEqual(lines(await pair.sqlite.read(q)), want, `SQLite: ${JSON.stringify(q)}`);
        assert.deepEqual(lines(await pair.pg.read(q)), want, `PostgreSQL: ${JSON.stringify(q)}`);
      }
    }), { numRuns: 30 });
  });

  test('counts per minute of a rollout\'s events agree on both stores and with the engine\'s own count of the same events', async () => {
    // The origin near an event's time, so that some events fall before it (a negative minute, truncated toward zero) and some in its minute.
    const logAndOrigin = logArb.filter((l) => l.length > 0).chain((l) => fc.tuple(fc.constant(l), fc.nat(l.length - 1), fc.integer({ min: -150, max: 150 })))
      .map(([l, i, d]) => [l, Math.floor(Date.parse(l[i]!.time) / 1000) + d] as const);
    await fc.assert(fc.asyncProperty(logAndOrigin, rolloutId, seqArb, async ([events, originS], r, upto) => {
      const pair = await write(events);
      const a = await pair.sqlite.countsPerMinute(r, CHART_TYPES, originS, upto);
      const b = await pair.pg.countsPerMinute(r, CHART_TYPES, originS, upto);
      assert.deepEqual(b, a);
      // The same counts from the events themselves: the minute truncated toward zero from whole seconds.
      const want = new Map<string, number>();
      for (const e of events) {
        if (e.seq > upto || !CHART_TYPES.includes(e.type) || !('rolloutId' in e) || e.rolloutId !== r) continue;
        const k = `${e.type} ${Math.trunc((Math.floor(Date.parse(e.time) / 1000) - originS) / 60)}`;
        want.set(k, (want.get(k) ?? 0) + 1);
      }
      assert.deepEqual(new Map(a.map((c) => [`${c.type} ${c.minute}`, c.count])), want);
      for (let i = 1; i < a.length; i++) {
        const [p, c] = [a[i - 1]!, a[i]!];
        assert.ok(CHART_TYPES.indexOf(p.type) < CHART_TYPES.indexOf(c.type) || (p.type === c.type && p.minute < c.minute), 'sorted by type, then minute');
      }
      // A subset of the types, in another order, answers only those.
      const some = [...CHART_TYPES].filter((t) => t.length % 2 === 0);
      assert.deepEqual(await pair.pg.countsPerMinute(r, some, originS, upto), await pair.sqlite.countsPerMinute(r, some, originS, upto));
    }), { numRuns: 30 });
  });

  test('the rollout chart on PostgreSQL counts each event once, whether the engine commits it before or while the log is read', async () => {
    const split = logArb.chain((l) => fc.tuple(fc.constant(l), fc.nat(l.length), fc.boolean()));
    await fc.assert(fc.asyncProperty(split, async ([events, k, committedFirst]) => {
      const [old, fresh] = [events.slice(0, k), events.slice(k)];
      // What the chart shows when every event is in the log before it is first read (SQLite, answered at once).
      const want = await new RolloutCharts((await write(events)).sqlite).chart(r0(rolloutIdOf(events)), START_MS, START_MS + SPAN_MS);
      const pair = await write(committedFirst ? events : old);
      const charts = new RolloutCharts(pair.pg);
      const shown = charts.chart(r0(rolloutIdOf(events)), START_MS, START_MS + SPAN_MS);
      // The engine publishes the newer events while PostgreSQL is still being read (committed before the read, or not yet).
      charts.onEvents(fresh);
      assert.deepEqual(await shown, want);
      assert.deepEqual(await charts.chart(r0(rolloutIdOf(events)), START_MS, START_MS + SPAN_MS), want, 'kept, then shown again');
    }), { numRuns: 25 });
  });

  test('a bad query is refused with a clear error on both stores, and the log is unchanged', async () => {
    const events = fc.sample(logArb.filter((l) => l.length > 5), { numRuns: 1, seed: 5 })[0]!;
    const pair = await write(events);
    const bad: Array<[unknown, RegExp]> = [
      [{ order: 'desc', limit: 0 }, /limit must be a whole number from 1 to 10000, not 0/],
      [{ order: 'desc', limit: MAX_EVENTS_PER_READ + 1 }, /limit must be/],
      [{ order: 'desc', limit: Number.NaN }, /limit must be/],
      [{ order: 'desc' }, /limit must be/],
      [{ order: 'sideways', limit: 5 }, /order must be 'asc' or 'desc'/],
      [{ order: 'asc', limit: 5, afterSeq: 1.5 }, /afterSeq must be a whole number/],
      [{ order: 'asc', limit: 5, types: 'instance.skipped' }, /types must be a list/],
      [{ order: 'asc', limit: 5, types: Array.from({ length: 1001 }, () => 'x') }, /types must be a list of at most 1000/],
      [{ order: 'asc', limit: 5, machineId: 7 }, /machineId must be a string/],
      [{ order: 'asc', limit: 5, fromMs: -1 }, /fromMs must be milliseconds/],
      [{ order: 'asc', limit: 5, noRolloutOr: { rolloutIds: [1], orTypes: [] } }, /noRolloutOr.rolloutIds must be a list/],
    ];
    for (const reader of [pair.sqlite, pair.pg]) {
      for (const [q, message] of bad) await assert.rejects(reader.read(q as EventQuery), (err: Error) => err instanceof RangeError && message.test(err.message), JSON.stringify(q));
      await assert.rejects(reader.countsPerMinute('r-1', CHART_TYPES, 1.5, 10), /originS must be whole seconds/);
      await assert.rejects(reader.countsPerMinute('r-1', CHART_TYPES, 0, Number.NaN), /uptoSeq must be a whole number/);
      assert.deepEqual(lines(await reader.read({ order: 'asc', limit: 1000 })), lines(events));
    }
  });

  test('PostgreSQL reads a machine\'s events through the index events_machine (migration 4), not by scanning the log', async () => {
    await client.query('DELETE FROM events');
    await client.query(`INSERT INTO events SELECT g, '2026-01-05T10:00:00.000Z', 'instance.skipped', 'r-1', 'vm-' || (g % 1000), '{}' FROM generate_series(1, 20000) g`);
    await client.query('ANALYZE events');
    const { rows } = await client.query<{ 'QUERY PLAN': string }>("EXPLAIN SELECT body FROM events WHERE machine_id = 'vm-7' ORDER BY seq DESC LIMIT 200");
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    assert.match(plan, /events_machine/, plan);
  });
});
