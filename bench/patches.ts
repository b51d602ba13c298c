/**
 * bench:patches — the guest-patching work that grows with the fleet, in this process: the simulated
 * fleet's assessment and installation (catalogue of eight weeks, selection, durations), dynamic-scope
 * matching over every machine (what a schedule run does when its window opens), and the patch checker
 * over an event log. Each figure is the median of 5 runs.
 */
import { SimPatches } from '../src/drivers/sim/sim-patches.js';
import { PatchChecker } from '../src/audit/patches.js';
import type { EngineEvent } from '../src/model/events.js';
import type { Machine } from '../src/model/fleet.js';
import { inDynamicScope } from '../src/model/patch-scope.js';
import { maintenanceWindow, windowInstances } from '../src/schedule/window.js';
import { machineLine, median } from './machine.js';

const MACHINES = Number(process.env.BENCH_PATCH_MACHINES ?? 10_000);
const SCOPE_MACHINES = Number(process.env.BENCH_PATCH_SCOPE_MACHINES ?? 100_000);
const NOW = Date.parse('2026-03-02T00:00:00Z');

function timed(f: () => void): number {
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    f();
    runs.push(performance.now() - t0);
  }
  return median(runs);
}

const placement = (i: number) => ({ region: i % 2 ? 'westus' : 'eastus', zone: null, setId: null, setKind: 'none' as const, updateDomain: null, faultDomain: null, subscription: 'sub1' });
const machines: Machine[] = Array.from({ length: SCOPE_MACHINES }, (_, i) => ({
  id: `/subscriptions/sub1/resourcegroups/rg${i % 20}/providers/microsoft.compute/virtualmachines/vm${i}`, name: `vm${i}`, kind: 'vm' as const,
  os: i % 3 ? 'linux' as const : 'windows' as const, resourceGroup: `rg${i % 20}`, placement: placement(i),
}));
const tags = machines.map((_, i) => ({ env: i % 4 ? 'prod' : 'dev', team: `t${i % 7}` }));

console.log(`bench:patches · ${machineLine()}`);
let patches = 0;
const assess = timed(() => {
  const sim = new SimPatches(7, () => NOW);
  patches = 0;
  for (let i = 0; i < MACHINES; i++) patches += sim.available({ machineId: machines[i]!.id, os: machines[i]!.os }).length;
});
console.log(`assessment: ${MACHINES} machines in ${assess.toFixed(0)} ms (${(assess * 1000 / MACHINES).toFixed(1)} µs a machine, ${(patches / MACHINES).toFixed(1)} patches each)`);

const install = timed(() => {
  const sim = new SimPatches(7, () => NOW);
  for (let i = 0; i < MACHINES; i++) {
    const m = machines[i]!;
    void sim.installPatches({ machineId: m.id, os: m.os }, {
      key: `k${i}`, maximumDurationMs: 2 * 3_600_000, rebootSetting: 'IfRequired', classifications: m.os === 'linux' ? ['Critical', 'Security'] : ['Critical', 'Security', 'Definition'],
      include: [], exclude: m.os === 'linux' ? ['linux-image*'] : [],
    });
  }
});
console.log(`installation: ${MACHINES} machines in ${install.toFixed(0)} ms (${(install * 1000 / MACHINES).toFixed(1)} µs a machine)`);

let matched = 0;
const scope = { subscription: 'sub1', resourceGroup: null, filter: { resourceTypes: [], resourceGroups: [], osTypes: ['linux'], locations: ['westus'], tags: { env: ['prod'] },
  filterOperator: 'All' as const } };
const match = timed(() => {
  matched = 0;
  for (let i = 0; i < machines.length; i++) if (inDynamicScope(scope, machines[i]!, tags[i]!)) matched++;
});
console.log(`dynamic scope: ${SCOPE_MACHINES} machines in ${match.toFixed(1)} ms (${matched} matched)`);

const W = maintenanceWindow({ startDateTime: '2026-01-01 22:00', expirationDateTime: null, duration: '03:00', timeZone: 'UTC', recurEvery: 'Day' });
const inst = windowInstances(W, NOW).next().value!;
const log: EngineEvent[] = [];
let seq = 0;
for (let i = 0; i < MACHINES; i++) {
  const t = inst.start + (i % 120) * 60_000;
  const base = { time: new Date(t).toISOString(), machineId: machines[i]!.id, placement: machines[i]!.placement };
  const runId = `cfg@${inst.start}`;
  log.push({ ...base, seq: ++seq, type: 'patch.run.started', configuration: 'cfg', runId, windowStart: '', windowEnd: '', maximumDurationMs: inst.end - t, reason: '' });
  log.push({ ...base, seq: ++seq, type: 'machine.reboot.announced', runId, eventId: 'e', notBefore: new Date(t + 900_000).toISOString(), reason: '' });
  log.push({ ...base, seq: ++seq, type: 'patch.run.completed', configuration: 'cfg', runId, status: 'Succeeded', installed: 3, failed: 0, pending: 0, maintenanceWindowExceeded: false,
    rebootStatus: 'Completed', reason: '' });
  log.push({ ...base, seq: ++seq, type: 'availability.impact', cause: 'Reboot', state: 'Unavailable', startTime: new Date(t + 900_000).toISOString(), durationSec: 300, planned: true, reason: '',
    runId });
}
let violations = 0;
const check = timed(() => {
  const c = new PatchChecker({ windowOf: () => W, noticeMs: 900_000 });
  c.onEvents(log);
  violations = c.violations.length;
});
console.log(`patch checker: ${log.length} events in ${check.toFixed(0)} ms (${(log.length / check * 1000 / 1e6).toFixed(2)} M events/s, ${violations} violations)`);
