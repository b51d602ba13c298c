/**
 * A group's coalesced row writes (src/store/sqlite/coalesce.ts) leave the database exactly as writing
 * every statement in turn would: random statement sequences on a small key space, and whole simulations
 * with and without groups, compared table by table on real SQLite files.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { RowCoalescer } from '../src/store/sqlite/coalesce.js';
import { openDatabase } from '../src/store/sqlite/database.js';
import { STATEMENT_NAMES, statements } from '../src/store/sqlite/rows.js';
import type { StatementName, Writers } from '../src/store/sqlite/rows.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { baseScenario } from './helpers/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-coalesce-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newFile = () => join(dir, `db-${++n}.sqlite`);

/** The engine's tables a commit writes, each row in key order (events compared elsewhere). */
const TABLES = ['machines', 'instances', 'machine_health', 'rollouts', 'rollout_phases', 'rollout_regions', 'rollout_units', 'gate_runs', 'attempts', 'timers',
  'actions', 'meta'];
function dump(db: Database.Database): Record<string, unknown[]> {
  return Object.fromEntries(TABLES.map((t) => [t, db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()]));
}

type Op = [StatementName, unknown[]];

/**
 * Random but valid statement sequences over two keys per table: plain INSERTs only of rows that do not
 * exist, answers only of actions that do; upserts that change the columns a conflict does not update.
 */
const ops = fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 1000 })), { maxLength: 80 });
function toStatements(raw: Array<[number, number, number]>): Op[] {
  const timers = new Set<number>();
  const actions = new Map<string, boolean>();
  const out: Op[] = [];
  for (const [kind, k, v] of raw) {
    const key = `m${k}`;
    switch (kind) {
      case 0:
        out.push(['putInstance', ['pub.agent', key, `name-${v % 3}`, 'Pub', 'Agent', '1.0', 1, 1, '{}', `1.${v}`, `1.${v}`, '1.0', 'ok', null, null, null, 100 + v]]);
        break;
      case 1:
        out.push(['deleteInstance', ['pub.agent', key]]);
        break;
      case 2:
        if (timers.has(k)) out.push(['deleteTimer', [k]]), timers.delete(k);
        else out.push(['putTimer', [k, v, 'batch', 'r1', key, '{}']]), timers.add(k);
        break;
      case 3: {
        const answered = actions.get(key);
        if (answered === undefined) out.push(['putAction', [key, 'r1', key, 'upgrade', `{"v":${v}}`, v]]), actions.set(key, false);
        else if (!answered) out.push(['answerAction', [v, v % 2, key]]), actions.set(key, true);
        break;
      }
      case 4:
        out.push(['putAttempt', ['r1', key, `u${v % 2}`, `b${v}`, v % 3, 'upgrading', '1.0', `a${v}`, null, v]]);
        break;
      case 5:
        out.push(['deleteAttempt', ['r1', key]]);
        break;
      case 6:
        out.push(['putHealth', [key, `{"h":${v}}`]]);
        break;
      case 7:
        out.push(['deleteHealth', [key]]);
        break;
      case 8:
        out.push(['putMeta', [`k${k}`, String(v)]]);
        break;
      default:
        out.push(['putUnit', ['r1', `u${k}`, 'running', v, v % 2, 0, '[]', v % 4, null]]);
    }
  }
  return out;
}

describe('coalesced group writes', () => {
  test('random statement sequences leave the same rows as writing each statement in turn', () => {
    fc.assert(fc.property(ops, fc.integer({ min: 0, max: 30 }), fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 3 }), (raw, start, cuts) => {
      const all = toStatements(raw);
      // Rows written before the group (`start` statements) exist when it begins.
      const before = all.slice(0, start);
      const seq = all.slice(start);
      const direct = openDatabase(newFile(), { mode: 'new' });
      const grouped = openDatabase(newFile(), { mode: 'new' });
      try {
        const st = statements(direct.db);
        for (const [name, args] of before) st[name].run(...args);
        for (const [name, args] of seq) st[name].run(...args);
        const gst = statements(grouped.db);
        for (const [name, args] of before) gst[name].run(...args);
        const coalescer = new RowCoalescer(grouped.db, gst);
        grouped.db.exec('BEGIN');
        // `cuts`: the held rows are written part-way too (a read in the group asks for them).
        seq.forEach(([name, args], i) => {
          coalescer.writers[name].run(...args.slice());
          if (cuts.includes(i)) coalescer.apply();
        });
        coalescer.apply();
        grouped.db.exec('COMMIT');
        assert.equal(coalescer.size, 0);
        assert.deepEqual(dump(grouped.db), dump(direct.db));
      } finally {
        direct.close();
        grouped.close();
      }
    }), { numRuns: 200, seed: 20261206, examples: [[[[2, 0, 1], [2, 0, 2], [2, 0, 3], [2, 0, 4]], 1, []]] });
  });

  test('rows keyed by two columns are written sorted by the first column, then the second, each with its last value', () => {
    const part = fc.oneof(fc.string({ maxLength: 6 }).filter((x) => !x.includes('\u0000')), fc.integer({ min: 0, max: 30 }));
    fc.assert(fc.property(fc.array(fc.tuple(part, part, fc.integer()), { maxLength: 60 }), (rows) => {
      const written: unknown[][] = [];
      const st = Object.fromEntries(STATEMENT_NAMES.map((k) => [k, { run: (...a: unknown[]) => void written.push(a) }])) as Writers;
      const c = new RowCoalescer(null, st);
      const last = new Map<string, unknown[]>();
      for (const [k0, k1, v] of rows) {
        const args = [k0, k1, 'running', 0, 0, 0, v];
        c.writers.putPhase.run(...args);
        last.set(`${String(k0)}\u0000${String(k1)}`, args);
      }
      c.apply();
      assert.deepEqual(written, [...last.keys()].sort().map((k) => last.get(k)));
    }), { numRuns: 300, seed: 20261207 });
  });

  test('a statement without a rule runs after the held rows, in order', () => {
    const h = openDatabase(newFile(), { mode: 'new' });
    try {
      const c = new RowCoalescer(h.db, statements(h.db));
      h.db.exec('BEGIN');
      c.writers.putRolloutNew.run('r1', '{}', 'pub.agent', '1.1', 'running', null, 0, null, 0, 1, 'test', 0);
      c.writers.putRollout.run('completed', null, 5, 2, 0, 'r1');
      assert.equal(c.size, 1, 'the update is held');
      c.writers.putRolloutNew.run('r2', '{}', 'pub.agent', '1.2', 'running', null, 0, null, 0, 1, 'test', 0);
      assert.equal(c.size, 0, 'a statement without a rule writes what is held first');
      h.db.exec('COMMIT');
      assert.deepEqual(h.db.prepare('SELECT id, status, ended_at FROM rollouts ORDER BY id').all(), [
        { id: 'r1', status: 'completed', ended_at: 5 },
        { id: 'r2', status: 'running', ended_at: null },
      ]);
    } finally {
      h.close();
    }
  });

  test('a whole simulation with groups leaves every engine table as with a transaction per commit', () => {
    const raw = () => baseScenario({
      seed: 11,
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.1, installFailure: 0.05, rollbackFailure: 0.3 } } },
      events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
    });
    const run = (ticks: number, journal = false) => {
      const file = newFile();
      const scenario = compileScenario(raw(), 'coalesce');
      const store = SqliteStore.open(file, { mode: 'new' });
      store.importState(scenario.state);
      store.groupCommits({ ticks, wallMs: 10_000 }, undefined, { journal });
      new Simulation(scenario, { store }).run();
      const events = [...store.events()];
      const transactions = store.transactions;
      store.close(); // (with the journal, close removes the meta rows that name it: the file as a whole)
      const db = new Database(file, { readonly: true });
      const tables = dump(db);
      db.close();
      return { tables, events, transactions };
    };
    const single = run(1);
    assert.ok(single.tables.attempts!.length + single.tables.actions!.length > 0, 'the run wrote attempts and actions');
    // In one SQLite transaction per group, and through the journal (the apply worker's transactions span groups).
    for (const journal of [false, true]) {
      const grouped = run(1000, journal);
      assert.ok(grouped.transactions < single.transactions / 2, `${grouped.transactions} transactions against ${single.transactions}`);
      assert.deepEqual(grouped.tables, single.tables, `the tables, journal ${journal}`);
      assert.deepEqual(grouped.events, single.events);
    }
  });
});
