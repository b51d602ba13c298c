/**
 * A commit that fails for a reason that is not a request's data (a full disk, an I/O error) or a caller's
 * transaction that rolls back after an engine commit: memory and store must not stay apart. The engine
 * halts, answers 503 meanwhile, is read back from the store, and carries on as if nothing happened.
 * The fault is real: SQLite's `max_page_count` makes the database full (SQLITE_FULL), as a full disk does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { Documents } from '../src/api/arm/documents.js';
import { EngineHaltedError } from '../src/engine/core/errors.js';
import type { EngineEvent } from '../src/model/events.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { call, eventually, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import { baseScenario } from './helpers/harness.js';
import { sleep } from './helpers/poll.js';
import { canonical } from './helpers/state-canonical.js';
import { fill, lift } from './helpers/store-full.js';
import { stepUntilFailure } from './helpers/step-until-failure.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-fault-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newFile = () => join(dir, `db-${++n}.sqlite`);

/** Failures, rollbacks and retries, so that the failed tick can be any kind of step. */
function raw(): Record<string, unknown> {
  return baseScenario({
    seed: 5,
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.08, installFailure: 0.05, rollbackFailure: 0.2 } } },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
  });
}

function memoryRun(): readonly EngineEvent[] {
  const store = new MemoryStore();
  new Simulation(compileScenario(raw(), 'fault'), { store }).run();
  return store.events();
}

describe('a full disk in the middle of a rollout', () => {
  const expected = JSON.parse(JSON.stringify(memoryRun())) as unknown[];

  test('the engine halts with memory equal to the store, refuses commands with a clear error, and after the resync the run equals the uninterrupted one', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 400 }), (fullAfter) => {
      const file = newFile();
      const scenario = compileScenario(raw(), 'fault');
      const store = SqliteStore.open(file, { mode: 'new' });
      store.importState(scenario.state);
      const sim = new Simulation(scenario, { store });
      sim.driver.observe = () => {}; // as after a restart between ticks: no report is lost, asking again would change timings
      let steps = 0;
      while (steps < fullAfter && sim.step()) steps++;
      fill(store);
      const failed = stepUntilFailure(sim);
      if (failed === null) {
        // The run ended before it needed a new page: nothing to recover, and the log is whole.
        assert.deepEqual([...store.events()], expected);
        store.close();
        return;
      }
      assert.match(String((failed as Error).message), /full/, 'the step failed on the full disk');
      assert.match(sim.engine.haltedBecause ?? '', /store commit failed: .*disk is full/);
      assert.throws(() => sim.engine.tick(), EngineHaltedError, 'a halted engine refuses to go on from memory');
      // The resync reads the store back: the state in memory is the store's, in the same objects.
      const fleet = sim.engine.state.fleet;
      lift(store);
      store.reopen();
      sim.engine.resync(store.load()!, store.pendingActions());
      sim.engine.tick(); // the reports of the failed step, at its instant (serve's runtime does the same)
      assert.equal(sim.engine.haltedBecause, null);
      assert.equal(sim.engine.state.fleet, fleet, 'the fleet object others hold is kept');
      assert.equal(canonical(sim.engine.state), canonical(store.load()!));
      sim.run();
      assert.equal(canonical(sim.engine.state), canonical(store.load()!), 'memory equals the store at the end');
      assert.deepEqual([...store.events()], expected, `the log after a full disk at step ${steps} equals the uninterrupted run`);
      store.close();
    }), { numRuns: 12, seed: 20261205 });
  });
});

describe('a transaction that rolls back after an engine command', () => {
  test('the engine halts as diverged, and the resync drops what the store never kept', () => {
    const scenario = compileScenario(baseScenario({
      seed: 2, events: [],
      catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: false, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }] }],
      extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0', enableAutomaticUpgrade: false } },
    }), 'undo');
    const store = SqliteStore.open(newFile(), { mode: 'new' });
    store.importState(scenario.state);
    const sim = new Simulation(scenario, { store });
    const docs = new Documents(store.database, (fn) => store.transaction(fn));
    const before = canonical(store.load()!);
    const machineIds = [...scenario.state.fleet.machines.keys()];
    assert.throws(() => docs.atomically(() => {
      sim.engine.manualUpgrade({ artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, machineIds, toVersion: '1.1.0.0', caller: 'test' });
      throw new Error('the request failed after the engine committed its savepoint');
    }), /request failed/);
    assert.match(sim.engine.haltedBecause ?? '', /rolled back/);
    assert.equal(sim.engine.state.rollouts.size, 1, 'memory is ahead of the store until the resync');
    sim.engine.resync(store.load()!, store.pendingActions());
    assert.equal(sim.engine.state.rollouts.size, 0);
    assert.equal(canonical(sim.engine.state), before);
    // A refused command (checked before it changes anything) does not halt the engine.
    assert.throws(() => sim.engine.setAutomaticUpgrade('no-such-machine', 'Contoso.Agent', true, 'test'), /no instance/);
    assert.equal(sim.engine.haltedBecause, null);
    store.close();
  });
});

describe('serve on a full disk', () => {
  test('the simulated fleet\'s snapshot, saved every 2 s, meets the full disk without ending serve, and is saved again once there is room', async () => {
    const s = await startTestServer({ scenario: 'examples/small.yaml', clockFactor: 5_000 });
    try {
      const store = s.store as SqliteStore;
      const docs = new Documents(store.database, (fn) => store.transaction(fn));
      const saved = () => JSON.stringify(docs.get('/phasewise/simulator')?.body ?? null);
      // Actions in flight: the fleet changes, so each 2 s the timer has a snapshot to write.
      await eventually(async () => s.runtime.engine.state.pendingActions.size > 0, 120_000, 'actions in flight');
      const before = saved();
      fill(store);
      // Before the fix the timer's write threw: an uncaught exception (which fails this test) that ended serve.
      await sleep(3 * 2_000 + 500);
      assert.equal(saved(), before, 'nothing saved while the disk is full');
      lift(store);
      await eventually(async () => saved() !== before, 60_000, 'the snapshot saved again once there is room');
    } finally {
      await s.stop();
    }
  });

  test('writes answer 503 with an ARM body and Retry-After, nothing is applied, and the engine carries on once there is room', async () => {
    const s = await startTestServer({ scenario: 'examples/small.yaml', clockFactor: 20_000, retryAfterSeconds: 3 });
    try {
      const store = s.store as SqliteStore;
      const rg = '/subscriptions/sub1/resourceGroups/fault-rg?api-version=2021-04-01';
      // Actions in flight when the disk fills: their results make the engine commit again. Filled once the
      // rollout had ended (a slow start on a loaded machine), nothing would commit and the halt never came.
      await eventually(async () => s.runtime.engine.state.pendingActions.size > 0, 120_000, 'actions in flight');
      fill(store);
      // Tags that need a page of their own (the rows already there may have room left for a small one).
      const tags = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`tag${i}`, 'v'.repeat(200)]));
      const refused = await call(s.url, 'PUT', rg, { location: 'eastus', tags });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error.code, 'ServiceUnavailable');
      assert.equal(refused.headers.get('retry-after'), '3');
      // The engine's next commit fails too (the rollout keeps writing): it halts and memory stays the store's.
      await eventually(async () => s.runtime.engine.haltedBecause !== null, 20_000, 'the engine halted on the full disk');
      // Health checks say so (no token needed): not ready, and why.
      const ready = await fetch(`${s.url}/readyz`);
      assert.equal(ready.status, 503);
      const view = (await ready.json()) as { ready: boolean; reason?: string };
      assert.equal(view.ready, false);
      assert.match(view.reason ?? '', /store commit failed/);
      lift(store);
      await eventually(async () => s.runtime.engine.haltedBecause === null, 20_000, 'the engine resynchronised from the store');
      assert.equal((await fetch(`${s.url}/readyz`)).status, 200);
      assert.equal((await call(s.url, 'GET', rg)).status, 404, 'the refused write was not applied');
      assert.equal((await call(s.url, 'PUT', rg, { location: 'eastus' })).status, 201);
      // A new version published now starts a rollout: the engine commits again whether or not the first one has ended.
      const seq = s.runtime.engine.state.eventSeq;
      const published = await call(s.url, 'PUT', '/phasewise/publishers/Contoso.Monitoring/extensionTypes/Agent/versions/1.5.0.0', { os: ['linux', 'windows'] }, PUBLISHER_TOKEN);
      assert.equal(published.status, 201, JSON.stringify(published.body));
      await eventually(async () => s.runtime.engine.state.eventSeq > seq, 20_000, 'the engine advances again');
      s.runtime.stop(); // compare between two steps
      assert.equal(canonical(s.runtime.engine.state), canonical(store.load()!));
    } finally {
      await s.stop();
    }
  });
});
