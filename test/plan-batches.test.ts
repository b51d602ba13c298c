/**
 * A plan's batches are ranges of their unit's ids (planner/batch.ts, issue 13). Their JSON (what the stores keep, the
 * API and digests read) is a plain batch's, key for key; a plan read back from JSON (plain batches) reads the same.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Machine, Region } from '../src/model/fleet.js';
import { batchSize, rangeBatch } from '../src/planner/batch.js';
import { planRollout } from '../src/planner/plan.js';
import { profileFor } from '../src/planner/profile.js';
import type { Plan, PlanBatch } from '../src/planner/types.js';
import { explainBatch } from '../src/planner/units.js';
import { parsePlan, stringifyPlan } from '../src/store/sqlite/rows.js';

/** Two paired regions of standalone VMs and availability-set machines over 3 update domains. */
function plan(): Plan {
  const regions: Region[] = [{ name: 'r0', pair: 'r1', zones: [] }, { name: 'r1', pair: 'r0', zones: [] }];
  const machines: Machine[] = regions.flatMap((r) => Array.from({ length: 60 }, (_, j) => ({
    id: `${r.name}-m${j}`, name: `${r.name}-m${j}`, kind: 'vm' as const, os: 'linux' as const, resourceGroup: 'rg',
    placement: j % 2 === 0
      ? { region: r.name, zone: null, setId: null, setKind: 'none' as const, updateDomain: null, faultDomain: null, subscription: `sub${j % 3}` }
      : { region: r.name, zone: null, setId: `${r.name}-as`, setKind: 'availabilitySet' as const, updateDomain: j % 3, faultDomain: null, subscription: 'sub0' },
  })));
  return planRollout({
    rolloutId: 'ro-x', artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, toVersion: '1.1.0.0', profile: profileFor('standard'),
    regions, machines, scaleSets: new Map(), availabilitySets: new Map(), setSizes: new Map([['r0-as', 30], ['r1-as', 30]]),
  });
}

const batchesOf = (p: Plan): PlanBatch[] => p.phases.flatMap((ph) => ph.regions.flatMap((r) => r.waves.flatMap((w) => w.units.flatMap((u) => u.batches))));

test('R12 R13: a plan\'s stored JSON lists each batch as a plain batch (id, index, updateDomain, machineIds), and reads back the same', () => {
  const fresh = plan();
  const text = stringifyPlan(fresh);
  const stored = parsePlan<Plan>(text);
  const before = batchesOf(fresh);
  const after = batchesOf(stored);
  assert.ok(before.length > 10);
  assert.equal(after.length, before.length);
  for (const [i, b] of after.entries()) {
    assert.deepEqual(Object.keys(b), ['id', 'index', 'updateDomain', 'machineIds']);
    assert.deepEqual(b.machineIds, before[i]!.machineIds);
    assert.equal(batchSize(b), b.machineIds.length);
    assert.equal(batchSize(before[i]!), b.machineIds.length);
  }
  // Reading the ids (the engine does, as a batch starts) changes neither the JSON nor the explanations.
  const explained = fresh.phases[0]!.regions[0]!.waves[0]!.units.map((u) => u.batches.map((b) => explainBatch(u, b)));
  for (const b of before) assert.equal(b.machineIds, b.machineIds, 'the same array on every read');
  assert.equal(stringifyPlan(fresh), text);
  assert.deepEqual(stored.phases[0]!.regions[0]!.waves[0]!.units.map((u) => u.batches.map((b) => explainBatch(u, b))), explained);
  // Every machine in exactly one batch.
  assert.equal(new Set(after.flatMap((b) => b.machineIds)).size, 120);
});

test('R70: a range batch\'s window comes last in its JSON, as on a plain batch', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const b = rangeBatch('u/b0', 0, 2, ids, 1, 3);
  assert.equal(batchSize(b), 3);
  b.window = { startMs: 1, opensMs: 0, closesMs: 5 };
  assert.equal(JSON.stringify(b), JSON.stringify({ id: 'u/b0', index: 0, updateDomain: 2, machineIds: ['b', 'c', 'd'], window: { startMs: 1, opensMs: 0, closesMs: 5 } }));
  assert.deepEqual(b.machineIds, ['b', 'c', 'd']);
  assert.equal(JSON.stringify(b), JSON.stringify({ id: 'u/b0', index: 0, updateDomain: 2, machineIds: ['b', 'c', 'd'], window: { startMs: 1, opensMs: 0, closesMs: 5 } }));
});
