/**
 * Health gates R20–R25, proved two ways: the real engine driven by hand on a manual clock with a
 * driver that only records actions (exact timing), and the simulator on inline scenarios (the whole
 * event log, checked as a property).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { refreshMachineHealth } from '../src/engine/state.js';
import type { HealthSignals } from '../src/model/health.js';
import { isInstanceHealthy, isMachineHealthy, unhealthyReason } from '../src/model/health.js';
import { baseScenario, simulate } from './helpers/harness.js';
import { DAY, HOUR, KEY, MIN, Rig, SEC, SETTINGS } from './helpers/rig.js';

interface SetSpec {
  name: string;
  capacity: number;
  region?: string;
  updateDomains?: number;
  applicationHealth?: boolean;
  healthGracePeriod?: string;
  rolling?: Record<string, unknown>;
}

/** A small fleet of scale sets (and optional standalone VMs) in regions without zones. */
function rigScenario(sets: SetSpec[], extra: { vms?: unknown[]; profiles?: unknown } = {}): Record<string, unknown> {
  return {
    name: 'rig',
    start: '2026-01-05T00:00:00Z',
    seed: 7,
    regions: [
      { name: 'west', pair: null, zones: [] },
      { name: 'east', pair: null, zones: [] },
    ],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true, settings: SETTINGS } },
    fleet: {
      scaleSets: sets.map((s) => ({
        name: s.name,
        region: s.region ?? 'west',
        subscription: 'sub1',
        capacity: s.capacity,
        extensions: ['agent'],
        ...(s.updateDomains ? { updateDomains: s.updateDomains } : {}),
        ...(s.applicationHealth ? { applicationHealth: true } : {}),
        ...(s.healthGracePeriod ? { healthGracePeriod: s.healthGracePeriod } : {}),
        ...(s.rolling ? { upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: s.rolling } } : {}),
      })),
      ...(extra.vms ? { vms: extra.vms } : {}),
    },
    ...(extra.profiles ? { profiles: extra.profiles } : {}),
  };
}

const HEALTHY: HealthSignals = { platform: true };
const DOWN: HealthSignals = { platform: false };

/** A 10-instance set, 5 update domains: batches of 2 ([ss/0, ss/5], [ss/1, ss/6], ...). */
function tenInstanceRig(rolling?: Record<string, unknown>): Rig {
  const rig = new Rig(rigScenario([{ name: 'ss', capacity: 10, ...(rolling ? { rolling } : {}) }]));
  return rig;
}

// ---- R20 ----------------------------------------------------------------------------------------

describe('R20 pre-batch health gate', () => {
  test('R20: a set with 3 of 10 instances unhealthy before its first batch is held: gate.held observed 30, no batch, no action', () => {
    const rig = tenInstanceRig();
    for (const id of ['ss/2', 'ss/3', 'ss/4']) rig.report(id, DOWN);
    rig.at(0);
    rig.publish('1.1.0.0');

    const held = rig.of('gate.held');
    assert.equal(held.length, 1);
    assert.equal(held[0]!.gate, 'maxUnhealthyInstancePercent');
    assert.equal(held[0]!.rule, 'R20');
    assert.equal(held[0]!.observed, 30);
    assert.equal(held[0]!.limit, 20);
    assert.ok(held[0]!.observed > held[0]!.limit);
    assert.equal(held[0]!.scope.setId, 'ss');
    assert.equal(rig.batchesOf('ss').length, 0);
    assert.equal(rig.driver.sent.length, 0);
  });

  test('R20: a held set starts its batch at the first recheck after health returns, not before', () => {
    const rig = tenInstanceRig();
    for (const id of ['ss/2', 'ss/3', 'ss/4']) rig.report(id, DOWN);
    rig.at(0);
    rig.publish('1.1.0.0');
    // Health returns 20 minutes later; the gate looks again an hour after the hold (profile.gateRecheckMs).
    for (const id of ['ss/2', 'ss/3', 'ss/4']) rig.report(id, HEALTHY);
    rig.at(20 * MIN);
    rig.at(HOUR - 1);
    assert.equal(rig.batchesOf('ss').length, 0, 'no batch may start while held');
    assert.equal(rig.driver.sent.length, 0);
    rig.at(HOUR);
    const batches = rig.batchesOf('ss');
    assert.equal(batches.length, 1);
    assert.equal(batches[0]!.time, rig.iso(HOUR));
    assert.deepEqual(batches[0]!.instances, ['ss/0', 'ss/5']);
    assert.deepEqual(rig.driver.sent.map((a) => [a.kind, a.machineId]), [['upgrade', 'ss/0'], ['upgrade', 'ss/5']]);
  });

  test('R20: a set still unhealthy at the recheck is held again, an hour later each time', () => {
    const rig = tenInstanceRig();
    for (const id of ['ss/2', 'ss/3', 'ss/4']) rig.report(id, DOWN);
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.at(HOUR);
    rig.at(2 * HOUR);
    const held = rig.of('gate.held');
    assert.deepEqual(held.map((e) => e.time), [rig.iso(0), rig.iso(HOUR), rig.iso(2 * HOUR)]);
    assert.ok(held.every((e) => e.observed === 30 && e.rule === 'R20'));
    assert.equal(rig.batchesOf('ss').length, 0);
  });

  test('R20: exactly 20% unhealthy (2 of 10) is not more than the limit, so the batch starts', () => {
    const rig = tenInstanceRig();
    for (const id of ['ss/3', 'ss/4']) rig.report(id, DOWN);
    rig.at(0);
    rig.publish('1.1.0.0');
    assert.equal(rig.of('gate.held').length, 0);
    assert.equal(rig.batchesOf('ss').length, 1);
  });

  test('R20: the gate is checked before every batch, not only the first: unhealthiness during a pause holds the next batch', () => {
    const rig = tenInstanceRig({ pauseTimeBetweenBatches: 'PT10M' });
    rig.at(0);
    rig.publish('1.1.0.0');
    assert.equal(rig.batchesOf('ss').length, 1);
    rig.answer('ss/0', 'upgrade', true);
    rig.answer('ss/5', 'upgrade', true);
    rig.at(MIN);
    rig.report('ss/0', HEALTHY);
    rig.report('ss/5', HEALTHY);
    rig.at(2 * MIN); // the batch completes, healthy; the set pauses 10 minutes
    assert.equal(rig.of('batch.completed').length, 1);
    assert.equal(rig.of('gate.breached').length, 0, 'the set was healthy at the end of the batch');
    for (const id of ['ss/2', 'ss/3', 'ss/4']) rig.report(id, DOWN);
    rig.at(5 * MIN);
    rig.at(12 * MIN); // the pause ends
    const held = rig.of('gate.held');
    assert.equal(held.length, 1);
    assert.equal(held[0]!.rule, 'R20');
    assert.equal(held[0]!.observed, 30);
    assert.equal(held[0]!.time, rig.iso(12 * MIN));
    assert.equal(rig.batchesOf('ss').length, 1, 'the second batch must not start');
  });

  test('R20: a background episode on half of a set covering the rollout holds that set until health returns; another set proceeds', () => {
    const run = simulate(baseScenario({
      regions: [{ name: 'east', pair: null, zones: [] }],
      fleet: {
        scaleSets: [
          { name: 'sick', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] },
          { name: 'fine', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] },
        ],
      },
      // The release is published at PT1H; half of 'sick' is unhealthy from PT30M to PT6H30M.
      failures: { background: [{ at: 'PT30M', duration: 'PT6H', scaleSet: 'sick', share: 0.5 }] },
    }));
    const start = Date.parse('2026-01-05T00:00:00Z');
    const episodeEnd = start + 6.5 * HOUR;
    const held = run.of('gate.held').filter((e) => e.scope.setId === 'sick');
    assert.ok(held.length > 0, 'the sick set must be held');
    for (const h of held) {
      assert.equal(h.gate, 'maxUnhealthyInstancePercent');
      assert.equal(h.rule, 'R20');
      assert.equal(h.limit, 20);
      assert.ok(h.observed > h.limit, `observed ${h.observed}`);
      assert.ok(Date.parse(h.time) < episodeEnd);
    }
    // Held at PT1H and at every hourly recheck until the episode ends at PT6H30M.
    assert.deepEqual(held.map((h) => Date.parse(h.time) - start), [1, 2, 3, 4, 5, 6].map((h) => h * HOUR));
    const sickBatches = run.of('batch.started').filter((b) => b.scope.setId === 'sick');
    assert.ok(sickBatches.length > 0);
    assert.equal(Date.parse(sickBatches[0]!.time), start + 7 * HOUR, 'the first batch starts at the first recheck after health returned');
    assert.ok(run.of('gate.held').every((e) => e.scope.setId === 'sick'), 'the healthy set is never held');
    const fineFirst = run.of('batch.started').find((b) => b.scope.setId === 'fine');
    assert.equal(fineFirst?.time, '2026-01-05T01:00:00.000Z');
    const succeeded = new Set(run.of('instance.upgrade.succeeded').map((e) => e.machineId));
    for (let i = 0; i < 10; i++) assert.ok(succeeded.has(`sick/${i}`), `sick/${i} upgraded in the end`);
  });
});

// ---- R21 ----------------------------------------------------------------------------------------

describe('R21 health window', () => {
  /** One single-instance set with the default window; the upgrade finishes at 1 minute. */
  function upgradedAtOneMinute(set: SetSpec = { name: 'ss', capacity: 1 }): Rig {
    const rig = new Rig(rigScenario([set]));
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer(`${set.name}/0`, 'upgrade', true);
    rig.at(MIN);
    return rig;
  }

  test('R21: a healthy report 4m59s after the upgrade is in time: the instance is judged healthy and not rolled back', () => {
    const rig = upgradedAtOneMinute();
    rig.report('ss/0', HEALTHY);
    rig.at(MIN + 4 * MIN + 59 * SEC);
    const ok = rig.of('instance.upgrade.succeeded', 'ss/0');
    assert.equal(ok.length, 1);
    assert.equal(ok[0]!.time, rig.iso(MIN + 4 * MIN + 59 * SEC));
    rig.at(MIN + 30 * MIN);
    assert.equal(rig.of('instance.health.unhealthy').length, 0);
    assert.equal(rig.actions('ss/0', 'rollback').length, 0);
    assert.equal(rig.inst('ss/0').installedVersion, '1.1.0.0');
    assert.equal(rig.inst('ss/0').lastKnownGoodVersion, '1.1.0.0');
  });

  test('R21: no verdict before the five minutes are up; at 5m without a healthy report the instance is judged unhealthy', () => {
    const rig = upgradedAtOneMinute();
    rig.at(MIN + 5 * MIN - 1);
    assert.equal(rig.of('instance.health.unhealthy').length, 0);
    assert.equal(rig.of('instance.upgrade.succeeded').length, 0);
    assert.equal(rig.actions('ss/0', 'rollback').length, 0);
    rig.at(MIN + 5 * MIN);
    const bad = rig.of('instance.health.unhealthy', 'ss/0');
    assert.equal(bad.length, 1);
    assert.equal(bad[0]!.time, rig.iso(6 * MIN));
    assert.match(bad[0]!.reason ?? '', /300 s/);
    assert.equal(rig.actions('ss/0', 'rollback').length, 1);
  });

  test('R21: a healthy report after the window does not turn the verdict around', () => {
    const rig = upgradedAtOneMinute();
    rig.at(6 * MIN);
    rig.report('ss/0', HEALTHY);
    rig.at(6 * MIN + SEC);
    assert.equal(rig.of('instance.upgrade.succeeded').length, 0);
    assert.equal(rig.of('instance.health.unhealthy').length, 1);
    assert.equal(rig.inst('ss/0').lastKnownGoodVersion, '1.0.0.0');
  });

  test('R21: the engine waits the whole window: an unhealthy first report followed by a healthy one in time is a success', () => {
    const rig = upgradedAtOneMinute();
    rig.report('ss/0', DOWN);
    rig.at(2 * MIN);
    assert.equal(rig.of('instance.health.unhealthy').length, 0, 'an early unhealthy report is not a verdict');
    rig.report('ss/0', HEALTHY);
    rig.at(5 * MIN);
    assert.equal(rig.of('instance.upgrade.succeeded', 'ss/0').length, 1);
    rig.at(20 * MIN);
    assert.equal(rig.of('instance.health.unhealthy').length, 0);
  });

  test('R21: a scale set with a 10-minute healthGracePeriod waits 10 minutes: healthy at 9m59s is in time', () => {
    const rig = upgradedAtOneMinute({ name: 'slow', capacity: 1, healthGracePeriod: 'PT10M' });
    rig.at(MIN + 5 * MIN);
    assert.equal(rig.of('instance.health.unhealthy').length, 0, 'the default five minutes do not apply');
    rig.report('slow/0', HEALTHY);
    rig.at(MIN + 9 * MIN + 59 * SEC);
    assert.equal(rig.of('instance.upgrade.succeeded', 'slow/0').length, 1);
    assert.equal(rig.actions('slow/0', 'rollback').length, 0);
  });

  test('R21: a scale set with a 10-minute healthGracePeriod judges a silent instance unhealthy at exactly 10 minutes', () => {
    const rig = upgradedAtOneMinute({ name: 'slow', capacity: 1, healthGracePeriod: 'PT10M' });
    rig.at(MIN + 10 * MIN - 1);
    assert.equal(rig.of('instance.health.unhealthy').length, 0);
    rig.at(MIN + 10 * MIN);
    const bad = rig.of('instance.health.unhealthy', 'slow/0');
    assert.equal(bad.length, 1);
    assert.equal(bad[0]!.time, rig.iso(11 * MIN));
    assert.match(bad[0]!.reason ?? '', /600 s/);
  });

  test('R21: in simulation, instances that report healthy only after 15 minutes fail the default window but pass a 30-minute grace period', () => {
    const scenario = (grace?: string) => baseScenario({
      regions: [{ name: 'east', pair: null, zones: [] }],
      fleet: { scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 5, extensions: ['agent'], ...(grace ? { healthGracePeriod: grace } : {}) }] },
      failures: { versions: { '1.1.0.0': { healthSeconds: { median: 900, p95: 960 }, installSeconds: { median: 30, p95: 40 } } } },
      horizon: 'P1D',
    });
    const strict = simulate(scenario());
    assert.equal(strict.of('instance.upgrade.succeeded').length, 0);
    assert.ok(strict.of('instance.health.unhealthy').length > 0);
    const upgradeAt = new Map(strict.of('instance.upgrade.started').map((e) => [`${e.machineId}#${e.attempt}`, Date.parse(e.time)]));
    for (const e of strict.of('instance.health.unhealthy')) {
      const waited = Date.parse(e.time) - upgradeAt.get(`${e.machineId}#${e.attempt}`)!;
      assert.ok(waited >= 5 * MIN, `${e.machineId} judged ${waited} ms after its upgrade started`);
    }
    const patient = simulate(scenario('PT30M'));
    assert.equal(patient.of('instance.health.unhealthy').length, 0);
    assert.equal(new Set(patient.of('instance.upgrade.succeeded').map((e) => e.machineId)).size, 5);
  });
});

// ---- R22 ----------------------------------------------------------------------------------------

describe('R22 rollback of instances unhealthy past the window', () => {
  test('R22: an instance that stays unhealthy past the health window is rolled back to last-known-good with the same settings', () => {
    const rig = new Rig(rigScenario([{ name: 'ss', capacity: 1 }]));
    rig.at(0);
    rig.publish('1.1.0.0');
    const up = rig.actions('ss/0', 'upgrade');
    assert.equal(up.length, 1);
    assert.deepEqual(up[0]!.settings, SETTINGS);
    rig.answer('ss/0', 'upgrade', true);
    rig.at(MIN);
    rig.report('ss/0', DOWN);
    rig.at(3 * MIN);
    rig.at(6 * MIN);
    const back = rig.actions('ss/0', 'rollback');
    assert.equal(back.length, 1);
    assert.equal(back[0]!.toVersion, '1.0.0.0');
    assert.equal(back[0]!.fromVersion, '1.1.0.0');
    assert.deepEqual(back[0]!.settings, SETTINGS);
    assert.deepEqual(back[0]!.artifact, { kind: 'extension', publisher: 'Contoso', type: 'Agent' });
    const started = rig.of('instance.rollback.started', 'ss/0');
    assert.equal(started.length, 1);
    assert.equal(started[0]!.toVersion, '1.0.0.0');
    assert.equal(started[0]!.time, rig.iso(6 * MIN));
    assert.match(started[0]!.reason ?? '', /platform/);
    rig.answer('ss/0', 'rollback', true);
    rig.at(7 * MIN);
    const inst = rig.inst('ss/0');
    assert.equal(inst.installedVersion, '1.0.0.0');
    assert.equal(inst.lastKnownGoodVersion, '1.0.0.0');
    assert.equal(inst.status, 'Succeeded');
    assert.equal(rig.of('instance.rollback.succeeded', 'ss/0')[0]?.toVersion, '1.0.0.0');
  });

  test('R22: the rollback targets the last version that ran healthy, not the original one', () => {
    const rig = new Rig(rigScenario([{ name: 'ss', capacity: 1 }]));
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer('ss/0', 'upgrade', true);
    rig.at(MIN);
    rig.report('ss/0', HEALTHY);
    rig.at(2 * MIN);
    assert.equal(rig.inst('ss/0').lastKnownGoodVersion, '1.1.0.0');
    assert.equal(rig.of('rollout.completed').length, 1);
    rig.at(DAY);
    rig.publish('1.2.0.0');
    rig.answer('ss/0', 'upgrade', true);
    rig.at(DAY + MIN);
    rig.at(DAY + 6 * MIN);
    const back = rig.actions('ss/0', 'rollback');
    assert.equal(back.length, 1);
    assert.equal(back[0]!.fromVersion, '1.2.0.0');
    assert.equal(back[0]!.toVersion, '1.1.0.0');
    assert.deepEqual(back[0]!.settings, SETTINGS);
    rig.answer('ss/0', 'rollback', true);
    rig.at(DAY + 7 * MIN);
    assert.equal(rig.inst('ss/0').installedVersion, '1.1.0.0');
    assert.equal(rig.inst('ss/0').status, 'Succeeded');
  });

  test('R22: in simulation every unhealthy verdict is followed at once by a rollback to the version the instance had before', () => {
    const run = simulate(baseScenario({
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.5 } } },
      // R23 would stop each set and group after its first bad batch; lift it to see many verdicts.
      profiles: { standard: { maxPhaseFailurePercent: 100, phaseBake: 'PT1H', groupMaxUnhealthyUpgradedPercent: 100 } },
      fleet: { ...(baseScenario().fleet as object), scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'], upgradePolicy: { rollingUpgradePolicy: { maxUnhealthyUpgradedInstancePercent: 100 } } }] },
      horizon: 'P3D',
    }));
    const unhealthy = run.of('instance.health.unhealthy');
    assert.ok(unhealthy.length >= 5, `expected several unhealthy verdicts, got ${unhealthy.length}`);
    const rollbacks = run.of('instance.rollback.started');
    for (const u of unhealthy) {
      const r = rollbacks.find((x) => x.machineId === u.machineId && x.attempt === u.attempt && x.rolloutId === u.rolloutId);
      assert.ok(r, `no rollback after the unhealthy verdict on ${u.machineId}`);
      assert.equal(r.time, u.time);
      assert.ok(r.seq > u.seq);
      assert.equal(r.toVersion, '1.0.0.0');
      assert.equal(u.fromVersion, '1.0.0.0');
    }
    // And nothing healthy is rolled back.
    for (const r of rollbacks) {
      assert.ok(unhealthy.some((u) => u.machineId === r.machineId && u.attempt === r.attempt) || run.of('instance.upgrade.failed').some((f) => f.machineId === r.machineId && f.attempt === r.attempt), `${r.machineId} rolled back without a verdict`);
    }
  });
});

// ---- R23 ----------------------------------------------------------------------------------------

describe('R23 unhealthy share of upgraded instances', () => {
  test('R23: a version unhealthy on every machine stops the scale set after its first batch (observed 100)', () => {
    const run = simulate(baseScenario({
      regions: [{ name: 'east', pair: null, zones: [] }],
      fleet: { scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] }] },
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } },
    }));
    const breached = run.of('gate.breached').filter((e) => e.rule === 'R23');
    assert.equal(breached.length, 1);
    assert.equal(breached[0]!.gate, 'maxUnhealthyUpgradedInstancePercent');
    assert.equal(breached[0]!.observed, 100);
    assert.equal(breached[0]!.limit, 20);
    assert.equal(breached[0]!.scope.setId, 'ss');
    const batches = run.of('batch.started').filter((b) => b.scope.setId === 'ss');
    assert.equal(batches.length, 1);
    const attempted = new Set(run.of('instance.upgrade.started').map((e) => e.machineId));
    assert.deepEqual([...attempted].sort(), [...batches[0]!.instances].sort(), 'only the first batch of the set was attempted');
    assert.ok(attempted.size < 10);
    const firstCompleted = run.of('batch.completed')[0]!;
    assert.equal(breached[0]!.time, firstCompleted.time);
  });

  test('R23: a bad release fails the canary phase and stops the rollout; no later phase starts', () => {
    const run = simulate(baseScenario({ failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } } }));
    const created = run.of('rollout.created')[0]!;
    assert.ok(created.phases.length > 1, 'the rollout was planned in several phases');
    const canary = created.phases[0]!;
    assert.deepEqual(run.of('phase.started').map((p) => p.phase), [0]);
    const failed = run.of('phase.failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.phase, 0);
    const stopped = run.of('rollout.stopped');
    assert.equal(stopped.length, 1);
    assert.ok(stopped[0]!.seq > failed[0]!.seq);
    assert.equal(run.of('rollout.completed').length, 0);
    assert.equal(run.of('phase.completed').length, 0);
    for (const e of run.of('instance.upgrade.started')) assert.ok(canary.includes(e.placement.region), `${e.machineId} in ${e.placement.region} was upgraded outside the canary phase`);
  });

  /**
   * Runs the set's batch that started at `t`: every upgrade finishes at t+1m, the instances not in `bad`
   * report healthy at t+2m, `bad` ones stay silent, are judged at t+6m and rolled back by t+7m.
   * Returns when the batch completed.
   */
  function runBatch(rig: Rig, t: number, instances: readonly string[], bad: readonly string[]): number {
    for (const id of instances) rig.answer(id, 'upgrade', true);
    rig.at(t + MIN);
    for (const id of instances) if (!bad.includes(id)) rig.report(id, HEALTHY);
    rig.at(t + 2 * MIN);
    if (bad.length === 0) return t + 2 * MIN;
    rig.at(t + 6 * MIN);
    for (const id of bad) rig.answer(id, 'rollback', true);
    rig.at(t + 7 * MIN);
    return t + 7 * MIN;
  }

  /**
   * 20 instances in one update domain, batches of 4; at the default 20% limit a full batch tolerates no
   * failure, so the set starts with a batch of one (R40's smaller first batch, planner/units.ts).
   */
  function bigSet(rolling: Record<string, unknown> = {}, firstBatch = 4): Rig {
    const rig = new Rig(rigScenario(
      [{ name: 'big', capacity: 20, updateDomains: 1, rolling: { maxBatchInstancePercent: 20, ...rolling } }],
      { profiles: { standard: { maxPhaseFailurePercent: 100 } } },
    ));
    rig.at(0);
    rig.publish('1.1.0.0');
    assert.equal(rig.batchesOf('big')[0]?.instances.length, firstBatch, `precondition: a first batch of ${firstBatch}`);
    return rig;
  }

  test('R23: the share is over the set\'s current run, not one batch: 0 of 1, 1 of 4, then 1 of 4 stops the set at 20%', () => {
    const rig = bigSet({}, 1);
    let t = runBatch(rig, 0, rig.batchesOf('big')[0]!.instances, []);
    const b1 = rig.batchesOf('big')[1]!;
    assert.equal(b1.time, rig.iso(t));
    assert.equal(b1.instances.length, 4);
    t = runBatch(rig, t, b1.instances, [b1.instances[0]!]);
    assert.equal(rig.of('gate.breached').length, 0, '1 of 5 upgraded (20%) is within the limit, although that batch alone had 25%');
    const b2 = rig.batchesOf('big')[2]!;
    assert.equal(b2.time, rig.iso(t), 'the third batch starts at once');
    const end = runBatch(rig, t, b2.instances, b2.instances.slice(0, 1));
    const breached = rig.of('gate.breached');
    assert.equal(breached.length, 1);
    assert.equal(breached[0]!.rule, 'R23');
    assert.equal(breached[0]!.gate, 'maxUnhealthyUpgradedInstancePercent');
    assert.ok(Math.abs(breached[0]!.observed - 22.22) < 0.01, `${breached[0]!.observed}: 2 of the 9 upgraded in this run`);
    assert.equal(breached[0]!.limit, 20);
    assert.equal(breached[0]!.scope.setId, 'big');
    assert.equal(breached[0]!.time, rig.iso(end));
    // The set stays stopped for the retry interval (3 days on scale sets), retries included.
    rig.at(t + 3 * DAY);
    rig.at(end + 3 * DAY - 1);
    assert.equal(rig.batchesOf('big').length, 3, 'nothing of the set starts while it is stopped');
    assert.equal(rig.driver.sent.filter((a) => a.kind === 'upgrade').length, 9);
    rig.at(end + 3 * DAY);
    const resumed = rig.batchesOf('big');
    assert.equal(resumed.length, 4);
    assert.equal(resumed[3]!.time, rig.iso(end + 3 * DAY));
  });

  test('R23: exactly at the limit goes on: 1 of 4 upgraded instances unhealthy with a 25% limit does not stop the set', () => {
    const rig = bigSet({ maxUnhealthyUpgradedInstancePercent: 25 });
    const b0 = rig.batchesOf('big')[0]!;
    const end = runBatch(rig, 0, b0.instances, [b0.instances[0]!]);
    assert.equal(rig.of('gate.breached').length, 0);
    const batches = rig.batchesOf('big');
    assert.equal(batches.length, 2);
    assert.equal(batches[1]!.time, rig.iso(end));
  });

  test('R23: one more than the limit stops it: 2 of 4 with a 25% limit (observed 50)', () => {
    const rig = bigSet({ maxUnhealthyUpgradedInstancePercent: 25 });
    const b0 = rig.batchesOf('big')[0]!;
    runBatch(rig, 0, b0.instances, b0.instances.slice(0, 2));
    const breached = rig.of('gate.breached');
    assert.equal(breached.length, 1);
    assert.equal(breached[0]!.observed, 50);
    assert.equal(breached[0]!.limit, 25);
    assert.equal(rig.batchesOf('big').length, 1);
  });

  test('R23: after a breach, a new run of the set starts after the retry interval with fresh counters and stops again after one bad batch', () => {
    const run = simulate(baseScenario({
      regions: [{ name: 'east', pair: null, zones: [] }],
      fleet: { scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] }] },
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } },
      profiles: { standard: { maxPhaseFailurePercent: 100 } },
      horizon: 'P8D',
    }));
    const breaches = run.of('gate.breached').filter((e) => e.rule === 'R23');
    assert.ok(breaches.length >= 2);
    const batches = run.of('batch.started');
    for (const br of breaches) {
      assert.equal(br.observed, 100);
      const t = Date.parse(br.time);
      const inRun = batches.filter((b) => Date.parse(b.time) > t && Date.parse(b.time) < t + 3 * DAY);
      assert.deepEqual(inRun.map((b) => b.batchId), [], `batches started within 3 days of the breach at ${br.time}`);
    }
    const second = batches[1]!;
    assert.equal(Date.parse(second.time), Date.parse(breaches[0]!.time) + 3 * DAY);
    // Each run is one batch: breaches and batches alternate.
    const order = run.events.filter((e) => (e.type === 'batch.started') || (e.type === 'gate.breached' && e.rule === 'R23')).map((e) => e.type);
    for (let i = 0; i + 1 < order.length; i += 2) assert.deepEqual(order.slice(i, i + 2), ['batch.started', 'gate.breached']);
  });

  test('R23: a breach stops the whole scale set, including its instances in the other zones of the region', () => {
    const run = simulate(baseScenario({
      regions: [{ name: 'east', pair: null, zones: ['1', '2', '3'] }],
      fleet: { scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'] }] },
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } },
      profiles: { standard: { maxPhaseFailurePercent: 100 } },
      horizon: 'P2D',
    }));
    const breach = run.of('gate.breached').find((e) => e.rule === 'R23' && e.scope.setId === 'ss');
    assert.ok(breach);
    const t = Date.parse(breach.time);
    const after = run.of('batch.started').filter((b) => b.scope.setId === 'ss' && Date.parse(b.time) >= t && Date.parse(b.time) < t + 3 * DAY);
    assert.deepEqual(after.map((b) => `${b.batchId} at ${b.time}`), [], 'no batch of the stopped set may start within its retry interval');
    const firstBatch = run.of('batch.started')[0]!;
    assert.equal(new Set(run.of('instance.upgrade.started').filter((e) => Date.parse(e.time) < t + 3 * DAY).map((e) => e.machineId)).size, firstBatch.instances.length);
  });
});

// ---- R24 ----------------------------------------------------------------------------------------

describe('R24 unhealthiness from other activity during a batch', () => {
  /** Batch [ss/0, ss/5] runs from 0 to 3 minutes; `sickDuringBatch` turn unhealthy at 1 minute. */
  function batchWithEpisode(sickDuringBatch: string[]): Rig {
    const rig = tenInstanceRig();
    rig.at(0);
    rig.publish('1.1.0.0');
    assert.deepEqual(rig.batchesOf('ss')[0]!.instances, ['ss/0', 'ss/5']);
    for (const id of sickDuringBatch) rig.report(id, DOWN);
    rig.at(MIN);
    rig.answer('ss/0', 'upgrade', true);
    rig.answer('ss/5', 'upgrade', true);
    rig.at(2 * MIN);
    rig.report('ss/0', HEALTHY);
    rig.report('ss/5', HEALTHY);
    rig.at(3 * MIN);
    return rig;
  }

  test('R24: an episode that starts during a batch stops the set at the end of that batch (gate.breached rule R24)', () => {
    const rig = batchWithEpisode(['ss/1', 'ss/2', 'ss/3']);
    // The batch in flight finished normally.
    assert.equal(rig.of('instance.upgrade.succeeded').length, 2);
    assert.equal(rig.of('batch.completed').length, 1);
    const breached = rig.of('gate.breached');
    assert.equal(breached.length, 1);
    assert.equal(breached[0]!.rule, 'R24');
    assert.equal(breached[0]!.gate, 'maxUnhealthyInstancePercent');
    assert.equal(breached[0]!.observed, 30);
    assert.equal(breached[0]!.limit, 20);
    assert.equal(breached[0]!.scope.setId, 'ss');
    assert.equal(breached[0]!.time, rig.iso(3 * MIN));
    assert.ok(breached[0]!.seq > rig.of('batch.completed')[0]!.seq);
    assert.equal(rig.batchesOf('ss').length, 1, 'the next batch does not start');
    assert.equal(rig.driver.sent.length, 2);
  });

  test('R24: the stopped set looks again after the recheck interval and goes on once health returned', () => {
    const rig = batchWithEpisode(['ss/1', 'ss/2', 'ss/3']);
    for (const id of ['ss/1', 'ss/2', 'ss/3']) rig.report(id, HEALTHY);
    rig.at(30 * MIN);
    rig.at(3 * MIN + HOUR - 1);
    assert.equal(rig.batchesOf('ss').length, 1);
    rig.at(3 * MIN + HOUR);
    const batches = rig.batchesOf('ss');
    assert.equal(batches.length, 2);
    assert.equal(batches[1]!.time, rig.iso(3 * MIN + HOUR));
    assert.deepEqual(batches[1]!.instances, ['ss/1', 'ss/6']);
  });

  test('R24: a set still unhealthy at the recheck stays held by the pre-batch gate', () => {
    const rig = batchWithEpisode(['ss/1', 'ss/2', 'ss/3']);
    rig.at(3 * MIN + HOUR);
    const held = rig.of('gate.held');
    assert.equal(held.length, 1);
    assert.equal(held[0]!.rule, 'R20');
    assert.equal(held[0]!.observed, 30);
    assert.equal(rig.batchesOf('ss').length, 1);
  });

  test('R24: other activity that keeps the set within the limit (2 of 10) lets the next batch start at once', () => {
    const rig = batchWithEpisode(['ss/1', 'ss/2']);
    assert.equal(rig.of('gate.breached').length, 0);
    const batches = rig.batchesOf('ss');
    assert.equal(batches.length, 2);
    assert.equal(batches[1]!.time, rig.iso(3 * MIN));
  });
});

// ---- R25 ----------------------------------------------------------------------------------------

describe('R25 health signals', () => {
  test('R25: the machine is healthy only when the platform answers and the application probe (where there is one) passes', () => {
    const rows: Array<[HealthSignals, boolean]> = [
      [{ platform: true }, true],
      [{ platform: true, application: true }, true],
      [{ platform: false }, false],
      [{ platform: false, application: true }, false],
      [{ platform: true, application: false }, false],
      [{ platform: false, application: false }, false],
    ];
    for (const [signals, healthy] of rows) assert.equal(isMachineHealthy(signals), healthy, JSON.stringify(signals));
  });

  test('R25: the instance is healthy only with a healthy machine and a Succeeded provisioning state; the reason names the failing signal', () => {
    const ok: HealthSignals = { platform: true, application: true };
    assert.equal(isInstanceHealthy(ok, 'Succeeded'), true);
    assert.equal(unhealthyReason(ok, 'Succeeded'), null);
    assert.equal(isInstanceHealthy(ok, 'Failed'), false);
    assert.match(unhealthyReason(ok, 'Failed')!, /provisioning state Failed/);
    assert.equal(isInstanceHealthy(ok, 'Transitioning'), false);
    assert.equal(isInstanceHealthy({ platform: false, application: true }, 'Succeeded'), false);
    assert.match(unhealthyReason({ platform: false, application: true }, 'Succeeded')!, /platform/);
    assert.equal(isInstanceHealthy({ platform: true, application: false }, 'Succeeded'), false);
    assert.match(unhealthyReason({ platform: true, application: false }, 'Succeeded')!, /application/);
  });

  const signalRows: Array<[string, HealthSignals, RegExp]> = [
    ['platform health failing alone', { platform: false, application: true }, /platform/],
    ['application health failing alone', { platform: true, application: false }, /application/],
  ];
  for (const [name, signals, reason] of signalRows) {
    test(`R25: ${name} makes an upgraded instance unhealthy and it is rolled back`, () => {
      const rig = new Rig(rigScenario([{ name: 'app', capacity: 1, applicationHealth: true }]));
      rig.at(0);
      rig.publish('1.1.0.0');
      rig.answer('app/0', 'upgrade', true);
      rig.at(MIN);
      rig.report('app/0', signals);
      rig.at(2 * MIN);
      assert.equal(rig.of('instance.upgrade.succeeded').length, 0);
      rig.at(6 * MIN);
      const bad = rig.of('instance.health.unhealthy', 'app/0');
      assert.equal(bad.length, 1);
      assert.match(bad[0]!.reason ?? '', reason);
      assert.equal(rig.actions('app/0', 'rollback').length, 1);
      assert.ok(rig.engine.state.fleet.unhealthy.has('app/0'), 'the machine counts as unhealthy');
    });
  }

  test('R25: both signals healthy on a set with an application probe: the upgrade succeeds', () => {
    const rig = new Rig(rigScenario([{ name: 'app', capacity: 1, applicationHealth: true }]));
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer('app/0', 'upgrade', true);
    rig.at(MIN);
    rig.report('app/0', { platform: true, application: true });
    rig.at(2 * MIN);
    assert.equal(rig.of('instance.upgrade.succeeded', 'app/0').length, 1);
  });

  test('R25: a failed extension provisioning state alone makes the instance unhealthy: healthy machine signals do not save it', () => {
    const rig = new Rig(rigScenario([{ name: 'app', capacity: 1, applicationHealth: true }]));
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer('app/0', 'upgrade', false, 'extension handler exited with code 3');
    rig.report('app/0', { platform: true, application: true });
    rig.at(MIN);
    const failed = rig.of('instance.upgrade.failed', 'app/0');
    assert.equal(failed.length, 1);
    assert.match(failed[0]!.reason ?? '', /code 3/);
    assert.equal(rig.of('instance.upgrade.succeeded').length, 0);
    assert.equal(rig.inst('app/0').status, 'Failed');
    assert.ok(rig.engine.state.fleet.unhealthy.has('app/0'), 'a Failed extension makes the machine count as unhealthy');
    const back = rig.actions('app/0', 'rollback');
    assert.equal(back.length, 1);
    assert.equal(back[0]!.toVersion, '1.0.0.0');
  });

  test('R25: extensions in a Failed provisioning state count as unhealthy instances for the set gate (3 of 10 hold the batch)', () => {
    const rig = new Rig(rigScenario([{ name: 'ss', capacity: 10 }]), (s) => {
      for (const id of ['ss/2', 'ss/3', 'ss/4']) {
        s.state.fleet.instances.get(KEY)!.get(id)!.status = 'Failed';
        refreshMachineHealth(s.state.fleet, id);
      }
    });
    rig.at(0);
    rig.publish('1.1.0.0');
    const held = rig.of('gate.held');
    assert.equal(held.length, 1);
    assert.equal(held[0]!.observed, 30);
    assert.equal(rig.batchesOf('ss').length, 0);
  });

  test('R25: an application-probe failure counts as unhealthy for the set gate like a platform failure', () => {
    const rig = new Rig(rigScenario([{ name: 'app', capacity: 10, applicationHealth: true }]));
    for (const id of ['app/2', 'app/3', 'app/4']) rig.report(id, { platform: true, application: false });
    rig.at(0);
    rig.publish('1.1.0.0');
    assert.equal(rig.of('gate.held')[0]?.observed, 30);
    assert.equal(rig.batchesOf('app').length, 0);
  });

  test('R25: in simulation a broken version fails the application probe on a probed set and platform health elsewhere; both stop part way', () => {
    const run = simulate(baseScenario({
      regions: [{ name: 'east', pair: null, zones: [] }],
      fleet: {
        scaleSets: [
          { name: 'probed', region: 'east', subscription: 'sub1', capacity: 10, applicationHealth: true, extensions: ['agent'] },
          { name: 'plain', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] },
        ],
      },
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } },
    }));
    const bad = run.of('instance.health.unhealthy');
    const probed = bad.filter((e) => e.placement.setId === 'probed');
    const plain = bad.filter((e) => e.placement.setId === 'plain');
    assert.ok(probed.length > 0 && plain.length > 0);
    for (const e of probed) assert.match(e.reason ?? '', /application health probe/);
    for (const e of plain) assert.match(e.reason ?? '', /platform health/);
    for (const set of ['probed', 'plain']) {
      const br = run.of('gate.breached').filter((e) => e.rule === 'R23' && e.scope.setId === set);
      assert.equal(br.length, 1, `${set} stopped by R23`);
      const attempted = new Set(run.of('instance.upgrade.started').filter((e) => e.placement.setId === set).map((e) => e.machineId));
      assert.ok(attempted.size < 10, `${set}: ${attempted.size} of 10 attempted`);
    }
    assert.equal(run.of('rollout.stopped').length, 1);
  });
});
