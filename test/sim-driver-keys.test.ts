/**
 * The simulated agents' idempotency keys (sim-driver.ts): a key in flight or among the 65,536 most
 * recently answered is never done twice; an answered one is answered again with its outcome; an older
 * one is done again, as a real agent with a bounded history would. Snapshots keep both.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { ManualClock } from '../src/engine/clock.js';
import type { DriverAction, Observation } from '../src/engine/driver.js';
import { compileScenario } from '../src/sim/scenario.js';

function world() {
  const sc = compileScenario({
    name: 'sim-driver-keys',
    start: '2026-01-05T00:00:00Z',
    seed: 3,
    horizon: 'P1W',
    regions: [{ name: 'east', pair: null, zones: [] }],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0', enableAutomaticUpgrade: false } },
    fleet: { vms: [{ name: 'vm', region: 'east', subscription: 'sub1', count: 1, extensions: ['agent'] }] },
    failures: { versions: { '1.1.0.0': { installFailure: 0.5 } } },
  }, 'sim-driver-keys');
  const clock = new ManualClock(sc.startMs);
  const machineId = [...sc.state.fleet.machines.keys()][0]!;
  const driver = new SimDriver(sc.state.fleet, sc.behaviour, () => clock.now(), sc.seed);
  const action = (key: string): DriverAction => ({
    kind: 'upgrade', key, machineId, artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, artifactKey: 'extension:contoso.agent',
    fromVersion: '1.0.0.0', toVersion: '1.1.0.0', settings: {},
  });
  /** Everything due within a day, answers only. */
  const answers = (d: SimDriver = driver): Array<Extract<Observation, { kind: 'actionResult' }>> => {
    clock.advance(86_400_000);
    const out: Array<Extract<Observation, { kind: 'actionResult' }>> = [];
    d.deliverDue(clock.now(), (o) => { if (o.kind === 'actionResult') out.push(o); });
    return out;
  };
  return { sc, clock, driver, action, answers };
}

test('a key in flight or answered is not done again; the answered one is answered again with its outcome', () => {
  const { driver, action, answers } = world();
  driver.send(action('k0'));
  driver.send(action('k0')); // in flight: nothing more
  assert.deepEqual([driver.stats.actions, driver.stats.duplicateActions], [1, 1]);
  const [first, ...rest] = answers();
  assert.equal(rest.length, 0);
  driver.send(action('k0'));
  assert.deepEqual(answers(), [first]);
  assert.deepEqual([driver.stats.actions, driver.stats.duplicateActions], [1, 2]);
});

test('the agents remember exactly the 65,536 most recently answered keys, and a snapshot keeps them and the keys in flight', () => {
  const { sc, clock, driver, action, answers } = world();
  /** The answered key that leaves the window next. */
  const oldest = (d: SimDriver): string => { const snap = d.snapshot(); return snap.recent[snap.recentNext]![0]; };
  driver.send(action('k0'));
  answers();
  for (let i = 1; i < 65_536; i++) driver.send(action(`k${i}`));
  assert.equal(answers().length, 65_535);
  assert.equal(oldest(driver), 'k0');
  driver.send(action('k0')); // the oldest of 65,536 answered keys: still known, and answered again (it becomes the newest)
  assert.equal(answers().length, 1);
  assert.equal(driver.stats.actions, 65_536);
  const gone = oldest(driver);
  assert.notEqual(gone, 'k0');
  driver.send(action('new'));
  answers(); // `gone` leaves the window
  driver.send(action(gone));
  assert.equal(driver.stats.actions, 65_538, 'a key older than the window is done again');
  driver.send(action('k0'));
  assert.equal(driver.stats.actions, 65_538);

  const restored = new SimDriver(sc.state.fleet, sc.behaviour, () => clock.now(), sc.seed);
  restored.restore(JSON.parse(JSON.stringify(driver.snapshot())));
  assert.deepEqual(restored.snapshot(), driver.snapshot());
  const before = { ...restored.stats };
  const next = oldest(restored);
  restored.send(action(gone)); // in flight in the snapshot
  restored.send(action('new')); // answered in the snapshot
  restored.send(action(next)); // the oldest answer in the window
  assert.equal(restored.stats.actions, before.actions);
  assert.equal(restored.stats.duplicateActions, before.duplicateActions + 3);
  assert.deepEqual(answers(restored).map((o) => o.key).sort(), [gone, 'new', next, 'k0'].sort()); // k0's second answer was queued
});
