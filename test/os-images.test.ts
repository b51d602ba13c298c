/**
 * Automatic OS image upgrade in the engine (R60–R65): scale sets that follow a catalog image at `latest`
 * are re-imaged when a newer version is available in their region, through the planner and gates of
 * extensions, on the simulated fleet. The event log is checked with the same invariants.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { ImageRef } from '../src/model/image-reference.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import type { ScaleSet } from '../src/model/fleet.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { baseScenario } from './helpers/harness.js';
import { DAY, HOUR } from './helpers/rig.js';

const IMAGE = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server' };
const LATEST: ImageRef = { kind: 'platform', ...IMAGE, version: 'latest' };
const AT = (version: string): ImageRef => ({ kind: 'platform', ...IMAGE, version });
const LINUX = { osType: 'Linux', hyperVGeneration: 'V2', automaticOSUpgradeSupported: true } as const;
const OS_KEY = 'osimage:canonical:ubuntu-24_04-lts:server';

interface Options {
  /** R83. */
  deferral?: boolean;
  /** R62. */
  disableAutomaticRollback?: boolean;
  enable?: boolean;
  mode?: 'Automatic' | 'Manual' | 'Rolling';
  /** Failure model of the new image. */
  newImage?: { unhealthyAfterUpgrade?: number; installFailure?: number; rollbackFailure?: number };
  /** When 1.1.0 finishes replicating to each region, after the start. */
  eastAfter?: number;
  westAfter?: number;
}

/** Two paired regions, a zonal set in each, standalone VMs that have no image; 1.0.0 everywhere, then 1.1.0. */
function osFleet(o: Options = {}) {
  const raw = baseScenario({
    regions: [{ name: 'east', pair: 'west', zones: ['1', '2', '3'] }, { name: 'west', pair: 'east', zones: ['1', '2'] }],
    fleet: {
      scaleSets: [
        { name: 'web-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'] },
        { name: 'web-west', region: 'west', subscription: 'sub1', zones: ['1', '2'], capacity: 20, extensions: ['agent'] },
      ],
      vms: [{ region: 'west', subscription: 'sub1', count: 5, extensions: ['agent'] }],
    },
    // Keeps the simulation going until the later replication (nothing else happens at that instant).
    events: [{ at: 'P6D', supportAutomaticUpgrade: { extension: 'agent', supported: true } }],
  });
  const scenario = compileScenario(raw, 'os-images');
  if (o.newImage) scenario.behaviour.versions['1.1.0'] = o.newImage;
  const store = new MemoryStore();
  const checker = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  const sim = new Simulation(scenario, { store, onEvents: checker.onEvents });
  const engine = sim.engine;
  const t0 = scenario.startMs;
  engine.updateImages((c) => {
    c.publishPlatformVersion(IMAGE, '1.0.0', LINUX, t0 - DAY);
    c.replicate(AT('1.0.0'), 'east', t0 - DAY);
    c.replicate(AT('1.0.0'), 'west', t0 - DAY);
  });
  for (const name of ['web-east', 'web-west']) {
    const set = engine.state.fleet.scaleSets.get(name)!;
    engine.putScaleSet(withImage(set, o));
  }
  engine.updateImages((c) => {
    c.publishPlatformVersion(IMAGE, '1.1.0', LINUX, t0);
    c.replicate(AT('1.1.0'), 'east', t0 + (o.eastAfter ?? 2 * HOUR));
    c.replicate(AT('1.1.0'), 'west', t0 + (o.westAfter ?? 3 * DAY));
  });
  const events = () => store.events();
  const of = <T extends EngineEvent['type']>(type: T) => events().filter((e) => e.type === type) as Array<Extract<EngineEvent, { type: T }>>;
  return { sim, engine, scenario, store, checker, events, of, t0 };
}

function withImage(set: ScaleSet, o: Options): ScaleSet {
  const p = set.upgradePolicy;
  return {
    ...set,
    image: LATEST,
    upgradePolicy: { ...p, mode: o.mode ?? p.mode, automaticOSUpgradePolicy: { ...p.automaticOSUpgradePolicy, enableAutomaticOSUpgrade: o.enable ?? true, disableAutomaticRollback: o.disableAutomaticRollback ?? false, osRollingUpgradeDeferral: o.deferral ?? false } },
  };
}

const setOf = (f: ReturnType<typeof osFleet>, machineId: string) => f.engine.state.fleet.machines.get(machineId)!.placement.setId;
const osVersion = (f: ReturnType<typeof osFleet>, machineId: string) => f.engine.state.fleet.instances.get(OS_KEY)?.get(machineId)?.installedVersion;

describe('R60, R64: a newer image version re-images the sets that follow latest, region by region', () => {
  const f = osFleet();
  f.sim.run();

  test('R64: each set starts only once the version is replicated to its region', () => {
    const starts = f.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage');
    const east = starts.filter((e) => e.placement.region === 'east');
    const west = starts.filter((e) => e.placement.region === 'west');
    assert.equal(east.length, 30);
    assert.equal(west.length, 20);
    assert.ok(east.every((e) => Date.parse(e.time) >= f.t0 + 2 * HOUR));
    assert.ok(west.every((e) => Date.parse(e.time) >= f.t0 + 3 * DAY), `west started at ${west[0]!.time}`);
    const created = f.of('rollout.created').filter((e) => e.artifact.kind === 'osImage');
    assert.equal(created.length, 2, 'one rollout per region as the version reaches it');
    assert.ok(created.every((c) => /R64/.test(c.reason) && c.toVersion === '1.1.0' && c.profile === 'standard'));
  });

  test('R60: the same planner and gates: batches of at most 20% within zones and update domains, invariants hold', () => {
    assert.deepEqual(f.checker.finish(), []);
    const batches = f.of('batch.started').filter((b) => b.scope.setId === 'web-east');
    assert.ok(batches.length >= 15, `${batches.length} batches`);
    for (const b of batches) {
      assert.ok(b.instances.length <= 6, `batch of ${b.instances.length} of 30`);
      assert.ok(b.scope.zone !== null && b.scope.updateDomain !== null);
    }
    assert.ok(f.of('rollout.completed').length >= 2);
    for (const m of f.engine.state.fleet.machines.values()) {
      if (m.placement.setId) assert.equal(osVersion(f, m.id), '1.1.0', m.id);
      else assert.equal(osVersion(f, m.id), undefined, 'machines without a catalog image have no OS image instance');
    }
  });

  test('R61: a re-image replaces the OS disk, keeps data disks, and runs the extensions and custom data again', () => {
    const reimaged = f.of('instance.reimaged');
    assert.equal(reimaged.length, 50);
    for (const e of reimaged) {
      assert.deepEqual(e.extensions, ['agent']);
      assert.equal(e.customData, true);
      assert.equal(e.dataDisksKept, true);
      assert.equal(e.fromVersion, '1.0.0');
      assert.equal(e.toVersion, '1.1.0');
    }
    assert.equal(f.sim.driver.stats.reimages, 50);
    // The extensions themselves are untouched by the OS upgrade: still there, still at their version.
    for (const m of f.engine.state.fleet.machines.values()) assert.equal(f.engine.state.fleet.instances.get('extension:contoso.agent')!.get(m.id)!.installedVersion, '1.0.0.0');
  });
});

/** Slow batches in east (10-minute pauses), so that east is still at work when west receives the version. */
function eastStillAtWork() {
  const f = osFleet({ eastAfter: HOUR, westAfter: 2 * HOUR });
  const east = f.engine.state.fleet.scaleSets.get('web-east')!;
  const p = east.upgradePolicy;
  f.engine.putScaleSet({ ...east, upgradePolicy: { ...p, rollingUpgradePolicy: { ...p.rollingUpgradePolicy, pauseTimeBetweenBatches: 'PT10M' } } });
  return f;
}

describe('R10, R64: a version reaching a second region while the first still upgrades', () => {
  test('R10: the running rollout is superseded by one plan for both regions, which keeps the geo-pair in separate phases', () => {
    const f = eastStillAtWork();
    f.sim.run();
    const cancelled = f.of('rollout.cancelled');
    assert.equal(cancelled.length, 1);
    assert.match(cancelled[0]!.reason, /superseded/);
    const created = f.of('rollout.created').filter((e) => e.artifact.kind === 'osImage');
    assert.equal(created.length, 2);
    const merged = created[1]!;
    assert.ok(merged.phases.length >= 2 && merged.phases.every((regions) => !(regions.includes('east') && regions.includes('west'))), JSON.stringify(merged.phases));
    assert.equal(f.of('instance.reimaged').length, 50, 'every instance re-imaged exactly once');
    assert.equal(new Set(f.of('instance.reimaged').map((e) => e.machineId)).size, 50);
    assert.deepEqual(f.checker.finish(), []);
  });
});

describe('R10: the superseding rollout plans what is due once', () => {
  test('R10: a machine planned in the superseded rollout\'s set, then removed and added again to the newly reached set, is planned once', () => {
    const f = eastStillAtWork();
    while (f.of('instance.reimaged').length === 0) assert.ok(f.sim.step(), 'ran out of steps');
    assert.ok(f.sim.clock.now() < f.t0 + 2 * HOUR, 'west has not received the version yet');
    const first = [...f.engine.state.rollouts.values()].find((r) => r.artifactKey === OS_KEY && r.status === 'running')!;
    const fleet = f.engine.state.fleet;
    const waiting = [...fleet.machines.values()].find((m) => m.placement.setId === 'web-east' && !first.attempts.has(m.id))!;
    const west = [...fleet.machines.values()].find((m) => m.placement.setId === 'web-west')!;
    f.engine.removeMachine(waiting.id);
    f.engine.addMachine({
      id: waiting.id, name: waiting.name, kind: 'scaleSetInstance', os: waiting.os, resourceGroup: west.resourceGroup,
      placement: { region: 'west', subscription: west.placement.subscription, zone: west.placement.zone, setKind: 'scaleSet', setId: 'web-west', updateDomain: null, faultDomain: null },
    });
    assert.equal(osVersion(f, waiting.id), '1.0.0');
    f.sim.run();
    const merged = f.of('rollout.created').filter((e) => e.artifact.kind === 'osImage')[1]!;
    const planned = f.of('batch.started').filter((b) => b.rolloutId === merged.rolloutId && !b.retry).flatMap((b) => b.instances);
    assert.equal(planned.filter((id) => id === waiting.id).length, 1, 'planned once, in its new set');
    assert.equal(planned.length, new Set(planned).size, 'no machine planned twice');
    assert.equal(f.of('instance.reimaged').filter((e) => e.machineId === waiting.id).length, 1);
    assert.equal(osVersion(f, waiting.id), '1.1.0');
    assert.deepEqual(f.checker.finish(), []);
  });
});

describe('R10: a superseded rollout with nothing in flight is not asked about each machine again', () => {
  test('R10: once its last re-image settled, batch starts of the superseding rollout stop looking machines up in it', () => {
    const f = eastStillAtWork();
    while (f.of('rollout.cancelled').length === 0) assert.ok(f.sim.step(), 'ran out of steps');
    const old = [...f.engine.state.rollouts.values()].find((r) => r.status === 'cancelled')!;
    const inFlight = () => [...old.attempts.values()].some((a) => ['noticed', 'upgrading', 'healthWait', 'rollingBack'].includes(a.status));
    while (inFlight()) assert.ok(f.sim.step(), 'ran out of steps');
    let asked = 0;
    const get = old.attempts.get.bind(old.attempts);
    old.attempts.get = (id: string) => (asked++, get(id));
    const before = f.of('instance.upgrade.started').length;
    f.sim.run();
    const started = f.of('instance.upgrade.started').length - before;
    assert.ok(started >= 20, `${started} re-images started after`);
    // What remains: one lookup per re-image started, for its attempt number (earlier attempts there count),
    // and the asks before the superseded rollout's attempts are read once and found settled.
    assert.ok(asked <= started + old.attempts.size, `${asked} lookups in the superseded rollout (${old.attempts.size} attempts) for ${started} re-images started after it settled`);
    assert.deepEqual(f.checker.finish(), []);
  });
});

describe('R62: unhealthy after a re-image', () => {
  test('R62: instances go back to the previous image, by re-image, and the set stops at the threshold', () => {
    const f = osFleet({ newImage: { unhealthyAfterUpgrade: 1 } });
    f.sim.run();
    const back = f.of('instance.rollback.succeeded').filter((e) => e.artifact.kind === 'osImage');
    assert.ok(back.length > 0);
    for (const e of back) assert.equal(e.toVersion, '1.0.0');
    assert.ok(f.of('gate.breached').some((g) => g.rule === 'R23' && g.scope.setId === 'web-east'));
    assert.ok(f.of('instance.rollback.skipped').length === 0);
    assert.ok(f.sim.driver.stats.reimages >= 2 * back.length, 'the rollback is a re-image too');
    assert.deepEqual(f.checker.finish(), []);
  });

  test('R62: with disableAutomaticRollback the instances stay on the new image, and the gates still stop the set', () => {
    const f = osFleet({ newImage: { unhealthyAfterUpgrade: 1 }, disableAutomaticRollback: true });
    f.sim.run();
    const skipped = f.of('instance.rollback.skipped');
    assert.ok(skipped.length > 0);
    assert.equal(f.of('instance.rollback.started').filter((e) => e.artifact.kind === 'osImage').length, 0);
    for (const e of skipped) {
      assert.match(e.reason ?? '', /R62/);
      const inst = f.engine.state.fleet.instances.get(OS_KEY)!.get(e.machineId)!;
      assert.equal(inst.installedVersion, '1.1.0');
      assert.equal(inst.status, 'Failed');
    }
    assert.ok(f.of('gate.breached').some((g) => g.rule === 'R23'));
    assert.deepEqual(f.checker.finish(), []);
  });
});

/** The machine's events, one line each: what a failed assertion shows. */
function historyOf(f: ReturnType<typeof osFleet>, id: string): string {
  const mine = f.events().filter((e) => (e as { machineId?: string }).machineId === id);
  return `${id}:\n${mine.map((e) => `${e.time} ${e.type} ${(e as { toVersion?: string }).toVersion ?? ''} ${(e as { reason?: string }).reason ?? ''}`).join('\n')}`;
}

/** Runs until every 1.1.0 attempt has settled, then publishes 1.2.0 (healthy) in both regions and runs to the end. */
function healedByNewerVersion(o: Options) {
  const f = osFleet({ ...o, westAfter: 2 * HOUR });
  const failed = () => [...f.engine.state.fleet.instances.get(OS_KEY)!.values()].filter((i) => i.status === 'Failed');
  while (f.sim.clock.now() < f.t0 + 2 * DAY) assert.ok(f.sim.step());
  const before = failed().map((i) => i.machineId);
  assert.ok(before.length > 0 && failed().every((i) => i.blockedReason !== null), 'some instances are Failed for good');
  // As if its re-image had failed outright: still on 1.0.0, Failed on its way to 1.1.0.
  const onOld = f.engine.state.fleet.instances.get(OS_KEY)!.get(before[0]!)!;
  if (onOld.installedVersion === '1.1.0') onOld.installedVersion = '1.0.0';
  const known = new Set(f.engine.state.rollouts.keys());
  f.engine.updateImages(() => {}); // every set looks again: the version they failed on does not take them back
  const planned = [...f.engine.state.rollouts.values()].filter((r) => !known.has(r.id)).flatMap((r) => [...r.units.values()].flatMap((u) => u.plan.batches.flatMap((b) => b.machineIds)));
  assert.deepEqual(planned.filter((id) => before.includes(id)), []);
  const now = f.sim.clock.now();
  f.engine.updateImages((c) => {
    c.publishPlatformVersion(IMAGE, '1.2.0', LINUX, now);
    c.replicate(AT('1.2.0'), 'east', now);
    c.replicate(AT('1.2.0'), 'west', now);
  });
  f.sim.run();
  return { f, before, failed };
}

describe('R31, R62: a Failed OS image instance and a newer version', () => {
  test('R31: an instance whose rollback failed is re-imaged to the next version, which heals it; never again to the one it failed on', () => {
    const { f, before, failed } = healedByNewerVersion({ newImage: { unhealthyAfterUpgrade: 1, rollbackFailure: 1 } });
    for (const id of before) assert.equal(osVersion(f, id), '1.2.0', historyOf(f, id));
    assert.deepEqual(failed().map((i) => i.machineId), []);
    const again = f.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage' && e.toVersion === '1.1.0');
    assert.equal(new Set(again.map((e) => e.machineId)).size, again.length, 'no instance went to 1.1.0 twice');
    assert.deepEqual(f.checker.finish(), []);
  });

  test('R62: an instance left Failed on the new image (disableAutomaticRollback) is re-imaged to the next version', () => {
    const { f, before, failed } = healedByNewerVersion({ newImage: { unhealthyAfterUpgrade: 1 }, disableAutomaticRollback: true });
    for (const id of before) assert.equal(osVersion(f, id), '1.2.0', historyOf(f, id));
    assert.deepEqual(failed().map((i) => i.machineId), []);
    assert.deepEqual(f.checker.finish(), []);
  });
});

describe('R63, R65: the policy', () => {
  test('R63: automatic OS upgrade follows its own switch whatever the upgrade mode', () => {
    const f = osFleet({ mode: 'Manual' });
    f.sim.run();
    assert.equal(f.of('instance.reimaged').length, 50);
  });

  test('R65: no switch, no automatic OS upgrade; osRollingUpgrade re-images by hand', () => {
    const f = osFleet({ enable: false, westAfter: 2 * HOUR });
    while (f.sim.clock.now() < f.t0 + DAY) assert.ok(f.sim.step());
    assert.equal(f.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage').length, 0);
    const r = f.engine.startOsRollingUpgrade('web-west', 'ops@contoso.com')!;
    assert.equal(r.plan.profile.name, 'manual');
    assert.equal(r.toVersion, '1.1.0');
    f.sim.run();
    assert.equal(r.status, 'completed');
    assert.equal(f.of('instance.reimaged').filter((e) => setOf(f, e.machineId) === 'web-west').length, 20);
    assert.equal(f.of('instance.reimaged').filter((e) => setOf(f, e.machineId) === 'web-east').length, 0, 'the other set was not asked');
    assert.equal(f.engine.startOsRollingUpgrade('web-west', 'ops@contoso.com'), null, 'nothing left to do');
    assert.throws(() => f.engine.startOsRollingUpgrade('nosuch', 'ops'), /no scale set nosuch/);
  });

  test('R65: turning the switch off pauses the set\'s part of the rollout; on again, it resumes and completes', () => {
    const f = osFleet({ westAfter: 30 * DAY });
    const east = () => f.engine.state.fleet.scaleSets.get('web-east')!;
    while (f.of('instance.reimaged').filter((e) => setOf(f, e.machineId) === 'web-east').length === 0) assert.ok(f.sim.step(), 'ran out of steps');
    f.engine.putScaleSet(withImage(east(), { enable: false }));
    const pausedAt = f.events().length;
    // Three days on, the set's part is still paused (nothing new started on it).
    while (f.sim.clock.now() < f.t0 + 2 * DAY) assert.ok(f.sim.step());
    const later = f.events().slice(pausedAt);
    assert.ok(later.some((e) => e.type === 'rollout.paused' && /R65/.test(e.reason)));
    const startedAfter = later.filter((e) => e.type === 'batch.started' && e.scope.setId === 'web-east');
    assert.equal(startedAfter.length, 0);
    const upgraded = f.of('instance.reimaged').filter((e) => setOf(f, e.machineId) === 'web-east').length;
    assert.ok(upgraded < 30);
    f.engine.putScaleSet(withImage(east(), { enable: true }));
    assert.ok(f.of('rollout.resumed').some((e) => /R65/.test(e.reason)));
    f.sim.run();
    assert.equal(f.of('instance.reimaged').filter((e) => setOf(f, e.machineId) === 'web-east').length, 30);
    assert.deepEqual(f.checker.finish(), []);
  });
});

describe('R83: advance notice before a re-image', () => {
  test('R83: every re-image is announced as a scheduled event 15 minutes ahead, and starts when the notice runs out', () => {
    const f = osFleet();
    f.sim.run();
    const notices = f.of('instance.notice.scheduled');
    assert.equal(notices.length, 50);
    const started = new Map(f.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage').map((e) => [`${e.rolloutId}|${e.machineId}|${e.attempt}`, e]));
    for (const n of notices) {
      assert.equal(n.eventType, 'Reimage');
      assert.equal(n.deferred, false);
      assert.equal(Date.parse(n.notBefore!), Date.parse(n.time) + 15 * 60_000);
      const s = started.get(`${n.rolloutId}|${n.machineId}|${n.attempt}`)!;
      assert.ok(s && s.seq > n.seq && s.time === n.notBefore, `${n.machineId}: notice ${n.time}, re-image ${s?.time}`);
    }
  });

  test('R83: with osRollingUpgradeDeferral a re-image waits for the workload\'s approval; approving starts it at once', () => {
    const f = osFleet({ deferral: true, westAfter: 30 * DAY });
    while (f.sim.clock.now() < f.t0 + 2 * DAY) assert.ok(f.sim.step());
    const notices = f.of('instance.notice.scheduled');
    assert.ok(notices.length > 0 && notices.every((n) => n.deferred && n.notBefore === null));
    assert.equal(f.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage').length, 0, 'nothing re-imaged without approval');
    const waiting = notices.map((n) => n.machineId);
    assert.equal(f.engine.approveReimages(waiting, 'workload'), waiting.length);
    const approved = f.of('instance.notice.approved');
    assert.deepEqual(approved.map((e) => e.machineId).sort(), [...waiting].sort());
    assert.ok(approved.every((e) => e.caller === 'workload'));
    assert.equal(f.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage').length, waiting.length);
    assert.equal(f.engine.approveReimages(waiting, 'workload'), 0, 'nothing left to approve');
  });
});

describe('OS image rollouts under change (review reproductions)', () => {
  const reimagedIn = (f: ReturnType<typeof osFleet>, setId: string) => f.of('instance.reimaged').filter((e) => setOf(f, e.machineId) === setId).length;

  test('R83: cancelling a rollout withdraws its announced re-images, and the set is free for the next upgrade', () => {
    const f = osFleet({ enable: false, deferral: true, westAfter: 30 * DAY });
    while (f.sim.clock.now() < f.t0 + 3 * HOUR) assert.ok(f.sim.step());
    const r = f.engine.startOsRollingUpgrade('web-east', 'ops')!;
    assert.ok(f.of('instance.notice.scheduled').some((n) => n.rolloutId === r.id && n.deferred));
    assert.equal(f.engine.state.setInflight.get('web-east'), 1);
    f.engine.cancelRollout(r.id, 'cancelled by ops');
    assert.equal(r.status, 'cancelled');
    assert.equal(f.engine.state.setInflight.get('web-east'), 0, 'the batch settled: the set lock is free');
    const skipped = f.of('instance.skipped').filter((e) => e.rolloutId === r.id);
    assert.ok(skipped.length > 0 && skipped.every((e) => /cancelled before the re-image/.test(e.reason)));
    for (const e of skipped) assert.equal(f.engine.state.fleet.instances.get(OS_KEY)!.get(e.machineId)!.status, 'Succeeded');
    assert.equal(f.engine.approveReimages(skipped.map((e) => e.machineId), 'workload'), 0, 'nothing left to approve');
    // Without deferral, the next upgrade of the set runs to the end.
    const set = f.engine.state.fleet.scaleSets.get('web-east')!;
    f.engine.putScaleSet(withImage(set, { enable: false, deferral: false }));
    const again = f.engine.startOsRollingUpgrade('web-east', 'ops')!;
    f.sim.run();
    assert.equal(again.status, 'completed');
    assert.equal(reimagedIn(f, 'web-east'), 30);
  });

  test('R60: a newer version supersedes the running rollout of an older one; every instance ends on the newest', () => {
    const f = osFleet({ westAfter: 2 * HOUR });
    while (f.of('instance.reimaged').length < 3) assert.ok(f.sim.step());
    const now = f.sim.clock.now();
    f.engine.updateImages((c) => {
      c.publishPlatformVersion(IMAGE, '1.2.0', LINUX, now);
      c.replicate(AT('1.2.0'), 'east', now);
      c.replicate(AT('1.2.0'), 'west', now);
    });
    const cancelled = f.of('rollout.cancelled');
    assert.ok(cancelled.some((e) => /superseded by 1\.2\.0/.test(e.reason)));
    f.sim.run();
    const old = new Set(cancelled.map((e) => e.rolloutId));
    const cancelledAt = Date.parse(cancelled[0]!.time);
    assert.ok(f.of('instance.upgrade.started').filter((e) => old.has(e.rolloutId)).every((e) => Date.parse(e.time) <= cancelledAt), 'nothing started by a superseded rollout');
    for (const m of f.engine.state.fleet.machines.values()) if (m.placement.setId) assert.equal(osVersion(f, m.id), '1.2.0', m.id);
    assert.deepEqual(f.checker.finish(), []);
  });

  test('R65: a set that turns automatic OS upgrade off does not hold back the rest of the rollout, once its phase has enough evidence', () => {
    const f = osFleet({ eastAfter: HOUR, westAfter: HOUR });
    const rollout = () => [...f.engine.state.rollouts.values()].find((r) => r.artifact.kind === 'osImage')!;
    while (f.of('instance.reimaged').length === 0) assert.ok(f.sim.step());
    const first = setOf(f, f.of('instance.reimaged')[0]!.machineId)!;
    const other = first === 'web-east' ? 'web-west' : 'web-east';
    // The phase gate wants at least ten judged instances before the next phase (minPhaseSample).
    while (reimagedIn(f, first) < 12) assert.ok(f.sim.step());
    f.engine.putScaleSet(withImage(f.engine.state.fleet.scaleSets.get(first)!, { enable: false }));
    f.sim.run();
    assert.equal(reimagedIn(f, other), other === 'web-east' ? 30 : 20, 'the other set, in a later phase, was upgraded');
    assert.ok(reimagedIn(f, first) < (first === 'web-east' ? 30 : 20));
    assert.equal(rollout().status, 'running', 'the paused set keeps the rollout open');
    assert.deepEqual(f.checker.finish(), []);
  });

  test('R60: a set moved to another image drops the old image instances; its old rollout skips them; not while a re-image is in flight', () => {
    const f = osFleet({ westAfter: 30 * DAY });
    const east = () => f.engine.state.fleet.scaleSets.get('web-east')!;
    const p = east().upgradePolicy;
    f.engine.putScaleSet({ ...east(), upgradePolicy: { ...p, rollingUpgradePolicy: { ...p.rollingUpgradePolicy, pauseTimeBetweenBatches: 'PT30M' } } });
    const minimal = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'minimal' };
    const moved = () => ({ ...east(), image: { kind: 'platform' as const, ...minimal, version: 'latest' } });
    while (f.of('instance.reimaged').length === 0) assert.ok(f.sim.step());
    const now = f.sim.clock.now();
    f.engine.updateImages((c) => {
      c.publishPlatformVersion(minimal, '2.0.0', LINUX, now);
      c.replicate({ kind: 'platform', ...minimal, version: '2.0.0' }, 'east', now);
    });
    const inFlight = () => [...f.engine.state.rollouts.values()].some((r) => [...r.attempts.values()].some((a) => ['noticed', 'upgrading', 'healthWait', 'rollingBack'].includes(a.status)));
    if (inFlight()) assert.throws(() => f.engine.putScaleSet(moved()), /in flight/);
    while (inFlight()) assert.ok(f.sim.step());
    f.engine.putScaleSet(moved());
    const members = [...f.engine.state.fleet.machines.values()].filter((m) => m.placement.setId === 'web-east');
    assert.ok(members.every((m) => f.engine.state.fleet.instances.get(OS_KEY)?.get(m.id) === undefined), 'the old image instances are gone');
    assert.ok(members.every((m) => f.engine.state.fleet.instances.get('osimage:canonical:ubuntu-24_04-lts:minimal')!.get(m.id)!.installedVersion === '2.0.0'));
    f.sim.run();
    const old = [...f.engine.state.rollouts.values()].find((r) => r.artifactKey === OS_KEY)!;
    assert.notEqual(old.status, 'running');
    assert.ok(f.of('instance.skipped').some((e) => e.rolloutId === old.id && /another image/.test(e.reason)));
    assert.deepEqual(f.checker.finish(), []);
  });

  test('R65: cancelling one set\'s part of the platform\'s OS image rollout leaves the other sets to finish', () => {
    const f = osFleet({ eastAfter: HOUR, westAfter: HOUR });
    const rollout = () => [...f.engine.state.rollouts.values()].find((r) => r.artifact.kind === 'osImage')!;
    while (reimagedIn(f, 'web-east') + reimagedIn(f, 'web-west') < 12) assert.ok(f.sim.step());
    const first = reimagedIn(f, 'web-east') > 0 ? 'web-east' : 'web-west';
    const other = first === 'web-east' ? 'web-west' : 'web-east';
    const left = f.engine.cancelSetInRollout(rollout().id, first);
    assert.ok(left > 0);
    const doneBefore = reimagedIn(f, first);
    f.sim.run();
    assert.equal(rollout().status, 'completed');
    assert.equal(reimagedIn(f, other), other === 'web-east' ? 30 : 20);
    assert.ok(reimagedIn(f, first) < (first === 'web-east' ? 30 : 20), 'the cancelled set stopped');
    assert.ok(reimagedIn(f, first) <= doneBefore + 6, 'at most the batch under way finished');
    assert.ok(f.of('instance.skipped').filter((e) => /rollingUpgrades\/cancel/.test(e.reason)).length === left);
    assert.deepEqual(f.checker.finish(), []);
  });
});

describe('an operator\'s hold and a user\'s OS rolling upgrade (manual rollout)', () => {
  const ARTIFACT = { kind: 'osImage' as const, ...IMAGE };

  test('a pause parks the user-started rolling upgrade (no batch while held, invariants checked); a resume lets it complete', () => {
    const f = osFleet({ enable: false, westAfter: 2 * HOUR });
    while (f.sim.clock.now() < f.t0 + DAY) assert.ok(f.sim.step());
    const r = f.engine.startOsRollingUpgrade('web-west', 'user@contoso.com')!;
    assert.equal(r.plan.profile.name, 'manual');
    const paused = f.engine.pauseRollout(r.id, 'incident', 'ops@contoso.com');
    assert.deepEqual(paused.map((x) => x.id), [r.id]);
    const pausedAt = f.store.events().length;
    const until = f.sim.clock.now() + 2 * DAY;
    // Stops when nothing is left to happen (the simulation would end there): the parked units wait for the resume.
    while (f.sim.clock.now() < until && (f.engine.nextWakeAt() !== null || f.sim.driver.nextAt() !== null) && f.sim.step());
    const during = f.events().slice(pausedAt);
    assert.equal(during.filter((e) => e.type === 'batch.started').length, 0, 'no batch while the operator holds the release');
    assert.ok(during.some((e) => e.type === 'batch.completed'), 'the batch in flight finished');
    assert.equal(r.status, 'running');
    assert.ok([...r.units.values()].some((u) => u.status === 'blocked'), `its units are parked: ${[...r.units.values()].map((u) => u.status).join(', ')}`);
    f.engine.resumeRolloutByOperator(r.id, 'ops@contoso.com');
    f.sim.run();
    assert.equal(r.status, 'completed');
    assert.equal(f.of('instance.reimaged').filter((e) => setOf(f, e.machineId) === 'web-west').length, 20);
    assert.deepEqual(f.checker.finish(), []);
  });

  test('the evidence\'s hold does not stop a user\'s rolling upgrade: it is the user\'s explicit command', () => {
    const f = osFleet({ enable: false, westAfter: 2 * HOUR });
    while (f.sim.clock.now() < f.t0 + DAY) assert.ok(f.sim.step());
    const r = f.engine.startOsRollingUpgrade('web-west', 'user@contoso.com')!;
    f.engine.holdRelease(ARTIFACT, '1.1.0', 'bad evidence', 'engine', 'evidence');
    f.sim.run();
    assert.equal(r.status, 'completed');
    assert.equal(f.of('instance.reimaged').filter((e) => setOf(f, e.machineId) === 'web-west').length, 20);
    assert.deepEqual(f.checker.finish(), []);
  });

  test('the invariant checker fails a manual batch during an operator\'s hold', () => {
    const f = osFleet({ enable: false, westAfter: 2 * HOUR });
    while (f.sim.clock.now() < f.t0 + DAY) assert.ok(f.sim.step());
    const r = f.engine.startOsRollingUpgrade('web-west', 'user@contoso.com')!;
    const checker = new InvariantChecker({ pairs: symmetricPairs([...f.scenario.state.fleet.regions.values()]) });
    checker.onEvents(f.events().filter((e) => e.type === 'rollout.created' && e.rolloutId === r.id));
    const held = { type: 'release.halted', seq: 1e9, time: new Date(f.sim.clock.now()).toISOString(), artifact: ARTIFACT, artifactKey: OS_KEY, toVersion: '1.1.0', kind: 'operator' };
    checker.onEvents([held as unknown as EngineEvent]);
    f.sim.run();
    checker.onEvents(f.events().filter((e) => e.seq > 0 && (e.type === 'batch.started' || e.type === 'phase.started') && 'rolloutId' in e && e.rolloutId === r.id)
      .map((e) => ({ ...e, seq: e.seq + 2e9 })));
    assert.ok(checker.finish().some((v) => /while it is held \(operator\)/.test(v)));
  });
});
