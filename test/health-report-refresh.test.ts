/**
 * A health report refreshes the machine's place in `unhealthy` (R20 counts it) without looking at its instances
 * when nothing can change (issue 13: a lookup per artifact in maps of a million machines, for every report).
 * The shortcut (`refreshReportedHealth`) must leave `unhealthy` and the per-set counts as the full refresh does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ExtensionInstance, ProvisioningStatus } from '../src/model/artifact.js';
import type { HealthSignals } from '../src/model/health.js';
import type { FleetState } from '../src/engine/state.js';
import { addInstance, addMachine, emptyFleet, refreshHealthOf, refreshMachineHealth, refreshReportedHealth } from '../src/engine/state.js';

const MACHINES = ['m0', 'm1', 'm2', 'm3'];
const ARTIFACTS = ['extension:a.one', 'extension:b.two'];

function fleet(): FleetState {
  const f = emptyFleet();
  MACHINES.forEach((id, i) => {
    const setId = i < 2 ? 'ss1' : null;
    addMachine(f, { id, name: id, kind: setId ? 'scaleSetInstance' : 'vm', os: 'linux', resourceGroup: 'rg', placement: {
      region: 'east', zone: null, setId, setKind: setId ? 'scaleSet' : 'none', updateDomain: null, faultDomain: null, subscription: 's',
    } });
    for (const artifactKey of ARTIFACTS) {
      const inst: ExtensionInstance = {
        machineId: id, artifactKey, name: artifactKey, publisher: 'p', type: 't', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: true, settings: {},
        desiredVersion: '1.0', installedVersion: '1.0', lastKnownGoodVersion: '1.0', enableAutomaticUpgrade: true, status: 'Succeeded', blockedReason: null,
      };
      addInstance(f, inst);
    }
  });
  return f;
}

type Step = { machine: number; artifact: number; status: ProvisioningStatus } | { machine: number; healthy: boolean; application: boolean };

/** What the engine does: an instance's status changes then its machine is refreshed; a report is stored then refreshed. */
function apply(f: FleetState, s: Step, report: typeof refreshHealthOf): void {
  const id = MACHINES[s.machine]!;
  if ('status' in s) {
    f.instances.get(ARTIFACTS[s.artifact]!)!.get(id)!.status = s.status;
    refreshMachineHealth(f, id);
    return;
  }
  const signals: HealthSignals = s.application ? { platform: true, application: s.healthy } : { platform: s.healthy };
  if (s.healthy) f.health.delete(id);
  else f.health.set(id, signals);
  report(f, f.machines.get(id)!, s.healthy ? undefined : signals);
}

test('a health report refreshed by the shortcut leaves unhealthy and the per-set counts as the full refresh does', () => {
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ machine: fc.nat(MACHINES.length - 1), artifact: fc.nat(ARTIFACTS.length - 1), status: fc.constantFrom<ProvisioningStatus>('Succeeded', 'Failed', 'Transitioning') }),
    fc.record({ machine: fc.nat(MACHINES.length - 1), healthy: fc.boolean(), application: fc.boolean() }),
  );
  fc.assert(fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
    const full = fleet();
    const short = fleet();
    for (const s of steps) {
      apply(full, s, refreshHealthOf);
      apply(short, s, refreshReportedHealth);
      assert.deepEqual([...short.unhealthy].sort(), [...full.unhealthy].sort());
      assert.deepEqual([...short.setUnhealthy], [...full.setUnhealthy]);
    }
  }), { numRuns: 500 });
});

test('a healthy report of a machine not counted unhealthy does not look at its instances', () => {
  const f = fleet();
  let looks = 0;
  const values = f.instances.values.bind(f.instances);
  f.instances.values = () => {
    looks++;
    return values();
  };
  refreshReportedHealth(f, f.machines.get('m1')!, undefined);
  assert.equal(looks, 0);
  assert.equal(f.unhealthy.size, 0);
  // A machine counted unhealthy is looked at: its report may clear it.
  f.unhealthy.add('m1');
  refreshReportedHealth(f, f.machines.get('m1')!, undefined);
  assert.equal(looks, 1);
  assert.equal(f.unhealthy.has('m1'), false);
});
