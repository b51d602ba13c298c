/**
 * Failures, rollback and retries R30–R32, proved with the real engine driven by hand on a manual
 * clock (a driver that only records actions; the test answers for the machines), and with the
 * simulator on inline scenarios, checking the whole event log.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HealthSignals } from '../src/model/health.js';
import { baseScenario, simulate } from './helpers/harness.js';
import { DAY, HOUR, KEY, MIN, Rig, SETTINGS } from './helpers/rig.js';

const HEALTHY: HealthSignals = { platform: true };

/**
 * A small fleet in regions without zones: Arc machines in `north`, standalone VMs and scale sets in
 * `west`. Phase failures are not judged (maxPhaseFailurePercent 100) so that retries are what is tested.
 */
function fleetScenario(fleet: Record<string, unknown>, profile: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'rig',
    start: '2026-01-05T00:00:00Z',
    seed: 3,
    regions: [
      { name: 'west', pair: null, zones: [] },
      { name: 'north', pair: null, zones: [] },
    ],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true, settings: SETTINGS } },
    fleet,
    profiles: { standard: { maxPhaseFailurePercent: 100, ...profile } },
  };
}

const oneVm = { vms: [{ name: 'vm', region: 'west', subscription: 'sub1', count: 1, extensions: ['agent'] }] };
const oneArc = { arcMachines: [{ name: 'arc', region: 'north', subscription: 'sub2', count: 1, extensions: ['agent'] }] };
const oneScaleSetInstance = { scaleSets: [{ name: 'ss', region: 'west', subscription: 'sub1', capacity: 1, extensions: ['agent'] }] };
/** Two Arc machines in two subscriptions: two units that run side by side. */
const twoArcs = {
  arcMachines: [
    { name: 'a', region: 'north', subscription: 's1', count: 1, extensions: ['agent'] },
    { name: 'b', region: 'north', subscription: 's2', count: 1, extensions: ['agent'] },
  ],
};

/** Publishes 1.1.0.0 at 0; the install on `machineId` fails at 1 minute; the rollback succeeds at 2 minutes. */
function failedThenRolledBack(rig: Rig, machineId: string): void {
  rig.at(0);
  rig.publish('1.1.0.0');
  rig.answer(machineId, 'upgrade', false, 'install failed: exit code 1');
  rig.at(MIN);
  rig.answer(machineId, 'rollback', true);
  rig.at(2 * MIN);
}

// ---- R30 ----------------------------------------------------------------------------------------

describe('R30 rollback and retry', () => {
  test('R30: a failed install is rolled back by reinstalling last-known-good with the same settings', () => {
    const rig = new Rig(fleetScenario(oneVm));
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer('vm-0', 'upgrade', false, 'install failed: exit code 1');
    rig.at(MIN);
    const failed = rig.of('instance.upgrade.failed', 'vm-0');
    assert.equal(failed.length, 1);
    assert.match(failed[0]!.reason ?? '', /exit code 1/);
    const back = rig.actions('vm-0', 'rollback');
    assert.equal(back.length, 1);
    assert.equal(back[0]!.toVersion, '1.0.0.0');
    assert.deepEqual(back[0]!.settings, SETTINGS);
    assert.deepEqual(back[0]!.settings, rig.actions('vm-0', 'upgrade')[0]!.settings);
    const started = rig.of('instance.rollback.started', 'vm-0');
    assert.equal(started[0]?.toVersion, '1.0.0.0');
    assert.equal(started[0]?.time, rig.iso(MIN));
  });

  test('R30: after a successful rollback the extension shows Succeeded on last-known-good and a VM is retried 3 days later', () => {
    const rig = new Rig(fleetScenario(oneVm));
    failedThenRolledBack(rig, 'vm-0');
    const inst = rig.inst('vm-0');
    assert.equal(inst.status, 'Succeeded');
    assert.equal(inst.installedVersion, '1.0.0.0');
    assert.equal(inst.lastKnownGoodVersion, '1.0.0.0');
    assert.equal(inst.blockedReason, null);
    const ok = rig.of('instance.rollback.succeeded', 'vm-0');
    assert.equal(ok.length, 1);
    assert.equal(ok[0]!.toVersion, '1.0.0.0');
    const retry = rig.of('instance.retry.scheduled', 'vm-0');
    assert.equal(retry.length, 1);
    assert.equal(retry[0]!.time, rig.iso(2 * MIN));
    assert.equal(retry[0]!.at, rig.iso(2 * MIN + 3 * DAY));
    assert.equal(retry[0]!.placement.setKind, 'none');

    rig.at(DAY);
    rig.at(2 * MIN + 3 * DAY - 1);
    assert.equal(rig.actions('vm-0', 'upgrade').length, 1, 'no attempt before the retry is due');
    rig.at(2 * MIN + 3 * DAY);
    const upgrades = rig.actions('vm-0', 'upgrade');
    assert.equal(upgrades.length, 2);
    assert.equal(upgrades[1]!.toVersion, '1.1.0.0');
    assert.equal(upgrades[1]!.fromVersion, '1.0.0.0');
    assert.deepEqual(upgrades[1]!.settings, SETTINGS);
    const again = rig.of('instance.upgrade.started', 'vm-0');
    assert.deepEqual(again.map((e) => e.attempt), [1, 2]);
    assert.equal(again[1]!.time, rig.iso(2 * MIN + 3 * DAY));

    rig.answer('vm-0', 'upgrade', true);
    rig.report('vm-0', HEALTHY);
    rig.at(2 * MIN + 3 * DAY + MIN);
    assert.equal(rig.of('instance.upgrade.succeeded', 'vm-0').length, 1);
    assert.equal(rig.inst('vm-0').installedVersion, '1.1.0.0');
    assert.equal(rig.inst('vm-0').lastKnownGoodVersion, '1.1.0.0');
    assert.equal(rig.of('rollout.completed').length, 1);
  });

  test('R30: a scale-set instance is retried 3 days after its rollback', () => {
    const rig = new Rig(fleetScenario(oneScaleSetInstance));
    failedThenRolledBack(rig, 'ss/0');
    assert.equal(rig.of('instance.retry.scheduled', 'ss/0')[0]?.at, rig.iso(2 * MIN + 3 * DAY));
    rig.at(2 * MIN + 3 * DAY - 1);
    assert.equal(rig.actions('ss/0', 'upgrade').length, 1);
    rig.at(2 * MIN + 3 * DAY);
    assert.equal(rig.actions('ss/0', 'upgrade').length, 2);
  });

  test('R30: an Arc machine is retried one hour after its rollback', () => {
    const rig = new Rig(fleetScenario(oneArc));
    failedThenRolledBack(rig, 'arc-0');
    assert.equal(rig.inst('arc-0').status, 'Succeeded');
    assert.equal(rig.inst('arc-0').installedVersion, '1.0.0.0');
    const retry = rig.of('instance.retry.scheduled', 'arc-0');
    assert.equal(retry.length, 1);
    assert.equal(retry[0]!.at, rig.iso(2 * MIN + HOUR));
    rig.at(2 * MIN + HOUR - 1);
    assert.equal(rig.actions('arc-0', 'upgrade').length, 1);
    rig.at(2 * MIN + HOUR);
    const upgrades = rig.actions('arc-0', 'upgrade');
    assert.equal(upgrades.length, 2);
    assert.equal(upgrades[1]!.toVersion, '1.1.0.0');
    assert.equal(rig.of('instance.upgrade.started', 'arc-0')[1]?.attempt, 2);
  });

  test('R30: the profile retry intervals are honoured (retryVm P1D, retryArc PT2H)', () => {
    // Both in one region, so they are in the same phase.
    const fleet = { ...oneVm, arcMachines: [{ name: 'arc', region: 'west', subscription: 'sub2', count: 1, extensions: ['agent'] }] };
    const rig = new Rig(fleetScenario(fleet, { retryVm: 'P1D', retryArc: 'PT2H' }));
    rig.at(0);
    rig.publish('1.1.0.0');
    for (const id of ['vm-0', 'arc-0']) rig.answer(id, 'upgrade', false);
    rig.at(MIN);
    for (const id of ['vm-0', 'arc-0']) rig.answer(id, 'rollback', true);
    rig.at(2 * MIN);
    assert.equal(rig.of('instance.retry.scheduled', 'vm-0')[0]?.at, rig.iso(2 * MIN + DAY));
    assert.equal(rig.of('instance.retry.scheduled', 'arc-0')[0]?.at, rig.iso(2 * MIN + 2 * HOUR));
    rig.at(2 * MIN + 2 * HOUR);
    assert.equal(rig.actions('arc-0', 'upgrade').length, 2);
    assert.equal(rig.actions('vm-0', 'upgrade').length, 1);
    rig.at(2 * MIN + DAY);
    assert.equal(rig.actions('vm-0', 'upgrade').length, 2);
  });

  test('R30: attempts continue until one succeeds (three failures, then success on the fourth attempt)', () => {
    const rig = new Rig(fleetScenario(oneArc));
    rig.at(0);
    rig.publish('1.1.0.0');
    let t = 0;
    const rollbackTimes: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      // Attempt `attempt` started at t: its install fails after a minute, the rollback succeeds a minute later.
      rig.answer('arc-0', 'upgrade', false);
      rig.at(t + MIN);
      rig.answer('arc-0', 'rollback', true);
      rig.at(t + 2 * MIN);
      rollbackTimes.push(t + 2 * MIN);
      t = t + 2 * MIN + HOUR;
      rig.at(t);
      assert.equal(rig.actions('arc-0', 'upgrade').length, attempt + 1, `attempt ${attempt + 1} starts an hour after rollback ${attempt}`);
    }
    rig.answer('arc-0', 'upgrade', true);
    rig.report('arc-0', HEALTHY);
    rig.at(t + MIN);
    assert.deepEqual(rig.of('instance.upgrade.started', 'arc-0').map((e) => e.attempt), [1, 2, 3, 4]);
    assert.deepEqual(rig.of('instance.retry.scheduled', 'arc-0').map((e) => e.at), rollbackTimes.map((x) => rig.iso(x + HOUR)));
    assert.equal(rig.of('instance.upgrade.succeeded', 'arc-0')[0]?.attempt, 4);
    assert.equal(rig.inst('arc-0').installedVersion, '1.1.0.0');
    assert.equal(rig.inst('arc-0').status, 'Succeeded');
    assert.equal(rig.of('rollout.completed').length, 1);
  });

  test('R30: in simulation a flaky release eventually reaches every machine, each retry coming after the interval of its machine kind', () => {
    const run = simulate(baseScenario({
      failures: { versions: { '1.1.0.0': { installFailure: 0.4, unhealthyAfterUpgrade: 0.2 } } },
      // R23 would stop each set and group after a bad batch for the retry interval; lift it to isolate R30.
      profiles: { standard: { maxPhaseFailurePercent: 100, phaseBake: 'PT6H', groupMaxUnhealthyUpgradedPercent: 100, releaseVerdict: false } },
      fleet: { ...(baseScenario().fleet as object), scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'], upgradePolicy: { rollingUpgradePolicy: { maxUnhealthyUpgradedInstancePercent: 100 } } }] },
      horizon: 'P60D',
    }));
    const retries = run.of('instance.retry.scheduled');
    assert.ok(retries.length >= 5, `expected several retries, got ${retries.length}`);
    const kinds = new Set<string>();
    for (const r of retries) {
      const machine = run.engine.state.fleet.machines.get(r.machineId)!;
      kinds.add(machine.kind);
      const wait = Date.parse(r.at) - Date.parse(r.time);
      assert.equal(wait, machine.kind === 'arc' ? HOUR : 3 * DAY, `${r.machineId} (${machine.kind}) retries after ${wait} ms`);
      const rolledBack = run.of('instance.rollback.succeeded').find((e) => e.machineId === r.machineId && e.attempt === r.attempt);
      assert.ok(rolledBack, `retry of ${r.machineId} without a successful rollback`);
      assert.equal(rolledBack.time, r.time);
      const next = run.of('instance.upgrade.started').find((e) => e.machineId === r.machineId && e.attempt === r.attempt + 1);
      assert.ok(next, `${r.machineId} was never retried after attempt ${r.attempt}`);
      assert.ok(Date.parse(next.time) >= Date.parse(r.at), `${r.machineId} retried at ${next.time}, before ${r.at}`);
    }
    assert.ok(kinds.has('arc') && kinds.size > 1, `retries on several machine kinds: ${[...kinds].join(', ')}`);
    // Everyone got there in the end, and only on attempts after a good rollback.
    const byMachine = run.engine.state.fleet.instances.get(KEY)!;
    for (const [id, inst] of byMachine) {
      assert.equal(inst.installedVersion, '1.1.0.0', `${id} ended on ${inst.installedVersion}`);
      assert.equal(inst.status, 'Succeeded');
    }
    assert.equal(run.of('rollout.completed').length, 1);
  });
});

// ---- R31 ----------------------------------------------------------------------------------------

describe('R31 failed rollback', () => {
  /** The upgrade on arc-0 goes silent, is judged unhealthy at 6 minutes, and its rollback fails at 7. */
  function rollbackFails(rig: Rig, machineId: string): void {
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer(machineId, 'upgrade', true);
    rig.at(MIN);
    rig.at(6 * MIN);
    rig.answer(machineId, 'rollback', false, 'reinstall of 1.0.0.0 failed: disk full');
    rig.at(7 * MIN);
  }

  test('R31: a failed rollback leaves the extension Failed, blocked, and without a retry', () => {
    const rig = new Rig(fleetScenario(oneArc));
    rollbackFails(rig, 'arc-0');
    const failed = rig.of('instance.rollback.failed', 'arc-0');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.toVersion, '1.0.0.0');
    assert.match(failed[0]!.reason ?? '', /disk full/);
    const inst = rig.inst('arc-0');
    assert.equal(inst.status, 'Failed');
    assert.ok(inst.blockedReason && inst.blockedReason.length > 0, 'the extension is blocked');
    assert.equal(rig.of('instance.retry.scheduled').length, 0);
    assert.ok(rig.engine.state.fleet.unhealthy.has('arc-0'), 'a Failed extension stops functioning: its machine counts as unhealthy');
  });

  test('R31: after a failed rollback there are no more automatic attempts, however long we wait', () => {
    const rig = new Rig(fleetScenario(oneArc));
    rollbackFails(rig, 'arc-0');
    const sent = rig.driver.sent.length;
    for (const t of [HOUR, 7 * MIN + HOUR, 2 * HOUR, DAY, 3 * DAY, 10 * DAY]) rig.at(t);
    assert.equal(rig.driver.sent.length, sent);
    assert.equal(rig.of('instance.upgrade.started', 'arc-0').length, 1);
    assert.equal(rig.inst('arc-0').status, 'Failed');
  });

  test('R31: a newer release does not pick up a Failed extension either', () => {
    const rig = new Rig(fleetScenario({ ...oneArc, arcMachines: [{ name: 'arc', region: 'north', subscription: 'sub2', count: 1, extensions: ['agent'] }, { name: 'ok', region: 'north', subscription: 'sub3', count: 1, extensions: ['agent'] }] }));
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer('arc-0', 'upgrade', true);
    rig.answer('ok-0', 'upgrade', true);
    rig.report('ok-0', HEALTHY);
    rig.at(MIN);
    rig.at(6 * MIN);
    rig.answer('arc-0', 'rollback', false);
    rig.at(7 * MIN);
    assert.equal(rig.inst('arc-0').status, 'Failed');
    rig.at(2 * DAY);
    rig.publish('1.2.0.0');
    rig.at(2 * DAY + MIN);
    assert.equal(rig.actions('ok-0', 'upgrade').length, 2, 'the healthy machine gets the new release');
    assert.equal(rig.actions('arc-0').length, 2, 'the Failed one gets nothing: one upgrade and one rollback, ever');
    assert.equal(rig.of('instance.upgrade.started', 'arc-0').length, 1);
  });

  test('R31: a machine whose rollback failed gets no retry while the retries of its neighbours come due', () => {
    const rig = new Rig(fleetScenario(twoArcs));
    rig.at(0);
    rig.publish('1.1.0.0');
    rig.answer('a-0', 'upgrade', true);
    rig.answer('b-0', 'upgrade', true);
    rig.at(MIN);
    rig.at(6 * MIN); // both silent: both judged unhealthy and rolled back
    rig.answer('a-0', 'rollback', false);
    rig.answer('b-0', 'rollback', true);
    rig.at(7 * MIN);
    assert.equal(rig.of('instance.rollback.failed', 'a-0').length, 1);
    assert.equal(rig.of('instance.retry.scheduled', 'b-0')[0]?.at, rig.iso(7 * MIN + HOUR));
    assert.equal(rig.of('instance.retry.scheduled', 'a-0').length, 0);
    rig.at(7 * MIN + HOUR);
    assert.equal(rig.actions('b-0', 'upgrade').length, 2, 'b-0 is retried');
    assert.equal(rig.actions('a-0', 'upgrade').length, 1, 'a-0 is not');
    rig.answer('b-0', 'upgrade', true);
    rig.report('b-0', HEALTHY);
    rig.at(8 * MIN + HOUR);
    for (const t of [2 * HOUR, DAY, 5 * DAY]) rig.at(t);
    assert.equal(rig.actions('a-0', 'upgrade').length, 1);
    assert.equal(rig.inst('a-0').status, 'Failed');
    assert.equal(rig.inst('b-0').installedVersion, '1.1.0.0');
  });

  test('R31: in simulation no machine is touched again after its rollback failed, and each ends Failed', () => {
    const run = simulate(baseScenario({
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1, rollbackFailure: 0.5 } } },
      profiles: { standard: { maxPhaseFailurePercent: 100, phaseBake: 'PT1H', releaseVerdict: false } },
      horizon: 'P12D',
    }));
    const failedAt = new Map<string, number>();
    for (const e of run.of('instance.rollback.failed')) failedAt.set(e.machineId, e.seq);
    assert.ok(failedAt.size >= 3, `expected several failed rollbacks, got ${failedAt.size}`);
    assert.ok(run.of('instance.retry.scheduled').length >= 3, 'and some successful rollbacks that were retried');
    for (const e of run.events) {
      const id = (e as { machineId?: string }).machineId;
      if (id === undefined || !failedAt.has(id) || e.seq <= failedAt.get(id)!) continue;
      assert.fail(`${e.type} for ${id} at ${e.time}, after its rollback failed`);
    }
    const byMachine = run.engine.state.fleet.instances.get(KEY)!;
    for (const id of failedAt.keys()) {
      const inst = byMachine.get(id)!;
      assert.equal(inst.status, 'Failed', id);
      assert.ok(inst.blockedReason, id);
    }
  });
});

// ---- R32 ----------------------------------------------------------------------------------------

describe('R32 opt-out stops retries, opt-in resumes them', () => {
  /**
   * a-0 and b-0 both fail at 1 minute and are rolled back at 2; retries are due at 1h02m. b-0 keeps
   * failing every attempt so that the rollout stays open.
   */
  function twoFailing(): Rig {
    const rig = new Rig(fleetScenario(twoArcs));
    rig.at(0);
    rig.publish('1.1.0.0');
    for (const id of ['a-0', 'b-0']) rig.answer(id, 'upgrade', false);
    rig.at(MIN);
    for (const id of ['a-0', 'b-0']) rig.answer(id, 'rollback', true);
    rig.at(2 * MIN);
    return rig;
  }

  /** Fails b-0's open attempt at `t` and rolls it back a minute later. */
  function failB(rig: Rig, t: number): void {
    rig.answer('b-0', 'upgrade', false);
    rig.at(t);
    rig.answer('b-0', 'rollback', true);
    rig.at(t + MIN);
  }

  test('R32: disabling automatic upgrade stops the retries of a rolled-back extension', () => {
    const rig = twoFailing();
    rig.engine.setAutomaticUpgrade('a-0', KEY, false, 'operator');
    rig.at(30 * MIN);
    rig.at(2 * MIN + HOUR);
    assert.equal(rig.actions('b-0', 'upgrade').length, 2, 'the other machine is retried as usual');
    assert.equal(rig.actions('a-0', 'upgrade').length, 1, 'the opted-out one is not');
    failB(rig, 3 * MIN + HOUR);
    for (const t of [3 * HOUR, 6 * HOUR, DAY]) rig.at(t);
    assert.equal(rig.actions('a-0', 'upgrade').length, 1);
    assert.equal(rig.inst('a-0').installedVersion, '1.0.0.0');
    assert.equal(rig.inst('a-0').status, 'Succeeded');
  });

  test('R32: enabling automatic upgrade again resumes the parked retry', () => {
    const rig = twoFailing();
    rig.engine.setAutomaticUpgrade('a-0', KEY, false, 'operator');
    rig.at(30 * MIN);
    rig.at(2 * MIN + HOUR);
    failB(rig, 3 * MIN + HOUR); // b-0's retry is due at 2h04m
    rig.at(2 * HOUR);
    assert.equal(rig.actions('a-0', 'upgrade').length, 1);
    rig.engine.setAutomaticUpgrade('a-0', KEY, true, 'operator');
    rig.at(2 * HOUR);
    rig.at(3 * HOUR);
    const attempts = rig.of('instance.upgrade.started', 'a-0');
    assert.deepEqual(attempts.map((e) => e.attempt), [1, 2], 'the retry resumed');
    assert.ok(Date.parse(attempts[1]!.time) >= Date.parse(rig.iso(2 * HOUR)));
    assert.equal(rig.actions('a-0', 'upgrade')[1]?.toVersion, '1.1.0.0');
    rig.answer('a-0', 'upgrade', true);
    rig.report('a-0', HEALTHY);
    rig.at(3 * HOUR + MIN);
    assert.equal(rig.inst('a-0').installedVersion, '1.1.0.0');
  });

  test('R32: enabling automatic upgrade again resumes the retry even when that extension was the last one open in its rollout', () => {
    const rig = new Rig(fleetScenario(oneArc));
    failedThenRolledBack(rig, 'arc-0'); // retry due at 1h02m
    rig.engine.setAutomaticUpgrade('arc-0', KEY, false, 'operator');
    rig.at(30 * MIN);
    rig.at(2 * MIN + HOUR);
    rig.at(2 * HOUR);
    assert.equal(rig.actions('arc-0', 'upgrade').length, 1, 'no retry while opted out');
    rig.engine.setAutomaticUpgrade('arc-0', KEY, true, 'operator');
    rig.at(2 * HOUR);
    rig.at(3 * HOUR);
    // The original rollout completed while the retry was parked, so a catch-up rollout resumes it.
    const attempts = rig.of('instance.upgrade.started', 'arc-0');
    assert.equal(attempts.length, 2, `after re-enabling at 2h the retry must resume; rollout events: ${rig.events.filter((e) => e.type.startsWith('rollout.')).map((e) => `${e.type}@${e.time}`).join(', ')}`);
    assert.equal(attempts[1]!.time, '2026-01-05T02:00:00.000Z');
    assert.notEqual(attempts[1]!.rolloutId, attempts[0]!.rolloutId);
    const catchUp = rig.events.find((e) => e.type === 'rollout.created' && e.rolloutId === attempts[1]!.rolloutId);
    assert.match((catchUp as { reason: string }).reason, /catching up \(R32\)/);
  });

  test('R32: disabling and enabling again before the retry is due keeps the retry at its original time', () => {
    const rig = new Rig(fleetScenario(oneArc));
    failedThenRolledBack(rig, 'arc-0');
    rig.engine.setAutomaticUpgrade('arc-0', KEY, false, 'operator');
    rig.at(20 * MIN);
    rig.engine.setAutomaticUpgrade('arc-0', KEY, true, 'operator');
    rig.at(40 * MIN);
    rig.at(2 * MIN + HOUR - 1);
    assert.equal(rig.actions('arc-0', 'upgrade').length, 1);
    rig.at(2 * MIN + HOUR);
    assert.equal(rig.actions('arc-0', 'upgrade').length, 2);
    assert.equal(rig.of('instance.upgrade.started', 'arc-0')[1]?.time, rig.iso(2 * MIN + HOUR));
    const changes = rig.of('autoUpgrade.changed');
    assert.deepEqual(changes.map((e) => [e.machineId, e.enabled, e.caller]), [['arc-0', false, 'operator'], ['arc-0', true, 'operator']]);
  });

  test('R32: in simulation an opted-out machine is not retried until it opts in again, then it is', () => {
    const run = simulate({
      ...fleetScenario(twoArcs),
      horizon: 'P1D',
      events: [
        { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
        { at: 'PT1H30M', setAutomaticUpgrade: { extension: 'agent', machines: ['a-0'], enabled: false } },
        { at: 'PT6H', setAutomaticUpgrade: { extension: 'agent', machines: ['a-0'], enabled: true } },
      ],
      failures: { versions: { '1.1.0.0': { installFailure: 1 } } },
    });
    const start = Date.parse('2026-01-05T00:00:00Z');
    const offsets = (id: string) => run.of('instance.upgrade.started').filter((e) => e.machineId === id).map((e) => Date.parse(e.time) - start);
    const a = offsets('a-0');
    assert.equal(a.filter((t) => t > 1.5 * HOUR && t < 6 * HOUR).length, 0, `a-0 attempts while opted out: ${a}`);
    assert.ok(a.some((t) => t >= 6 * HOUR && t <= 7 * HOUR), `a-0 resumes within the hour after opting in: ${a}`);
    const b = offsets('b-0');
    assert.ok(b.filter((t) => t > 1.5 * HOUR && t < 6 * HOUR).length >= 3, `b-0 keeps being retried hourly: ${b}`);
  });
});
