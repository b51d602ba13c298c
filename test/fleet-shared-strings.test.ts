/**
 * The generated fleet keeps one copy of the strings its machines share (issue 13): built per machine, the
 * artifact key, the resource group and the scale-set instance id were a million equal strings each, about
 * 80 MB of the heap that every full collection of bench:sim walks. A heap snapshot counts the copies.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeapSnapshot } from 'node:v8';
import { compileScenario } from '../src/sim/scenario.js';
import type { Scenario } from '../src/sim/scenario.js';

function fleetScenario(): Scenario {
  return compileScenario({
    name: 'shared-strings',
    start: '2026-01-05T00:00:00Z',
    seed: 7,
    horizon: 'P1W',
    catalog: [{ publisher: 'Contoso.Monitoring', type: 'FleetAgent', supportsAutomaticUpgrade: true, versions: [{ version: '1.4.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso.Monitoring', type: 'FleetAgent', typeHandlerVersion: '1.4', enableAutomaticUpgrade: true } },
    fleet: {
      generate: {
        regions: { count: 4, zones: 3 }, subscriptions: 3, extensions: ['agent'],
        scaleSets: { count: 4, capacity: { min: 50, max: 50 } }, availabilitySets: { count: 5, vms: { min: 4, max: 4 } },
        arcMachines: 20, totalMachines: 400,
      },
    },
  }, 'test');
}

/** How many string objects in the heap hold exactly each of `texts`. */
async function stringCopies(texts: readonly string[]): Promise<Map<string, number>> {
  const chunks: string[] = [];
  for await (const c of getHeapSnapshot()) chunks.push(String(c));
  const snap = JSON.parse(chunks.join('')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const types = snap.snapshot.meta.node_types[0];
  const wanted = new Set(texts);
  const counts = new Map(texts.map((t) => [t, 0]));
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + typeAt]!];
    if (type !== 'string' && type !== 'concatenated string' && type !== 'sliced string') continue;
    const name = snap.strings[snap.nodes[i + nameAt]!]!;
    if (wanted.has(name)) counts.set(name, counts.get(name)! + 1);
  }
  return counts;
}

test('a generated fleet shares one artifact key, resource group and instance id string among its machines', async () => {
  const scenario = fleetScenario();
  const fleet = scenario.state.fleet;
  assert.equal(fleet.machines.size, 400);
  const instances = [...fleet.instances.get('extension:contoso.monitoring.fleetagent')!.values()];
  assert.equal(instances.length, 400);
  const rg = [...fleet.machines.values()].find((m) => m.placement.setKind === 'none')!.resourceGroup;
  const copies = await stringCopies(['extension:contoso.monitoring.fleetagent', rg, '17']);
  // A few copies live elsewhere (the catalog, the compiled input, the number-string cache); not one per machine.
  for (const [text, n] of copies) assert.ok(n >= 1 && n <= 6, `${n} copies of "${text}" for 400 machines`);
  assert.equal(instances[0]!.artifactKey, 'extension:contoso.monitoring.fleetagent'); // (keeps the fleet alive until the snapshot)
});
