/**
 * The engine's rules under a scenario the examples do not have, as an outside tester runs it (session 19, task F):
 * test/fixtures/scenarios/unseen-mix.yaml mixes windows (one assigned mid-rollout), availability sets, zones, scale
 * sets of 1, 3 and 4 instances, a critical release with failing rollbacks, a standard release beside it, an opt-out
 * and opt-in, a set whose machines flap, and an OS image replicated region by region. Each seed's event log goes
 * through the audit checkers (src/audit/: R1, R5, R10, R11, R13, R14, R22, R60, R62 and R70, R72) and the checks
 * below, for the rules those checkers leave out.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvariantChecker } from '../src/audit/invariants.js';
import { WindowChecker } from '../src/audit/windows.js';
import { artifactKey } from '../src/model/artifact.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { configsOfKey, windowKeyOf } from '../src/model/maintenance.js';
import type { MaintenanceScope } from '../src/schedule/limits.js';
import { boundRisk } from '../src/engine/rollouts/bound-risk.js';
import { MIN_R23_STOP_MS } from '../src/planner/bound.js';
import { loadScenarioFile } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { stepLooking } from './helpers/bound-fleet.js';

const DAY = 86_400_000;
const FILE = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'scenarios', 'unseen-mix.yaml');

interface Seen { rollouts: number; r23Stops: number; failedRollbacks: number; optedBack: number; checkedStarts: number }

/** Runs the scenario at `seed` with every checker on its log; returns the violations and what was exercised. */
function check(seed: number): { problems: string[]; seen: Seen; announcedMisses: string[] } {
  const scenario = loadScenarioFile(FILE, { seed });
  const state = scenario.state;
  const invariants = new InvariantChecker({ pairs: symmetricPairs([...state.fleet.regions.values()]) });
  // R70 against the windows assigned when the batch starts (the live state: an assignment made mid-rollout counts from then on).
  const windowsOf = (scope: MaintenanceScope) => new WindowChecker({
    unionOf: (id) => {
      const machine = state.fleet.machines.get(id);
      return machine ? configsOfKey(state.maintenance, windowKeyOf(state.maintenance, scope, machine)).map((c) => c.parsed) : [];
    },
  });
  const windows = { extension: windowsOf('Extension'), osImage: windowsOf('OSImage') };
  const problems: string[] = [];
  const kinds = new Map<string, string>();
  const created = new Map<string, { profile: string; at: number; eligible: number; release: string }>();
  const haltedReleases = new Set<string>();
  const ended = new Map<string, string>();
  const reached = new Map<string, Map<string, number>>();
  const failedRollback = new Set<string>();
  const stoppedUntil = new Map<string, number>();
  const optedOut = new Map<string, string>(); // rollout|machine skipped for its opt-out → its artifact key
  const attempted = new Set<string>(); // machine|artifact key with an upgrade started
  let halted = false;
  let r23Stops = 0;
  const announcedMisses: string[] = [];
  const onEvent = (e: EngineEvent) => {
    const t = Date.parse(e.time);
    if (e.type === 'rollout.created') {
      created.set(e.rolloutId, { profile: e.profile, at: t, eligible: e.eligible, release: `${artifactKey(e.artifact)}@${e.toVersion}` });
      kinds.set(e.rolloutId, e.artifact.kind);
    }
    if ('rolloutId' in e) {
      const kind = kinds.get(e.rolloutId);
      if (kind === 'extension' || kind === 'osImage') windows[kind].check(e);
    }
    if (e.type === 'release.halted') {
      halted = true;
      haltedReleases.add(`${e.artifactKey}@${e.toVersion}`);
    }
    if (e.type === 'rollout.completed' || e.type === 'rollout.stopped' || e.type === 'rollout.cancelled') ended.set(e.rolloutId, e.type);
    if (e.type === 'instance.upgrade.started' || e.type === 'instance.skipped' || e.type === 'instance.notice.scheduled') {
      let m = reached.get(e.rolloutId);
      if (!m) reached.set(e.rolloutId, (m = new Map()));
      if (!m.has(e.machineId)) m.set(e.machineId, t);
    }
    if (e.type === 'instance.rollback.failed' && e.artifact.kind === 'extension') failedRollback.add(`${e.machineId}|${artifactKey(e.artifact)}`);
    if (e.type === 'instance.upgrade.started') {
      const key = `${e.machineId}|${artifactKey(e.artifact)}`;
      attempted.add(key);
      // R31: the extension is Failed for good once its rollback failed; nothing here removes and reinstalls it.
      if (e.artifact.kind === 'extension' && failedRollback.has(key)) problems.push(`R31: ${e.rolloutId} starts ${e.machineId} after its rollback failed`);
    }
    if (e.type === 'instance.skipped' && /opt-out/.test(e.reason)) optedOut.set(`${e.rolloutId}|${e.machineId}`, artifactKey(e.artifact));
    // R23: a stopped set starts no batch of the rollout within the engine's floor (6 hours for VMs and scale sets).
    if (e.type === 'gate.breached' && e.rule === 'R23' && e.scope.setId) {
      r23Stops++;
      stoppedUntil.set(`${e.rolloutId}|${e.scope.setId}`, t + MIN_R23_STOP_MS);
    }
    if (e.type === 'batch.started' && e.scope.setId && t < (stoppedUntil.get(`${e.rolloutId}|${e.scope.setId}`) ?? 0)) {
      problems.push(`R23: ${e.rolloutId} starts batch ${e.batchId} of stopped set ${e.scope.setId} before its stop ends`);
    }
  };
  // Rollouts announced at risk of missing R40 before their bound passed, as GET /phasewise/rollouts says (boundAtRisk).
  const warned = new Map<string, number>();
  const look = (now: number) => {
    for (const r of sim.engine.state.rollouts.values()) {
      if (r.status !== 'running' || warned.has(r.id)) continue;
      const o = boundRisk(sim.engine.state, r, now);
      if (o?.atRisk && now < o.boundEndMs) warned.set(r.id, now);
    }
  };
  const sim: Simulation = new Simulation(scenario, {
    onEvents: (events) => {
      invariants.onEvents(events);
      for (const e of events) onEvent(e);
    },
  });
  // The outlook read at least every 6 hours of simulated time.
  stepLooking(sim, 6 * 3_600_000, look);
  const result = sim.result();
  problems.push(...invariants.finish(), ...windows.extension.finish(), ...windows.osImage.finish().map((v) => `OS image: ${v}`));
  for (const [id, c] of created) {
    // R40: every eligible machine first reached within the bound, unless the release was halted or the rollout stopped first.
    const bound = c.profile === 'critical' ? 21 * DAY : c.profile === 'standard' ? 56 * DAY : Number.POSITIVE_INFINITY;
    const firsts = reached.get(id) ?? new Map<string, number>();
    // A miss the rollout announced at risk before the bound passed is what the engine promises beyond its plan (docs/engine.md).
    const late = [...firsts].filter(([, at]) => at - c.at > bound);
    if (late.length > 0 && warned.has(id)) announcedMisses.push(`${id} ${late.length} late, at risk from day ${((warned.get(id)! - c.at) / DAY).toFixed(2)}`);
    else for (const [machine, at] of late) problems.push(`R40: ${id} (${c.profile}) first reached ${machine} after ${((at - c.at) / DAY).toFixed(1)} days, never announced at risk`);
    if (!halted && ended.get(id) === 'rollout.completed' && firsts.size < c.eligible) problems.push(`R40: ${id} completed having reached ${firsts.size} of ${c.eligible}`);
  }
  // R32: automatic upgrade enabled again (P6D) brings the machines it skipped for the opt-out back into their rollout,
  // unless the release verdict held it (no new batch anywhere, seed 17) or the rollout stopped.
  let optedBack = 0;
  for (const [key, artifact] of optedOut) {
    const [rollout, machine] = key.split('|') as [string, string];
    if (attempted.has(`${machine}|${artifact}`)) optedBack++;
    else if (haltedReleases.has(created.get(rollout)!.release) || ended.get(rollout) !== 'rollout.completed') continue;
    else problems.push(`R32: ${machine}, skipped for its opt-out (${key}), was never attempted after automatic upgrade was enabled again`);
  }
  if (result.hitHorizon) problems.push('the scenario ran into its horizon: a rollout never ended');
  const seen = {
    rollouts: created.size, r23Stops, failedRollbacks: failedRollback.size, optedBack,
    checkedStarts: windows.extension.checkedStarts + windows.osImage.checkedStarts,
  };
  return { problems, seen, announcedMisses };
}

test('R5 R10 R11 R13 R14 R22 R23 R31 R32 R40 R60 R64 R70 R72: an unseen mixed scenario keeps every rule its log shows over ten seeds, the critical release within three weeks', () => {
  const total: Seen = { rollouts: 0, r23Stops: 0, failedRollbacks: 0, optedBack: 0, checkedStarts: 0 };
  for (let seed = 11; seed <= 20; seed++) {
    const { problems, seen, announcedMisses } = check(seed);
    // Announced or not, no seed misses the bound here. Seed 18 did (23.0 days, at risk from day 12): its canary, the
    // flapping set, was stopped four times for the full 3 days while the later phases' stops were counted at 6 hours.
    assert.deepEqual(announcedMisses, [], `seed ${seed}: R40 missed`);
    assert.deepEqual(problems, [], `seed ${seed}:\n${problems.slice(0, 10).join('\n')}`);
    for (const k of Object.keys(total) as Array<keyof Seen>) total[k] += seen[k];
  }
  // What the checks above had to look at: without these the test could pass by seeing nothing.
  assert.ok(total.rollouts >= 30, `${total.rollouts} rollouts (two releases and the image in each seed)`);
  assert.ok(total.r23Stops > 0, 'no R23 stop: the R23 check was not exercised');
  assert.ok(total.failedRollbacks > 0, 'no failed rollback: the R31 check was not exercised');
  assert.ok(total.optedBack > 0, 'no machine skipped for its opt-out and brought back: the R32 check was not exercised');
  assert.ok(total.checkedStarts > 0, 'no upgrade was checked against a window');
});

test('R40 R11 R23: a zone left with only retries does not hold the set\'s next zones past the bound (seeds 6, 53, 60, 70, 77, 98)', () => {
  // These seeds, of 1–120, missed the critical bound by up to 9 days: strict-neu's zone 1 had run its planned batches,
  // and each failed retry of a rolled-back machine (R30) stopped the whole set for the full 3 days (R23), the stop
  // counting only zone 1's batches, none left; zones 2 and 3 (R11: one zone at a time) waited behind it.
  // The stop now counts the set's next zones, so a pressed bound shortens it (never below the 6-hour floor).
  let r23Stops = 0;
  for (const seed of [6, 53, 60, 70, 77, 98]) {
    const { problems, seen, announcedMisses } = check(seed);
    assert.deepEqual(announcedMisses, [], `seed ${seed}: R40 missed`);
    assert.deepEqual(problems, [], `seed ${seed}:\n${problems.slice(0, 10).join('\n')}`);
    r23Stops += seen.r23Stops;
  }
  assert.ok(r23Stops > 0, 'no R23 stop: the seeds no longer exercise the stop');
});
