/**
 * OS images in scenario files (docs/scenarios.md: `images`, a scale set's `image`, `publishImage`,
 * `replicateImage`): a release written in a scenario re-images the sets that follow `latest` region by
 * region as the version's replication completes (R60, R64), announced ahead (R83), with the invariants
 * of the event log; bad input names its path; a property test over random timings and failure rates.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { InvariantChecker } from '../src/audit/invariants.js';
import { compareImageVersions } from '../src/model/image-version.js';
import type { EngineEvent, EventType } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { compileScenario, ScenarioError } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { baseScenario } from './helpers/harness.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const UBUNTU = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server' };
const OS_KEY = 'osimage:canonical:ubuntu-24_04-lts:server';

type Raw = Record<string, any>;

/**
 * Two paired regions. `web-east` and `web-west` follow Ubuntu at latest with automatic OS upgrade on;
 * `pinned` names 1.0.0; `manual-os` follows latest with the switch off (R65). 1.1.0 is published a day
 * in, replicated to east two hours later and to west on day 3.
 */
function imageScenario(change: (s: Raw) => void = () => {}): Raw {
  const on = { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } };
  const s = baseScenario({
    regions: [{ name: 'east', pair: 'west', zones: ['1', '2', '3'] }, { name: 'west', pair: 'east', zones: ['1', '2'] }],
    images: [{ ...UBUNTU, osType: 'Linux', versions: [{ version: '1.0.0' }] }],
    fleet: {
      scaleSets: [
        { name: 'web-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'], image: { ...UBUNTU, version: 'latest' }, upgradePolicy: on },
        { name: 'web-west', region: 'west', subscription: 'sub1', zones: ['1', '2'], capacity: 20, extensions: ['agent'], image: { ...UBUNTU }, upgradePolicy: on },
        { name: 'pinned', region: 'west', subscription: 'sub1', capacity: 5, extensions: ['agent'], image: { ...UBUNTU, version: '1.0.0' }, upgradePolicy: on },
        { name: 'manual-os', region: 'east', subscription: 'sub1', capacity: 5, extensions: ['agent'], image: { ...UBUNTU, version: 'latest' } },
      ],
      vms: [{ region: 'west', subscription: 'sub1', count: 4, extensions: ['agent'] }],
    },
    events: [
      { at: 'P1D', publishImage: { ...UBUNTU, version: '1.1.0', replications: [{ region: 'east', at: 'P1DT2H' }] } },
      { at: 'P3D', replicateImage: { ...UBUNTU, version: '1.1.0', region: 'west' } },
    ],
  }) as Raw;
  change(s);
  return s;
}

function simulate(raw: Raw) {
  const scenario = compileScenario(raw, 'images');
  const checker = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  const events: EngineEvent[] = [];
  const result = runSimulation(scenario, { onEvents: (batch) => { checker.onEvents(batch); for (const e of batch) events.push(e); } });
  const of = <T extends EventType>(type: T) => events.filter((e) => e.type === type) as Array<Extract<EngineEvent, { type: T }>>;
  const osVersion = (machineId: string) => result.engine.state.fleet.instances.get(OS_KEY)?.get(machineId)?.installedVersion;
  const members = (setId: string) => [...result.engine.state.fleet.machines.values()].filter((m) => m.placement.setId === setId).map((m) => m.id);
  return { scenario, result, events, of, violations: checker.finish(), osVersion, members, t0: scenario.startMs };
}

describe('an image release written in a scenario', () => {
  const r = simulate(imageScenario());
  const started = r.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage');

  test('the images section and the image references are in effect before the first event: every set instance starts on 1.0.0', () => {
    const first = r.events.find((e) => e.type === 'instance.upgrade.started' || e.type === 'rollout.created');
    assert.ok(first && Date.parse(first.time) >= r.t0 + DAY, 'nothing happens before the release');
    const osInstances = r.scenario.state.fleet.instances.get(OS_KEY);
    assert.ok(osInstances, 'OS image instances exist');
    assert.equal(osInstances.size, 60, 'one per scale-set instance, none on the standalone VMs');
  });

  test('R64: no re-image in a region before the version\'s replication there completes', () => {
    const east = started.filter((e) => e.placement.region === 'east');
    const west = started.filter((e) => e.placement.region === 'west');
    assert.equal(east.length, 30);
    assert.equal(west.length, 20);
    assert.ok(east.every((e) => Date.parse(e.time) >= r.t0 + DAY + 2 * HOUR), `east started at ${east[0]?.time}`);
    assert.ok(west.every((e) => Date.parse(e.time) >= r.t0 + 3 * DAY), `west started at ${west[0]?.time}`);
    const created = r.of('rollout.created').filter((e) => e.artifact.kind === 'osImage');
    assert.equal(created.length, 2, 'one rollout as the version reaches each region');
    assert.ok(created.every((c) => c.toVersion === '1.1.0' && /R64/.test(c.reason)));
  });

  test('R60: every set following latest with automatic OS upgrade is re-imaged in batches of at most 20%; invariants hold', () => {
    assert.deepEqual(r.violations, []);
    assert.equal(r.result.hitHorizon, false);
    for (const id of [...r.members('web-east'), ...r.members('web-west')]) assert.equal(r.osVersion(id), '1.1.0', id);
    assert.equal(r.of('instance.reimaged').length, 50);
    for (const b of r.of('batch.started').filter((x) => x.scope.setId === 'web-east')) assert.ok(b.instances.length <= 6, `batch of ${b.instances.length} of 30`);
    assert.ok(r.of('rollout.completed').length >= 2);
  });

  test('R65: a set with automatic OS upgrade off, and a set pinned to a version, stay on 1.0.0', () => {
    for (const id of [...r.members('manual-os'), ...r.members('pinned')]) assert.equal(r.osVersion(id), '1.0.0', id);
    assert.ok(started.every((e) => !['manual-os', 'pinned'].includes(e.placement.setId ?? '')));
  });

  test('R83: each re-image is preceded by its notice, 15 minutes ahead', () => {
    const notices = new Map(r.of('instance.notice.scheduled').map((n) => [`${n.rolloutId}|${n.machineId}|${n.attempt}`, n]));
    assert.equal(started.length, 50);
    for (const s of started) {
      const n = notices.get(`${s.rolloutId}|${s.machineId}|${s.attempt}`);
      assert.ok(n, `${s.machineId}: no notice`);
      assert.ok(n.seq < s.seq && Date.parse(s.time) - Date.parse(n.time) >= 15 * 60_000, `${s.machineId}: notice ${n.time}, re-image ${s.time}`);
    }
  });

  test('R64: a release described in the images section alone (a version replicated after the start) runs too, and the run waits for it', () => {
    const late = simulate(imageScenario((s) => {
      s.images[0].versions.push({ version: '1.2.0', replications: [{ region: 'east', at: 'P2D' }] });
      s.events = [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }];
    }));
    assert.deepEqual(late.violations, []);
    const os = late.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage');
    assert.equal(os.length, 30, 'east only: 1.2.0 never reaches west');
    assert.ok(os.every((e) => e.placement.region === 'east' && Date.parse(e.time) >= late.t0 + 2 * DAY));
    for (const id of late.members('web-west')) assert.equal(late.osVersion(id), '1.0.0');
  });

  test('failures.versions takes image versions: a broken image is rolled back to the previous one (R62)', () => {
    const bad = simulate(imageScenario((s) => (s.failures = { versions: { '1.1.0': { unhealthyAfterUpgrade: 1 }, '1.0.0.0': { installFailure: 0 } }, default: { reimageSeconds: { median: 120, p95: 300 } } })));
    assert.deepEqual(bad.violations, []);
    const back = bad.of('instance.rollback.succeeded').filter((e) => e.artifact.kind === 'osImage');
    assert.ok(back.length > 0 && back.every((e) => e.toVersion === '1.0.0'));
    assert.ok(bad.of('rollout.stopped').length > 0 || bad.of('gate.breached').length > 0);
  });
});

describe('generated scale sets with an image', () => {
  test('R60: generate.scaleSets.image with osUpgradeShare: that share of the sets is re-imaged, the others keep their image', () => {
    const raw = imageScenario((s) => {
      s.fleet = { generate: { extensions: ['agent'], subscriptions: 2, scaleSets: { count: 12, capacity: { min: 2, max: 6 }, image: { ...UBUNTU }, osUpgradeShare: 0.5 } } };
      s.events.push({ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } });
    });
    const r = simulate(raw);
    assert.deepEqual(r.violations, []);
    const sets = [...r.result.engine.state.fleet.scaleSets.values()];
    const on = sets.filter((x) => x.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade);
    assert.ok(on.length > 0 && on.length < sets.length, `${on.length} of ${sets.length} sets on`);
    assert.ok(sets.every((x) => x.image?.kind === 'platform' && x.image.version === 'latest'));
    for (const set of sets) {
      const want = set.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade ? '1.1.0' : '1.0.0';
      for (const id of r.members(set.id)) assert.equal(r.osVersion(id), want, `${id} (${set.region})`);
    }
  });
});

describe('bad image input names its path', () => {
  function issues(raw: Raw): Array<{ path: string; message: string }> {
    try {
      compileScenario(raw, 'bad.yaml');
    } catch (err) {
      assert.ok(err instanceof ScenarioError, String(err));
      return err.issues;
    }
    assert.fail('the scenario was accepted');
  }
  function expectIssue(raw: Raw, path: string, says: string | RegExp): void {
    const found = issues(raw);
    const at = found.filter((i) => i.path === path);
    assert.ok(at.length > 0, `no issue at ${path}; got: ${found.map((i) => `${i.path}: ${i.message}`).join(' | ')}`);
    assert.ok(at.some((i) => (typeof says === 'string' ? i.message.includes(says) : says.test(i.message))), `${path}: ${at.map((i) => i.message).join(' | ')}`);
  }

  test('a set naming an image the images section does not have', () => {
    expectIssue(imageScenario((s) => (s.fleet.scaleSets[0].image.sku = 'desktop')), 'fleet.scaleSets[0].image', 'unknown image Canonical:ubuntu-24_04-lts:desktop; expected one of images[]: Canonical:ubuntu-24_04-lts:server');
  });

  test('a generated set naming an unknown image', () => {
    expectIssue(imageScenario((s) => (s.fleet = { generate: { extensions: ['agent'], scaleSets: { count: 2, capacity: { min: 1, max: 2 }, image: { publisher: 'Nobody', offer: 'x', sku: 'y' } } } })), 'fleet.generate.scaleSets.image', 'unknown image Nobody:x:y');
  });

  test('image versions that are not three numbers, in the section, a set, an event and the failures', () => {
    expectIssue(imageScenario((s) => (s.images[0].versions[0].version = '1.0')), 'images[0].versions[0].version', 'expected an image version of three numbers');
    expectIssue(imageScenario((s) => (s.images[0].versions[0].version = '1.0.0.0')), 'images[0].versions[0].version', 'expected an image version of three numbers');
    expectIssue(imageScenario((s) => (s.fleet.scaleSets[0].image.version = 'newest')), 'fleet.scaleSets[0].image.version', 'expected latest or an image version');
    expectIssue(imageScenario((s) => (s.events[0].publishImage.version = 'v2')), 'events[0].publishImage.version', 'expected an image version of three numbers');
    expectIssue(imageScenario((s) => (s.failures = { versions: { '1.1': {} } })), 'failures.versions.1.1', 'or an image version of three numbers');
    expectIssue(imageScenario((s) => (s.failures = { versions: { '9.9.9': {} } })), 'failures.versions.9.9.9', 'no image or publishImage event has version 9.9.9; expected one of: 1.0.0, 1.1.0');
  });

  test('a replication to a region not in the scenario, in the section, a publishImage and a replicateImage event', () => {
    expectIssue(imageScenario((s) => (s.images[0].versions[0].replications = [{ region: 'east' }, { region: 'mars' }])), 'images[0].versions[0].replications[1].region', 'unknown region "mars"; expected one of: east, west');
    expectIssue(imageScenario((s) => (s.events[0].publishImage.replications[0].region = 'eastus')), 'events[0].publishImage.replications[0].region', 'unknown region "eastus"');
    expectIssue(imageScenario((s) => (s.events[1].replicateImage.region = 'moon')), 'events[1].replicateImage.region', 'unknown region "moon"');
  });

  test('R64: a set following latest in a region with no version there at the start; a pinned version not there', () => {
    expectIssue(imageScenario((s) => (s.images[0].versions[0].replications = [{ region: 'east' }])), 'fleet.scaleSets[1].image', 'no version of Canonical:ubuntu-24_04-lts:server is replicated to west at the start');
    expectIssue(imageScenario((s) => (s.fleet.scaleSets[2].image.version = '1.1.0')), 'fleet.scaleSets[2].image.version', '1.1.0 of Canonical:ubuntu-24_04-lts:server is not replicated to west at the start');
    expectIssue(imageScenario((s) => (s.fleet.scaleSets[2].image.version = '3.0.0')), 'fleet.scaleSets[2].image.version', '3.0.0 is not a version of');
  });

  test('replications out of order: before the publication, twice to a region, of a version published later or never', () => {
    expectIssue(imageScenario((s) => (s.events[0].publishImage.replications[0].at = 'PT12H')), 'events[0].publishImage.replications[0].at', 'expected the replication to complete at or after the version is published');
    expectIssue(imageScenario((s) => (s.events[1].replicateImage.region = 'east')), 'events[1].replicateImage.region', 'is replicated to east already (events[0].publishImage.replications[0])');
    expectIssue(imageScenario((s) => (s.events[1].at = 'PT6H')), 'events[1].replicateImage.version', '1.1.0 of Canonical:ubuntu-24_04-lts:server is published only later, by events[0]; expected a version published by then: 1.0.0');
    expectIssue(imageScenario((s) => (s.events[1].replicateImage.version = '2.0.0')), 'events[1].replicateImage.version', 'is never published');
    expectIssue(imageScenario((s) => (s.events[0].publishImage.version = '1.0.0')), 'events[0].publishImage.version', '1.0.0 of Canonical:ubuntu-24_04-lts:server is already published (images[0].versions[0])');
    expectIssue(imageScenario((s) => (s.events[0].publishImage.offer = 'other')), 'events[0].publishImage', 'unknown image Canonical:other:server');
  });

  test('an image listed twice, a version listed twice, an OS that does not fit', () => {
    expectIssue(imageScenario((s) => s.images.push({ ...UBUNTU, versions: [{ version: '2.0.0' }] })), 'images[1]', 'is listed twice');
    expectIssue(imageScenario((s) => s.images[0].versions.push({ version: '1.00.0' })), 'images[0].versions[1].version', '1.00.0 is listed twice');
    expectIssue(imageScenario((s) => (s.fleet.scaleSets[0].os = 'windows')), 'fleet.scaleSets[0].image', 'is a Linux image, but the set\'s os is windows');
  });

  test('an event with two kinds, and unknown keys', () => {
    expectIssue(imageScenario((s) => (s.events[1].publishImage = s.events[0].publishImage)), 'events[1]', 'expected exactly one of');
    expectIssue(imageScenario((s) => (s.images[0].versions[0].regions = ['east'])), 'images[0].versions[0]', 'regions');
  });
});

describe('property: random image release timings and failure rates', () => {
  test('R64, R60: invariants hold, no re-image precedes the replication to its region, and re-imaged machines end at or above their start', () => {
    let reimages = 0;
    let runs = 0;
    fc.assert(fc.property(
      fc.record({
        publishAfterH: fc.integer({ min: 0, max: 72 }),
        eastDelayH: fc.integer({ min: 0, max: 72 }),
        westDelayH: fc.integer({ min: 0, max: 96 }),
        westByEvent: fc.boolean(),
        installFailure: fc.double({ min: 0, max: 0.4, noNaN: true }),
        unhealthy: fc.double({ min: 0, max: 0.4, noNaN: true }),
        rollbackFailure: fc.double({ min: 0, max: 0.3, noNaN: true }),
        seed: fc.integer({ min: 1, max: 1_000_000 }),
      }),
      (p) => {
        const publishMs = p.publishAfterH * HOUR;
        const eastMs = publishMs + p.eastDelayH * HOUR;
        const westMs = publishMs + p.westDelayH * HOUR;
        const iso = (ms: number) => `PT${ms / HOUR}H`;
        const raw = imageScenario((s) => {
          s.seed = p.seed;
          s.horizon = 'P12W';
          s.fleet.scaleSets = s.fleet.scaleSets.slice(0, 2).map((x: Raw) => ({ ...x, capacity: x.capacity / 5 }));
          const replications = [{ region: 'east', at: iso(eastMs) }, ...(p.westByEvent ? [] : [{ region: 'west', at: iso(westMs) }])];
          s.events = [
            { at: iso(publishMs), publishImage: { ...UBUNTU, version: '1.1.0', replications } },
            ...(p.westByEvent ? [{ at: iso(westMs), replicateImage: { ...UBUNTU, version: '1.1.0', region: 'west' } }] : []),
          ];
          s.failures = { versions: { '1.1.0': { installFailure: p.installFailure, unhealthyAfterUpgrade: p.unhealthy, rollbackFailure: p.rollbackFailure } } };
        });
        const r = simulate(raw);
        runs++;
        reimages += r.of('instance.reimaged').length;
        assert.deepEqual(r.violations, []);
        const replicated: Record<string, number> = { east: r.t0 + eastMs, west: r.t0 + westMs };
        const start = new Map<string, string>();
        for (const e of r.events) {
          if (e.type === 'instance.upgrade.started' && e.artifact.kind === 'osImage') {
            assert.equal(e.toVersion, '1.1.0');
            assert.ok(Date.parse(e.time) >= replicated[e.placement.region]!, `${e.machineId} re-imaged at ${e.time}, before the replication to ${e.placement.region}`);
          }
        }
        for (const id of [...r.members('web-east'), ...r.members('web-west')]) start.set(id, '1.0.0');
        for (const e of r.of('instance.reimaged')) {
          const end = r.osVersion(e.machineId);
          assert.ok(end !== undefined && compareImageVersions(end, start.get(e.machineId)!) >= 0, `${e.machineId} ends on ${end}`);
        }
      },
    ), { numRuns: 25, seed: 42 });
    assert.ok(reimages > runs * 2, `the runs re-imaged ${reimages} machines in ${runs} runs: the property was exercised`);
  });
});

describe('engine problem found by the scenarios (reported, not fixed here: src/engine belongs to its owner)', () => {
  // A version reaches west while east's rollout has a re-image announced (R83) but not started. The
  // superseding rollout leaves the machines in flight out (they belong to the cancelled one); the cancelled
  // rollout still starts that re-image after its cancellation, it fails, is rolled back, and since the
  // rollout is cancelled no retry is ever scheduled: the machine stays on 1.0.0 while the superseding
  // rollout completes. Seed 4 of the property above's shape makes it happen for web-east/21.
  test('R60: a machine whose re-image was in flight when its rollout was superseded still ends on the new version', () => {
    const r = simulate(imageScenario((s) => {
      s.seed = 4;
      s.fleet.scaleSets = s.fleet.scaleSets.slice(0, 2);
      s.events = [{ at: 'P1D', publishImage: { ...UBUNTU, version: '1.1.0', replications: [{ region: 'east', at: 'P1DT1H' }, { region: 'west', at: 'P1DT1H40M' }] } }];
      s.failures = { versions: { '1.1.0': { installFailure: 0.15 } } };
    }));
    assert.deepEqual(r.violations, []);
    const created = r.of('rollout.created').filter((e) => e.artifact.kind === 'osImage');
    assert.equal(r.of('rollout.cancelled').length, 1, 'the first rollout is superseded');
    assert.ok(r.of('rollout.completed').some((e) => e.rolloutId === created.at(-1)!.rolloutId), 'the superseding rollout completes');
    const cancelledAt = Date.parse(r.of('rollout.cancelled')[0]!.time);
    const lateStarts = r.of('instance.upgrade.started').filter((e) => e.rolloutId === created[0]!.rolloutId && Date.parse(e.time) > cancelledAt);
    const behind = [...r.members('web-east'), ...r.members('web-west')].filter((id) => r.osVersion(id) !== '1.1.0' && r.result.engine.state.fleet.instances.get(OS_KEY)!.get(id)!.status !== 'Failed');
    assert.deepEqual(behind, [], `left behind on 1.0.0 by a completed release; re-images started by the cancelled rollout after its cancellation: ${lateStarts.map((e) => e.machineId).join(', ')}`);
  });
});
