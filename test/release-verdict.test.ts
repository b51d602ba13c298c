/**
 * A release judged fleet-wide, early (R22 across sets, phases and rollouts): the sequential test, the
 * hold with its evidence, quarantined machines, the gradual fan-out, and the operator's resume.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Catalog } from '../src/catalog/catalog.js';
import { FleetError } from '../src/engine/engine.js';
import { newContext } from '../src/engine/core/context.js';
import type { AttemptState, RolloutState, UnitState } from '../src/engine/state.js';
import { emptyFleet, newEngineState, releaseKey } from '../src/engine/state.js';
import {
  FAILURE_STEP, FLOOR_DELAY_MS, LOWER, recordOutcome, SUCCESS_STEP, UPPER,
} from '../src/engine/attempts/release-evidence.js';
import { fanOutBudget } from '../src/engine/rollouts/release-gate.js';
import { artifactKey } from '../src/model/artifact.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { InvariantChecker } from '../src/audit/invariants.js';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { simulate } from './helpers/harness.js';
import type { Run } from './helpers/harness.js';

const MIN = 60_000;
const ARTIFACT = { kind: 'extension', publisher: 'Contoso', type: 'Agent' } as const;
const KEY = artifactKey(ARTIFACT);

/** A generated fleet of a few thousand machines: 8 regions in 4 geo-pairs, zones, sets, VMs, Arc. */
function generated(seed: number, release: Record<string, number>, critical = false): Run {
  return simulate(generatedRaw(seed, release, critical));
}

function generatedRaw(seed: number, release: Record<string, number>, critical = false): Record<string, unknown> {
  return {
    name: 'release-verdict', start: '2026-01-05T00:00:00Z', seed, horizon: 'P10W',
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: {
      generate: {
        regions: { count: 8, zones: 3 }, subscriptions: 10, extensions: ['agent'],
        scaleSets: { count: 30, capacity: { min: 10, max: 120 }, zonalShare: 0.7, applicationHealthShare: 0.5 },
        availabilitySets: { count: 30, vms: { min: 2, max: 20 } }, arcMachines: 300, totalMachines: 3000,
      },
    },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', ...(critical ? { critical: true } : {}) } }],
    failures: {
      default: { installSeconds: { median: 90, p95: 300 }, healthSeconds: { median: 30, p95: 120 } },
      versions: { '1.1.0.0': release },
    },
  };
}

const failing = (rate: number) => ({ installFailure: rate / 2, unhealthyAfterUpgrade: rate / 2, rollbackFailure: 0.02 });

function invariants(run: Run): string[] {
  const checker = new InvariantChecker({ pairs: symmetricPairs([...run.engine.state.fleet.regions.values()]) });
  checker.onEvents(run.events);
  return checker.finish();
}

test('R22: the sequential test has the documented steps and boundaries', () => {
  assert.equal(FAILURE_STEP.toFixed(4), '1.3863'); // ln(0.20 / 0.05)
  assert.equal(SUCCESS_STEP.toFixed(4), '-0.1719'); // ln(0.80 / 0.95)
  assert.equal(UPPER.toFixed(2), '6.90'); // ln(0.99 / 0.001)
  assert.equal(LOWER.toFixed(2), '-4.60'); // ln(0.01 / 0.999)
  assert.equal(Math.ceil(UPPER / FAILURE_STEP), 5, 'five failures in a row judge a release bad');
  // The fan-out: 8 machines before any success, then twice the successes, then no limit.
  assert.deepEqual([0, 3, 4, 10, 255, 256].map((s) => fanOutBudget({ successes: s } as never)), [8, 8, 8, 20, 510, Number.POSITIVE_INFINITY]);
});

/** A bare rollout of the release and a context, to feed outcomes to the statistic directly. */
function bareRelease() {
  const state = newEngineState(emptyFleet(), new Catalog());
  let ctx = newContext(state, 0);
  const rollout = (version: string) => ({
    id: `ro-${version}`, artifact: ARTIFACT, artifactKey: KEY, toVersion: version, force: false,
    plan: { profile: { name: 'standard', releaseVerdict: true } },
  }) as unknown as RolloutState;
  const outcome = (r: RolloutState, machineId: string, failed: boolean, unhealthyBefore = false) => {
    const a = { machineId, attempt: 1, ...(unhealthyBefore ? { unhealthyBefore } : {}) } as AttemptState;
    recordOutcome(ctx, r, { inflight: null } as UnitState, a, failed);
  };
  const rel = (version: string) => state.releases.get(releaseKey(KEY, version));
  /** Later outcomes are judged at `ms` (the events so far stay in `events`). */
  const events: EngineEvent[] = [];
  const at = (ms: number) => {
    events.push(...ctx.events);
    ctx = newContext(state, ms);
  };
  return { get ctx() { return ctx; }, rollout, outcome, rel, at, events };
}

test('R22: machines that fail whatever they get are quarantined from the statistic and listed', () => {
  const { ctx, rollout, outcome, rel } = bareRelease();
  // Six flapping machines fail two earlier releases (each halted by them), and four machines were unhealthy before the upgrade.
  for (const v of ['1.1.0.0', '1.2.0.0']) for (let i = 0; i < 6; i++) outcome(rollout(v), `flap-${i}`, true);
  const r3 = rollout('1.3.0.0');
  for (let i = 0; i < 6; i++) outcome(r3, `flap-${i}`, true);
  for (let i = 0; i < 4; i++) outcome(r3, `sick-${i}`, true, true);
  for (let i = 0; i < 40; i++) outcome(r3, `good-${i}`, false);
  const r = rel('1.3.0.0')!;
  assert.equal(r.hold, null, 'ten failures of machines that fail anything do not halt a good release');
  assert.equal(r.failures, 0);
  assert.equal(r.quarantinedCount, 10);
  assert.match(r.quarantined[0]!.reason, /failed its last 2 attempts of other releases \(.*@1\.1\.0\.0, .*@1\.2\.0\.0\)/);
  assert.equal(r.quarantined.find((q) => q.machineId === 'sick-0')?.reason, 'unhealthy before the upgrade started');
  // They do not hide a bad release either: real failures halt it (ten in a row: the 40 successes of the
  // same instant all count, the floor waits FLOOR_DELAY_MS), the quarantined listed in the evidence.
  for (let i = 0; i < 9; i++) outcome(r3, `bad-${i}`, true);
  assert.equal(rel('1.3.0.0')!.hold, null);
  outcome(r3, 'bad-9', true);
  assert.equal(rel('1.3.0.0')!.hold?.kind, 'evidence');
  const halted = ctx.events.find((e) => e.type === 'release.halted' && e.toVersion === '1.3.0.0') as Extract<EngineEvent, { type: 'release.halted' }>;
  assert.equal(halted.evidence?.quarantined.length, 10);
  assert.deepEqual(halted.evidence?.failedMachines, Array.from({ length: 10 }, (_, i) => `bad-${i}`));
});

test('R22: the floor waits FLOOR_DELAY_MS: the successes of one wave weigh against its late failures; older ones are forgotten', () => {
  const b = bareRelease();
  const clean = b.rollout('4.0.0.0');
  // A wave: 60 machines report healthy within minutes; then, at the end of their health wait, 7 of its
  // machines fail together (7 of 67, 10%: bunched, but no worse than the wave's share).
  for (let i = 0; i < 60; i++) {
    b.at(i * 5_000);
    b.outcome(clean, `ok-${i}`, false);
  }
  b.at(8 * MIN);
  for (let i = 0; i < 7; i++) b.outcome(clean, `late-${i}`, true);
  const r = b.rel('4.0.0.0')!;
  assert.equal(r.hold, null, `the wave's own successes count: statistic ${r.llr.toFixed(2)}`);
  assert.ok(r.llr < LOWER + 7 * FAILURE_STEP, 'the statistic went below the floor for the wave');
  // Later than the delay, what was below the floor is raised to it: old successes no longer hide failures.
  const later = b.rollout('5.0.0.0');
  for (let i = 0; i < 200; i++) b.outcome(later, `old-${i}`, false);
  b.at(8 * MIN + FLOOR_DELAY_MS);
  b.outcome(later, 'old-last', false);
  assert.equal(b.rel('5.0.0.0')!.llr, LOWER, 'raised to the floor once it has been below it for the delay');
  const needed = Math.ceil((UPPER - LOWER) / FAILURE_STEP);
  for (let i = 0; i < needed - 1; i++) b.outcome(later, `bad-${i}`, true);
  assert.equal(b.rel('5.0.0.0')!.hold, null);
  b.outcome(later, 'bad-last', true);
  assert.equal(b.rel('5.0.0.0')!.hold?.kind, 'evidence', `${needed} failures in a row from the floor halt it`);
});

test('R22: a 2% stream of outcomes never crosses the boundary; a 25% stream does, within about 60 outcomes', () => {
  // A fixed sequence (no randomness): one failure in fifty, spread, over a million outcomes.
  const { rollout, outcome, rel } = bareRelease();
  const good = rollout('2.0.0.0');
  for (let i = 0; i < 1_000_000; i++) outcome(good, `m${i}`, i % 50 === 17);
  assert.equal(rel('2.0.0.0')!.hold, null);
  // Worst case for the floor: failures bunched five in a row once per 250 outcomes (still 2%).
  const bunched = rollout('2.1.0.0');
  for (let i = 0; i < 250_000; i++) outcome(bunched, `b${i}`, i % 250 < 4);
  assert.equal(rel('2.1.0.0')!.hold, null, 'four failures in a row from the floor stay below the boundary');
  const bad = rollout('3.0.0.0');
  let n = 0;
  while (!rel('3.0.0.0')?.hold && n < 1000) outcome(bad, `x${n}`, n++ % 4 === 0);
  assert.ok(n <= 60, `a 25% release halted after ${n} outcomes`);
});

function exposure(run: Run) {
  const halted = run.of('release.halted');
  const haltSeq = halted[0]?.seq ?? Number.POSITIVE_INFINITY;
  const started = new Map<string, number>();
  for (const e of run.of('instance.upgrade.started')) if (!started.has(e.machineId)) started.set(e.machineId, Date.parse(e.time));
  let slowest = 0;
  for (const e of run.of('instance.rollback.succeeded')) slowest = Math.max(slowest, Date.parse(e.time) - started.get(e.machineId)!);
  const lateBatches = run.of('batch.started').filter((b) => b.seq > haltSeq);
  return { halted, exposed: started.size, slowest, lateBatches };
}

for (const critical of [false, true]) {
  test(`R22: a ${critical ? 'critical' : 'standard'} release that breaks every machine is halted fleet-wide after few machines`, () => {
    const run = generated(7, { unhealthyAfterUpgrade: 1 }, critical);
    const { halted, exposed, slowest, lateBatches } = exposure(run);
    assert.equal(run.engine.state.fleet.machines.size, 3000);
    assert.equal(halted.length, 1);
    assert.equal(halted[0]!.kind, 'evidence');
    assert.ok(halted[0]!.evidence!.failures >= 5);
    assert.ok(exposed <= 20, `${exposed} machines took the bad release`);
    assert.deepEqual(lateBatches, [], 'no batch starts anywhere once the release is held');
    assert.ok(slowest <= 20 * MIN, `the last machine was back on its last known good version ${slowest / MIN} min after its upgrade`);
    for (const byMachine of run.engine.state.fleet.instances.values()) {
      for (const inst of byMachine.values()) assert.equal(inst.installedVersion, '1.0.0.0', inst.machineId);
    }
    assert.equal(run.of('phase.started').filter((p) => p.phase > 0).length, 0, 'the canary never passed');
    assert.deepEqual(invariants(run), []);
  });
}

test('R22: over 20 seeds a 2% release is never halted and completes within its bound; a 25% release is always halted', () => {
  const exposed: number[] = [];
  for (let seed = 1; seed <= 20; seed++) {
    const good = generated(seed, failing(0.02));
    assert.equal(good.of('release.halted').length, 0, `seed ${seed}: a 2% release was halted`);
    const done = good.of('rollout.completed');
    assert.equal(done.length, 1, `seed ${seed}: the 2% release completes`);
    const days = (Date.parse(done[0]!.time) - Date.parse(good.of('rollout.created')[0]!.time)) / 86_400_000;
    assert.ok(days <= 56, `seed ${seed}: ${days} days`);
    const bad = generated(seed, failing(0.25));
    const { halted, exposed: n, lateBatches } = exposure(bad);
    assert.equal(halted.length, 1, `seed ${seed}: a 25% release must be halted`);
    assert.deepEqual(lateBatches, []);
    exposed.push(n);
  }
  assert.ok(Math.max(...exposed) <= 200, `machines exposed to a 25% release: ${exposed.join(', ')}`);
});

test('R22: over 20 seeds a release failing on 4.5% of machines (below H0\'s 5%) is never halted: a wave\'s late failures meet its own successes', () => {
  // Many small sets in 12 regions: hundreds of first batches run side by side in each wave, those with a
  // failure ending minutes after the clean ones. With the floor applied at once, seeds 7 and 12 were held.
  const held: number[] = [];
  for (let seed = 1; seed <= 20; seed++) {
    const run = simulate({
      ...generatedRaw(seed, { unhealthyAfterUpgrade: 0.045 }),
      fleet: {
        generate: {
          regions: { count: 12, zones: 3 }, subscriptions: 6, extensions: ['agent'],
          scaleSets: { count: 300, capacity: { min: 2, max: 60 } }, availabilitySets: { count: 100, vms: { min: 2, max: 12 } },
          vms: 3000, arcMachines: 3000,
        },
      },
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.045 } } },
    });
    if (run.of('release.halted').length > 0) held.push(seed);
  }
  assert.deepEqual(held, [], 'seeds on which the release was held');
});

test('R22: an operator resumes a held release, and may hold one; a release not held cannot be resumed', () => {
  const run = generated(7, { unhealthyAfterUpgrade: 1 });
  const seen: EngineEvent[] = [];
  run.engine.onEvents((events) => seen.push(...events));
  assert.throws(() => run.engine.resumeRelease(ARTIFACT, '9.9.9.9', 'alice'), (e: unknown) => e instanceof FleetError && e.code === 'NotFound');
  run.engine.resumeRelease(ARTIFACT, '1.1.0.0', 'alice');
  const resumed = seen.find((e) => e.type === 'release.resumed') as Extract<EngineEvent, { type: 'release.resumed' }>;
  assert.equal(resumed.caller, 'alice');
  assert.ok(seen.some((e) => e.type === 'batch.started'), 'batches start again after the resume');
  assert.throws(() => run.engine.resumeRelease(ARTIFACT, '1.1.0.0', 'alice'), (e: unknown) => e instanceof FleetError && e.code === 'Conflict');
  run.engine.holdRelease(ARTIFACT, '1.1.0.0', 'looking into support tickets', 'bob');
  const held = seen.filter((e) => e.type === 'release.halted') as Array<Extract<EngineEvent, { type: 'release.halted' }>>;
  assert.equal(held.at(-1)?.kind, 'operator');
  assert.equal(held.at(-1)?.caller, 'bob');
  assert.throws(() => run.engine.holdRelease(ARTIFACT, '1.1.0.0', 'again', 'bob'), (e: unknown) => e instanceof FleetError && e.code === 'Conflict');
  assert.equal(run.engine.release(ARTIFACT, '1.1.0.0')?.hold?.reason, 'looking into support tickets');
});

test('R22: the gradual fan-out keeps a good release within its budget until it has successes', () => {
  const run = generated(3, failing(0.02));
  // Replays the log: machines of the release in flight never exceed the budget when a batch starts (or one batch alone).
  let inflight = 0;
  let successes = 0;
  const sizes = new Map<string, number>();
  for (const e of run.events) {
    if (e.type === 'instance.upgrade.succeeded' && e.attempt === 1) successes++;
    if (e.type === 'batch.started') {
      const budget = successes >= 256 ? Number.POSITIVE_INFINITY : Math.max(8, 2 * successes);
      assert.ok(inflight === 0 || inflight + e.instances.length <= budget, `${e.batchId}: ${inflight} + ${e.instances.length} in flight, budget ${budget}`);
      inflight += e.instances.length;
      sizes.set(e.batchId, e.instances.length);
    }
    if (e.type === 'batch.completed') inflight -= sizes.get(e.batchId) ?? 0;
  }
  assert.deepEqual(invariants(run), []);
});

test('R22: a release held by its evidence stays held across a restart (SQLite), its parked units known again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phasewise-release-'));
  try {
    const file = join(dir, 'state.db');
    const scenario = compileScenario(generatedRaw(7, { unhealthyAfterUpgrade: 1 }), 'release-verdict');
    const store = SqliteStore.open(file, { mode: 'new' });
    store.importState(scenario.state);
    runSimulation(scenario, { store });
    store.close();
    const reopened = SqliteStore.open(file, { mode: 'existing' });
    const state = reopened.load()!;
    reopened.close();
    const rel = [...state.releases.values()].find((r) => r.toVersion === '1.1.0.0')!;
    assert.equal(rel.hold?.kind, 'evidence');
    assert.ok(rel.hold.evidence!.failures >= 5);
    assert.equal(rel.inflight, 0);
    assert.ok(rel.waiters.size > 0, 'the units parked by the hold are woken by a resume after the restart');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('R22: an OS image release superseded as it reaches more regions is one release, held once for all its rollouts', () => {
  const image = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server' };
  const regions = Array.from({ length: 12 }, (_, i) => `region${String(i).padStart(2, '0')}`);
  const scaleSets = Array.from({ length: 24 }, (_, n) => ({
    name: `iss${n}`, region: regions[n % regions.length], subscription: `sub-${n % 4}`, capacity: 50,
    ...(n % 3 < 2 ? { zones: ['1', '2', '3'] } : {}), image: { ...image, version: 'latest' },
    upgradePolicy: { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } },
  }));
  // Replicated to 2, then 4 more, then the last 6 regions: each wave supersedes the rollout before it.
  const replications = regions.map((region, i) => ({ region, at: i < 2 ? 'PT2H' : i < 6 ? 'P1D' : 'P2D' }));
  const run = simulate({
    name: 'image-release', start: '2026-01-05T00:00:00Z', seed: 3, horizon: 'P3W',
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    images: [{ ...image, osType: 'Linux', versions: [{ version: '24.04.202601050' }] }],
    fleet: { generate: { regions: { count: 12, zones: 3 }, extensions: ['agent'] }, scaleSets },
    events: [{ at: 'PT1H', publishImage: { ...image, version: '24.04.202601190', replications } }],
    failures: { versions: { '24.04.202601190': { unhealthyAfterUpgrade: 1 } } },
  });
  assert.ok(run.of('rollout.created').length >= 2, 'later replications made new rollouts of the same release');
  assert.equal(run.of('release.halted').length, 1);
  const haltSeq = run.of('release.halted')[0]!.seq;
  assert.deepEqual(run.of('batch.started').filter((b) => b.seq > haltSeq), [], 'no later rollout of the release starts a batch');
  assert.ok(new Set(run.of('instance.upgrade.started').map((e) => e.machineId)).size <= 50);
  assert.deepEqual(invariants(run), []);
});
