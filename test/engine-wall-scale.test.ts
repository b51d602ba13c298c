/**
 * Real agents live in wall time (issue 11): under an accelerated clock, a machine's action timeout and
 * health wait are stretched by the clock's factor, so a 5-minute health wait is 5 real minutes, while
 * simulated machines keep engine time. Here some machines are "real" at factor 12.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { EngineEvent } from '../src/model/events.js';
import { baseScenario } from './helpers/harness.js';

const FACTOR = 12;
const WINDOW_MS = 5 * 60_000;
const scenario = () => compileScenario(baseScenario({ failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } } }), 'wall-scale');

function run(real: ReadonlySet<string> | 'all' | 'none'): readonly EngineEvent[] {
  const store = new MemoryStore();
  const isReal = (id: string) => real === 'all' || (real !== 'none' && real.has(id));
  runSimulation(scenario(), { store, ...(real === 'none' ? {} : { wallScale: (id: string) => (isReal(id) ? FACTOR : 1) }) });
  return store.events();
}

/** For each machine judged unhealthy: the time from the start of its upgrade to the verdict. */
function healthWaits(events: readonly EngineEvent[]): Map<string, number> {
  const started = new Map<string, number>();
  const waits = new Map<string, number>();
  for (const e of events) {
    if (e.type === 'instance.upgrade.started') started.set(e.machineId, Date.parse(e.time));
    if (e.type === 'instance.health.unhealthy' && !waits.has(e.machineId)) waits.set(e.machineId, Date.parse(e.time) - started.get(e.machineId)!);
  }
  return waits;
}

test('R21: a real machine waits its health window in wall time (the clock factor × the window); simulated machines in engine time', () => {
  const plain = healthWaits(run('none'));
  assert.ok(plain.size > 0, 'machines judged unhealthy');
  for (const [id, ms] of plain) assert.ok(ms >= WINDOW_MS && ms < FACTOR * WINDOW_MS, `${id} waited ${ms / 60_000} min without the scale`);
  const allReal = healthWaits(run('all'));
  assert.ok(allReal.size > 0);
  for (const [id, ms] of allReal) assert.ok(ms >= FACTOR * WINDOW_MS, `${id} waited ${ms / 60_000} min, at least ${FACTOR * 5} as a real machine`);
  // One real machine among simulated ones: only its wait stretches.
  const real = new Set([plain.keys().next().value as string]);
  const mixed = healthWaits(run(real));
  const kinds = { real: 0, simulated: 0 };
  for (const [id, ms] of mixed) {
    if (real.has(id)) {
      kinds.real++;
      assert.ok(ms >= FACTOR * WINDOW_MS, `${id} (real) waited ${ms / 60_000} min`);
    } else {
      kinds.simulated++;
      assert.ok(ms >= WINDOW_MS && ms < FACTOR * WINDOW_MS, `${id} (simulated) waited ${ms / 60_000} min`);
    }
  }
  assert.ok(kinds.real === 1 && kinds.simulated > 0, `both kinds judged: ${JSON.stringify(kinds)}`);
});
