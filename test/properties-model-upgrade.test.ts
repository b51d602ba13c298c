/**
 * R50 as a property over the ARM API: random scale sets (upgrade mode Automatic, Rolling or Manual, one to six
 * instances), then random steps: a change of the model's extension settings, a scale-out, a `manualupgrade` of some
 * instances. After each step every instance reports whether it runs the latest model, and its extension carries the
 * settings of the model it runs: under Automatic and Rolling each instance is on the newest model by itself, under
 * Manual exactly the instances upgraded by hand since the last change (and those created since) are.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { call, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2024-07-01';
const VMSS = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;
const AMA = { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent' };

let s: TestServer;
before(async () => {
  s = await startTestServer();
  assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
  assert.equal((await call(s.url, 'PUT', `/phasewise/publishers/${AMA.publisher}/extensionTypes/${AMA.type}`, { supportsAutomaticUpgrade: true })).status, 201);
  const v = await call(s.url, 'PUT', `/phasewise/publishers/${AMA.publisher}/extensionTypes/${AMA.type}/versions/1.30.0.0`, { os: ['linux', 'windows'] });
  assert.ok(v.status < 300, JSON.stringify(v.body));
});
after(async () => s?.stop());

const stepArb = fc.oneof(
  fc.record({ kind: fc.constant('settings' as const) }),
  fc.record({ kind: fc.constant('scale' as const), add: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ kind: fc.constant('manual' as const), pick: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }) }),
);
const caseArb = fc.record({
  mode: fc.constantFrom('Automatic', 'Rolling', 'Manual'),
  capacity: fc.integer({ min: 1, max: 6 }),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 5 }),
});

let n = 0;

function body(mode: string, capacity: number, generation: number) {
  return {
    location: 'westus', sku: { name: 'Standard_D2s_v5', capacity },
    properties: {
      upgradePolicy: { mode },
      virtualMachineProfile: {
        extensionProfile: { extensions: [{ name: 'ama', properties: { publisher: AMA.publisher, type: AMA.type, typeHandlerVersion: '1.30', settings: { generation } } }] },
      },
    },
  };
}

interface Instance { instanceId: string; properties: { latestModelApplied: boolean }; resources?: Array<{ properties?: { settings?: { generation?: number } } }> }

async function instances(name: string): Promise<Instance[]> {
  const r = await call(s.url, 'GET', `${VMSS}/${name}/virtualMachines?${AV}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.value as Instance[];
}

test('R50: a model change reaches every instance by itself under Automatic and Rolling, under Manual only those upgraded by hand; each says if it runs the latest', async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      const name = `r50-${++n}`;
      let generation = 0;
      let capacity = c.capacity;
      const put = async () => {
        const r = await call(s.url, 'PUT', `${VMSS}/${name}?${AV}`, body(c.mode, capacity, generation));
        assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
      };
      await put();
      // The generation of the model each instance runs (what the server should say it runs).
      const runs = new Map<string, number>((await instances(name)).map((i) => [i.instanceId, 0]));
      for (const step of c.steps) {
        if (step.kind === 'settings') {
          generation++;
          await put();
          if (c.mode !== 'Manual') for (const id of runs.keys()) runs.set(id, generation);
        } else if (step.kind === 'scale') {
          capacity += step.add;
          await put();
          // New instances are created on the current model, whatever the mode; under Automatic and Rolling a PUT of the
          // same model leaves the others where they are (on it already).
          for (const i of await instances(name)) if (!runs.has(i.instanceId)) runs.set(i.instanceId, generation);
        } else {
          const ids = [...runs.keys()].filter((_, k) => step.pick[k % step.pick.length]);
          if (ids.length === 0) continue;
          const r = await call(s.url, 'POST', `${VMSS}/${name}/manualupgrade?${AV}`, { instanceIds: ids });
          assert.equal(r.status, 202, JSON.stringify(r.body));
          for (const id of ids) runs.set(id, generation);
        }
        const seen = await instances(name);
        assert.deepEqual(seen.map((i) => i.instanceId).sort(), [...runs.keys()].sort());
        for (const i of seen) {
          const want = runs.get(i.instanceId)!;
          assert.equal(i.properties.latestModelApplied, want === generation, `${c.mode} ${name}/${i.instanceId}: latestModelApplied after ${step.kind} (runs generation ${want} of ${generation})`);
          assert.equal(i.resources?.[0]?.properties?.settings?.generation, want, `${c.mode} ${name}/${i.instanceId}: its extension carries the settings of the model it runs`);
        }
      }
      assert.equal((await call(s.url, 'DELETE', `${VMSS}/${name}?${AV}`)).status < 300, true);
    }),
    { numRuns: 25, seed: 20261210 },
  );
});
