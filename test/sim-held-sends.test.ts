/**
 * The simulated fleet's side of group commit across sends (drivers/sim/held-sends.ts): actions are
 * decided when committed (`prepare`) and held until sent; nothing of a held action is delivered before
 * the fleet has asked for the release, and it asks exactly when something of it would be seen. A fleet
 * that holds delivers what one that does not hold delivers, in the same order at the same instants.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { ManualClock } from '../src/engine/clock.js';
import type { DriverAction, Observation } from '../src/engine/driver.js';
import { compileScenario } from '../src/sim/scenario.js';

function world(unhealthy = 0.5) {
  const sc = compileScenario({
    name: 'held-sends',
    start: '2026-01-05T00:00:00Z',
    seed: 9,
    horizon: 'P1W',
    regions: [{ name: 'east', pair: null, zones: [] }],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0', enableAutomaticUpgrade: false } },
    fleet: { vms: [{ name: 'vm', region: 'east', subscription: 'sub1', count: 6, extensions: ['agent'] }] },
    failures: { versions: { '1.1.0.0': { installFailure: 0.2, unhealthyAfterUpgrade: unhealthy } } },
  }, 'held-sends');
  const clock = new ManualClock(sc.startMs);
  const machines = [...sc.state.fleet.machines.keys()];
  const driver = () => new SimDriver(sc.state.fleet, sc.behaviour, () => clock.now(), sc.seed);
  const action = (key: string, machine: number, kind: 'upgrade' | 'rollback' = 'upgrade'): DriverAction => ({
    kind, key, machineId: machines[machine]!, artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, artifactKey: 'extension:contoso.agent',
    fromVersion: '1.0.0.0', toVersion: '1.1.0.0', settings: {},
  });
  return { clock, machines, driver, action };
}

/** One step of a script: commit actions, look at machines again, or let time pass (delivering what is due). */
type Step = { commit: Array<[number, 'upgrade' | 'rollback']> } | { observe: number } | { wait: number };

// It asks for the release just before the first thing of a held action would be seen, and never delivers one held.
test('a holding fleet delivers what a fleet that sends at once delivers, in the same order and at the same instants', () => {
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ commit: fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom('upgrade' as const, 'rollback' as const)), { minLength: 1, maxLength: 3 }) }),
    fc.record({ observe: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ wait: fc.integer({ min: 0, max: 400_000 }) }),
  );
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (script) => {
    const w = world();
    const direct = w.driver();
    const holding = w.driver();
    /** Actions the holding fleet was told of and not sent yet: the open group of a store. */
    let group: DriverAction[] = [];
    let releases = 0;
    holding.holdUntilSent(() => {
      releases++;
      const sent = group;
      group = [];
      for (const a of sent) holding.send(a);
    });
    const seenDirect: Array<[number, Observation]> = [];
    const seenHolding: Array<[number, Observation]> = [];
    const heldKeys = () => new Set(group.map((a) => a.key));
    const heldMachines = () => new Set(group.map((a) => a.machineId));
    let n = 0;
    for (const s of script) {
      if ('commit' in s) {
        const actions = s.commit.map(([m, kind]) => w.action(`k${n++}`, m, kind));
        for (const a of actions) direct.send(a); // committed and sent at once
        holding.prepare(actions); // committed in an open group
        group.push(...actions);
      } else if ('observe' in s) {
        direct.observe([w.machines[s.observe]!]);
        holding.observe([w.machines[s.observe]!]);
      } else {
        w.clock.advance(s.wait);
        direct.deliverDue(w.clock.now(), (o) => seenDirect.push([w.clock.now(), o]));
        holding.deliverDue(w.clock.now(), (o) => {
          // Nothing of a held action: not its answer, not a report of a machine it touched.
          if (o.kind === 'actionResult') assert.ok(!heldKeys().has(o.key), `answer ${o.key} delivered while held`);
          if (o.kind === 'health') assert.ok(!heldMachines().has(o.machineId), `report of ${o.machineId} delivered while an action to it is held`);
          seenHolding.push([w.clock.now(), o]);
        });
      }
    }
    w.clock.advance(86_400_000);
    direct.deliverDue(w.clock.now(), (o) => seenDirect.push([w.clock.now(), o]));
    holding.deliverDue(w.clock.now(), (o) => seenHolding.push([w.clock.now(), o]));
    assert.deepEqual(seenHolding, seenDirect);
    // A release only when something was due: never more often than there were deliveries to hold back.
    assert.ok(releases <= seenDirect.length, `${releases} releases for ${seenDirect.length} deliveries`);
  }), { numRuns: 200, seed: 20261206 });
});

test('a report of a machine an action touched waits for the release, even when it was asked for before the action\'s answer is due', () => {
  const w = world(1); // every upgrade leaves the machine unhealthy
  const d = w.driver();
  const order: string[] = [];
  const held = [w.action('k1', 0)];
  d.holdUntilSent(() => {
    order.push('release');
    for (const a of held.splice(0)) d.send(a);
  });
  d.prepare(held);
  d.observe([w.machines[1]!, w.machines[0]!]); // due now, long before the upgrade's answer
  d.deliverDue(w.clock.now(), (o) => order.push(`${o.kind} ${o.kind === 'actionResult' ? o.key : o.machineId === w.machines[0] ? 'touched' : 'other'}`));
  assert.deepEqual(order, ['health other', 'release', 'health touched']);
});

test('actions discarded before they were sent (their group rolled back) never happen: no answer, no broken machine, and their keys are decided anew when sent', () => {
  const w = world(1);
  const d = w.driver();
  let releases = 0;
  d.holdUntilSent(() => { releases++; });
  d.prepare([w.action('k1', 0), w.action('k2', 1)]);
  d.discardPrepared();
  const seen: Observation[] = [];
  d.observe([w.machines[0]!]);
  w.clock.advance(3_600_000);
  d.deliverDue(w.clock.now(), (o) => seen.push(o));
  assert.equal(releases, 0, 'nothing held is left to release');
  assert.deepEqual(seen.filter((o) => o.kind === 'actionResult'), [], 'no answer of a discarded action');
  assert.deepEqual(seen.map((o) => o.kind === 'health' && o.signals.platform), [true], 'the machine was never broken');
  d.send(w.action('k1', 0)); // the same key, committed again after the resync: done, not taken for a duplicate
  w.clock.advance(3_600_000);
  const later: Observation[] = [];
  d.deliverDue(w.clock.now(), (o) => later.push(o));
  assert.deepEqual(later.filter((o) => o.kind === 'actionResult').map((o) => o.kind === 'actionResult' && o.key), ['k1']);
  assert.equal(d.stats.duplicateActions, 0);
});
