/**
 * The example scenarios (examples/*.yaml) do what their header comments say: every one loads, plans
 * and simulates with the real engine, its event log keeps the safety invariants, and each shows its
 * point (a bad release stopped in the canary phase, critical pacing, opt-out, background gates, a large
 * generated fleet). Also: docs/scenarios.md links every example and names every field of the schema.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { InvariantChecker } from '../src/audit/invariants.js';
import { WindowChecker } from '../src/audit/windows.js';
import { PatchChecker } from '../src/audit/patches.js';
import { REBOOT_NOTICE_MS } from '../src/planner/windows.js';
import { windowKeyOf, windowsOfKey } from '../src/model/maintenance.js';
import type { EngineEvent, EventType } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import type { RolloutSummary } from '../src/report/summary.js';
import { SummaryCollector } from '../src/report/summary.js';
import { scenarioSchema } from '../src/sim/scenario-schema.js';
import type { Scenario } from '../src/sim/scenario.js';
import { loadScenarioFile } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import type { SimResult } from '../src/sim/simulator.js';
import { cli, ROOT } from './helpers/cli.js';

const EXAMPLES = join(ROOT, 'examples');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();

interface Run {
  scenario: Scenario;
  result: SimResult;
  rollouts: RolloutSummary[];
  violations: string[];
  events: EngineEvent[];
  of<T extends EventType>(type: T): Array<Extract<EngineEvent, { type: T }>>;
}

/** Loads and simulates an example with the real engine; keeps the log unless `keepEvents` is false. */
function run(file: string, keepEvents = true): Run {
  const scenario = loadScenarioFile(join(EXAMPLES, file));
  const summary = new SummaryCollector();
  const checker = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  const events: EngineEvent[] = [];
  const result = runSimulation(scenario, {
    onEvents: (batch) => {
      summary.onEvents(batch);
      checker.onEvents(batch);
      if (keepEvents) for (const e of batch) events.push(e);
    },
  });
  return {
    scenario,
    result,
    rollouts: summary.result(),
    violations: checker.finish(),
    events,
    of: <T extends EventType>(type: T) => events.filter((e) => e.type === type) as Array<Extract<EngineEvent, { type: T }>>,
  };
}


const at = (r: Run, offsetMs: number) => r.scenario.startMs + offsetMs;
const ms = (iso: string) => Date.parse(iso);

function only(r: Run, status?: string): RolloutSummary {
  assert.equal(r.rollouts.length, 1, `one rollout expected, got ${r.rollouts.map((x) => `${x.id} ${x.status}`).join(', ')}`);
  if (status) assert.equal(r.rollouts[0]!.status, status, r.rollouts[0]!.reason);
  return r.rollouts[0]!;
}

describe('every example', () => {
  test('there are examples, and the ones the docs promise exist', () => {
    for (const f of ['demo.yaml', 'small.yaml', 'bad-release.yaml', 'critical.yaml', 'opt-out.yaml', 'background-faults.yaml', 'large.yaml']) assert.ok(files.includes(f), `examples/${f} is missing`);
  });

  for (const f of files) {
    test(`${f} starts with a comment that says what it shows`, () => {
      const first = readFileSync(join(EXAMPLES, f), 'utf8').split('\n')[0]!;
      assert.match(first, /^# \S.{20,}/);
    });
  }

  test('each example plans every release it publishes (phasewise plan --release N)', { concurrency: 4 }, async (t) => {
    const running: Array<Promise<void>> = [];
    for (const f of files) {
      // Extension releases and platform patch baselines are numbered together (R76).
      const publishes = loadScenarioFile(join(EXAMPLES, f)).actions.filter((a) => a.kind === 'publish' || a.kind === 'publishPatchBaseline');
      assert.ok(publishes.length > 0, `${f} publishes nothing`);
      publishes.forEach((p, i) => {
        running.push(t.test(`${f} release ${i + 1}`, async () => {
          const r = await cli('plan', join('examples', f), '--release', String(i + 1));
          assert.equal(r.status, 0, r.stderr);
          assert.equal(r.stderr, '');
          assert.ok(p.kind === 'publish' || p.kind === 'publishPatchBaseline');
          const v = (p.kind === 'publish' ? p.version.version : p.version).replace(/\./g, '\\.');
          assert.match(r.stdout, new RegExp(`^Release \\d+ of \\d+: \\S+ ${v}, published .*\\nPlan ro-\\d+: \\S+ → ${v}, (standard|critical) profile\\n`));
          assert.match(r.stdout, /\nPhase 0 — from /);
        }));
      });
    }
    await Promise.all(running);
  });
});

describe('small.yaml: a clean release, quick to read', () => {
  const r = run('small.yaml');

  test('21 machines in two paired regions all reach the new version', () => {
    assert.equal(r.scenario.state.fleet.machines.size, 21);
    assert.deepEqual(r.violations, []);
    const ro = only(r, 'completed');
    assert.equal(ro.toVersion, '1.4.1.0');
    assert.equal(ro.eligible, 21);
    assert.equal(ro.upgraded, 21);
    assert.equal(ro.rolledBack + ro.skipped + ro.failed, 0);
    assert.deepEqual(ro.gatesByRule, {});
  });

  test('two phases, one per region of the pair, four days apart (standard bake)', () => {
    const ro = only(r);
    assert.deepEqual(ro.phases.map((p) => p.regions), [['eastus'], ['westus']]);
    assert.equal(ms(ro.phases[1]!.startedAt!) - ms(ro.phases[0]!.endedAt!), 4 * DAY);
  });
});

describe('demo.yaml', () => {
  test('the summary shows at least one completed rollout and the invariants hold', () => {
    const r = run('demo.yaml', false);
    assert.deepEqual(r.violations, []);
    assert.ok(r.rollouts.some((x) => x.status === 'completed' && x.upgraded > 0), r.rollouts.map((x) => `${x.id} ${x.status}`).join(', '));
    assert.equal(r.result.hitHorizon, false);
  });

  test('R70: the European scale sets are upgraded only inside their night window, and waited for it', () => {
    const r = run('demo.yaml');
    const m = r.result.engine.state.maintenance;
    const machines = r.scenario.state.fleet.machines;
    const windows = new WindowChecker({ unionOf: (id) => [...windowsOfKey(m, windowKeyOf(m, 'Extension', machines.get(id)!))] });
    // The configuration is of the Extension scope: the image release's rollouts (OSImage scope, no window) are left out.
    const imageRollouts = new Set(r.of('rollout.created').filter((e) => e.artifact.kind === 'osImage').map((e) => e.rolloutId));
    assert.ok(imageRollouts.size > 0);
    windows.onEvents(r.events.filter((e) => !('rolloutId' in e) || !imageRollouts.has(e.rolloutId)));
    assert.deepEqual(windows.finish(), []);
    assert.deepEqual(r.of('maintenance.changed').map((e) => `${e.action} ${e.configuration} ${e.targets.join(',')}`), ['put eu-nights ', 'assign eu-nights batch-neu', 'assign eu-nights web-weu']);
    // The window is of the Extension scope: the image release's re-images of web-weu are not confined by it.
    const confined = r.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'extension' && (e.placement.setId === 'batch-neu' || e.placement.setId === 'web-weu'));
    assert.ok(confined.length > 300 && windows.checkedStarts === confined.length, `${windows.checkedStarts} of ${confined.length} checked`);
    assert.ok(r.of('window.waiting').length > 0);
    // The image release's rollouts are superseded as its version reaches more regions (R10); the last one completes.
    assert.ok(r.rollouts.every((x) => x.status === 'completed' || (x.status === 'superseded' && /^superseded/.test(x.reason))), r.rollouts.map((x) => `${x.id} ${x.status}`).join(', '));
  });

  test('R60, R64, R65, R83: the image release re-images the sets with automatic OS upgrade on, each region once the version is there, each re-image announced', () => {
    const r = run('demo.yaml');
    assert.deepEqual(r.violations, []);
    const to = '24.04.202601090';
    const replicated = new Map<string, number>();
    for (const a of r.scenario.actions) if (a.kind === 'updateImages') for (const o of a.ops) if (o.op === 'replicate' && o.version === to) replicated.set(o.region, o.completedAtMs);
    assert.equal(replicated.size, 6);
    const started = r.of('instance.upgrade.started').filter((e) => e.artifact.kind === 'osImage');
    assert.ok(started.length >= 315, `${started.length} re-images`);
    for (const e of started) assert.ok(ms(e.time) >= replicated.get(e.placement.region)!, `R64: ${e.machineId} re-imaged at ${e.time}, before the version reached ${e.placement.region}`);
    const notices = new Set(r.of('instance.notice.scheduled').map((n) => `${n.rolloutId}|${n.machineId}|${n.attempt}`));
    assert.ok(started.every((e) => notices.has(`${e.rolloutId}|${e.machineId}|${e.attempt}`)), 'R83: every re-image has its notice');
    const os = r.result.engine.state.fleet.instances.get('osimage:canonical:ubuntu-24_04-lts:server')!;
    for (const m of r.scenario.state.fleet.machines.values()) {
      const set = m.placement.setId === null ? undefined : r.result.engine.state.fleet.scaleSets.get(m.placement.setId);
      if (!set) {
        assert.equal(os.get(m.id), undefined, `${m.id} has no OS image instance`);
        continue;
      }
      const inst = os.get(m.id)!;
      if (!set.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade) assert.equal(inst.installedVersion, '24.04.202601050', `R65: ${m.id} keeps its image`);
      else if (inst.status !== 'Failed') assert.equal(inst.installedVersion, to, `R60: ${m.id}`);
    }
    const last = r.rollouts.filter((x) => x.toVersion === to).at(-1)!;
    assert.equal(last.status, 'completed');
  });
});

describe('bad-release.yaml: the canary phase fails and the rollout stops', () => {
  const r = run('bad-release.yaml');

  test('the rollout is stopped by the failed canary phase (R10)', () => {
    assert.deepEqual(r.violations, []);
    const ro = only(r, 'stopped');
    assert.match(ro.reason, /^phase 0 failed/);
    assert.equal(ro.phases[0]!.status, 'failed');
    assert.deepEqual(ro.phases[0]!.regions, ['centralus']);
    for (const p of ro.phases.slice(1)) assert.equal(p.startedAt, null, `phase ${p.index} must never start`);
    assert.ok((ro.gatesByRule.R10 ?? 0) >= 1);
    assert.ok((ro.gatesByRule.R23 ?? 0) >= 1);
  });

  test('only the canary region was touched, and every broken instance was rolled back (R22)', () => {
    const started = r.of('instance.upgrade.started');
    assert.ok(started.length > 0);
    assert.deepEqual([...new Set(started.map((e) => e.placement.region))], ['centralus']);
    const unhealthy = r.of('instance.health.unhealthy').map((e) => e.machineId).sort();
    assert.ok(unhealthy.length > started.length / 2, `most attempts broke: ${unhealthy.length} of ${started.length}`);
    assert.deepEqual(r.of('instance.rollback.succeeded').map((e) => e.machineId).sort(), unhealthy);
    for (const id of unhealthy) assert.equal(r.scenario.state.fleet.instances.get('extension:contoso.security.sensor')!.get(id)!.installedVersion, '2.0.3.0');
  });

  test('the simulation ends when the rollout stops, long before the horizon', () => {
    assert.equal(r.result.hitHorizon, false);
    assert.ok(r.result.endMs - r.scenario.startMs < DAY);
  });
});

describe('critical.yaml: critical pacing against standard pacing (R40)', () => {
  const r = run('critical.yaml');
  const byProfile = (p: string) => {
    const found = r.rollouts.find((x) => x.profile === p);
    assert.ok(found, `no ${p} rollout`);
    return found;
  };

  test('one standard and one critical rollout, both complete on the same 155 machines', () => {
    assert.deepEqual(r.violations, []);
    assert.equal(r.rollouts.length, 2);
    for (const p of ['standard', 'critical']) {
      const ro = byProfile(p);
      assert.equal(ro.status, 'completed', ro.reason);
      assert.equal(ro.eligible, 155);
      assert.equal(ro.upgraded, 155);
    }
  });

  test('the critical rollout bakes a day between phases, the standard one four days', () => {
    const gaps = (ro: RolloutSummary) => ro.phases.slice(1).map((p, i) => ms(p.startedAt!) - ms(ro.phases[i]!.endedAt!));
    const critical = gaps(byProfile('critical'));
    const standard = gaps(byProfile('standard'));
    assert.ok(critical.length > 0 && standard.length > 0);
    for (const g of critical) assert.equal(g, DAY);
    for (const g of standard) assert.equal(g, 4 * DAY);
  });

  test('the critical rollout grows faster and finishes within three weeks, well before the standard one', () => {
    const critical = byProfile('critical');
    const standard = byProfile('standard');
    assert.ok(critical.phases[1]!.regions.length > standard.phases[1]!.regions.length);
    const took = (ro: RolloutSummary) => ms(ro.endedAt!) - ms(ro.createdAt);
    assert.ok(took(critical) <= 21 * DAY);
    assert.ok(took(critical) * 2 < took(standard), `critical ${took(critical) / DAY} d, standard ${took(standard) / DAY} d`);
  });
});

describe('opt-out.yaml: disabling and re-enabling automatic upgrade mid-rollout (R5, R32)', () => {
  const r = run('opt-out.yaml');
  const disableArc = at(r, HOUR + 25 * MINUTE);
  const enableArc = at(r, 4 * HOUR);
  const disablePayments = at(r, 4 * DAY + HOUR + 26 * MINUTE);

  const enablePayments = at(r, 6 * DAY);

  test('the rollout completes and the invariants hold (no attempt while opted out)', () => {
    assert.deepEqual(r.violations, []);
    const ro = only(r, 'completed');
    assert.ok(ro.skipped > 0);
  });

  test('instances skipped while opted out are upgraded after the owners opt back in (R32)', () => {
    // Batch members skipped while opted out (a retry that came due while opted out is its own case, below).
    const skipped = new Set(r.of('instance.skipped').filter((e) => !e.reason.startsWith('retry not attempted')).map((e) => e.machineId));
    assert.ok(skipped.size > 0);
    for (const id of skipped) {
      assert.ok(r.of('instance.upgrade.succeeded').some((e) => e.machineId === id && ms(e.time) > enablePayments), `${id} is upgraded after P6D`);
    }
    const key = 'extension:contoso.patch.guestagent';
    for (const [id, inst] of r.scenario.state.fleet.instances.get(key)!) assert.equal(inst.installedVersion, '5.0.1.0', `${id} ends at 5.0.1.0`);
  });

  test('retries that came due while disabled were dropped, and ran when it was enabled again (R32)', () => {
    const retried = r.of('instance.retry.scheduled').filter((e) => e.placement.region === 'francecentral' && ms(e.at) >= disableArc && ms(e.at) < enableArc);
    assert.ok(retried.length > 0, 'some Arc retry comes due while automatic upgrade is off');
    const retryAt = (id: string) => r.of('instance.upgrade.started').filter((s) => s.machineId === id && s.attempt > 1).map((s) => ms(s.time));
    for (const e of retried) {
      // The log says the retry was dropped when it came due (R32), and why.
      const dropped = r.of('instance.skipped').find((s) => s.machineId === e.machineId && s.time === e.at);
      assert.ok(dropped, `${e.machineId}: no event when its retry came due while opted out`);
      assert.match(dropped.reason, /^retry not attempted: automatic upgrade was disabled/);
      const starts = retryAt(e.machineId);
      assert.ok(starts.length > 0, `${e.machineId} is retried`);
      assert.ok(starts[0]! >= enableArc && starts[0]! < enableArc + 30 * MINUTE, `${e.machineId} is retried once automatic upgrade is enabled again, not when its retry came due (${new Date(starts[0]!).toISOString()})`);
      assert.ok(r.of('instance.upgrade.succeeded').some((s) => s.machineId === e.machineId && ms(s.time) > enableArc), `${e.machineId} ends upgraded`);
    }
    assert.ok(retried.some((e) => retryAt(e.machineId)[0] === enableArc), 'the first retry starts the moment automatic upgrade is enabled');
  });

  test('opted-out instances of payments are skipped; an attempt in flight finishes (R5)', () => {
    const disabled = new Set(r.of('autoUpgrade.changed').filter((e) => !e.enabled && ms(e.time) === disablePayments).map((e) => e.machineId));
    assert.ok(disabled.size > 5 && disabled.size < 25, `about half of the 30 instances: ${disabled.size}`);
    const skipped = r.of('instance.skipped').filter((e) => !e.reason.startsWith('retry not attempted'));
    assert.ok(skipped.length > 0);
    for (const e of skipped) {
      assert.ok(disabled.has(e.machineId), `${e.machineId} was skipped but not opted out`);
      assert.match(e.reason, /opt-out/);
      assert.ok(ms(e.time) >= disablePayments);
    }
    const settled = new Set<EventType>(['instance.upgrade.succeeded', 'instance.upgrade.failed', 'instance.health.unhealthy']);
    const inFlight = [...disabled].filter((id) => {
      const own = r.events.filter((e) => 'machineId' in e && e.machineId === id && e.type !== 'autoUpgrade.changed');
      const started = own.some((e) => e.type === 'instance.upgrade.started' && ms(e.time) < disablePayments);
      const done = own.some((e) => settled.has(e.type) && ms(e.time) <= disablePayments);
      return started && !done;
    });
    assert.ok(inFlight.length > 0, 'some opted-out instance was being upgraded at that moment');
    for (const id of inFlight) assert.ok(r.events.some((e) => settled.has(e.type) && 'machineId' in e && e.machineId === id && ms(e.time) > disablePayments), `${id} finished its attempt`);
  });
});

describe('background-faults.yaml: unrelated unhealthiness holds the batches of a set (R20, R24)', () => {
  const r = run('background-faults.yaml');
  const episodeStart = at(r, HOUR + 10 * MINUTE);
  const episodeEnd = at(r, 4 * HOUR + 10 * MINUTE);

  test('gate.breached (R24) then gate.held (R20) on the set orders, during the episode only', () => {
    assert.deepEqual(r.violations, []);
    const gates = [...r.of('gate.breached'), ...r.of('gate.held')].sort((a, b) => a.seq - b.seq);
    assert.ok(gates.length >= 2);
    assert.equal(gates[0]!.type, 'gate.breached');
    assert.equal(gates[0]!.rule, 'R24');
    assert.ok(gates.some((g) => g.type === 'gate.held' && g.rule === 'R20'));
    for (const g of gates) {
      assert.equal(g.scope.setId, 'orders');
      assert.ok(g.observed > g.limit);
      assert.ok(ms(g.time) >= episodeStart && ms(g.time) < episodeEnd, `${g.type} at ${g.time} is outside the episode`);
    }
  });

  test('no batch of orders starts between the first gate and the end of the episode; the rest run after', () => {
    const firstGate = ms(r.of('gate.breached')[0]!.time);
    const batches = r.of('batch.started').filter((b) => b.scope.setId === 'orders');
    assert.equal(batches.filter((b) => ms(b.time) >= firstGate && ms(b.time) < episodeEnd).length, 0);
    assert.ok(batches.some((b) => ms(b.time) >= episodeEnd));
  });

  test('the release itself is good: the rollout completes, and only machines hit by the episode were rolled back', () => {
    const ro = only(r, 'completed');
    assert.equal(ro.upgraded, ro.eligible);
    // An instance whose machine fell sick during its health wait is judged unhealthy: only in orders, only during the episode.
    const episodeStart = Date.parse('2026-06-01T01:10:00Z');
    const episodeEnd = episodeStart + 3 * HOUR;
    // Elsewhere only the rare agent whose first health report came later than the 5-minute window (R21).
    for (const e of r.of('instance.rollback.started')) {
      if (/no healthy report within/.test(e.reason ?? '')) continue;
      assert.equal(e.placement.setId, 'orders', `${e.machineId} rolled back outside the sick set: ${e.reason}`);
      assert.ok(ms(e.time) >= episodeStart && ms(e.time) <= episodeEnd + 10 * MINUTE, `${e.machineId} rolled back at ${e.time}, outside the episode`);
    }
  });
});

describe('large.yaml: a generated fleet of about 50,000 machines', () => {
  const scenario = loadScenarioFile(join(EXAMPLES, 'large.yaml'));

  test('about 50,000 machines in 20 regions of 10 geo-pairs with 3 zones each', () => {
    const fleet = scenario.state.fleet;
    assert.ok(fleet.machines.size >= 45_000 && fleet.machines.size <= 55_000, `${fleet.machines.size} machines`);
    assert.equal(fleet.regions.size, 20);
    for (const region of fleet.regions.values()) {
      assert.deepEqual(region.zones, ['1', '2', '3']);
      assert.equal(fleet.regions.get(region.pair!)?.pair, region.name);
    }
    const kinds = new Set([...fleet.machines.values()].map((m) => m.kind));
    assert.deepEqual([...kinds].sort(), ['arc', 'scaleSetInstance', 'vm']);
    assert.equal(fleet.scaleSets.size, 600);
    assert.equal(fleet.availabilitySets.size, 200);
  });

  test('the full simulation completes within the standard bound, keeping the invariants', () => {
    const wall = Date.now();
    const r = run('large.yaml', false);
    const seconds = (Date.now() - wall) / 1000;
    assert.ok(seconds < 30, `took ${seconds} s`);
    assert.deepEqual(r.violations, []);
    const ro = only(r, 'completed');
    assert.equal(ro.eligible, r.scenario.state.fleet.machines.size);
    assert.ok(ro.upgraded >= ro.eligible - ro.failed);
    assert.ok(ms(ro.endedAt!) - ms(ro.createdAt) <= 56 * DAY);
    assert.ok(ro.phases.length >= 4);
    assert.ok(ro.gates.some((g) => (g.rule === 'R20' || g.rule === 'R24') && g.where.startsWith('region00') && ms(g.time) < r.scenario.startMs + DAY), 'the background episode in region00 holds some set');
  });
});

describe('platform-patching.yaml: platform patch baselines in off-peak hours (R76)', () => {
  const r = run('platform-patching.yaml');
  const patches = new PatchChecker({ windowOf: () => undefined, noticeMs: REBOOT_NOTICE_MS });
  patches.onEvents(r.events);

  test('three baselines, each rolled out to every platform-patched machine of its OS, the invariants holding', () => {
    assert.deepEqual(r.violations, []);
    assert.deepEqual(r.rollouts.map((x) => [x.status, x.eligible, x.upgraded]), [['completed', 32, 32], ['completed', 4, 4], ['completed', 32, 32]]);
    const fleet = r.result.engine.state.fleet;
    const linux = [...fleet.instances.get('guestPatch:linux')!.values()];
    assert.ok(linux.every((i) => i.installedVersion === '2026.3.15' && i.status === 'Succeeded'));
    assert.ok([...fleet.instances.get('guestPatch:windows')!.values()].every((i) => i.installedVersion === '2026.3.1'));
    // ImageDefault machines and machines without patch settings are the platform's business only when they ask.
    const touched = new Set(r.of('instance.upgrade.started').map((e) => e.machineId));
    assert.ok(![...touched].some((id) => id.startsWith('manual-') || id.startsWith('edge-')));
  });

  test('R76: every installation starts in its region\'s off-peak hours, and units waited for them', () => {
    assert.deepEqual(patches.violations, []);
    assert.equal(patches.checkedOffPeak, 68);
    const waits = r.of('window.waiting');
    assert.ok(waits.length > 0 && waits.every((w) => w.configurations.every((c) => c.startsWith('off-peak:'))));
    assert.ok(waits.some((w) => w.configurations.includes('off-peak:Europe/Dublin')) && waits.some((w) => w.configurations.includes('off-peak:America/New_York')));
  });

  test('R10: the geo-paired eastus and westus are patched in different phases', () => {
    for (const c of r.of('rollout.created')) assert.ok(!c.phases.some((p) => p.includes('eastus') && p.includes('westus')), JSON.stringify(c.phases));
  });

  test('R77, R83, R84: reboots are announced 15 minutes ahead and recorded; rebootSetting Never is never announced or rebooted', () => {
    assert.ok(patches.checkedReboots > 0);
    const announced = r.of('machine.reboot.announced');
    assert.ok(announced.length > 0 && announced.every((e) => !e.machineId.startsWith('db-')));
    assert.ok(r.of('availability.impact').every((e) => e.cause === 'Reboot' && !e.machineId.startsWith('db-')));
  });

  test('phasewise plan shows the baseline confined to off-peak hours', async () => {
    const out = await cli('plan', join('examples', 'platform-patching.yaml'), '--release', '1', '--detail');
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /^Release 1 of 3: guestPatch:Linux 2026\.3\.1, published 2026-03-02 13:00 UTC\nPlan ro-1: guestPatch:Linux → 2026\.3\.1, standard profile\n/);
    assert.match(out.stdout, /confined to maintenance windows \(R70\): off-peak:America\/New_York/);
    assert.match(out.stdout, /window Mon 2026-03-02 22:00–Tue 06:00 America\/New_York/);
    assert.match(out.stdout, /15-minute notice \(R83\)/);
  });
});

describe('docs/scenarios.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/scenarios.md'), 'utf8');

  test('links every example', () => {
    for (const f of files) assert.ok(doc.includes(`(../examples/${f})`), `docs/scenarios.md does not link examples/${basename(f)}`);
  });

  test('names every field of the scenario schema', () => {
    const missing = [...schemaKeys(scenarioSchema)].filter((k) => !doc.includes(`\`${k}\``) && !doc.includes(`.${k}\``) && !doc.includes(`\`${k}.`));
    assert.deepEqual(missing, []);
  });
});

/** Every object key of a zod schema, at any depth. */
function schemaKeys(schema: unknown, out = new Set<string>()): Set<string> {
  const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  if (!def) return out;
  if (def.type === 'object') {
    for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) {
      out.add(k);
      schemaKeys(v, out);
    }
  }
  for (const inner of [def.innerType, def.element, def.valueType, def.in, def.out]) if (inner) schemaKeys(inner, out);
  for (const option of (def.options as unknown[] | undefined) ?? []) schemaKeys(option, out);
  return out;
}
