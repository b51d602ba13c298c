/**
 * R40–R41: pacing and urgency. The plan's estimate and the profiles first, then whole rollouts on the
 * simulator, measured from the release's publication to `rollout.completed`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Machine, Region } from '../src/model/fleet.js';
import { planRollout } from '../src/planner/plan.js';
import { PROFILES, profileFor } from '../src/planner/profile.js';
import type { RolloutProfile } from '../src/planner/profile.js';
import type { Plan } from '../src/planner/types.js';
import { baseScenario, simulate } from './helpers/harness.js';
import type { Run } from './helpers/harness.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/** Six regions in three geo-pairs with zones, and machines of every kind: a small "default" fleet. */
function fleet(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return baseScenario({
    horizon: 'P12W',
    regions: [
      { name: 'eastus', pair: 'westus', zones: ['1', '2', '3'] },
      { name: 'westus', pair: 'eastus', zones: ['1', '2', '3'] },
      { name: 'northeurope', pair: 'westeurope', zones: ['1', '2', '3'] },
      { name: 'westeurope', pair: 'northeurope', zones: ['1', '2', '3'] },
      { name: 'southeastasia', pair: 'eastasia', zones: ['1', '2', '3'] },
      { name: 'eastasia', pair: 'southeastasia', zones: [] },
    ],
    fleet: {
      scaleSets: [
        { name: 'web-eus', region: 'eastus', subscription: 'prod', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'] },
        { name: 'web-wus', region: 'westus', subscription: 'prod', zones: ['1', '2', '3'], capacity: 24, extensions: ['agent'] },
        { name: 'batch-neu', region: 'northeurope', subscription: 'batch', zones: ['1', '2', '3'], capacity: 40, extensions: ['agent'], upgradePolicy: { rollingUpgradePolicy: { maxBatchInstancePercent: 10, pauseTimeBetweenBatches: 'PT2M' } } },
        { name: 'web-weu', region: 'westeurope', subscription: 'prod', zones: ['1', '2', '3'], capacity: 15, extensions: ['agent'] },
        { name: 'small-sea', region: 'southeastasia', subscription: 'dev', capacity: 4, count: 3, extensions: ['agent'] },
        { name: 'web-ea', region: 'eastasia', subscription: 'dev', capacity: 12, extensions: ['agent'] },
      ],
      availabilitySets: [
        { name: 'sql-eus', region: 'eastus', subscription: 'prod', vms: 6, updateDomains: 3, os: 'linux', extensions: ['agent'] },
        { name: 'sql-weu', region: 'westeurope', subscription: 'prod', vms: 10, updateDomains: 5, os: 'linux', extensions: ['agent'] },
      ],
      vms: [
        { region: 'eastus', subscription: 'dev', count: 9, zones: ['1', '2', '3'], extensions: ['agent'] },
        { region: 'westus', subscription: 'prod', count: 6, extensions: ['agent'] },
        { region: 'eastasia', subscription: 'prod', count: 4, extensions: ['agent'] },
      ],
      arcMachines: [
        { region: 'northeurope', subscription: 'edge', count: 12, extensions: ['agent'] },
        { region: 'westus', subscription: 'edge', count: 8, extensions: ['agent'] },
      ],
    },
    ...extra,
  });
}

const FLEET_SIZE = 30 + 24 + 40 + 15 + 12 + 12 + 6 + 10 + 9 + 6 + 4 + 12 + 8;

function publishAt(run: Run, version: string): number {
  const p = run.of('release.published').find((e) => e.version === version);
  assert.ok(p, `${version} was published`);
  return Date.parse(p.time);
}

function completedAt(run: Run, rolloutId: string): number {
  const c = run.of('rollout.completed').find((e) => e.rolloutId === rolloutId);
  assert.ok(c, `rollout ${rolloutId} completed (stopped: ${run.of('rollout.stopped').map((e) => e.reason).join('; ')})`);
  return Date.parse(c.time);
}

function planOf(run: Run, rolloutId: string): Plan {
  const r = run.engine.state.rollouts.get(rolloutId);
  assert.ok(r);
  return r.plan;
}

/** Every machine holding the extension ends on `version`. */
function assertAllOn(run: Run, version: string): void {
  const off = [...run.engine.state.fleet.instances.get('extension:contoso.agent')!.values()].filter((i) => i.installedVersion !== version).map((i) => `${i.machineId}@${i.installedVersion}`);
  assert.deepEqual(off, [], `every eligible machine reached ${version}`);
}

// ---- R40: profiles and the plan's estimate -------------------------------------------------------

test('R40: the standard profile is bound to eight weeks and the critical one to three, with a faster pace', () => {
  assert.ok(PROFILES.standard.boundMs <= 8 * WEEK, `standard bound ${PROFILES.standard.boundMs / DAY} days`);
  assert.ok(PROFILES.critical.boundMs <= 3 * WEEK, `critical bound ${PROFILES.critical.boundMs / DAY} days`);
  assert.ok(PROFILES.critical.phaseBakeMs < PROFILES.standard.phaseBakeMs, 'critical releases bake less between phases');
  assert.ok(PROFILES.critical.phaseGrowth >= PROFILES.standard.phaseGrowth, 'critical phases grow at least as fast');
  assert.equal(PROFILES.manual.phaseBakeMs, 0);
});

/** `n` regions in pairs (r0↔r1, …), `perRegion` standalone VMs each, planned under `profile`. */
function syntheticPlan(profile: RolloutProfile, n: number, perRegion: number): Plan {
  const regions: Region[] = Array.from({ length: n }, (_, i) => ({ name: `r${i}`, pair: `r${i % 2 === 0 ? i + 1 : i - 1}`, zones: [] }));
  const machines: Machine[] = regions.flatMap((r) => Array.from({ length: perRegion }, (_, j) => ({
    id: `${r.name}-vm${j}`, name: `${r.name}-vm${j}`, kind: 'vm' as const, os: 'linux' as const, resourceGroup: 'rg',
    placement: { region: r.name, zone: null, setId: null, setKind: 'none' as const, updateDomain: null, faultDomain: null, subscription: `sub${j % 3}` },
  })));
  return planRollout({
    rolloutId: 'ro-x', artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, toVersion: '1.1.0.0', profile,
    regions, machines, scaleSets: new Map(), availabilitySets: new Map(), setSizes: new Map(),
  });
}

test('R40: the plan estimate fits each profile\'s bound, and a critical release has fewer, shorter-baked phases', () => {
  for (const n of [2, 6, 20, 60]) {
    const standard = syntheticPlan(profileFor('standard'), n, 12);
    const critical = syntheticPlan(profileFor('critical'), n, 12);
    for (const plan of [standard, critical]) {
      assert.ok(plan.estimate.fitsBound, `${n} regions, ${plan.profile.name}: ${plan.estimate.notes.join('; ')}`);
      assert.ok(plan.estimate.totalMs + plan.estimate.retryAllowanceMs <= plan.profile.boundMs);
      assert.equal(plan.phases.flatMap((p) => p.regions).length, n, 'every region is planned');
    }
    assert.ok(standard.estimate.totalMs <= 56 * DAY);
    assert.ok(critical.estimate.totalMs <= 21 * DAY);
    assert.ok(critical.phases.length <= standard.phases.length, `${n} regions: critical ${critical.phases.length} phases, standard ${standard.phases.length}`);
    if (n > 2) assert.ok(critical.estimate.totalMs < standard.estimate.totalMs, `${n} regions: critical is faster`);
  }
});

test('R40: when the default bakes would overrun the bound, the plan shortens them to fit and says so', () => {
  const slow = profileFor('standard', { phaseBakeMs: 20 * DAY });
  const plan = syntheticPlan(slow, 12, 6);
  assert.ok(plan.phases.length >= 4);
  assert.ok(plan.estimate.fitsBound, plan.estimate.notes.join('; '));
  assert.ok(plan.estimate.totalMs + plan.estimate.retryAllowanceMs <= 56 * DAY);
  assert.ok(plan.phases.slice(0, -1).every((p) => p.bakeAfterMs < 20 * DAY), 'bakes shortened');
  assert.ok(plan.estimate.notes.some((n) => /shortened/.test(n) && /R40/.test(n)), `notes: ${plan.estimate.notes.join('; ')}`);
});

// ---- R40: whole rollouts -------------------------------------------------------------------------

test('R40: a standard release reaches every eligible machine within eight weeks of publication', () => {
  const run = simulate(fleet());
  const created = run.of('rollout.created');
  assert.equal(created.length, 1);
  assert.equal(created[0]!.profile, 'standard');
  assert.equal(created[0]!.eligible, FLEET_SIZE);
  const took = completedAt(run, created[0]!.rolloutId) - publishAt(run, '1.1.0.0');
  assert.ok(took <= 56 * DAY, `took ${(took / DAY).toFixed(1)} days`);
  assert.ok(took >= 4 * DAY, 'a standard release is paced over days, not pushed at once');
  assertAllOn(run, '1.1.0.0');
  const plan = planOf(run, created[0]!.rolloutId);
  assert.ok(plan.estimate.fitsBound);
  assert.ok(took <= plan.estimate.totalMs + plan.estimate.retryAllowanceMs + DAY, `the estimate (${(plan.estimate.totalMs / DAY).toFixed(1)} days) is not far off`);
});

test('R40: a critical security release reaches every eligible machine within three weeks, faster than a standard one', () => {
  const standard = simulate(fleet());
  const critical = simulate(fleet({ events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', critical: true } }] }));
  const s = standard.of('rollout.created')[0]!;
  const c = critical.of('rollout.created')[0]!;
  assert.equal(c.profile, 'critical');
  const tookCritical = completedAt(critical, c.rolloutId) - publishAt(critical, '1.1.0.0');
  const tookStandard = completedAt(standard, s.rolloutId) - publishAt(standard, '1.1.0.0');
  assert.ok(tookCritical <= 21 * DAY, `critical took ${(tookCritical / DAY).toFixed(1)} days`);
  assert.ok(tookCritical < tookStandard, `critical ${(tookCritical / DAY).toFixed(1)} d vs standard ${(tookStandard / DAY).toFixed(1)} d`);
  assert.ok(c.phases.length <= s.phases.length, `critical phases ${JSON.stringify(c.phases)} vs standard ${JSON.stringify(s.phases)}`);
  assertAllOn(critical, '1.1.0.0');
  assert.ok(planOf(critical, c.rolloutId).estimate.fitsBound);
});

test('R40: with a few percent of failed upgrades and their retries, both bounds still hold', () => {
  let retried = 0;
  for (const seed of [1, 2, 3]) {
    for (const critical of [false, true]) {
      const run = simulate(fleet({
        seed,
        events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', critical } }],
        failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.03, installFailure: 0.01 } } },
      }));
      const created = run.of('rollout.created')[0]!;
      const bound = critical ? 21 * DAY : 56 * DAY;
      const took = completedAt(run, created.rolloutId) - publishAt(run, '1.1.0.0');
      assert.ok(took <= bound, `seed ${seed}, ${created.profile}: took ${(took / DAY).toFixed(1)} days`);
      // Every eligible instance ended on the new version (retries succeeded) or is blocked by a failed rollback (R31).
      const left = [...run.engine.state.fleet.instances.get('extension:contoso.agent')!.values()].filter((i) => i.installedVersion !== '1.1.0.0' && !i.blockedReason);
      assert.deepEqual(left.map((i) => i.machineId), [], `seed ${seed}, ${created.profile}`);
      retried += run.of('instance.upgrade.started').filter((e) => e.attempt > 1).length;
    }
  }
  assert.ok(retried > 0, 'some instances needed a retry (the case under test happened)');
});

// ---- R41 -----------------------------------------------------------------------------------------

test('R41: machines of one subscription get a release at different times, across phases and batches', () => {
  const run = simulate(fleet());
  const created = run.of('rollout.created')[0]!;
  assert.ok(created.phases.length >= 3, `phases ${JSON.stringify(created.phases)}`);
  const phaseOf = new Map(created.phases.flatMap((regions, k) => regions.map((r) => [r, k] as const)));
  const bySub = new Map<string, { phases: Set<number>; batches: Set<string>; times: number[] }>();
  for (const e of run.of('instance.upgrade.succeeded')) {
    const sub = e.placement.subscription;
    if (!bySub.has(sub)) bySub.set(sub, { phases: new Set(), batches: new Set(), times: [] });
    const s = bySub.get(sub)!;
    s.phases.add(phaseOf.get(e.placement.region)!);
    s.batches.add(e.batchId);
    s.times.push(Date.parse(e.time));
  }
  // prod has machines in eastus, westus, westeurope and eastasia: several phases, days apart.
  const prod = bySub.get('prod')!;
  assert.ok(prod.phases.size >= 2, `prod upgraded in phases ${[...prod.phases].join(', ')}`);
  assert.ok(Math.max(...prod.times) - Math.min(...prod.times) >= 3 * DAY, 'some of prod\'s machines get it days before others');
  for (const [sub, s] of bySub) {
    assert.ok(s.batches.size >= 2, `${sub}: all machines in one batch`);
    assert.ok(new Set(s.times).size >= 2, `${sub}: all machines upgraded at the same instant`);
  }
});

test('R41: each batch is one region and one subscription, and a release reaches regions one phase after another', () => {
  const run = simulate(fleet({ events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', critical: true } }] }));
  const machines = run.engine.state.fleet.machines;
  for (const b of run.of('batch.started')) {
    for (const id of b.instances) {
      const p = machines.get(id)!.placement;
      assert.equal(p.region, b.scope.region, `${b.batchId}: ${id} from another region`);
      assert.equal(p.subscription, b.scope.subscription, `${b.batchId}: ${id} from another subscription`);
    }
  }
  const created = run.of('rollout.created')[0]!;
  assert.ok(created.phases.length >= 2, 'even a critical release goes in phases');
  assert.equal(created.phases[0]!.length, 1, 'one canary region first');
  const firstByRegion = new Map<string, number>();
  for (const e of run.of('instance.upgrade.started')) if (!firstByRegion.has(e.placement.region)) firstByRegion.set(e.placement.region, Date.parse(e.time));
  const canary = firstByRegion.get(created.phases[0]![0]!)!;
  for (const region of created.phases.slice(1).flat()) {
    assert.ok(firstByRegion.get(region)! - canary >= PROFILES.critical.phaseBakeMs, `${region} started less than a bake after the canary`);
  }
});
