/**
 * A timer that can no longer do anything (an action's timeout once it is answered, a health deadline once the
 * machine was judged healthy) leaves the engine's queue when it is cancelled, not when its time comes (issue 13:
 * a million action timeouts kept queued for 90 minutes were copied and promoted by the garbage collector).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { everyStepScenario } from './helpers/harness.js';

test('cancelled timers leave the queue at once, and the run is the same event for event', () => {
  const sim = new Simulation(compileScenario(everyStepScenario(), 'test'));
  const events: string[] = [];
  sim.engine.onEvents((es) => { for (const e of es) events.push(e.type); });
  let steps = 0;
  let queuedMax = 0;
  while (sim.step()) {
    steps++;
    const queued = sim.engine.state.timers.toArray();
    queuedMax = Math.max(queuedMax, queued.length);
    const done = queued.filter((t) => t.done);
    assert.equal(done.length, 0, `step ${steps}: ${done.length} cancelled or fired timers still queued (${done[0]?.kind})`);
  }
  assert.ok(queuedMax > 0, 'the run queued timers');
  assert.ok(events.includes('instance.upgrade.succeeded') && events.includes('instance.rollback.succeeded'), 'answers and verdicts came before their timers');
  // The same scenario run without looking: the same log.
  const again = new Simulation(compileScenario(everyStepScenario(), 'test'));
  const types: string[] = [];
  again.engine.onEvents((es) => { for (const e of es) types.push(e.type); });
  again.run();
  assert.deepEqual(types, events);
});
