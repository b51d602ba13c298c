/**
 * R11–R14: `groupMachines` (planner/units.ts) finds a machine's update-domain list once per placement object (a Map keyed
 * by the object) and writes the ids in a counting sort. Machines of a fleet share equal placements; whether they do, and
 * in which order they come, must not change a unit's machines or their order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Machine, Placement, ScaleSet } from '../src/model/fleet.js';
import type { RegionGroups } from '../src/planner/units.js';
import { groupMachines } from '../src/planner/units.js';

const SETS = ['ss0', 'ss1', 'ss2', 'as0', 'as1'];

const placementArb: fc.Arbitrary<Placement> = fc
  .record({
    region: fc.constantFrom('r0', 'r1', 'r2'),
    zone: fc.constantFrom(null, '1', '2', '3'),
    set: fc.constantFrom(null, ...SETS),
    updateDomain: fc.constantFrom(null, 0, 1, 2, 3, 4),
    subscription: fc.constantFrom('sub0', 'sub1'),
  })
  .map(({ region, zone, set, updateDomain, subscription }) => ({
    region,
    zone,
    setId: set,
    setKind: set === null ? 'none' : set.startsWith('ss') ? 'scaleSet' : 'availabilitySet',
    updateDomain,
    faultDomain: null,
    subscription,
  }));

// ss2 upgrades across zones: its machines form the cross-zone wave.
const scaleSets = new Map<string, ScaleSet>(
  ['ss0', 'ss1', 'ss2'].map((id) => [id, { id, upgradePolicy: { rollingUpgradePolicy: { enableCrossZoneUpgrade: id === 'ss2' } } } as unknown as ScaleSet]),
);

/** The grouping as plain data, in its maps' order: units' first machines, sizes, and each update domain's ids. */
function shape(groups: RegionGroups): unknown {
  return [...groups].map(([region, waves]) => [region, [...waves].map(([wave, units]) => [wave, [...units].map(([unit, g]) => ({
    unit,
    first: g.first.id,
    size: g.size,
    hasVm: g.hasVm,
    uds: g.uds.map((u) => ({ ud: u.ud, hasVm: u.hasVm, ids: g.ordered.slice(u.start, u.start + u.count) })),
  }))])]);
}

test('R11 R12 R13 R14: machines sharing placement objects, in any order, group as machines with a placement each', () => {
  fc.assert(
    fc.property(
      fc.array(placementArb, { minLength: 1, maxLength: 40 }),
      fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 300 }),
      (pool, picks) => {
        const shared: Machine[] = picks.map(([k, arc], i) => ({
          id: `m${i}`, name: `m${i}`, kind: arc ? 'arc' : 'vm', os: 'linux', resourceGroup: 'rg', placement: pool[k % pool.length]!,
        }));
        const own = shared.map((m) => ({ ...m, placement: { ...m.placement } }));
        assert.deepEqual(shape(groupMachines(shared, scaleSets)), shape(groupMachines(own, scaleSets)));
      },
    ),
    { numRuns: 300 },
  );
});

test('R11 R14: a set cycling through its zones and update domains keeps each update domain\'s machines in input order', () => {
  // 24 shared placements (one region, 3 zones × 8 update domains), met in turn, as a set's instances are listed.
  const pool: Placement[] = [];
  for (let ud = 0; ud < 8; ud++) {
    for (const zone of ['1', '2', '3']) pool.push({ region: 'r0', zone, setId: 'ss0', setKind: 'scaleSet', updateDomain: ud, faultDomain: null, subscription: 's' });
  }
  const machines: Machine[] = Array.from({ length: 240 }, (_, i) => ({
    id: `m${i}`, name: `m${i}`, kind: 'scaleSetInstance', os: 'linux', resourceGroup: 'rg', placement: pool[i % pool.length]!,
  }));
  const waves = groupMachines(machines, scaleSets).get('r0')!;
  assert.deepEqual([...waves.keys()], ['1', '2', '3']);
  const g = waves.get('2')!.get('ss0')!;
  assert.equal(g.size, 80);
  assert.deepEqual(g.uds.map((u) => u.ud), [0, 1, 2, 3, 4, 5, 6, 7]);
  const ud3 = g.uds[3]!;
  assert.deepEqual(g.ordered.slice(ud3.start, ud3.start + ud3.count), Array.from({ length: 10 }, (_, k) => `m${k * 24 + 3 * 3 + 1}`));
});
