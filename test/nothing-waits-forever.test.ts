/**
 * "Nothing waits forever, and the remaining rules hold": a set held by R20 lets go (machines that
 * waiting cannot heal leave the share; a set held beyond the limit lets its phase be judged without
 * it), R12 across the regions of a phase, and the set's pause between every batch, retries included.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHRONIC_UNHEALTHY_MS, HELD_RELEASE_MS } from '../src/engine/rollouts/set-health.js';
import { subscriptionSpreadBlocker } from '../src/engine/rollouts/gates.js';
import type { HealthSignals } from '../src/model/health.js';
import { simulate } from './helpers/harness.js';
import { DAY, HOUR, KEY, MIN, Rig, SETTINGS } from './helpers/rig.js';

const HEALTHY: HealthSignals = { platform: true };
const DOWN: HealthSignals = { platform: false };

/** Scale sets in regions without zones or pairs; the canary is the smallest region with 10 machines. */
function setsScenario(sets: Array<{ name: string; region: string; capacity: number }>, maxPhaseFailurePercent = 20): Record<string, unknown> {
  return {
    name: 'held',
    start: '2026-01-05T00:00:00Z',
    seed: 5,
    regions: [{ name: 'west', pair: null, zones: [] }, { name: 'east', pair: null, zones: [] }],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true, settings: SETTINGS } },
    fleet: { scaleSets: sets.map((s) => ({ ...s, subscription: 'sub1', extensions: ['agent'] })) },
    profiles: { standard: { phaseBake: 'PT1H', maxPhaseFailurePercent } },
  };
}

/** Plays every machine well: open upgrades succeed and report healthy, except machines `down` says are down. */
function playWell(rig: Rig, down: (machineId: string) => boolean = () => false): void {
  const answered = (rig as unknown as { answered: Set<string> }).answered;
  for (const a of rig.driver.sent) {
    if (a.kind !== 'upgrade' || answered.has(a.key)) continue;
    rig.answer(a.machineId, 'upgrade', true);
    if (!down(a.machineId)) rig.report(a.machineId, HEALTHY);
  }
}

test('R20: a machine Failed by R31 leaves the set\'s unhealthy share, is named in gate.excluded, and the set\'s healthy machines are upgraded', () => {
  // The phase gate would stop the rollout on this one failure; lift it to isolate R20.
  const rig = new Rig(setsScenario([{ name: 'four', region: 'west', capacity: 4 }], 100));
  rig.at(0);
  rig.publish('1.1.0.0');
  const first = rig.driver.sent[0]!.machineId;
  rig.answer(first, 'upgrade', false, 'install failed');
  rig.at(MIN);
  rig.answer(first, 'rollback', false, 'rollback failed');
  rig.at(2 * MIN); // Failed for good (R31): the set reads 25% unhealthy from now on; R23 stops it for the retry interval
  assert.equal(rig.inst(first).status, 'Failed');
  for (let t = 2 * MIN; t <= 8 * DAY && rig.of('rollout.completed').length === 0; t += 10 * MIN) {
    playWell(rig);
    rig.at(t);
  }
  const excluded = rig.of('gate.excluded');
  assert.ok(excluded.length > 0, 'the Failed machine was reported as left out');
  assert.deepEqual(excluded[0]!.machines.map((m) => m.machineId), [first]);
  assert.match(excluded[0]!.machines[0]!.reason, /R31/);
  assert.equal(excluded[0]!.rule, 'R20');
  assert.equal(rig.of('instance.upgrade.succeeded').length, 3, 'the three healthy machines took the release');
  assert.equal(rig.of('rollout.completed').length, 1);
});

test('R20: machines unhealthy at every look for a day leave the share; the held set starts at the first recheck after that', () => {
  const rig = new Rig(setsScenario([{ name: 'ten', region: 'west', capacity: 10 }]));
  const sick = new Set(['ten/2', 'ten/3', 'ten/4']);
  for (const id of sick) rig.report(id, DOWN);
  rig.at(0);
  rig.publish('1.1.0.0');
  for (let t = HOUR; t <= CHRONIC_UNHEALTHY_MS + 2 * HOUR; t += HOUR) rig.at(t);
  const started = rig.of('batch.started');
  assert.ok(started.length > 0, 'the set was held forever');
  assert.equal(started[0]!.time, rig.iso(CHRONIC_UNHEALTHY_MS));
  const excluded = rig.of('gate.excluded');
  assert.deepEqual(excluded[0]!.machines.map((m) => m.machineId).sort(), [...sick].sort());
  assert.ok(excluded[0]!.machines.every((m) => /unhealthy at every look/.test(m.reason)));
  assert.ok(started[0]!.instances.every((id) => !sick.has(id)));
});

test('R20: a set of one whose only machine waiting cannot heal is not held forever: its batch starts once the machine is left out', () => {
  // Before: with every machine of the set left out there was no share to count, so the set was held at
  // every hourly look until the horizon, and its rollout never ended.
  const rig = new Rig(setsScenario([{ name: 'one', region: 'west', capacity: 1 }]));
  rig.report('one/0', DOWN);
  rig.at(0);
  rig.publish('1.1.0.0');
  for (let t = HOUR; t <= CHRONIC_UNHEALTHY_MS + 2 * HOUR; t += HOUR) rig.at(t);
  const started = rig.of('batch.started');
  assert.equal(started.length, 1, 'the set of one was held forever');
  assert.equal(started[0]!.time, rig.iso(CHRONIC_UNHEALTHY_MS));
  const excluded = rig.of('gate.excluded');
  assert.deepEqual(excluded.map((e) => e.machines.map((m) => m.machineId)), [['one/0']]);
  assert.match(excluded[0]!.reason, /all 1 instances of the set/);
});

/**
 * A ten-machine set with the agent and a monitor: the agent's upgrade and rollback fail on one machine, which
 * turns unhealthy (R31), and the monitor's retry that comes due there during 3.1.0.0's rollout is parked.
 */
function parkedMonitorRetry() {
  const raw = setsScenario([{ name: 'ten', region: 'west', capacity: 10 }], 100);
  raw.catalog = [...(raw.catalog as unknown[]), { publisher: 'Contoso', type: 'Monitor', supportsAutomaticUpgrade: true, versions: [{ version: '3.0.0.0' }] }];
  raw.extensions = { ...(raw.extensions as object), monitor: { publisher: 'Contoso', type: 'Monitor', typeHandlerVersion: '3.0', enableAutomaticUpgrade: true } };
  raw.fleet = { scaleSets: [{ name: 'ten', region: 'west', capacity: 10, subscription: 'sub1', extensions: ['agent', 'monitor'] }] };
  raw.profiles = { standard: { phaseBake: 'PT1H', maxPhaseFailurePercent: 100, releaseVerdict: false } };
  const rig = new Rig(raw);
  rig.at(0);
  rig.publish('1.1.0.0');
  const sick = rig.driver.sent[0]!.machineId;
  rig.answer(sick, 'upgrade', false, 'install failed');
  rig.at(MIN);
  rig.answer(sick, 'rollback', false, 'rollback failed');
  rig.report(sick, DOWN); // its agent stops functioning (R31): the machine is unhealthy until someone acts
  rig.at(2 * MIN);
  assert.equal(rig.inst(sick).status, 'Failed');
  const answered = new Set<string>();
  const world = { healed: false };
  const play = () => {
    for (const a of rig.driver.sent) {
      if (answered.has(a.key) || a.machineId === sick && a.artifactKey === KEY) continue;
      answered.add(a.key);
      rig.engine.observe({ kind: 'actionResult', key: a.key, machineId: a.machineId, ok: true, version: a.toVersion });
      if (a.kind === 'upgrade' && (a.machineId !== sick || world.healed)) rig.report(a.machineId, HEALTHY);
    }
  };
  rig.engine.publishVersion('Contoso', 'Monitor', { version: '3.1.0.0', os: ['linux', 'windows'], regions: null, publishedAtMs: rig.clock.now(), critical: false, digest: null });
  for (let t = 3 * MIN; t <= 30 * DAY; t += 10 * MIN) {
    play();
    rig.at(t);
  }
  const monitor = rig.of('rollout.created').find((e) => e.toVersion === '3.1.0.0')!;
  const attempts = rig.of('instance.upgrade.started', sick).filter((e) => e.rolloutId === monitor.rolloutId);
  assert.equal(attempts.length, 1, 'its first attempt only: the retry that came due was parked');
  const parked = rig.of('instance.skipped', sick).filter((e) => e.rolloutId === monitor.rolloutId);
  assert.equal(parked.length, 1);
  assert.match(parked[0]!.reason, /cannot turn healthy until someone acts .*contoso\.agent is Failed/);
  assert.ok(rig.of('rollout.completed').some((e) => e.rolloutId === monitor.rolloutId), 'the monitor\'s rollout completes');
  /** Plays two more days once the machine is healthy again: the parked retry catches up in a rollout of its own. */
  const catchesUp = () => {
    world.healed = true;
    rig.report(sick, HEALTHY);
    for (let t = 30 * DAY + 10 * MIN; t <= 32 * DAY; t += 10 * MIN) {
      play();
      rig.at(t);
    }
    const catchUp = rig.of('rollout.created').filter((e) => e.toVersion === '3.1.0.0' && e.rolloutId !== monitor.rolloutId);
    assert.equal(catchUp.length, 1);
    assert.match(catchUp[0]!.reason, /waited for the machine to be able to turn healthy/);
    assert.equal(rig.engine.state.fleet.instances.get('extension:contoso.monitor')!.get(sick)!.installedVersion, '3.1.0.0');
  };
  return { rig, sick, catchesUp };
}

test('R30, R31: a retry on a machine that another extension\'s failed rollback keeps unhealthy is parked, not retried every few days for ever, and catches up once the Failed one is removed', () => {
  // Before: each retry of the monitor on that machine was judged unhealthy (the machine could not heal) and
  // rolled back, again every 3 days, so its rollout never ended (examples/demo.yaml --seed 6 ran to the horizon).
  const { rig, sick, catchesUp } = parkedMonitorRetry();
  // Someone acts: the Failed agent is removed and the machine answers again. The monitor's rollout has ended, so
  // the parked retry catches up in a rollout of its own (before, the machine stayed on 3.0.0.0 for good).
  rig.engine.removeExtension(sick, KEY, 'alice');
  catchesUp();
});

test('R30: a retry parked while the machine looked unable to heal goes on once the machine turns healthy, its other extension still Failed', () => {
  // The Failed extension was not what kept the machine unhealthy (or a report lost with a crash had left the
  // engine's view stale): parked for good, the retry left the machine behind its release (the crash test found it).
  const { rig, sick, catchesUp } = parkedMonitorRetry();
  assert.equal(rig.inst(sick).status, 'Failed', 'nobody acted on the agent');
  catchesUp();
});

test('R31, R62: a retry parked because the machine\'s OS image is Failed for good is resumed when a re-image onto another image fixes it', () => {
  // Before: installing or removing an extension resumed parked retries, but a set moved to another image (its
  // Failed OS image instance replaced by a fresh one) did not, and the agent's rollout never ended on that machine.
  const raw = setsScenario([{ name: 'ten', region: 'west', capacity: 10 }], 100);
  raw.fleet = { scaleSets: [{ name: 'ten', region: 'west', capacity: 10, subscription: 'sub1', extensions: ['agent'],
    upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { maxUnhealthyUpgradedInstancePercent: 100, maxUnhealthyInstancePercent: 100 } } }] };
  raw.profiles = { standard: { phaseBake: 'PT1H', maxPhaseFailurePercent: 100, releaseVerdict: false } };
  const rig = new Rig(raw);
  const image = { publisher: 'Canonical', offer: 'ubuntu', sku: 'server' };
  const other = { ...image, sku: 'server-gen2' };
  const LINUX = { osType: 'Linux', hyperVGeneration: 'V2', automaticOSUpgradeSupported: true } as const;
  const at = (img: typeof image, version: string) => ({ kind: 'platform' as const, ...img, version });
  rig.engine.updateImages((c) => {
    for (const img of [image, other]) {
      c.publishPlatformVersion(img, '1.0.0', LINUX, rig.startMs - DAY);
      c.replicate(at(img, '1.0.0'), 'west', rig.startMs - DAY);
    }
  });
  const moveTo = (img: typeof image, disableAutomaticRollback: boolean) => {
    const set = rig.engine.state.fleet.scaleSets.get('ten')!;
    const p = set.upgradePolicy;
    rig.engine.putScaleSet({ ...set, image: at(img, 'latest'),
      upgradePolicy: { ...p, automaticOSUpgradePolicy: { ...p.automaticOSUpgradePolicy, enableAutomaticOSUpgrade: true, disableAutomaticRollback } } });
  };
  moveTo(image, true);
  rig.at(0);
  rig.engine.updateImages((c) => {
    c.publishPlatformVersion(image, '1.1.0', LINUX, rig.startMs);
    c.replicate(at(image, '1.1.0'), 'west', rig.startMs);
  });
  let sick: string | null = null;
  let fixed = false;
  const answered = new Set<string>();
  const play = () => {
    for (const a of rig.driver.sent) {
      if (answered.has(a.key)) continue;
      answered.add(a.key);
      if (a.kind === 'upgrade' && a.artifact.kind === 'osImage') sick ??= a.machineId;
      rig.engine.observe({ kind: 'actionResult', key: a.key, machineId: a.machineId, ok: true, version: a.toVersion });
      const down = a.machineId === sick && !fixed;
      rig.report(a.machineId, down ? DOWN : HEALTHY);
    }
  };
  let t = MIN;
  const until = (end: number) => {
    for (; t <= end; t += 10 * MIN) {
      play();
      rig.at(t);
    }
  };
  until(2 * DAY);
  assert.ok(sick, 'the OS image rollout re-imaged a machine');
  const os = [...rig.engine.state.fleet.instances].find(([k]) => k.startsWith('osimage:'))![1].get(sick!)!;
  assert.equal(os.status, 'Failed', 'R62: left on the new image, Failed');
  assert.match(os.blockedReason ?? '', /R62/);
  rig.publish('1.1.0.0');
  until(8 * DAY);
  const agent = rig.of('rollout.created').find((e) => e.toVersion === '1.1.0.0')!;
  const parked = rig.of('instance.skipped', sick!).filter((e) => e.rolloutId === agent.rolloutId);
  assert.equal(parked.length, 1, 'the retry that came due was parked');
  assert.match(parked[0]!.reason, /cannot turn healthy until someone acts .*osimage:.* is Failed/);
  assert.ok(rig.of('rollout.completed').some((e) => e.rolloutId === agent.rolloutId), 'a parked retry does not keep its rollout open');
  // The set moves to another image: the machine is re-imaged onto it and answers again.
  fixed = true;
  rig.report(sick!, HEALTHY);
  moveTo(other, true);
  until(12 * DAY);
  const catchUp = rig.of('rollout.created').filter((e) => e.toVersion === '1.1.0.0' && e.rolloutId !== agent.rolloutId);
  assert.equal(catchUp.length, 1, 'its rollout had ended: the machine catches up in one of its own');
  assert.match(catchUp[0]!.reason, /waited for the machine to be able to turn healthy/);
  assert.equal(rig.of('instance.upgrade.succeeded', sick!).filter((e) => e.rolloutId === catchUp[0]!.rolloutId).length, 1);
  assert.equal(rig.inst(sick!).installedVersion, '1.1.0.0');
});

test('R20: a set held beyond the limit by machines that take turns being down lets its phase be judged without it (gate.released)', () => {
  const rig = new Rig(setsScenario([
    { name: 'flaky', region: 'west', capacity: 10 },
    { name: 'good', region: 'west', capacity: 10 },
    { name: 'later', region: 'east', capacity: 30 },
  ]));
  const groups = [['flaky/2', 'flaky/3', 'flaky/4'], ['flaky/6', 'flaky/7', 'flaky/8']];
  const downAt = (t: number) => new Set(groups[Math.floor(t / (6 * HOUR)) % 2]!);
  let down = downAt(0);
  for (const id of down) rig.report(id, DOWN);
  rig.at(0);
  rig.publish('1.1.0.0');
  for (let t = 5 * MIN; t <= 3 * DAY; t += 5 * MIN) {
    const next = downAt(t);
    if ([...next].some((id) => !down.has(id))) {
      for (const id of down) rig.report(id, HEALTHY);
      for (const id of next) rig.report(id, DOWN);
      down = next;
    }
    playWell(rig, (id) => down.has(id));
    rig.at(t);
  }
  const released = rig.of('gate.released');
  assert.equal(released.length, 1, 'released once');
  assert.match(released[0]!.scope.setId ?? '', /flaky/);
  assert.ok(Date.parse(released[0]!.time) - rig.startMs >= HELD_RELEASE_MS);
  assert.equal(rig.of('gate.excluded').length, 0, 'no machine was down long enough to be left out');
  assert.deepEqual(rig.of('phase.completed').map((e) => e.phase), [0, 1], 'both phases went on without the held set');
  assert.ok(rig.of('instance.upgrade.succeeded').length >= 40);
});

test('R12: a subscription\'s only two standalone machines, in two regions of one phase, are never upgraded at the same time', () => {
  const run = simulate({
    name: 'r12-regions',
    start: '2026-01-05T00:00:00Z',
    seed: 4,
    horizon: 'P10W',
    regions: [{ name: 'canary', pair: null, zones: [] }, { name: 'b', pair: null, zones: [] }, { name: 'c', pair: null, zones: [] }],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: {
      vms: [
        { name: 'big', region: 'canary', subscription: 'subA', count: 12, extensions: ['agent'] },
        { name: 'xb', region: 'b', subscription: 'subX', count: 1, extensions: ['agent'] },
        { name: 'xc', region: 'c', subscription: 'subX', count: 1, extensions: ['agent'] },
      ],
    },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
  });
  const phases = run.of('rollout.created')[0]!.phases;
  assert.ok(phases.some((p) => p.includes('b') && p.includes('c')), `b and c share a phase: ${JSON.stringify(phases)}`);
  const spans = new Map<string, [number, number]>();
  for (const e of run.events) {
    if (!('machineId' in e) || !('placement' in e) || e.placement.subscription !== 'subX') continue;
    const t = Date.parse(e.time);
    if (e.type === 'instance.upgrade.started') spans.set(e.machineId, [t, Number.POSITIVE_INFINITY]);
    if (e.type === 'instance.upgrade.succeeded' || e.type === 'instance.rollback.succeeded' || e.type === 'instance.rollback.failed') spans.get(e.machineId)![1] = t;
  }
  const [a, b] = [...spans.values()];
  assert.ok(a && b, 'both machines were upgraded');
  assert.ok(a[1] <= b[0] || b[1] <= a[0], `their upgrades overlap: ${JSON.stringify([...spans])}`);
  assert.ok(run.of('rollout.completed').length === 1);
});

test('R12: the cross-region spread admits a batch unless it would put the subscription\'s last standalone machines of the phase in flight', () => {
  assert.equal(subscriptionSpreadBlocker(0, 2, 2), null, 'nothing in flight: go (never a deadlock)');
  assert.equal(subscriptionSpreadBlocker(1, 1, 1), null, 'a single machine is never held');
  assert.equal(subscriptionSpreadBlocker(1, 1, 3), null);
  assert.match(subscriptionSpreadBlocker(1, 1, 2)!, /R12/);
  assert.match(subscriptionSpreadBlocker(2, 1, 3)!, /R12/);
});

test('R14: pauseTimeBetweenBatches holds between every two batches of a set, retry batches included', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const run = simulate({
      name: 'pause-retries',
      start: '2026-01-05T00:00:00Z',
      seed,
      horizon: 'P6W',
      regions: [{ name: 'east', pair: null, zones: [] }],
      catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
      extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
      fleet: {
        scaleSets: [{
          name: 'ps', region: 'east', subscription: 'sub1', capacity: 20, extensions: ['agent'],
          upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { pauseTimeBetweenBatches: 'PT1M', maxUnhealthyUpgradedInstancePercent: 100, maxUnhealthyInstancePercent: 100 } },
        }],
      },
      failures: { versions: { '1.1.0.0': { installFailure: 0.5 } } },
      // A 50% release would be held fleet-wide before its retries come; lifted to isolate the pause.
      profiles: { standard: { maxPhaseFailurePercent: 100, releaseVerdict: false } },
      events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
    });
    const starts = run.of('batch.started');
    const ends = new Map(run.of('batch.completed').map((e) => [e.batchId, Date.parse(e.time)]));
    assert.ok(starts.some((b) => b.retry), `seed ${seed}: retry batches ran`);
    for (let i = 1; i < starts.length; i++) {
      const prevEnd = ends.get(starts[i - 1]!.batchId)!;
      const gap = Date.parse(starts[i]!.time) - prevEnd;
      assert.ok(gap >= MIN, `seed ${seed}: ${starts[i]!.batchId} started ${gap / 1000} s after ${starts[i - 1]!.batchId} completed`);
    }
  }
});
