/**
 * An OS image's look asks every set member for its instance in the fleet's order (os-images.ts): the
 * instances are read along their map. It must answer exactly as `getInstance`, in any order, for images
 * with no instances yet, and while instances are added (a set's new members get theirs during the look).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ExtensionInstance } from '../src/model/artifact.js';
import { InstanceLookups } from '../src/engine/os-images/instance-lookups.js';
import { addInstance, emptyFleet, getInstance } from '../src/engine/state.js';

const KEYS = ['osimage:a:b:c', 'osimage:a:b:d'];

function inst(key: string, machineId: string): ExtensionInstance {
  return { machineId, artifactKey: key, installedVersion: '1.0.0' } as ExtensionInstance;
}

test('InstanceLookups answers as getInstance in any order, with unknown machines, unknown images and instances added meanwhile', () => {
  const ask = fc.record({ key: fc.integer({ min: 0, max: 2 }), machine: fc.integer({ min: 0, max: 120 }), add: fc.boolean() });
  fc.assert(fc.property(fc.integer({ min: 0, max: 100 }), fc.array(ask, { maxLength: 300 }), (n, asks) => {
    const fleet = emptyFleet();
    for (let i = 0; i < n; i++) addInstance(fleet, inst(KEYS[i % 2]!, `m${i}`));
    const lookups = new InstanceLookups({ fleet });
    for (const a of asks) {
      const key = a.key < 2 ? KEYS[a.key]! : 'osimage:none:yet:0';
      const id = `m${a.machine}`;
      if (a.add && !getInstance(fleet, key, id)) addInstance(fleet, inst(key, id));
      assert.equal(lookups.of(key, id), getInstance(fleet, key, id), `${key} ${id}`);
    }
  }));
});

test('InstanceLookups reads a map in its own order without lookups: a million-entry look is a sequential read', () => {
  const fleet = emptyFleet();
  for (let i = 0; i < 5_000; i++) addInstance(fleet, inst(KEYS[0]!, `m${i}`));
  const byMachine = fleet.instances.get(KEYS[0]!)!;
  let gets = 0;
  const get = byMachine.get.bind(byMachine);
  byMachine.get = (k: string) => (gets++, get(k));
  const lookups = new InstanceLookups({ fleet });
  for (let i = 0; i < 5_000; i += 1 + (i % 3)) assert.equal(lookups.of(KEYS[0]!, `m${i}`)?.machineId, `m${i}`);
  assert.equal(gets, 0);
});

test('InstanceLookups asked once per machine answers as getInstance, whatever is added after each ask', () => {
  const ask = fc.record({ key: fc.integer({ min: 0, max: 1 }), add: fc.boolean() });
  fc.assert(fc.property(fc.integer({ min: 0, max: 60 }), fc.array(ask, { maxLength: 200 }), (n, asks) => {
    const fleet = emptyFleet();
    for (let i = 0; i < n; i++) addInstance(fleet, inst(KEYS[0]!, `m${i}`));
    const lookups = new InstanceLookups({ fleet }, true);
    asks.forEach((a, i) => {
      const id = `m${i}`; // a machine asked once per image
      assert.equal(lookups.of(KEYS[a.key]!, id), getInstance(fleet, KEYS[a.key]!, id), `${KEYS[a.key]} ${id}`);
      if (a.add && !getInstance(fleet, KEYS[a.key]!, id)) addInstance(fleet, inst(KEYS[a.key]!, id));
    });
  }));
});

test('InstanceLookups asked once per machine makes the first instances of an image without looking each machine up', () => {
  const fleet = emptyFleet();
  const byMachine = new Map<string, ExtensionInstance>();
  fleet.instances.set(KEYS[0]!, byMachine);
  let gets = 0;
  const get = byMachine.get.bind(byMachine);
  byMachine.get = (k: string) => (gets++, get(k));
  const lookups = new InstanceLookups({ fleet }, true);
  for (let i = 0; i < 1_000; i++) {
    assert.equal(lookups.of(KEYS[0]!, `m${i}`), undefined);
    addInstance(fleet, inst(KEYS[0]!, `m${i}`));
  }
  assert.equal(gets, 0);
  assert.equal(byMachine.size, 1_000);
});
