/**
 * The simulated fleet's guest patches survive a restart of serve (issue 16): what a machine installed is
 * saved with the simulated fleet's snapshot, so a restarted server does not offer it again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import type { SimDriverSnapshot } from '../src/drivers/sim/sim-driver.js';
import { compileScenario } from '../src/sim/scenario.js';
import { baseScenario } from './helpers/harness.js';

test('R74, R75: patches installed on a simulated machine are not offered again after a snapshot and restore', async () => {
  const sc = compileScenario(baseScenario(), 'patches-restart.yaml');
  const now = sc.startMs + 30 * 86_400_000;
  const driverOf = () => new SimDriver(sc.state.fleet, sc.behaviour, () => now, sc.seed);
  const machine = [...sc.state.fleet.machines.values()].find((m) => m.kind === 'vm')!;
  const target = { machineId: machine.id, os: machine.os };
  const before = driverOf();
  const offered = (await before.patches.assessPatches(target)).availablePatches.map((p) => p.patchId).sort();
  assert.ok(offered.length > 0, 'the machine is offered patches');
  const r = await before.patches.installPatches(target, {
    key: 'k1', maximumDurationMs: 4 * 3_600_000, rebootSetting: 'IfRequired', classifications: ['Critical', 'Security', 'Other'], include: [], exclude: [],
  });
  const installed = r.patches.filter((p) => p.installationState === 'Installed').map((p) => p.patchId);
  assert.ok(installed.length > 0, 'something was installed');

  const snap = JSON.parse(JSON.stringify(before.snapshot())) as SimDriverSnapshot;
  const restored = driverOf();
  restored.restore(snap);
  const after = (await restored.patches.assessPatches(target)).availablePatches.map((p) => p.patchId);
  for (const id of installed) assert.ok(!after.includes(id), `${id} is not offered again`);
  assert.deepEqual(after.sort(), offered.filter((id) => !installed.includes(id)));

  // Without the snapshot a new simulated fleet offers everything again: what the restore keeps is real.
  const fresh = (await driverOf().patches.assessPatches(target)).availablePatches.map((p) => p.patchId).sort();
  assert.deepEqual(fresh, offered);
  // A snapshot from before patches were kept restores with nothing installed.
  const old = driverOf();
  const { patchesInstalled: _dropped, ...legacy } = snap;
  old.restore(legacy as SimDriverSnapshot);
  assert.deepEqual((await old.patches.assessPatches(target)).availablePatches.map((p) => p.patchId).sort(), offered);
});
