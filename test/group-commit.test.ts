/**
 * Group commit on SQLite (issue 15, "SQLite keeps up"): engine commits share one transaction, and the
 * actions and events of each are held until that transaction is durable. Real SQLite files throughout;
 * "durable" is checked from a second connection, which sees only committed transactions.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { DriverAction } from '../src/engine/driver.js';
import { symmetricPairs } from '../src/model/fleet.js';
import type { EngineEvent } from '../src/model/events.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { checkGroupCommit, MAX_GROUP_TICKS, MAX_GROUP_WALL_MS } from '../src/store/sqlite/group-commit.js';
import type { GroupCommitSettings } from '../src/store/sqlite/group-commit.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { groupScenario } from './helpers/group-commit-child.js';
import { baseScenario } from './helpers/harness.js';
import { canonical } from './helpers/state-canonical.js';
import { stepUntilFailure } from './helpers/step-until-failure.js';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'phasewise-group-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newFile = () => join(dir, `db-${++n}.sqlite`);

const raw = groupScenario;

function memoryRun(): unknown[] {
  const store = new MemoryStore();
  new Simulation(compileScenario(raw(), 'group'), { store }).run();
  return JSON.parse(JSON.stringify(store.events())) as unknown[];
}

/**
 * A simulation on a new SQLite file with group commit, whose driver checks at every send, through a
 * second connection, that the action's key is committed; `published` collects the events as delivered.
 */
function groupedRun(settings: GroupCommitSettings, wallNow?: () => number) {
  const file = newFile();
  const scenario = compileScenario(raw(), 'group');
  const store = SqliteStore.open(file, { mode: 'new' });
  store.importState(scenario.state);
  store.groupCommits(settings, wallNow);
  const reader = new Database(file, { readonly: true });
  const committed = reader.prepare('SELECT 1 FROM actions WHERE key = ?').pluck();
  const sim = new Simulation(scenario, { store });
  const published: EngineEvent[] = [];
  sim.engine.onEvents((es) => published.push(...es));
  const unsent: string[] = [];
  let sent = 0;
  const send = sim.driver.send.bind(sim.driver);
  sim.driver.send = (a: DriverAction) => {
    if (committed.get(a.key) === undefined) unsent.push(a.key);
    sent++;
    send(a);
  };
  return { file, store, sim, published, unsent, sentCount: () => sent, reader };
}

describe('group commit', () => {
  const expected = memoryRun();

  test('the event log on SQLite with groups is the in-memory one, every action leaves after its key is committed, and groups hold several ticks', () => {
    for (const settings of [{ ticks: 1, wallMs: 1000 }, { ticks: 3, wallMs: 1000 }, { ticks: 1000, wallMs: 10_000 }]) {
      const run = groupedRun(settings);
      const result = run.sim.run();
      assert.deepEqual([...run.store.events()], expected, `the stored log with groups of ${settings.ticks}`);
      assert.deepEqual(JSON.parse(JSON.stringify(run.published)), expected, `the published events with groups of ${settings.ticks}`);
      assert.deepEqual(run.unsent, [], 'no action left before its key was committed');
      assert.ok(run.sentCount() > 0);
      // Commands and ticks each commit once; a group of 1 is a transaction per commit.
      if (settings.ticks === 1) assert.ok(run.store.transactions >= result.ticks);
      else assert.ok(run.store.transactions < result.ticks * 0.8, `${run.store.transactions} transactions for ${result.ticks} ticks with groups of ${settings.ticks}`);
      run.reader.close();
      run.store.close();
    }
  });

  // The fleet decides each action when it is committed; nothing of it (its answer, a report of its machine) is seen before its key is durable.
  test('groups stay open across the ticks that send; nothing of an action is seen before it is durable; the log is the in-memory one', () => {
    const scenarios = fc.record({
      seed: fc.integer({ min: 1, max: 10_000 }),
      installFailure: fc.double({ min: 0, max: 0.2, noNaN: true }),
      unhealthyAfterUpgrade: fc.double({ min: 0, max: 0.2, noNaN: true }),
      rollbackFailure: fc.double({ min: 0, max: 0.5, noNaN: true }),
      background: fc.boolean(),
      ticks: fc.constantFrom(2, 5, 1000),
    });
    let spans = 0;
    fc.assert(fc.property(scenarios, (p) => {
      const raw = () => baseScenario({
        seed: p.seed,
        failures: {
          versions: { '1.1.0.0': { installFailure: p.installFailure, unhealthyAfterUpgrade: p.unhealthyAfterUpgrade, rollbackFailure: p.rollbackFailure } },
          background: p.background ? [{ at: 'PT1H20M', duration: 'PT2H', scaleSet: 'ss-east', share: 0.3 }] : [],
        },
      });
      const memory = new MemoryStore();
      new Simulation(compileScenario(raw(), 'prop'), { store: memory }).run();
      const file = newFile();
      const scenario = compileScenario(raw(), 'prop');
      const store = SqliteStore.open(file, { mode: 'new' });
      store.importState(scenario.state);
      store.groupCommits({ ticks: p.ticks, wallMs: 10_000 });
      const reader = new Database(file, { readonly: true });
      const committed = reader.prepare('SELECT 1 FROM actions WHERE key = ?').pluck();
      const sim = new Simulation(scenario, { store });
      // Every action prepared (decided) for a machine, and the commits that held actions.
      const prepared = new Map<string, string[]>();
      let commitsWithActions = 0;
      // The store's transaction count at each commit that sends: two alike are two sends in one open group.
      const sendingIn: number[] = [];
      const prepare = sim.driver.prepare.bind(sim.driver);
      sim.driver.prepare = (actions) => {
        commitsWithActions++;
        sendingIn.push(store.transactions);
        for (const a of actions) prepared.set(a.machineId, [...(prepared.get(a.machineId) ?? []), a.key]);
        prepare(actions);
      };
      const seenEarly: string[] = [];
      const observe = sim.engine.observe.bind(sim.engine);
      sim.engine.observe = (o) => {
        if (o.kind === 'actionResult' && committed.get(o.key) === undefined) seenEarly.push(`answer ${o.key}`);
        if (o.kind === 'health') for (const k of prepared.get(o.machineId) ?? []) if (committed.get(k) === undefined) seenEarly.push(`report of ${o.machineId} after ${k}`);
        observe(o);
      };
      sim.run();
      assert.deepEqual(seenEarly, [], 'nothing of an action is seen before its key is committed');
      assert.deepEqual(JSON.parse(JSON.stringify([...store.events()])), JSON.parse(JSON.stringify(memory.events())), 'the log is the in-memory run\'s');
      assert.ok(commitsWithActions > 3, `${commitsWithActions} commits sent actions`);
      // (With groups of 2 or 5 commits, the size bound ends most groups first.) A group is committed before anything of
      // its actions is seen, so it spans two sends only when another unit sends before the first answer is due: not in
      // every run (seed 36 of the base scenario never does), and `transactions < commitsWithActions` missed one that did
      // (the last events' own transaction made up for it: seed 1, counterexample at 40 times the runs). Counted exactly,
      // and required over the runs.
      if (p.ticks === 1000) spans += sendingIn.length - new Set(sendingIn).size;
      reader.close();
      store.close();
    }), { numRuns: 12, seed: 20261206, examples: [[{ seed: 1, installFailure: 0, unhealthyAfterUpgrade: 5e-324, rollbackFailure: 0, background: false, ticks: 1000 }]] });
    assert.ok(spans > 0, 'with groups of 1000 ticks, some group held the actions of two commits');
  });

  test('a group commits once its wall time is up (injected clock), and none is left open at the end', () => {
    let wall = 0;
    const run = groupedRun({ ticks: 1000, wallMs: 20 }, () => (wall += 10)); // each look at the clock: 10 ms later
    const timeOnly = groupedRun({ ticks: 1000, wallMs: 10_000 }, () => 0);
    run.sim.run();
    timeOnly.sim.run();
    assert.ok(run.store.transactions > timeOnly.store.transactions, `${run.store.transactions} > ${timeOnly.store.transactions}: the wall bound closes groups`);
    assert.deepEqual([...run.store.events()], expected);
    const other = new Database(run.file, { readonly: true });
    assert.equal(other.prepare('SELECT count(*) FROM events').pluck().get(), expected.length, 'the last group is committed when the run ends');
    other.close();
    for (const r of [run, timeOnly]) {
      r.reader.close();
      r.store.close();
    }
  });

  test('a write failing in the middle of a group: nothing of the group counts or was sent; after the resync the run completes, and with groups of one tick equals the uninterrupted run', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 300 }), fc.constantFrom(1, 2, 7, 40), (failAfter, ticks) => {
      const run = groupedRun({ ticks, wallMs: 10_000 });
      const { sim, store } = run;
      sim.driver.observe = () => {}; // as in store-fault.test: asking again for reports would change timings
      let steps = 0;
      while (steps < failAfter && sim.step()) steps++;
      // A real write failure: every commit writes the counters row, which a trigger now refuses.
      store.database.exec("CREATE TEMP TRIGGER fail_meta BEFORE UPDATE ON main.meta BEGIN SELECT RAISE(ABORT, 'simulated I/O failure'); END");
      const failed = stepUntilFailure(sim);
      if (failed === null) return close(run);
      assert.match(String((failed as Error).message), /simulated I\/O failure/);
      // A group's rows are written when it commits (coalesced), so a failing write may fail the group's COMMIT.
      assert.match(sim.engine.haltedBecause ?? '', ticks === 1 ? /store commit failed/ : /store commit failed|a group commit failed/);
      assert.deepEqual(run.unsent, [], 'nothing was sent before its commit');
      // Nothing of the failed group counts: the store holds what was durable before it, no more. (The
      // group open after the last step may have been committed since, before the failing commit joined a
      // new one: the fleet asks for that before an answer falls due.) Events are published once durable.
      const kept = [...store.events()];
      assert.equal(kept.length, run.published.length, 'the store holds exactly the events published: none of the failed group');
      assert.deepEqual(JSON.parse(JSON.stringify(kept)), expected.slice(0, kept.length), 'what was durable is the uninterrupted run\'s prefix');
      store.database.exec('DROP TRIGGER IF EXISTS fail_meta'); // gone already when made inside the rolled-back group
      store.reopen();
      sim.engine.resync(store.load()!, store.pendingActions());
      sim.engine.tick(); // the group's reports, applied again (at the resync's instant)
      assert.equal(canonical(sim.engine.state), canonical(store.load()!));
      const result = sim.run();
      assert.equal(canonical(sim.engine.state), canonical(store.load()!), 'memory equals the store at the end');
      assert.equal(result.hitHorizon, false, 'the rollout completes');
      const all = [...store.events()];
      // The fleet decides the discarded group's actions anew, with new random draws: their outcomes may
      // differ from the uninterrupted run's, enough for the release's sequential test to halt it (issue 13).
      const halted = all.some((e) => e.type === 'release.halted');
      for (const r of sim.engine.state.rollouts.values()) assert.ok(r.status === 'completed' || (halted && r.status === 'running'), `${r.id} is ${r.status}`);
      const checker = new InvariantChecker({ pairs: symmetricPairs([...sim.engine.state.fleet.regions.values()]) });
      checker.onEvents(all);
      assert.deepEqual(checker.finish(), [], 'the log keeps the engine\'s invariants');
      // With one tick per group the failed group is the failed tick, re-applied at its own instant: the same log.
      if (ticks === 1) assert.deepEqual(JSON.parse(JSON.stringify(all)), expected, `the log after a failure at step ${steps} equals the uninterrupted run`);
      assert.deepEqual(run.unsent, []);
      close(run);
    }), { numRuns: 16, seed: 20261206 });
  });

  test('a real process killed in the middle of a group: every action it sent is committed, and the file holds the uninterrupted run up to its last group', () => {
    const child = join(import.meta.dirname, 'helpers', 'group-commit-child.js');
    let midGroup = 0;
    for (const steps of [5, 23, 60, 140]) {
      const file = newFile();
      const sentLog = join(dir, `sent-${n}.log`);
      const r = spawnSync(process.execPath, [child, file, sentLog, String(steps)], { encoding: 'utf8' });
      assert.equal(r.signal, 'SIGKILL', r.stderr);
      const lines = readFileSync(sentLog, 'utf8').trim().split('\n');
      const sent = lines.filter((l) => l.startsWith('sent ')).map((l) => l.slice(5));
      const lastStep = lines.filter((l) => l.startsWith('step ')).pop();
      if (lastStep !== 'step 0') midGroup++;
      const store = SqliteStore.open(file, { mode: 'existing' }); // takes over the dead process's lock
      const keys = new Set((store.database.prepare('SELECT key FROM actions').pluck().all() as string[]));
      assert.deepEqual(sent.filter((k) => !keys.has(k)), [], `killed after ${steps} steps: every key sent is committed`);
      const kept = JSON.parse(JSON.stringify([...store.events()])) as unknown[];
      assert.deepEqual(kept, expected.slice(0, kept.length), 'the file holds a prefix of the uninterrupted run');
      assert.ok(store.load(), 'the state loads for a restart');
      for (const a of store.pendingActions()) assert.ok(sent.includes(a.key), 'a pending action is one that was sent');
      store.close();
    }
    assert.ok(midGroup >= 2, `${midGroup} of the kills hit an open group`);
  });

  test('bad settings get a clear error, and sim with them changes nothing', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, MAX_GROUP_TICKS + 1]) {
      assert.throws(() => checkGroupCommit({ ticks: bad, wallMs: 100 }), /group ticks: expected a whole number from 1 to 100,000/);
    }
    assert.throws(() => checkGroupCommit({ ticks: 10, wallMs: MAX_GROUP_WALL_MS + 1 }), /group wall ms: expected a whole number from 1 to 10,000/);
    assert.throws(() => SqliteStore.prototype.groupCommits.call({}, { ticks: 0, wallMs: 1 }), /group ticks/);
    for (const [args, message] of [
      [['--group-ticks', '0'], /--group-ticks: expected a whole number from 1 to 100,000, got 0/],
      [['--group-ticks', '-5'], /--group-ticks: expected a whole number from 1 to 100,000, got -5/],
      [['--group-ticks', '1e9'], /--group-ticks: expected a whole number, got "1e9"/],
      [['--group-ms', '99999999'], /--group-ms: expected a whole number from 1 to 10,000/],
    ] as const) {
      const file = newFile();
      const r = spawnSync(process.execPath, [cli, 'sim', 'examples/small.yaml', '--quiet', '--store', `sqlite:${file}`, ...args], { cwd: root, encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(existsSync(file), false, 'no database was created');
    }
    const mem = spawnSync(process.execPath, [cli, 'sim', 'examples/small.yaml', '--quiet', '--group-ticks', '10'], { cwd: root, encoding: 'utf8' });
    assert.equal(mem.status, 2);
    assert.match(mem.stderr, /apply to --store sqlite:FILE only/);
  });
});

function close(run: { reader: Database.Database; store: SqliteStore }): void {
  run.reader.close();
  run.store.close();
}
