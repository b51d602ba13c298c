/**
 * The fleet's dense machine index (model/machine-index.ts) and its use as a hint between the engine and the
 * simulated fleet: an index is given once per id, kept for it while the machine is out and back, never given
 * to another id; a hint that is not the machine's is never used.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MACHINE_HINT, MachineIndex } from '../src/model/machine-index.js';
import type { Machine } from '../src/model/fleet.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { ManualClock } from '../src/engine/clock.js';
import type { DriverAction, Observation } from '../src/engine/driver.js';
import { compileScenario } from '../src/sim/scenario.js';

const machine = (id: string, n = 0): Machine => ({ id, name: `${id}#${n}`, kind: 'vm', os: 'linux', resourceGroup: 'rg', placement: { region: 'east' } } as Machine);

test('MachineIndex: dense indices in first-seen order, kept per id across removal, in step with a map of the fleet', () => {
  const op = fc.record({ add: fc.boolean(), id: fc.integer({ min: 0, max: 30 }).map((n) => `m${n}`) });
  fc.assert(fc.property(fc.array(op, { maxLength: 200 }), fc.array(fc.integer({ min: -2, max: 40 }), { maxLength: 20 }), (ops, probes) => {
    const index = new MachineIndex();
    const fleet = new Map<string, Machine>();
    const firstSeen: string[] = [];
    ops.forEach(({ add, id }, n) => {
      if (add) {
        const m = machine(id, n);
        fleet.set(id, m);
        if (!firstSeen.includes(id)) firstSeen.push(id);
        assert.equal(index.add(m), firstSeen.indexOf(id));
      } else {
        fleet.delete(id);
        index.remove(id);
      }
    });
    assert.equal(index.size, firstSeen.length);
    firstSeen.forEach((id, i) => {
      assert.equal(index.idAt(i), id);
      assert.equal(index.at(i), fleet.get(id)); // the same object, or undefined when out of the fleet
      assert.equal(index.find(i, id), fleet.get(id));
      assert.equal(index.of(id), fleet.has(id) ? i : undefined);
    });
    // A hint that is not the id's index finds nothing, whatever the number.
    for (const i of probes) for (const id of firstSeen) if (i !== firstSeen.indexOf(id)) assert.equal(index.find(i, id), undefined);
    assert.equal(index.of('never-seen'), undefined);
  }), { seed: 20261207, numRuns: 300 });
});

function world(vms: number) {
  const sc = compileScenario({
    name: 'machine-index',
    start: '2026-01-05T00:00:00Z',
    seed: 5,
    horizon: 'P1W',
    regions: [{ name: 'east', pair: null, zones: [] }],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', installed: '1.0.0.0', enableAutomaticUpgrade: false } },
    fleet: { vms: [{ name: 'vm', region: 'east', subscription: 'sub1', count: vms, extensions: ['agent'] }] },
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.5 } } },
  }, 'machine-index');
  return sc;
}

const upgrade = (machineId: string, key: string, hint?: number): DriverAction => {
  const a: DriverAction = {
    kind: 'upgrade', key, machineId, artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, artifactKey: 'extension:contoso.agent',
    fromVersion: '1.0.0.0', toVersion: '1.1.0.0', settings: {},
  };
  if (hint !== undefined) a[MACHINE_HINT] = hint;
  return a;
};

/** The health reports of one upgrade per machine, each sent with the hint `hintOf` gives (none when undefined). */
function reports(hintOf: (id: string, i: number) => number | undefined): Array<Extract<Observation, { kind: 'health' }>> {
  const sc = world(8);
  const clock = new ManualClock(sc.startMs);
  const driver = new SimDriver(sc.state.fleet, sc.behaviour, () => clock.now(), sc.seed);
  [...sc.state.fleet.machines.keys()].forEach((id, i) => driver.send(upgrade(id, `k${i}`, hintOf(id, i))));
  clock.advance(86_400_000);
  const out: Array<Extract<Observation, { kind: 'health' }>> = [];
  driver.deliverDue(clock.now(), (o) => { if (o.kind === 'health') out.push(o); });
  return out;
}

const plain = (o: Extract<Observation, { kind: 'health' }>) => ({ machineId: o.machineId, signals: o.signals });

test('the simulated fleet answers a hinted action with a hinted report, the same report as without the hint', () => {
  const sc = world(8);
  const right = reports((id) => sc.state.fleet.index.of(id));
  const none = reports(() => undefined);
  assert.equal(right.length, 8);
  assert.deepEqual(right.map(plain), none.map(plain));
  for (const o of right) assert.equal(o[MACHINE_HINT], sc.state.fleet.index.of(o.machineId));
  for (const o of none) assert.equal(o[MACHINE_HINT], undefined);
  assert.ok(right.some((o) => o.signals.platform === false), 'the failure model breaks some machines: the reports differ by machine');
});

test('a hint that is not the machine\'s (another fleet\'s numbering) is not used: the report names the action\'s machine', () => {
  const none = reports(() => undefined);
  const wrong = reports((_, i) => (i + 3) % 8); // another machine's index
  const outOfRange = reports(() => 1_000_000);
  assert.deepEqual(wrong.map(plain), none.map(plain));
  assert.deepEqual(outOfRange.map(plain), none.map(plain));
  for (const o of [...wrong, ...outOfRange]) assert.equal(o[MACHINE_HINT], undefined);
});

test('the hint never reaches JSON: stored action bodies and reports are as before', () => {
  const sc = world(1);
  const id = [...sc.state.fleet.machines.keys()][0]!;
  assert.equal(JSON.stringify(upgrade(id, 'k', 0)), JSON.stringify(upgrade(id, 'k')));
  assert.equal(structuredClone(upgrade(id, 'k', 0))[MACHINE_HINT], undefined);
});
