/**
 * The eligibility pass finds instances' machines with a cursor over the machines' own order (issue 15: 10M
 * machines planned in ≤ 15 s). It must answer exactly as a lookup would, in any order; in the machines' order
 * (or a sparse subset of it) it must not need lookups at all.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AutomaticTargets } from '../src/catalog/catalog.js';
import { MachineCursor } from '../src/engine/core/machine-cursor.js';
import { InOrderLookup } from '../src/util/in-order-lookup.js';
import { automaticallyEligible } from '../src/engine/rollouts/create.js';
import { addInstance, instanceRef, isEnrolled } from '../src/engine/state.js';
import type { Machine } from '../src/model/fleet.js';
import { compileScenario } from '../src/sim/scenario.js';
import { baseScenario } from './helpers/harness.js';

/** A real Map that counts the lookups made in it. */
class CountingMap<K, V> extends Map<K, V> {
  gets = 0;
  override get(key: K): V | undefined {
    this.gets++;
    return super.get(key);
  }
}

function machine(id: string): Machine {
  return { id, name: id, kind: 'vm', os: 'linux', resourceGroup: 'rg', placement: { region: 'east', subscription: 's' } } as Machine;
}

function fleetOf(n: number): CountingMap<string, Machine> {
  const machines = new CountingMap<string, Machine>();
  for (let i = 0; i < n; i++) machines.set(`m${i}`, machine(`m${i}`));
  return machines;
}

test('MachineCursor answers as Map.get for ids asked in any order, with repeats and unknown ids', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 200 }), fc.array(fc.integer({ min: 0, max: 220 }), { maxLength: 400 }), (n, asked) => {
    const machines = fleetOf(n);
    const cursor = new MachineCursor(machines);
    for (const i of asked) assert.equal(cursor.of(`m${i}`), machines.get(`m${i}`));
  }), { numRuns: 300 });
});

test('MachineCursor needs no lookup for ids in the machines\' order, gaps of up to 64 machines included', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 64 }), { maxLength: 300 }), (gaps) => {
    const machines = fleetOf(gaps.reduce((a, g) => a + g + 1, 0));
    const cursor = new MachineCursor(machines);
    let i = -1;
    for (const g of gaps) {
      i += g + 1;
      assert.equal(cursor.of(`m${i}`)?.id, `m${i}`);
    }
    assert.equal(machines.gets, 0);
  }), { numRuns: 300 });
});

test('MachineCursor looks up a machine beyond its look-ahead instead of walking the fleet', () => {
  const machines = fleetOf(10_000);
  const cursor = new MachineCursor(machines);
  assert.equal(cursor.of('m9999')?.id, 'm9999');
  assert.equal(machines.gets, 1);
  assert.equal(cursor.of('m65')?.id, 'm65'); // the cursor went 65 machines ahead, no further
  assert.equal(machines.gets, 1);
});

test('InOrderLookup stops reading ahead when the keys are asked in another order (a lookup each, not 65 steps and a lookup)', () => {
  class CountingValues extends CountingMap<string, Machine> {
    steps = 0;
    override values(): MapIterator<Machine> {
      const it = super.values();
      const self = this;
      return Object.assign(Object.create(it) as MapIterator<Machine>, { next() { self.steps++; return it.next(); } });
    }
  }
  const machines = new CountingValues();
  for (let i = 0; i < 100_000; i++) machines.set(`m${i}`, machine(`m${i}`));
  const lookup = new InOrderLookup(machines, (m) => m.id);
  // Backwards: every ask misses the look-ahead.
  for (let i = 99_999; i >= 0; i -= 7) assert.equal(lookup.of(`m${i}`)?.id, `m${i}`);
  assert.ok(machines.steps <= 33 * 65 + 1, `${machines.steps} iterator steps: it kept reading ahead`);
  // An instance's key works as well as a machine's id.
  const byMachine = new Map([['a', { machineId: 'a', v: 1 }], ['b', { machineId: 'b', v: 2 }]]);
  const instances = new InOrderLookup(byMachine, (x) => x.machineId);
  assert.deepEqual([instances.of('a')?.v, instances.of('b')?.v, instances.of('c')], [1, 2, undefined]);
});

/** The eligibility pass as it was: a lookup of each instance's machine. */
function eligibleByLookup(state: Parameters<typeof automaticallyEligible>[0], key: string, toVersion: string, now: number): Machine[] {
  const targets = new AutomaticTargets(state.catalog, now);
  const out: Machine[] = [];
  for (const inst of state.fleet.instances.get(key)?.values() ?? []) {
    const m = state.fleet.machines.get(inst.machineId)!;
    if (targets.of(inst, m.os, m.placement.region, isEnrolled(state, m)) === toVersion && !state.installing.has(instanceRef(key, inst.machineId))) out.push(m);
  }
  return out;
}

test('R1, R2: automaticallyEligible finds the same machines in the same order as lookups, whatever order the instances were added in', () => {
  const base = compileScenario(baseScenario({
    fleet: {
      scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'] }],
      vms: [{ region: 'west', subscription: 'sub1', count: 10, zones: ['1', '2'], extensions: ['agent'] }],
      arcMachines: [{ region: 'north', subscription: 'sub2', count: 5, extensions: ['agent'] }],
    },
  }), 'test');
  const { state } = base;
  // Not in the north: the Arc machines there are not eligible (R1).
  state.catalog.publish('Contoso', 'Agent', { version: '1.1.0.0', os: ['linux', 'windows'], regions: ['east', 'west'], publishedAtMs: 0, critical: false, digest: null });
  const key = state.fleet.instances.keys().next().value!;
  const instances = [...state.fleet.instances.get(key)!.values()];
  const now = Date.parse('2026-01-06T00:00:00Z');
  assert.equal(automaticallyEligible(state, key, '1.1.0.0', now).length, 40); // 30 in the east's scale set, 10 VMs in the west
  fc.assert(fc.property(fc.shuffledSubarray(instances), fc.subarray(instances), fc.boolean(), (order, busy, optOut) => {
    state.fleet.instances.delete(key);
    for (const inst of order) addInstance(state.fleet, { ...inst, enableAutomaticUpgrade: inst.enableAutomaticUpgrade && !(optOut && inst.machineId.endsWith('1')) });
    state.installing.clear();
    for (const inst of busy) state.installing.set(instanceRef(key, inst.machineId), 'install');
    const expected = eligibleByLookup(state, key, '1.1.0.0', now);
    assert.deepEqual(automaticallyEligible(state, key, '1.1.0.0', now).map((m) => m.id), expected.map((m) => m.id));
  }), { numRuns: 200 });
});
