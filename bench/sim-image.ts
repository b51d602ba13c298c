/**
 * bench:sim-image — an OS image release over a million scale-set instances across 60 regions: every
 * set follows one Ubuntu image at `latest` with automatic OS upgrade on, and a new version is replicated
 * to the regions in four waves over three days (R60, R64), each wave superseding the running rollout
 * with one plan for all regions reached (R10). Same budget as bench:sim (≤ 30 s wall, ≤ 1 GiB peak
 * memory, one core); the event log streams through the invariant checker, plus the R64 check that no
 * re-image starts in a region before the version is replicated there. Fails (exit code 1) if an
 * invariant breaks, a re-image precedes its replication, or the release does not complete: the last
 * rollout completed and every instance on the new image, except those whose rollback failed (R31).
 */
import { InvariantChecker } from '../src/audit/invariants.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { SummaryCollector } from '../src/report/summary.js';
import { runSimulation } from '../src/sim/simulator.js';
import { BENCH_IMAGE, BENCH_IMAGE_TO, imageBenchScenario } from './fleet.js';
import { cpuSeconds, machineLine, peakRssMiB, queueRatioLines } from './machine.js';

const check = !process.argv.includes('--no-check');
const t0 = performance.now();
const scenario = imageBenchScenario();
const buildMs = performance.now() - t0;
const fleet = scenario.state.fleet;

// R64: when the new version's replication to each region completes, from the scenario's own actions.
const replicatedAt = new Map<string, number>();
for (const a of scenario.actions) {
  if (a.kind !== 'updateImages') continue;
  for (const o of a.ops) if (o.op === 'replicate' && o.version === BENCH_IMAGE_TO) replicatedAt.set(o.region, o.completedAtMs);
}
let earlyStarts = 0;
let firstEarly = '';
let reimaged = 0;
// The events of a tick share its time: parsed once per tick, not once per re-image (a million of them).
let lastTime = '';
let lastMs = Number.NaN;
function msOf(time: string): number {
  if (time !== lastTime) {
    lastTime = time;
    lastMs = Date.parse(time);
  }
  return lastMs;
}
const r64 = (events: readonly EngineEvent[]) => {
  for (const e of events) {
    if (e.type === 'instance.reimaged') reimaged++;
    if (e.type !== 'instance.upgrade.started' || e.artifact.kind !== 'osImage' || e.toVersion !== BENCH_IMAGE_TO) continue;
    if (msOf(e.time) < (replicatedAt.get(e.placement.region) ?? Number.POSITIVE_INFINITY)) {
      if (earlyStarts++ === 0) firstEarly = `${e.machineId} in ${e.placement.region} at ${e.time}`;
    }
  }
};

const summary = new SummaryCollector(86_400_000);
const checker = new InvariantChecker({ pairs: symmetricPairs([...fleet.regions.values()]) });
const c1 = process.cpuUsage();
const t1 = performance.now();
const result = runSimulation(scenario, {
  onEvents: (events) => {
    summary.onEvents(events);
    if (check) {
      checker.onEvents(events);
      r64(events);
    }
  },
});
const simMs = performance.now() - t1;
const simCpuS = cpuSeconds(c1);
const violations = checker.finish();

const rollouts = summary.result().filter((r) => r.toVersion === BENCH_IMAGE_TO);
const last = rollouts.at(-1);
if (!last) throw new Error('no image rollout started');
const key = `osimage:${BENCH_IMAGE.publisher}:${BENCH_IMAGE.offer}:${BENCH_IMAGE.sku}`.toLowerCase();
let onNew = 0;
let blocked = 0;
let behind = 0;
for (const inst of result.engine.state.fleet.instances.get(key)?.values() ?? []) {
  if (inst.status === 'Failed' || inst.blockedReason) blocked++;
  else if (inst.installedVersion === BENCH_IMAGE_TO) onNew++;
  else behind++;
}
const createdMs = Date.parse(rollouts[0]!.createdAt);
const days = last.endedAt ? (Date.parse(last.endedAt) - scenario.startMs) / 86_400_000 : Number.NaN;
const sum = (f: (r: (typeof rollouts)[number]) => number) => rollouts.reduce((n, r) => n + f(r), 0).toLocaleString('en');
const complete = last.status === 'completed' && behind === 0;

console.log('bench:sim-image — an OS image release over 1,000,000 scale-set instances, in-memory store');
console.log(`machine: ${machineLine()}`);
console.log(`fleet: ${fleet.machines.size.toLocaleString('en')} machines in ${fleet.scaleSets.size.toLocaleString('en')} scale sets, ${fleet.regions.size} regions (built in ${(buildMs / 1000).toFixed(1)} s, not counted)`);
const superseded = rollouts.filter((r) => r.status === 'superseded' || r.status === 'cancelled').length;
console.log(`release: ${BENCH_IMAGE_TO} replicated in ${new Set(replicatedAt.values()).size} waves to ${replicatedAt.size} regions; `
  + `${rollouts.length} rollouts (${superseded} superseded as the version reached more regions)`);
console.log(`last rollout: ${last.status} ${(days - (createdMs - scenario.startMs) / 86_400_000).toFixed(1)} days after the first was created, ${days.toFixed(1)} simulated days after the start (bound 56 per rollout); ${last.phases.length} phases`);
console.log(`all rollouts: ${sum((r) => r.upgraded)} re-imaged, ${sum((r) => r.rolledBack)} rolled back, ${sum((r) => r.failed)} failed, ${sum((r) => r.retried)} retries, ${sum((r) => r.batches)} batches`);
console.log(`fleet at the end: ${onNew.toLocaleString('en')} on ${BENCH_IMAGE_TO}, ${blocked.toLocaleString('en')} failed (a failed rollback, R31, or unhealthy with rollback off), ${behind.toLocaleString('en')} behind; release ${complete ? 'complete' : 'NOT COMPLETE'}`);
console.log(`events: ${summary.events.toLocaleString('en')} in ${result.ticks.toLocaleString('en')} ticks (${reimaged.toLocaleString('en')} instance.reimaged); invariants ${check ? (violations.length === 0 ? 'all held' : `VIOLATED ×${violations.length}: ${violations[0]}`) : 'not checked'}; R64 ${check ? (earlyStarts === 0 ? 'held (no re-image before its region\'s replication)' : `VIOLATED ×${earlyStarts}: ${firstEarly}`) : 'not checked'}`);
console.log(`wall: ${(simMs / 1000).toFixed(1)} s (target ≤ 30 s) · ${Math.round(summary.events / (simMs / 1000)).toLocaleString('en')} events/s`);
console.log(`peak RSS: ${peakRssMiB().toFixed(0)} MiB (target ≤ 1024, whole process including the fleet)`);
for (const line of queueRatioLines(summary.events, simMs, simCpuS)) console.log(line);

if (violations.length > 0 || earlyStarts > 0 || !complete || result.hitHorizon) {
  console.error(`bench:sim-image FAILED: ${[violations.length > 0 && 'invariants broke', earlyStarts > 0 && 'a re-image preceded its replication (R64)', !complete && 'the release did not complete', result.hitHorizon && 'the horizon was reached'].filter(Boolean).join('; ')}`);
  process.exitCode = 1;
}
