/**
 * A restart of `serve` does not change the simulated fleet (issue 12): the simulator's own state (its
 * random stream's position, deliveries in flight, which machines a bad version broke, background
 * episodes under way) is saved as a snapshot and restored, so a run interrupted and continued from its
 * database and that snapshot writes the same event log as an uninterrupted one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { SimDriverSnapshot } from '../src/drivers/sim/sim-driver.js';
import type { EngineEvent } from '../src/model/events.js';
import { loadScenarioFile } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-simrestart-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const DAY = 86_400_000;

function events(file: string): EngineEvent[] {
  const store = SqliteStore.open(file, { mode: 'existing' });
  try {
    return [...store.events()];
  } finally {
    store.close();
  }
}

function uninterrupted(file: string): EngineEvent[] {
  const path = join(dir, `whole-${file.replace(/\W/g, '')}.sqlite`);
  const scenario = loadScenarioFile(file);
  const store = SqliteStore.open(path, { mode: 'new' });
  store.importState(scenario.state);
  new Simulation(scenario, { store }).run();
  store.close();
  return events(path);
}

type Fleet = 'snapshot' | 'live' | 'reseeded';

/**
 * Runs to `cutMs` after the start, stops (store closed), and goes on from the database with the fleet
 * restored from its snapshot (what serve does now), kept in memory, or reseeded (what serve did before).
 */
function interrupted(file: string, cutMs: number, fleet: Fleet, atCut?: (sim: Simulation) => void): EngineEvent[] {
  const path = join(dir, `cut-${file.replace(/\W/g, '')}-${cutMs}-${fleet}.sqlite`);
  const scenario = loadScenarioFile(file);
  const first = SqliteStore.open(path, { mode: 'new' });
  first.importState(scenario.state);
  const sim = new Simulation(scenario, { store: first });
  while (sim.clock.now() < scenario.startMs + cutMs && sim.step());
  atCut?.(sim);
  // What serve saves: JSON, as it would be read back from the database.
  const saved = fleet === 'snapshot' ? sim.driver.snapshot() : new Simulation(loadScenarioFile(file)).driver.snapshot();
  first.close();
  const store = SqliteStore.open(path, { mode: 'existing' });
  sim.restart(store, fleet === 'live' ? undefined : JSON.parse(JSON.stringify(saved)) as SimDriverSnapshot);
  sim.run();
  store.close();
  return events(path);
}

const FAULTS = 'examples/background-faults.yaml';
const H = 3_600_000;
const whole = uninterrupted(FAULTS);

// The release goes out at 01:00, the background episode runs 01:10 to 04:10. With upgrades in flight: an
// upgrade sent and not answered yet (its answer is among the snapshot's deliveries). A machine waiting for
// its health verdict at the restart is another case: recovery asks it for a fresh report (Engine.recover),
// which a real restart must do and an uninterrupted run never does, so it may be judged sooner.
const inFlight = (sim: Simulation) => {
  const statuses = [...sim.engine.state.rollouts.values()].flatMap((r) => [...r.attempts.values()].map((a) => a.status));
  assert.ok(statuses.includes('upgrading'), `an upgrade is in flight at the cut (${statuses.join(', ')})`);
};
for (const [name, cut, atCut] of [
  ['before the release', 0.5 * H, undefined], ['with upgrades in flight', 62 * 60_000, inFlight],
  ['during the background episode', 2 * H, undefined], ['after it', 5 * H, undefined],
] as const) {
  test(`interrupted ${name} and continued from the database and the fleet's snapshot, the run writes the same event log as an uninterrupted one`, () => {
    assert.deepEqual(interrupted(FAULTS, cut, 'snapshot', atCut), whole);
  });
}

test('without the snapshot (the fleet reseeded as at the start) the same restart writes another log: the test can fail', () => {
  assert.notDeepEqual(interrupted(FAULTS, 2 * H, 'reseeded'), whole);
});

test('the demo interrupted at any of these instants and continued from its database and snapshot writes the uninterrupted log, event for event', () => {
  // Machines and instances load in the order they were added (schema v4), so plans made after a restart
  // list a set's instances as an uninterrupted run does (before, a restart listed them by id: 0, 105, 15, ...).
  const demo = uninterrupted('examples/demo.yaml');
  for (const cut of [2 * DAY, 5 * DAY + 3 * H, 9 * DAY + 3 * H]) {
    assert.deepEqual(interrupted('examples/demo.yaml', cut, 'snapshot'), demo, `cut at day ${cut / DAY}`);
  }
});
